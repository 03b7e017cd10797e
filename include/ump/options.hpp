// ump/options.hpp — per-channel tuning: how long a waiting thread spins before it parks.
//
// A waiter (a client blocked in req()/wait(), or a server blocked in wait()) first spins on
// the word it waits for, then parks in the kernel (futex). Spinning is what makes a round
// trip cost well under a microsecond; parking is what makes an idle server cost no CPU. The
// default budget was chosen by the experiment recorded in BENCHMARKS.md ("Spin budget").
// Coroutine waits never spin: they register a waiter and suspend at once.
#pragma once

#include <chrono>

namespace ump {

struct wait_options {
  // Longest time a blocked thread busy-waits before parking. 0 parks at once.
  std::chrono::nanoseconds spin{std::chrono::microseconds(50)};
  // Part of `spin` (from its start) spent in pure pause loops; after it the spinner also
  // yields its core now and then, so that when threads outnumber cores the thread it waits
  // for can run. Clamped to `spin`.
  std::chrono::nanoseconds spin_before_yield{std::chrono::microseconds(5)};
  // Adapt the budget when threads outnumber cores. The waiting thread counts as
  // oversubscribed when it keeps losing its core during long spins (its CPU time grows by
  // less than half the wall time), or when the machine had more runnable threads than CPUs
  // at its last look (/proc/loadavg, at most every 5 ms per thread). While it is, each spin
  // that runs out halves the next budget (down to spin / 64); a spin that succeeds doubles
  // it back (up to `spin`); while shrunk, an occasional wait spins the full budget to check
  // whether spinning pays again. With free cores nothing changes: a spin that runs out
  // there costs only this thread's own idle core. The memory is per thread and shared by
  // every channel the thread waits on. Independently, each waiting site (a channel's
  // server, a requester thread's reply waits) parks at once after two waits longer than
  // twice the budget, spins again after the first wait shorter than it, and spins twice
  // the budget after a wait that ended between one and two budgets (README, "How it
  // works"). false: always spin the full budget.
  bool adaptive = true;
};

struct channel_options {
  wait_options waiting{};
  // The most messages (posts and requests) queued and not yet taken by the server; 0 (the
  // default) is unbounded. A sender that finds the channel full waits for room (spin, then
  // park; coroutines suspend), in FIFO order with the other waiting senders; the try_ and
  // _for / _until forms give up instead (errc::full, errc::timed_out). At most 2^27 - 1.
  std::uint32_t capacity = 0;
};

}  // namespace ump
