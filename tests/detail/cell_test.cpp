// Tests for ump/detail/cell.hpp: the reply cell's state machine and the cell pool, driven
// directly, without a channel. Single-threaded, each transition order in turn; then two
// threads racing publish against wait / async registration / abandon / time-out on cells
// that are recycled (and reused) the moment the requester is done with them; then the pool's
// LIFO order and a concurrent push/pop stress.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "support/lifetime.hpp"
#include "ump/detail/cell.hpp"
#include "ump/detail/park.hpp"

using ump_test::lifetime_check;
using ump_test::tracked;

namespace {

namespace d = ump::detail;
using cell = d::reply_cell<tracked, int>;

// Park at once (no spinning), or spin with the library's default budget first.
const ump::wait_options park_at_once{std::chrono::nanoseconds(0), std::chrono::nanoseconds(0)};
const ump::wait_options spin_then_park{};

// The replier's half of a reply: build the outcome, publish; if the requester had abandoned,
// destroy the outcome (the caller then recycles the cell).
d::publish_result reply(cell& c, std::uint64_t v) {
  c.outcome_.emplace(tracked(v));
  const auto r = c.publish();
  if (r == d::publish_result::origin_gone) c.outcome_.destroy();
  return r;
}

// The requester's half after its outcome is ready: read and destroy it.
std::uint64_t consume(cell& c) {
  auto& out = c.outcome_.get();
  const std::uint64_t v = out.has_value() ? out->value() : ~std::uint64_t{0};
  c.outcome_.destroy();
  return v;
}

// Counts calls; the async waiter under test.
struct wake_counter {
  std::atomic<int> calls{0};
  static void wake(void* self) noexcept {
    // ORDERING: release, pairs with the acquire loads of `calls` by the requester: once it
    // sees the call, the cell is ready and its outcome visible (publish's exchange happened
    // before this call on the replier's thread).
    static_cast<wake_counter*>(self)->calls.fetch_add(1, std::memory_order_release);
  }
  d::async_waiter waiter() noexcept { return {&wake, this}; }
};

template <class Pred>
void yield_until(Pred pred) {
  while (!pred()) std::this_thread::yield();
}

}  // namespace

TEST_CASE("reply_before_wait") {
  lifetime_check guard;
  cell c;
  c.reset();
  CHECK_FALSE(c.is_ready());
  CHECK(reply(c, 7) == d::publish_result::delivered);
  CHECK(c.is_ready());
  CHECK_FALSE(c.abandoned());
  // Both wait flavours return at once, without a deadline to save them.
  CHECK((c.wait_ready(park_at_once, {}) == d::wait_end::ready));
  CHECK((c.wait_ready(spin_then_park, {}) == d::wait_end::ready));
  CHECK(consume(c) == 7);
}

TEST_CASE("wait_then_publish") {
  lifetime_check guard;
  for (const auto& opts : {park_at_once, spin_then_park}) {
    cell c;
    c.reset();
    const auto parks = d::read_park_stats().parks;
    bool woke_ready = false;
    std::thread requester([&] { woke_ready = (c.wait_ready(opts, {}) == d::wait_end::ready); });
    // The requester has given up spinning and is going to sleep (or asleep): publish is
    // (on any real machine) the one that wakes it. Only the outcome is asserted; which
    // branch publish took is the memory model's business (the park counter is relaxed).
    yield_until([&] { return d::read_park_stats().parks > parks; });
    CHECK(reply(c, 8) == d::publish_result::delivered);
    requester.join();
    CHECK(woke_ready);
    CHECK(consume(c) == 8);
  }
}

TEST_CASE("abandon_before_publish") {
  lifetime_check guard;
  cell c;
  c.reset();
  CHECK_FALSE(c.abandon());  // nothing was there: the replier owns the cell now
  CHECK(c.abandoned());
  CHECK_FALSE(c.is_ready());
  const long before = tracked::live();
  CHECK(reply(c, 1) == d::publish_result::origin_gone);
  CHECK(tracked::live() == before);  // the replier destroyed its outcome
}

TEST_CASE("abandon_after_publish") {
  lifetime_check guard;
  cell c;
  c.reset();
  CHECK(reply(c, 2) == d::publish_result::delivered);
  CHECK(c.abandon());  // the outcome was there: the requester owns it and must destroy it
  c.outcome_.destroy();
}

TEST_CASE("register_async_waiter_after_ready_fails") {
  lifetime_check guard;
  cell c;
  c.reset();
  wake_counter w;
  CHECK(reply(c, 3) == d::publish_result::delivered);
  CHECK_FALSE(c.register_async_waiter(w.waiter()));  // the caller must not suspend
  CHECK(w.calls.load() == 0);
  CHECK(consume(c) == 3);
}

TEST_CASE("register_async_waiter_then_publish_calls_it_once") {
  lifetime_check guard;
  cell c;
  c.reset();
  wake_counter w;
  CHECK(c.register_async_waiter(w.waiter()));
  CHECK(w.calls.load() == 0);
  CHECK(reply(c, 4) == d::publish_result::delivered);
  CHECK(w.calls.load() == 1);
  CHECK(c.is_ready());
  CHECK(consume(c) == 4);
}

TEST_CASE("register_async_waiter_then_abandon_never_calls_it") {
  lifetime_check guard;
  cell c;
  c.reset();
  wake_counter w;
  CHECK(c.register_async_waiter(w.waiter()));
  CHECK_FALSE(c.abandon());  // the coroutine was destroyed while suspended
  CHECK(reply(c, 5) == d::publish_result::origin_gone);
  CHECK(w.calls.load() == 0);  // a dead frame is never resumed
}

TEST_CASE("wait_ready_times_out_then_publish_finds_abandoned") {
  lifetime_check guard;
  for (const auto& opts : {park_at_once, spin_then_park}) {
    cell c;
    c.reset();
    CHECK((c.wait_ready(opts, {d::clock::now() + std::chrono::microseconds(200)}) == d::wait_end::timed_out));
    CHECK(c.abandoned());
    CHECK(reply(c, 6) == d::publish_result::origin_gone);
  }
  // A deadline already passed with the outcome there: the outcome wins.
  cell c;
  c.reset();
  CHECK(reply(c, 7) == d::publish_result::delivered);
  CHECK((c.wait_ready(park_at_once, {d::clock::now() - std::chrono::seconds(1)}) == d::wait_end::ready));
  CHECK(consume(c) == 7);
}

TEST_CASE("reset_makes_a_recycled_cell_usable_again") {
  lifetime_check guard;
  cell c;
  for (std::uint64_t round = 0; round < 4; ++round) {
    c.reset();
    CHECK_FALSE(c.is_ready());
    CHECK_FALSE(c.abandoned());
    if (round % 2 == 0) {
      CHECK(reply(c, round) == d::publish_result::delivered);
      CHECK(consume(c) == round);
    } else {
      CHECK_FALSE(c.abandon());
      CHECK(reply(c, round) == d::publish_result::origin_gone);
    }
  }
}

// Two threads, scaled(100000) rounds. The requester takes a cell from a pool of two, hands it
// to the replier, and ends the round in one of five ways; the moment it is done with a cell,
// the cell goes back to the pool and is reused by the next round, while the replier may still
// be inside publish() on it (the futex wake lands on a reused cell: a spurious wake-up the
// next waiter must absorb). Whoever finishes a cell recycles it, exactly once: at the end
// the pool holds both cells, once each, and every outcome was destroyed.
TEST_CASE("notify_after_free_rounds") {
  lifetime_check guard;
  const int rounds = ump_test::scaled(100000);
  d::node_pool pool;
  std::array<cell, 2> cells;
  for (auto& c : cells) pool.push(&c);
  // ORDERING: the slot hands a cell to the replier: release store, acquire exchange; the
  // cell's reset() is published with it.
  std::atomic<cell*> slot{nullptr};
  std::atomic<int> replier_recycled{0};

  std::thread replier([&] {
    for (int j = 0; j < rounds; ++j) {
      cell* c = nullptr;
      yield_until([&] { return (c = slot.exchange(nullptr, std::memory_order_acquire)) != nullptr; });
      if (reply(*c, static_cast<std::uint64_t>(j)) == d::publish_result::origin_gone) {
        pool.push(c);
        // ORDERING: relaxed; read after join().
        replier_recycled.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });

  int wrong = 0;
  int requester_recycled = 0;
  int abandoned = 0;
  for (int i = 0; i < rounds; ++i) {
    cell* c = nullptr;
    // Empty only while the replier still owes an abandoned cell back.
    yield_until([&] { return (c = static_cast<cell*>(pool.try_pop())) != nullptr; });
    c->reset();
    yield_until([&] { return slot.load(std::memory_order_relaxed) == nullptr; });
    slot.store(c, std::memory_order_release);
    bool got = false;
    switch (i % 5) {
      case 0:  // spin, then park
        got = (c->wait_ready(spin_then_park, {}) == d::wait_end::ready);
        if (!got) ++wrong;
        break;
      case 1:  // park at once
        got = (c->wait_ready(park_at_once, {}) == d::wait_end::ready);
        if (!got) ++wrong;
        break;
      case 2: {  // async waiter (a coroutine's registration), then observe the call
        wake_counter w;
        if (c->register_async_waiter(w.waiter())) {
          yield_until([&] { return w.calls.load(std::memory_order_acquire) == 1; });
        }
        got = c->is_ready();
        if (!got) ++wrong;
        break;
      }
      case 3:  // give up at once
        ++abandoned;
        if (c->abandon()) {
          c->outcome_.destroy();
          pool.push(c);
          ++requester_recycled;
        }
        break;
      case 4:  // give up at a deadline that may or may not beat the reply
        got = (c->wait_ready(park_at_once, {d::clock::now() + std::chrono::microseconds(i % 3)}) == d::wait_end::ready);
        if (!got) ++abandoned;
        break;
    }
    if (got) {
      if (consume(*c) != static_cast<std::uint64_t>(i)) ++wrong;
      pool.push(c);
      ++requester_recycled;
    }
  }
  replier.join();
  CHECK(wrong == 0);
  // Every abandoned cell went back exactly once, by one side or the other.
  CHECK(abandoned == replier_recycled.load() + (requester_recycled - (rounds - abandoned)));

  std::set<d::cell_base*> back;
  for (int k = 0; k < 3; ++k)
    if (d::cell_base* c = pool.try_pop()) back.insert(c);
  CHECK(back.size() == cells.size());
  CHECK(back.count(&cells[0]) == 1);
  CHECK(back.count(&cells[1]) == 1);
}

TEST_CASE("pool_push_pop_is_lifo") {
  d::node_pool pool;
  std::array<cell, 3> cells;
  CHECK(pool.try_pop() == nullptr);
  for (auto& c : cells) pool.push(&c);
  CHECK(pool.try_pop() == &cells[2]);
  CHECK(pool.try_pop() == &cells[1]);
  pool.push(&cells[2]);
  CHECK(pool.try_pop() == &cells[2]);
  CHECK(pool.try_pop() == &cells[0]);
  CHECK(pool.try_pop() == nullptr);
  CHECK(pool.try_pop() == nullptr);
}

// Two threads pop up to two cells, check nobody else holds them, and push them back in the
// other order (the pattern that breaks an untagged Treiber stack through ABA).
TEST_CASE("pool_concurrent_push_pop_neither_loses_nor_duplicates") {
  constexpr std::size_t n_cells = 4;
  const int iterations = ump_test::scaled(100000);
  d::node_pool pool;
  std::array<cell, n_cells> cells;
  std::array<std::atomic<int>, n_cells> holders{};
  for (auto& c : cells) pool.push(&c);
  std::atomic<int> duplicated{0};
  std::atomic<int> foreign{0};

  auto worker = [&] {
    for (int i = 0; i < iterations; ++i) {
      d::cell_base* got[2] = {pool.try_pop(), pool.try_pop()};
      for (d::cell_base* c : got) {
        if (c == nullptr) continue;
        const auto idx = static_cast<std::size_t>(static_cast<cell*>(c) - cells.data());
        if (idx >= n_cells) {
          // ORDERING: relaxed counters, read after join().
          foreign.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        // ORDERING: relaxed; the pool's own acquire/release orders the hand-over, the holder
        // count only detects two owners at once.
        if (holders[idx].fetch_add(1, std::memory_order_relaxed) != 0)
          duplicated.fetch_add(1, std::memory_order_relaxed);
      }
      for (int k = 1; k >= 0; --k) {
        d::cell_base* c = got[k];
        if (c == nullptr) continue;
        const auto idx = static_cast<std::size_t>(static_cast<cell*>(c) - cells.data());
        if (idx >= n_cells) continue;
        holders[idx].fetch_sub(1, std::memory_order_relaxed);
        pool.push(c);
      }
    }
  };
  std::thread a(worker);
  std::thread b(worker);
  a.join();
  b.join();
  CHECK(duplicated.load() == 0);
  CHECK(foreign.load() == 0);

  std::set<d::cell_base*> back;
  for (std::size_t k = 0; k < n_cells + 1; ++k)
    if (d::cell_base* c = pool.try_pop()) back.insert(c);
  CHECK(back.size() == n_cells);
  CHECK(pool.try_pop() == nullptr);
}
