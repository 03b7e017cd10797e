// bench/floors.hpp - two threads ping-ponging one word: what no channel can beat here.
//
//   spin_pingpong          both sides pause-spin on the word
//   atomic_wait_pingpong   std::atomic wait/notify_one (libstdc++ spins a little, then parks)
//   futex_pingpong         raw futex, parks at once and always calls FUTEX_WAKE
//   parking_pingpong<K,us> raw futex with a "parked" bit in the word, so the waker calls
//                          FUTEX_WAKE only when the other side really parks; before parking
//                          the waiter pause-spins (K = pause) or sched_yield-spins (K = yield)
//                          for `us` microseconds, or parks at once (K = none)
//
// Layout: the word, the stop flag and the client's last reply each get a 128-byte block.
// The first version put stop_ (read by the server on every round trip) and last_reply_
// (written by the client on every round trip) on one line, next to the word's line: that
// made every round trip move a second line and, on a 2-vCPU AMD EPYC VM, nearly doubled the
// spin floor (122 ns against 67 ns in a standalone probe; BENCHMARKS.md has the figures).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "bench_util.hpp"

namespace ump_bench {

// ===========================================================================
// Floors: one word, two threads. The client stores an odd value, the server
// answers with value + 1 (even). `call(x)` returns x + (reply - sent) == x + 1,
// so the drivers can check floors like any other implementation. One client only.
// ===========================================================================

// (a) Pure spin: both sides burn their CPU. The cost of moving one cache line
// there and back, plus whatever the hypervisor adds; nothing can be faster.
class spin_pingpong {
 public:
  spin_pingpong() : server_{[this] { serve(); }} {}
  ~spin_pingpong() {
    // ORDERING: relaxed; published by the release store to word_ below, which the
    // server acquires before it reads stop_.
    stop_.store(true, std::memory_order_relaxed);
    // ORDERING: release; pairs with the server's acquire load of word_ in serve().
    word_.store(last_reply_ + 1, std::memory_order_release);
    server_.join();
  }
  spin_pingpong(const spin_pingpong&) = delete;
  spin_pingpong& operator=(const spin_pingpong&) = delete;

  struct client {
    spin_pingpong* floor;
    std::uint64_t call(std::uint64_t x) noexcept { return floor->round_trip(x); }
  };
  client make_client() noexcept { return client{this}; }

 private:
  std::uint64_t round_trip(std::uint64_t x) noexcept {
    const std::uint32_t sent = last_reply_ + 1;
    // ORDERING: release; pairs with the server's acquire load in serve().
    word_.store(sent, std::memory_order_release);
    std::uint32_t seen;
    // ORDERING: acquire; pairs with the server's release store of the reply.
    while ((seen = word_.load(std::memory_order_acquire)) == sent) cpu_relax();
    last_reply_ = seen;
    return x + (seen - sent);
  }

  void serve() noexcept {
    std::uint32_t last = 0;
    for (;;) {
      std::uint32_t seen;
      // ORDERING: acquire; pairs with the client's release store in round_trip()
      // or in the destructor.
      while ((seen = word_.load(std::memory_order_acquire)) == last) cpu_relax();
      // ORDERING: relaxed; ordered by the acquire load just above (destructor's store).
      if (stop_.load(std::memory_order_relaxed)) return;
      last = seen + 1;
      // ORDERING: release; pairs with the client's acquire load in round_trip().
      word_.store(last, std::memory_order_release);
    }
  }

  // One 128-byte block each (see the layout note at the top).
  alignas(prefetch_pair_size) std::atomic<std::uint32_t> word_{0};
  alignas(prefetch_pair_size) std::atomic<bool> stop_{false};
  alignas(prefetch_pair_size) std::uint32_t last_reply_ = 0;  // client thread only
  std::thread server_;
};

// (b) std::atomic<uint32_t>::wait / notify_one. libstdc++ spins briefly inside
// wait() before it parks on a futex, and notify_one skips the syscall when it
// knows nobody waits: the "good standard library" floor.
class atomic_wait_pingpong {
 public:
  atomic_wait_pingpong() : server_{[this] { serve(); }} {}
  ~atomic_wait_pingpong() {
    // ORDERING: relaxed; published by the release store to word_ below.
    stop_.store(true, std::memory_order_relaxed);
    // ORDERING: seq_cst (see round_trip()); pairs with the server's acquire wait/load.
    word_.store(last_reply_ + 1, std::memory_order_seq_cst);
    word_.notify_one();  // wakes the server's wait() on word_
    server_.join();
  }
  atomic_wait_pingpong(const atomic_wait_pingpong&) = delete;
  atomic_wait_pingpong& operator=(const atomic_wait_pingpong&) = delete;

  struct client {
    atomic_wait_pingpong* floor;
    std::uint64_t call(std::uint64_t x) noexcept { return floor->round_trip(x); }
  };
  client make_client() noexcept { return client{this}; }

 private:
  std::uint64_t round_trip(std::uint64_t x) noexcept {
    const std::uint32_t sent = last_reply_ + 1;
    // ORDERING: seq_cst, not release: libstdc++ 12's notify_one() skips the futex wake
    // when its waiter count reads zero, and a release store may become visible after
    // that load (store-load reordering), losing the wake. With release stores this floor
    // hung in 2 of 5 suite runs, both threads asleep in wait(). Pairs with the server's
    // acquire wait/load in serve().
    word_.store(sent, std::memory_order_seq_cst);
    word_.notify_one();  // partner: the server's word_.wait(last)
    // ORDERING: acquire; pairs with the server's release store of the reply.
    word_.wait(sent, std::memory_order_acquire);
    // ORDERING: acquire; same partner, reads the value wait() saw change.
    const std::uint32_t seen = word_.load(std::memory_order_acquire);
    last_reply_ = seen;
    return x + (seen - sent);
  }

  void serve() noexcept {
    std::uint32_t last = 0;
    for (;;) {
      // ORDERING: acquire; pairs with the client's release store in round_trip()
      // or in the destructor.
      word_.wait(last, std::memory_order_acquire);
      // ORDERING: acquire; same partner.
      const std::uint32_t seen = word_.load(std::memory_order_acquire);
      // ORDERING: relaxed; ordered by the acquire above (destructor's store).
      if (stop_.load(std::memory_order_relaxed)) return;
      last = seen + 1;
      // ORDERING: seq_cst (see round_trip()); pairs with the client's acquire
      // wait/load in round_trip().
      word_.store(last, std::memory_order_seq_cst);
      word_.notify_one();  // partner: the client's word_.wait(sent)
    }
  }

  // One 128-byte block each (see the layout note at the top).
  alignas(prefetch_pair_size) std::atomic<std::uint32_t> word_{0};
  alignas(prefetch_pair_size) std::atomic<bool> stop_{false};
  alignas(prefetch_pair_size) std::uint32_t last_reply_ = 0;  // client thread only
  std::thread server_;
};

// (c) Raw futex, no spinning at all: every wait that finds the word unchanged
// parks, every store is followed by FUTEX_WAKE. The price of a park/wake pair
// on each side; what a channel pays when its spin budget is exhausted.
class futex_pingpong {
 public:
  futex_pingpong() : server_{[this] { serve(); }} {}
  ~futex_pingpong() {
    // ORDERING: relaxed; published by the release store to word_ below.
    stop_.store(true, std::memory_order_relaxed);
    // ORDERING: release; pairs with the server's acquire load in serve().
    word_.store(last_reply_ + 1, std::memory_order_release);
    futex_wake_one(word_);
    server_.join();
  }
  futex_pingpong(const futex_pingpong&) = delete;
  futex_pingpong& operator=(const futex_pingpong&) = delete;

  struct client {
    futex_pingpong* floor;
    std::uint64_t call(std::uint64_t x) noexcept { return floor->round_trip(x); }
  };
  client make_client() noexcept { return client{this}; }

 private:
  std::uint64_t round_trip(std::uint64_t x) noexcept {
    const std::uint32_t sent = last_reply_ + 1;
    // ORDERING: release; pairs with the server's acquire load in serve().
    word_.store(sent, std::memory_order_release);
    futex_wake_one(word_);  // partner: the server's futex_wait(word_, last)
    std::uint32_t seen;
    // ORDERING: acquire; pairs with the server's release store of the reply.
    while ((seen = word_.load(std::memory_order_acquire)) == sent) futex_wait(word_, sent);
    last_reply_ = seen;
    return x + (seen - sent);
  }

  void serve() noexcept {
    std::uint32_t last = 0;
    for (;;) {
      std::uint32_t seen;
      // ORDERING: acquire; pairs with the client's release store in round_trip()
      // or in the destructor.
      while ((seen = word_.load(std::memory_order_acquire)) == last) futex_wait(word_, last);
      // ORDERING: relaxed; ordered by the acquire load above (destructor's store).
      if (stop_.load(std::memory_order_relaxed)) return;
      last = seen + 1;
      // ORDERING: release; pairs with the client's acquire load in round_trip().
      word_.store(last, std::memory_order_release);
      futex_wake_one(word_);  // partner: the client's futex_wait(word_, sent)
    }
  }

  // One 128-byte block each (see the layout note at the top).
  alignas(prefetch_pair_size) std::atomic<std::uint32_t> word_{0};
  alignas(prefetch_pair_size) std::atomic<bool> stop_{false};
  alignas(prefetch_pair_size) std::uint32_t last_reply_ = 0;  // client thread only
  std::thread server_;
};

// (d) Raw futex with a waiter bit: the top bit of the word says "the other side has parked,
// or is about to". A waiter sets it (CAS) before FUTEX_WAIT; the other side publishes with
// an exchange, which clears it, and calls FUTEX_WAKE only if it was set. Before parking the
// waiter spins for SpinUs microseconds: pause loops (before_park::pause), sched_yield loops
// (before_park::yield), or not at all (before_park::none: parks at once). These are the
// floors of the gap sweep: a request that arrives after the server has parked costs at
// least one futex wake-up, and what the spin phase does to that wake-up is the question.
enum class before_park { none, pause, yield };

template <before_park Kind, int SpinUs>
class parking_pingpong {
 public:
  parking_pingpong() : server_{[this] { serve(); }} {}
  ~parking_pingpong() {
    // ORDERING: relaxed; published by the acq_rel exchange in publish(), which the server
    // acquires before it reads stop_.
    stop_.store(true, std::memory_order_relaxed);
    publish(next(last_reply_));
    server_.join();
  }
  parking_pingpong(const parking_pingpong&) = delete;
  parking_pingpong& operator=(const parking_pingpong&) = delete;

  struct client {
    parking_pingpong* floor;
    std::uint64_t call(std::uint64_t x) noexcept { return floor->round_trip(x); }
  };
  client make_client() noexcept { return client{this}; }

 private:
  static constexpr std::uint32_t parked_bit = std::uint32_t{1} << 31;
  static constexpr std::uint32_t value_mask = parked_bit - 1;
  static constexpr std::uint32_t next(std::uint32_t v) noexcept { return (v + 1) & value_mask; }

  std::uint64_t round_trip(std::uint64_t x) noexcept {
    const std::uint32_t sent = next(last_reply_);
    publish(sent);
    const std::uint32_t seen = await_change(sent);
    last_reply_ = seen;
    return x + ((seen - sent) & value_mask);
  }

  void serve() noexcept {
    std::uint32_t last = 0;
    for (;;) {
      const std::uint32_t seen = await_change(last);
      // ORDERING: relaxed; ordered by the acquire in await_change() (destructor's publish).
      if (stop_.load(std::memory_order_relaxed)) return;
      last = next(seen);
      publish(last);
    }
  }

  // Stores v (clearing the parked bit) and wakes the other side only if it had set the bit.
  void publish(std::uint32_t v) noexcept {
    // ORDERING: acq_rel; release pairs with the acquire loads in await_change(); acquire
    // orders the read of the parked bit, set by the partner's CAS in await_change().
    if ((word_.exchange(v, std::memory_order_acq_rel) & parked_bit) != 0) {
      futex_wake_one(word_);  // partner: futex_wait() in await_change()
    }
  }

  // Returns the word's value once it differs from `old`.
  std::uint32_t await_change(std::uint32_t old) noexcept {
    // ORDERING (all loads and the CAS): acquire; pair with the exchange in publish().
    std::uint32_t w = word_.load(std::memory_order_acquire);
    if ((w & value_mask) != old) return w & value_mask;
    if constexpr (Kind != before_park::none) {
      const auto deadline = bench_clock::now() + std::chrono::microseconds{SpinUs};
      do {
        // A clock read every 16 pauses (~1 µs here) or every yield (a syscall anyway).
        for (int i = 0; i < (Kind == before_park::pause ? 16 : 1); ++i) {
          w = word_.load(std::memory_order_acquire);
          if ((w & value_mask) != old) return w & value_mask;
          if constexpr (Kind == before_park::pause) {
            cpu_relax();
          } else {
            std::this_thread::yield();
          }
        }
      } while (bench_clock::now() < deadline);
    }
    for (;;) {
      if ((w & parked_bit) == 0 &&
          !word_.compare_exchange_weak(w, w | parked_bit, std::memory_order_acquire, std::memory_order_acquire)) {
        if ((w & value_mask) != old) return w & value_mask;
        continue;  // spurious failure: retry the CAS
      }
      futex_wait(word_, old | parked_bit);  // returns at once if publish() got there first
      w = word_.load(std::memory_order_acquire);
      if ((w & value_mask) != old) return w & value_mask;
    }
  }

  alignas(prefetch_pair_size) std::atomic<std::uint32_t> word_{0};
  alignas(prefetch_pair_size) std::atomic<bool> stop_{false};
  alignas(prefetch_pair_size) std::uint32_t last_reply_ = 0;  // client thread only
  std::thread server_;
};

using futex_park_pingpong = parking_pingpong<before_park::none, 0>;
using futex_spin50_park_pingpong = parking_pingpong<before_park::pause, 50>;
using futex_yield50_park_pingpong = parking_pingpong<before_park::yield, 50>;

}  // namespace ump_bench
