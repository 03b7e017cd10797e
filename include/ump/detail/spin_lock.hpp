// ump/detail/spin_lock.hpp — spin_lock: a lane's lock, and a bounded channel's send lock.
//
// Internal. A test-and-test-and-set flag that spins briefly, then yields. Held only for the
// few dozen instructions of a send.
#pragma once

#include <atomic>  // std::memory_order
#include <thread>

#include "ump/detail/atomic.hpp"
#include "ump/detail/config.hpp"

namespace ump::detail {

// A tiny test-and-test-and-set lock. Senders hold it for a few dozen instructions (take a
// node, build the message, announce, enqueue): a lane's lock (uncontended unless threads
// share one client object), and a bounded channel's send lock.
class spin_lock {
 public:
  void lock() noexcept {
    // ORDERING: acquire, pairs with unlock()'s release store. The free case, inline.
    if (!locked_.exchange(true, std::memory_order_acquire)) [[likely]]
      return;
    lock_contended();
  }
  // Takes the lock only if it is free now. Never waits.
  bool try_lock() noexcept {
    // ORDERING: relaxed look first (no line steal when it is held); the acquire exchange
    // takes it, as in lock().
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  // ORDERING: release, pairs with lock()'s acquire exchange.
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  // Held by someone else: spin until it looks free, then try again; yield after a while.
  [[gnu::noinline]] void lock_contended() noexcept {
    do {
      // ORDERING: relaxed; only waits for the lock to look free: the acquire exchange is
      // what takes it.
      for (int i = 0; locked_.load(std::memory_order_relaxed); ++i) {
        if (i < 64) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
      // ORDERING: acquire, as in lock().
    } while (locked_.exchange(true, std::memory_order_acquire));
  }

  atomic<bool> locked_{false};
#if !defined(UMP_MODEL_CHECK)
  static_assert(decltype(locked_)::is_always_lock_free, "the lock is a lock-free flag");
#endif
};

}  // namespace ump::detail
