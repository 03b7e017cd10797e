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
#include <coroutine>
#include <utility>

#include "ump/detail/state.hpp"
#include "ump/result.hpp"
#include "ump/scheduler.hpp"

namespace ump {

template <class R, class E>
class wait_reply;

namespace detail {

// Owns one pending request: its cell, whose node holds the reference that keeps the channel
// alive (state.hpp), or the outcome of a request that was never sent (early_). Shared by
// wait_reply and the reply awaiter: one way to wait, consume and abandon, for threads and
// coroutines.
template <class R, class E>
class pending_reply {
 public:
  pending_reply() noexcept = default;
  pending_reply(state_base* st, reply_cell<R, E>* cell) noexcept : st_(st), cell_(cell) {}
  // A request that was never sent: collecting it reports `early`.
  explicit pending_reply(errc early) noexcept : early_(early) {}
  pending_reply(pending_reply&& o) noexcept
      : st_(std::exchange(o.st_, nullptr)), cell_(std::exchange(o.cell_, nullptr)), early_(std::exchange(o.early_, errc{})) {}
  pending_reply& operator=(pending_reply&& o) noexcept {
    if (this != &o) {
      reset();
      st_ = std::exchange(o.st_, nullptr);
      cell_ = std::exchange(o.cell_, nullptr);
      early_ = std::exchange(o.early_, errc{});
    }
    return *this;
  }
  ~pending_reply() { reset(); }

  // True until the outcome is collected (or the request abandoned, or this moved from).
  [[nodiscard]] bool valid() const noexcept { return cell_ != nullptr || early_ != errc{}; }
  // True once collecting will not wait.
  [[nodiscard]] bool ready() const noexcept { return early_ != errc{} || (cell_ != nullptr && cell_->is_ready()); }
  // True while a reply is still to come from the server (the awaiter may register for it).
  [[nodiscard]] bool awaiting_reply() const noexcept { return cell_ != nullptr && !cell_->is_ready(); }
  reply_cell<R, E>* cell() const noexcept { return cell_; }

  // Blocks until the outcome or the deadline. On time-out the request is abandoned.
  result<R, E> wait(deadline dl) {
    if (early_ != errc{}) return error<E>(std::exchange(early_, errc{}));
    UMP_CHECK(cell_ != nullptr, "a wait_reply is collected once (used after wait, co_await or move)");
    if (!cell_->wait_ready(st_->wait_opts(), dl)) {
      cell_ = nullptr;  // abandoned: the replier recycles it
      st_ = nullptr;
      return error<E>(errc::timed_out);
    }
    return take();
  }

  // Precondition: ready. Moves the outcome out and gives the cell back.
  result<R, E> take() {
    if (early_ != errc{}) return error<E>(std::exchange(early_, errc{}));
    auto* c = std::exchange(cell_, nullptr);
    return consume(*std::exchange(st_, nullptr), *c);  // recycles the node: last use of st_
  }

  void reset() noexcept {
    if (cell_ != nullptr) abandon(*st_, *std::exchange(cell_, nullptr));
    st_ = nullptr;
  }

  // After register_async_waiter succeeded: abandons the request unless its outcome already
  // arrived. Returns true if abandoned (the waiter will never be called; this is now empty),
  // false if the waiter has been or is being called (take() the outcome as usual).
  // On success, take() then reports errc::origin_disappeared.
  bool withdraw_async() noexcept {
    if (cell_ == nullptr || !cell_->withdraw_async_waiter()) return false;
    cell_ = nullptr;  // abandoned: the replier recycles it
    st_ = nullptr;
    early_ = errc::origin_disappeared;
    return true;
  }

 private:
  state_base* st_ = nullptr;
  reply_cell<R, E>* cell_ = nullptr;
  errc early_{};  // nonzero: the outcome of a request that never got (or stopped) waiting
};

// The awaiter behind co_await on a wait_reply and client::areq(). Owns the pending request.
// If the coroutine is destroyed while suspended here, the request is abandoned and never
// resumes it; the server's reply() then returns origin_disappeared.
template <class R, class E, class Sched>
class [[nodiscard]] reply_awaiter {
 public:
  // `p` may hold a request that never got sent (the server was already gone).
  reply_awaiter(pending_reply<R, E> p, Sched s) noexcept : p_(std::move(p)), sched_(std::move(s)) {}
  reply_awaiter(reply_awaiter&&) noexcept = default;
  reply_awaiter& operator=(reply_awaiter&&) = delete;

  bool await_ready() const noexcept { return !p_.awaiting_reply(); }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    h_ = h;
    // Transition empty → waiting_async; fails only if the reply already arrived.
    return p_.cell()->register_async_waiter({&wake, this});
  }
  result<R, E> await_resume() {
    UMP_CHECK(p_.valid(), "a reply awaiter is awaited once");
    UMP_ASSERT(p_.ready(), "a reply awaiter resumes only after its reply arrived");
    return p_.take();
  }

  // For adapters that drive this awaiter without a coroutine (ump/asio.hpp cancellation).
  // Precondition: await_suspend returned true. Abandons the request unless the reply has
  // already arrived; returns true if it did (the scheduler will never be called, and
  // await_resume() yields origin_disappeared), false if the wake-up has been or is being
  // delivered to the scheduler.
  bool withdraw() noexcept { return p_.withdraw_async(); }

 private:
  static void wake(void* self) noexcept {
    auto* a = static_cast<reply_awaiter*>(self);
    a->sched_.schedule(a->h_);  // may resume (and destroy) *a: nothing after this line
  }
  pending_reply<R, E> p_;
  Sched sched_;
  std::coroutine_handle<> h_{};
};

}  // namespace detail

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
  template <class, class, class>
  friend class detail::client_core;
  explicit wait_reply(detail::pending_reply<R, E> p) noexcept : p_(std::move(p)) {}
  detail::pending_reply<R, E> p_;
};

}  // namespace ump
