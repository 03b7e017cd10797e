// bench/floors.hpp - two threads ping-ponging one word: what no channel can beat here.
#pragma once

#include <atomic>
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

  alignas(cache_line_size) std::atomic<std::uint32_t> word_{0};
  alignas(cache_line_size) std::atomic<bool> stop_{false};
  std::uint32_t last_reply_ = 0;  // client thread only
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

  alignas(cache_line_size) std::atomic<std::uint32_t> word_{0};
  alignas(cache_line_size) std::atomic<bool> stop_{false};
  std::uint32_t last_reply_ = 0;  // client thread only
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

  alignas(cache_line_size) std::atomic<std::uint32_t> word_{0};
  alignas(cache_line_size) std::atomic<bool> stop_{false};
  std::uint32_t last_reply_ = 0;  // client thread only
  std::thread server_;
};

}  // namespace ump_bench
