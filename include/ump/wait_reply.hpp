// ump/wait_reply.hpp — a request already sent, whose reply is collected later.
//
// client::req_async() sends at once and returns a wait_reply. Collect the outcome once, by
// blocking (wait, wait_for, wait_until) or by co_await (suspends, never blocks the thread).
// Destroying it uncollected abandons the request: the server still receives it, and its
// reply() returns errc::origin_disappeared. Move-only; may outlive its client and server.
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
// alive (state.hpp). Shared by wait_reply and the reply awaiter: one way to wait, consume and
// abandon, for threads and coroutines.
template <class R, class E>
class pending_reply {
 public:
  pending_reply() noexcept = default;
  pending_reply(state_base* st, reply_cell<R, E>* cell) noexcept : st_(st), cell_(cell) {}
  pending_reply(pending_reply&& o) noexcept
      : st_(std::exchange(o.st_, nullptr)), cell_(std::exchange(o.cell_, nullptr)) {}
  pending_reply& operator=(pending_reply&& o) noexcept {
    if (this != &o) {
      reset();
      st_ = std::exchange(o.st_, nullptr);
      cell_ = std::exchange(o.cell_, nullptr);
    }
    return *this;
  }
  ~pending_reply() { reset(); }

  [[nodiscard]] bool valid() const noexcept { return cell_ != nullptr; }
  [[nodiscard]] bool ready() const noexcept { return cell_ != nullptr && cell_->is_ready(); }
  reply_cell<R, E>* cell() const noexcept { return cell_; }

  // Blocks until the outcome or the deadline. On time-out the request is abandoned.
  result<R, E> wait(deadline dl) {
    UMP_ASSERT(cell_ != nullptr, "a wait_reply is waited for once (used after wait or move)");
    if (!cell_->wait_ready(st_->wait_opts(), dl)) {
      cell_ = nullptr;  // abandoned: the replier recycles it
      st_ = nullptr;
      return error<E>(errc::timed_out);
    }
    return take();
  }

  // Precondition: ready. Moves the outcome out and gives the cell back.
  result<R, E> take() {
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
  bool withdraw_async() noexcept {
    if (cell_ == nullptr || !cell_->withdraw_async_waiter()) return false;
    cell_ = nullptr;  // abandoned: the replier recycles it
    st_ = nullptr;
    return true;
  }

 private:
  state_base* st_ = nullptr;
  reply_cell<R, E>* cell_ = nullptr;
};

// The awaiter behind co_await on a wait_reply and client::areq(). Owns the pending request.
// If the coroutine is destroyed while suspended here, the request is abandoned and never
// resumes it; the server's reply() then returns origin_disappeared.
template <class R, class E, class Sched>
class [[nodiscard]] reply_awaiter {
 public:
  reply_awaiter(pending_reply<R, E> p, Sched s) noexcept : p_(std::move(p)), sched_(std::move(s)) {}
  // A request that never got sent (server already gone).
  explicit reply_awaiter(errc early, Sched s) noexcept : sched_(std::move(s)), early_(early) {}
  reply_awaiter(reply_awaiter&&) noexcept = default;
  reply_awaiter& operator=(reply_awaiter&&) = delete;

  bool await_ready() const noexcept { return !p_.valid() || p_.ready(); }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    h_ = h;
    // Transition empty → waiting_async; fails only if the reply already arrived.
    return p_.cell()->register_async_waiter({&wake, this});
  }
  result<R, E> await_resume() {
    if (!p_.valid()) return error<E>(early_);
    UMP_ASSERT(p_.ready(), "a reply awaiter resumes only after its reply arrived");
    return p_.take();
  }

  // For adapters that drive this awaiter without a coroutine (ump/asio.hpp cancellation).
  // Precondition: await_suspend returned true. Abandons the request unless the reply has
  // already arrived; returns true if it did (the scheduler will never be called, and
  // await_resume() yields origin_disappeared), false if the wake-up has been or is being
  // delivered to the scheduler.
  bool withdraw() noexcept {
    if (!p_.withdraw_async()) return false;
    early_ = errc::origin_disappeared;
    return true;
  }

 private:
  static void wake(void* self) noexcept {
    auto* a = static_cast<reply_awaiter*>(self);
    a->sched_.schedule(a->h_);  // may resume (and destroy) *a: nothing after this line
  }
  pending_reply<R, E> p_;
  Sched sched_;
  std::coroutine_handle<> h_{};
  errc early_ = errc::server_disappeared;
};

}  // namespace detail

template <class R, class E = void>
class wait_reply {
 public:
  wait_reply(wait_reply&&) noexcept = default;
  wait_reply& operator=(wait_reply&&) noexcept = default;

  // Effect: blocks (spin, then park) until the outcome arrives, and returns it.
  // Errors: server_disappeared, no_reply, app_error. Precondition: not yet waited for.
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
  // ump/scheduler.hpp; default: inline on the replying thread). Consumes this wait_reply.
  template <scheduler Sched = inline_scheduler>
  detail::reply_awaiter<R, E, Sched> async_wait(Sched sched = {}) && {
    UMP_ASSERT(p_.valid(), "a wait_reply is waited for once (used after wait or move)");
    return {std::move(p_), std::move(sched)};
  }
  detail::reply_awaiter<R, E, inline_scheduler> operator co_await() && { return std::move(*this).async_wait(); }
  detail::reply_awaiter<R, E, inline_scheduler> operator co_await() & { return std::move(*this).async_wait(); }

 private:
  template <class, class, class>
  friend class detail::client_core;
  explicit wait_reply(detail::pending_reply<R, E> p) noexcept : p_(std::move(p)) {}
  detail::pending_reply<R, E> p_;
};

}  // namespace ump
