// ump/detail/queue.hpp — the one place that includes moodycamel::ConcurrentQueue.
//
// Internal. Messages travel as envelopes through one moodycamel ConcurrentQueue per channel,
// through explicit producers only: each lane (state.hpp) is one producer, filled by one
// client object at a time under the lane's lock, and the server dequeues from each producer
// by its token. moodycamel orders each producer's items only; the channel's one FIFO comes
// from the ticket every envelope carries (state.hpp, "One FIFO"). An envelope holds a
// pointer to a pooled node (requests, and posts of other types), or, for a small trivially
// copyable post, the post's bytes themselves: such posts need no node, so nothing but the
// queue's own slot crosses cores. Emptiness and "all gone" are never decided from
// try_dequeue: the shared state keeps its own counters.
#pragma once

#include <atomic>  // std::memory_order
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <concurrentqueue.h>  // found by CMake (Debian: /usr/include/concurrentqueue)

#include "ump/detail/atomic.hpp"
#include "ump/detail/config.hpp"

namespace ump::detail {

class cell_base;

// What the queue carries. A node message: `node`, and its ticket in the first four of
// `bytes`. An inline post: its bytes in `bytes`, and its ticket in `node`, tagged with the
// low bit (state_base::stamp). The server strips the tag as it takes the envelope, so from
// there on node == nullptr means an inline post.
struct envelope {
  // 16-byte envelopes, four per cache line. Larger ones were measured to slow down
  // requests (more queue lines cross cores per request) for the sake of larger inline posts.
  static constexpr std::size_t inline_capacity = 8;
  cell_base* node;
  alignas(8) unsigned char bytes[inline_capacity];
};
static_assert(std::is_trivially_copyable_v<envelope> && sizeof(envelope) == 16,
              "an envelope is copied byte for byte, 16 bytes: four per cache line");

// Posts of these types travel inline (copied byte for byte into the envelope).
template <class P>
inline constexpr bool fits_inline = std::is_trivially_copyable_v<P> && sizeof(P) <= envelope::inline_capacity &&
                                    alignof(P) <= 8;

struct queue_traits : moodycamel::ConcurrentQueueDefaultTraits {
  // Small blocks (32 envelopes, 512 bytes): an idle channel should stay small. The queue is
  // made with no blocks at all; the first send allocates one.
  static const std::size_t BLOCK_SIZE = 32;
  static_assert(BLOCK_SIZE * sizeof(envelope) == 512, "a queue block holds 512 bytes of envelopes");
  // The producer's block index starts small and doubles as blocks are added.
  static const std::size_t EXPLICIT_INITIAL_INDEX_SIZE = 4;
  // Only the lanes' explicit producers enqueue: no implicit producers, and so no hash table
  // for them inside every queue object (512 bytes at the default size).
  static const std::size_t INITIAL_IMPLICIT_PRODUCER_HASH_SIZE = 0;
};

#if !defined(UMP_MODEL_CHECK)
using node_queue = moodycamel::ConcurrentQueue<envelope, queue_traits>;
#else
// Model checking (tests/model/): moodycamel's own atomics are plain std::atomic, invisible to
// Relacy, so each queue operation runs as one indivisible step. What Relacy cannot see either
// is the ordering the queue provides (an enqueue releases the element, the dequeue that gets
// it acquires it). A model-only RMW on sync_ stands for it: release before every enqueue,
// acquire after every successful dequeue. (It orders a dequeue after every enqueue before it,
// not only the one whose element it got: slightly stronger than the real queue.)
class node_queue : public moodycamel::ConcurrentQueue<envelope, queue_traits> {
  using base = moodycamel::ConcurrentQueue<envelope, queue_traits>;

 public:
  using base::base;
  bool enqueue(moodycamel::ProducerToken& t, const envelope& e) {
    // ORDERING: release, stands for the enqueue's release of the element; pairs with the
    // acquire RMW after a successful dequeue (below).
    sync_.fetch_add(1, std::memory_order_release);
    return base::enqueue(t, e);
  }
  std::size_t try_dequeue_bulk_from_producer(const moodycamel::ProducerToken& t, envelope* out, std::size_t max) {
    const std::size_t n = base::try_dequeue_bulk_from_producer(t, out, max);
    // ORDERING: acquire, stands for the dequeue's acquire of the element; pairs with the
    // release RMW before every enqueue (above).
    if (n != 0) sync_.fetch_add(0, std::memory_order_acquire);
    return n;
  }

 private:
  atomic<std::uint32_t> sync_{0};
};
#endif
using producer_token = moodycamel::ProducerToken;

}  // namespace ump::detail
