// ump/wait_reply.hpp — a request already sent, whose reply is collected later.
//
// client::req_async() sends at once and returns a wait_reply. Collect the outcome once, by
// blocking (wait, wait_for, wait_until) or by co_await on the rvalue (suspends, never blocks
// the thread): `cli.req_async(s).wait()`, `co_await cli.req_async(s)`,
// `co_await std::move(w)`. co_await on an lvalue does not compile: it would consume it.
// A request that could not be sent (the server was already gone) still gives a wait_reply;
// collecting it reports errc::server_disappeared.
// Destroying it uncollected abandons the request: the server still receives it, and its
// reply() returns errc::origin_disappeared. Move-only; may outlive its client and server.
// Collecting twice, or using a moved-from wait_reply, aborts with a message naming the rule,
// in every build.
//
// Memory ordering: the server's writes before reply()/fail() are visible after the outcome
// is returned.
#pragma once

#include <chrono>
#include <stop_token>
#include <utility>

#include "ump/detail/access.hpp"
#include "ump/detail/awaiters.hpp"
#include "ump/detail/park.hpp"
#include "ump/detail/pending_reply.hpp"
#include "ump/result.hpp"
#include "ump/scheduler.hpp"

namespace ump {

template <class R, class E = void>
class [[nodiscard]] wait_reply {
 public:
  wait_reply(wait_reply&&) noexcept = default;
  wait_reply& operator=(wait_reply&&) noexcept = default;

  // Effect: blocks (spin, then park) until the outcome arrives, and returns it.
  // Errors: server_disappeared (the request was never sent, or the server was destroyed with
  // it queued), no_reply, app_error. Aborts (every build): already collected, or moved from.
  result<R, E> wait() { return p_.wait({}); }
  // As wait(), giving up at the deadline with errc::timed_out (the request is abandoned).
  template <class Rep, class Period>
  result<R, E> wait_for(std::chrono::duration<Rep, Period> d) {
    return p_.wait(detail::deadline_after(d));
  }
  template <class Duration>
  result<R, E> wait_until(std::chrono::time_point<detail::clock, Duration> tp) {
    return p_.wait(detail::deadline_at(tp));
  }

  // As wait(), giving up once `stop` is requested: the request is cancelled as by cancel()
  // and wait() returns errc::cancelled (unless the outcome arrived first: then it is
  // returned). A stop request wakes the waiting thread.
  result<R, E> wait(const std::stop_token& stop) { return p_.wait({}, &stop); }

  // Effect: gives up on the request without waiting. If the server has not taken it yet, it
  // is withdrawn: never delivered, its message destroyed here; returns true (also for a
  // request that was never sent). Otherwise returns false: the server has it, and its reply
  // is destroyed when it comes (reply() returns origin_disappeared), or now if it is already
  // here. Withdrawn requests do not disturb the order of the others. Never blocks. Either way
  // the wait_reply is used up (valid() is false). Aborts (every build): already collected,
  // or moved from.
  bool cancel() noexcept { return p_.cancel(); }

  // Non-blocking: true once the outcome is there (wait() then returns at once).
  [[nodiscard]] bool ready() const noexcept { return p_.ready(); }
  // True until the outcome has been collected (or the request abandoned).
  [[nodiscard]] bool valid() const noexcept { return p_.valid(); }

  // co_await: suspends until the outcome arrives, then resumes via `sched` (see
  // ump/scheduler.hpp; default: inline on the replying thread). Consumes this wait_reply, so
  // it takes an rvalue: std::move(w).async_wait(sched). Same errors and aborts as wait().
  template <scheduler Sched = inline_scheduler>
  detail::reply_awaiter<R, E, Sched> async_wait(Sched sched = {}) && {
    UMP_CHECK(p_.valid(), "a wait_reply is collected once (used after wait, co_await or move)");
    return {std::move(p_), std::move(sched)};
  }
  // co_await cli.req_async(s), or co_await std::move(w). An lvalue does not compile: write
  // std::move(w) to say that w is consumed.
  detail::reply_awaiter<R, E, inline_scheduler> operator co_await() && { return std::move(*this).async_wait(); }
  void operator co_await() & = delete;

 private:
  friend struct detail::access;
  explicit wait_reply(detail::pending_reply<R, E> p) noexcept : p_(std::move(p)) {}
  detail::pending_reply<R, E> p_;
};

namespace detail {
// try_req_async's answer: the wait_reply of a sent request, or why it was not sent.
template <class R, class E>
result<wait_reply<R, E>, E> try_wait_reply(pending_reply<R, E> p) {
  if (p.cell() == nullptr) return error<E>(p.early());
  return access::make<wait_reply<R, E>>(std::move(p));
}
}  // namespace detail

}  // namespace ump
