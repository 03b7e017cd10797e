// ump/scheduler.hpp — where a suspended coroutine resumes.
//
// Every ump awaitable (areq, wait_reply, server::async_wait, and their ng twins) takes an
// optional scheduler. When the awaited event happens, ump calls `sched.schedule(handle)` on
// the thread that caused it (the replier's thread for a reply, the sender's thread for a
// server wake-up). The default, inline_scheduler, resumes the coroutine right there, inside
// that call: the fastest path, and the right one when both ends run on one thread or the
// caller does not care which thread continues. To resume elsewhere, pass a scheduler whose
// schedule() posts the handle to the thread you want (ump::run_loop's scheduler, or an Asio
// executor through ump/asio.hpp).
//
// schedule() must not throw and must eventually resume the handle exactly once, unless the
// coroutine is destroyed first by its owner on the thread that would have resumed it.
#pragma once

#include <concepts>
#include <coroutine>

namespace ump {

template <class S>
concept scheduler = std::copy_constructible<S> && requires(S& s, std::coroutine_handle<> h) {
  { s.schedule(h) }
  noexcept;
};

// Resumes the coroutine inline, on the thread that completed the awaited operation.
struct inline_scheduler {
  void schedule(std::coroutine_handle<> h) const noexcept { h.resume(); }
};

}  // namespace ump
