// ump/detail/queue.hpp — the one place that includes moodycamel::ConcurrentQueue.
//
// Internal. Requests and posts travel as pointers to pooled nodes (cell_base*) through a
// moodycamel ConcurrentQueue used as an MPSC queue: each client object owns an explicit
// producer token (FIFO per client; explicit producers are recycled when tokens die, implicit
// ones never are), the server owns the consumer token. Emptiness and "all gone" are never
// decided from try_dequeue: the shared state keeps its own counters.
#pragma once

#include <atomic>
#include <cstddef>
#include <thread>

#include <concurrentqueue.h>  // found by CMake (Debian: /usr/include/concurrentqueue)

#include "ump/detail/config.hpp"

namespace ump::detail {

class cell_base;

struct queue_traits : moodycamel::ConcurrentQueueDefaultTraits {
  // Small blocks: a node pointer is 8 bytes, and an idle channel should stay small.
  static const std::size_t BLOCK_SIZE = 32;
  static const std::size_t EXPLICIT_INITIAL_INDEX_SIZE = 32;
};

using node_queue = moodycamel::ConcurrentQueue<cell_base*, queue_traits>;
using producer_token = moodycamel::ProducerToken;
using consumer_token = moodycamel::ConsumerToken;

// A tiny test-and-test-and-set lock. It only guards one client object's producer token, so
// it is contended only when the same client object is used by several threads at once.
class spin_lock {
 public:
  void lock() noexcept {
    // ORDERING: acquire, pairs with unlock()'s release store.
    while (locked_.exchange(true, std::memory_order_acquire)) {
      for (int i = 0; locked_.load(std::memory_order_relaxed); ++i) {
        if (i < 64) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  // ORDERING: release, pairs with lock()'s acquire exchange.
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// One client object's way into the queue.
struct producer {
  explicit producer(node_queue& q) : token(q) {}
  spin_lock lock;
  producer_token token;
};

}  // namespace ump::detail
