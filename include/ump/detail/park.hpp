// ump/detail/park.hpp — the wait primitive under every blocking ump call.
//
// Internal. A thread waits for a 32-bit atomic word to leave a value in two phases:
//   1. spin_while_equal: busy-waits (pause, then pause + occasional yield) for at most the
//      channel's spin budget. Cheap when the other side answers within microseconds.
//   2. park_while_equal: sleeps in the kernel (futex on Linux, std::atomic::wait elsewhere)
//      until the word differs from the value, a wake arrives, or the deadline passes.
// The protocol above decides what the values mean and publishes a "parked" value with an RMW
// before calling park_while_equal, so a waker knows whether it must call unpark_all.
// Deadlines exist from day one: every blocking ump call takes an optional one.
// Slow paths live in src/park.cpp.
#pragma once

#include <atomic>  // std::memory_order
#include <chrono>
#include <cstdint>
#include <optional>

#include "ump/detail/atomic.hpp"
#include "ump/options.hpp"

namespace ump::detail {

using clock = std::chrono::steady_clock;

// An optional absolute deadline (time_point::max() = none).
struct deadline {
  clock::time_point at = clock::time_point::max();
  [[nodiscard]] bool none() const noexcept { return at == clock::time_point::max(); }
  [[nodiscard]] bool passed() const noexcept { return !none() && clock::now() >= at; }
};

// The deadline `d` from now, saturating: a negative `d` is "now", one too large for the
// clock is "none" (no overflow for extreme durations).
template <class Rep, class Period>
deadline deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
  const clock::time_point now = clock::now();
  if (d <= d.zero()) return {now};
  using fsec = std::chrono::duration<double>;
  if (std::chrono::duration_cast<fsec>(d) >= std::chrono::duration_cast<fsec>(clock::time_point::max() - now))
    return {};
  return {now + std::chrono::duration_cast<clock::duration>(d)};
}
// The same for an absolute time (saturating on conversion to the clock's duration).
template <class Duration>
deadline deadline_at(std::chrono::time_point<clock, Duration> tp) noexcept {
  using fsec = std::chrono::duration<double>;
  const double s = std::chrono::duration_cast<fsec>(tp.time_since_epoch()).count();
  if (s >= std::chrono::duration_cast<fsec>(clock::time_point::max().time_since_epoch()).count()) return {};
  if (s <= std::chrono::duration_cast<fsec>(clock::time_point::min().time_since_epoch()).count())
    return {clock::time_point::min()};
  return {std::chrono::time_point_cast<clock::duration>(tp)};
}

// What one waiting site has seen of its recent waits (wait_options::adaptive): whether the
// awaited event came within the spin budget. A site whose last two waits each lasted more
// than twice the budget parks at once: on some virtual machines a thread that spins and
// then parks wakes much later than one that parks at once (BENCHMARKS.md, "Waiting after
// idle"), so a spin that will run out costs latency as well as CPU. A wait shorter than the
// budget (a spin that succeeds, or a sleep that ends that soon) switches spinning back on.
// A wait between one and two budgets (events that come just after the spin gave up, e.g.
// requests spaced a little more than the budget apart) stretches the site's next spins to
// twice the budget, until a wait longer than that; it casts no vote on parking at once, so
// a gap close to the budget does not flip the site between the two modes. Owned by one
// waiter at a time (a channel's server thread, or a requester thread), never shared.
struct wait_history {
  static constexpr std::uint8_t park_after = 2;  // consecutive long waits before parking at once
  // One byte: the history sits on the server's line of every channel's shared state.
  std::uint8_t long_waits : 7 = 0;
  std::uint8_t stretched : 1 = 0;  // 1: recent waits ended between one and two budgets
  [[nodiscard]] bool park_at_once(const wait_options& opts) const noexcept {
    return opts.adaptive && long_waits >= park_after;
  }
  // The spin budget for this site's next wait, given the budget `planned` for it otherwise.
  [[nodiscard]] clock::duration spin_budget(clock::duration planned, const wait_options& opts) const noexcept {
    return opts.adaptive && stretched != 0 ? 2 * planned : planned;
  }
  // A wait that ended within the (possibly stretched) budget.
  void record_short() noexcept { long_waits = 0; }
  // A wait that parked, `waited` long in all (its spin included).
  void record(clock::duration waited, const wait_options& opts) noexcept {
    if (waited < opts.spin) {
      long_waits = 0;
    } else if (waited <= 2 * opts.spin) {
      stretched = 1;
    } else {
      stretched = 0;
      if (long_waits < park_after) ++long_waits;
    }
  }
};

static_assert(sizeof(wait_history) == 1, "a wait history is one byte");

// Spins while `word` holds `value`, for at most opts.spin (or hist->spin_budget() of it; never
// past `dl`).
// Returns the first different value seen, or `value` if the budget ran out.
// ORDERING: loads are acquire, pairing with the release part of whatever RMW changed `word`.
// If `hist` is given, a spin that succeeds is recorded in it as a short wait.
std::uint32_t spin_while_equal(const atomic<std::uint32_t>& word, std::uint32_t value, const wait_options& opts,
                               deadline dl, wait_history* hist = nullptr) noexcept;

// Spins, with the same budget and back-off as spin_while_equal, until poll(ctx) returns true.
// Returns false if the budget (or `dl`) ran out first.
bool spin_until(bool (*poll)(void* ctx) noexcept, void* ctx, const wait_options& opts, deadline dl,
                wait_history* hist = nullptr) noexcept;

// Sleeps while `word` holds `value`. Returns false if `dl` passed, true otherwise (the word
// changed, or a wake arrived, or a spurious wake-up: callers re-check their condition).
bool park_while_equal(const atomic<std::uint32_t>& word, std::uint32_t value, deadline dl) noexcept;

// Wakes every thread parked on `word`. Safe to call on a word whose waiter has already moved
// on, as long as the memory itself is alive (ump's cells and shared states never are freed
// while a waker may still touch them).
void unpark_all(const atomic<std::uint32_t>& word) noexcept;

// The adaptive spin budget (wait_options::adaptive), per thread; the rules are in
// src/park.cpp (spin_governor). spin_until plans each spin, then records how it ended and
// whether the thread was starved of its core during it (nullopt: too short to tell).
// Exposed so that tests can drive the rules without depending on timing.
struct spin_plan {
  clock::duration budget;
  bool probe;     // a full-budget spin made to check whether spinning pays again
  bool adaptive;  // record_spin() does nothing otherwise
};
enum class spin_end : std::uint8_t { succeeded, ran_out, deadline };
[[nodiscard]] spin_plan plan_spin(const wait_options& opts) noexcept;
void record_spin(const spin_plan& plan, spin_end how, std::optional<bool> starved) noexcept;
// What the last look at the machine's run queue found (more runnable threads than CPUs).
void note_crowded(bool crowded) noexcept;
// How far the calling thread's budget is shrunk: the next adaptive spin runs for
// spin / 2^shift (0 = the full budget; at most 6).
[[nodiscard]] unsigned spin_budget_shift() noexcept;

// Counts futex wake/wait system calls made by this process (for benchmarks and tests).
struct park_stats {
  std::uint64_t parks;
  std::uint64_t wakes;
};
[[nodiscard]] park_stats read_park_stats() noexcept;

}  // namespace ump::detail
