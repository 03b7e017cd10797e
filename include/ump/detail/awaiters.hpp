// ump/detail/awaiters.hpp — the two awaiters: a reply (reply_awaiter) and the server's next
// message (server_awaiter).
//
// Internal. reply_awaiter is what co_await on a wait_reply and client::areq() return;
// server_awaiter is what server::async_wait() returns. Both register a callback in the cell or
// the channel state and resume the coroutine through a scheduler (ump/scheduler.hpp). The
// Asio adapter drives both without a coroutine, through their withdraw() calls.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <utility>

#include "ump/detail/config.hpp"
#include "ump/detail/pending_reply.hpp"
#include "ump/detail/state.hpp"
#include "ump/result.hpp"
#include "ump/scheduler.hpp"

namespace ump::detail {

// The awaiter behind co_await on a wait_reply and client::areq(). Owns the pending request.
// If the coroutine is destroyed while suspended here, the request is abandoned and never
// resumes it; the server's reply() then returns origin_disappeared.
//
// With a stop token (areq(s, token)), a stop request while suspended cancels the request as
// wait_reply::cancel() does (withdrawn if the server has not taken it, else abandoned) and
// resumes the coroutine, through the scheduler, with errc::cancelled. The stop callback is
// registered before the reply waiter, so whichever of the reply and the stop comes first is
// decided on the cell alone (cell_base::cancel_async against publish and the registration).
template <class R, class E, class Sched>
class [[nodiscard]] reply_awaiter {
 public:
  // `p` may hold a request that never got sent (the server was already gone).
  reply_awaiter(pending_reply<R, E> p, Sched s, std::stop_token stop = {}) noexcept
      : p_(std::move(p)), sched_(std::move(s)), stop_(std::move(stop)) {}
  reply_awaiter(reply_awaiter&& o) noexcept
      : p_(std::move(o.p_)), sched_(std::move(o.sched_)), stop_(std::move(o.stop_)) {
    UMP_ASSERT(!o.on_stop_.has_value(), "a reply awaiter is not moved while suspended");
  }
  reply_awaiter& operator=(reply_awaiter&&) = delete;
  ~reply_awaiter() {
    on_stop_.reset();             // first: a callback running elsewhere finishes
    if (cancelled_) p_.forget();  // the stop callback already gave the node up
  }

  bool await_ready() const noexcept { return !p_.awaiting_reply(); }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    h_ = h;
    if (stop_.stop_possible()) on_stop_.emplace(stop_, stop_fn{this});  // may run at once
    // Transition empty → waiting_async; fails if the reply already arrived or a stop
    // cancelled the request (then cancelled_ is set and visible through the failed CAS).
    return p_.cell()->register_async_waiter({&wake, this});
  }
  result<R, E> await_resume() {
    on_stop_.reset();  // a stop callback that lost the race on another thread finishes first
    UMP_CHECK(p_.valid(), "a reply awaiter is awaited once");
    if (cancelled_) {
      p_.forget();  // withdrawn or abandoned by the stop callback
      return error<E>(errc::cancelled);
    }
    UMP_ASSERT(p_.ready(), "a reply awaiter resumes only after its reply arrived");
    return p_.take();
  }

  // For adapters that drive this awaiter without a coroutine (ump/asio.hpp cancellation).
  // Precondition: await_suspend returned true. Cancels the request unless the reply has
  // already arrived (see pending_reply::withdraw_async); returns true if it did (the
  // scheduler will never be called, and await_resume() yields errc::cancelled), false if the
  // wake-up has been or is being delivered to the scheduler.
  bool withdraw() noexcept { return p_.withdraw_async(); }

 private:
  struct stop_fn {
    reply_awaiter* a;
    void operator()() const noexcept { a->stop_requested(); }
  };
  // On the thread that requests stop, or inside await_suspend if it already was. Only the
  // cell's words are shared with the replier; p_ itself is not touched until resumption.
  void stop_requested() noexcept {
    reply_cell<R, E>* const c = p_.cell();
    state_base* const st = p_.state();
    const bool withdrawn = c->begin_withdraw();
    const cell_state left = c->cancel_async();
    if (left == cell_state::ready) return;  // the reply won: it resumes (or resumed) us
    cancelled_ = true;
    if (withdrawn) {
      withdraw_message(*st, *c);  // the server never sees it
    }                             // else: taken, now abandoned; the replier's publish recycles the node
    // Registered: the waiter will never be called, so resume here. Not registered yet:
    // await_suspend's registration fails and the coroutine continues at once.
    if (left == cell_state::waiting_async) sched_.schedule(h_);  // may destroy *this
  }
  static void wake(void* self) noexcept {
    auto* a = static_cast<reply_awaiter*>(self);
    a->sched_.schedule(a->h_);  // may resume (and destroy) *a: nothing after this line
  }
  pending_reply<R, E> p_;
  Sched sched_;
  std::stop_token stop_;
  std::coroutine_handle<> h_{};
  bool cancelled_ = false;  // written by stop_requested() before the coroutine resumes
  std::optional<std::stop_callback<stop_fn>> on_stop_;
};

// The awaiter behind server::async_wait(). `Server` provides core() and convert(node*) →
// the message type, and clients_gone() → the error result.
//
// Stale wake-ups. A sender that saw the waiter's flag in its announce wakes it later, after
// releasing its lane's lock; by then another sender may have woken the server, which took both
// messages and registered again. The late waker then claims a registration made after its
// message was taken. So a wake-up is checked where it lands: the claim gives the waker sole
// use of the suspended server, and wake() takes the next message (or finds the clients
// gone) right there, on the waking thread. Only then is the coroutine scheduled, with the
// message in hand; if there is nothing to take (the news was stale, or every announced
// request was withdrawn by its requester meanwhile), the waiter is registered again and
// stays suspended. A coroutine therefore never resumes with nothing to take. If it is
// destroyed after it was scheduled but before it resumed, the message it was handed is
// released as the server's destruction would release it: a post destroyed, a request
// answered no_reply.
template <class Server, class Sched>
class [[nodiscard]] server_awaiter {
 public:
  server_awaiter(Server& s, Sched sched, std::stop_token stop = {}) noexcept
      : s_(&s), sched_(std::move(sched)), stop_(std::move(stop)) {}
  server_awaiter(server_awaiter&& o) noexcept
      : s_(o.s_),
        sched_(std::move(o.sched_)),
        stop_(std::move(o.stop_)),
        env_(o.env_),
        status_(o.status_),
        registered_(o.registered_),
        withdrew_(o.withdrew_) {
    UMP_ASSERT(!o.on_stop_.has_value(), "a server awaiter is not moved while suspended");
  }
  server_awaiter& operator=(server_awaiter&&) = delete;
  ~server_awaiter() {
    on_stop_.reset();  // first: a stop callback running elsewhere finishes
    // The coroutine was destroyed while parked here: withdraw the waiter if no sender has
    // claimed it yet (if one has, its resumption is already under way).
    if (registered_) (void)s_->core().state()->unregister_server_waiter();
    // Destroyed after a message was taken for it, before it resumed: release the message.
    if (status_ == poll_status::got) s_->core().discard(env_);
  }

  bool await_ready() noexcept {
    if (stop_.stop_requested()) {
      status_ = poll_status::stopped;
      return true;
    }
    return (status_ = s_->core().try_take(env_)) != poll_status::empty;
  }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    h_ = h;
    registered_ = true;
    // Before registering: a stop requested meanwhile sets `withdrawing`, which
    // news_or_register() then sees (see stop_requested()).
    if (stop_.stop_possible()) on_stop_.emplace(stop_, stop_fn{this});
    if (!news_or_register()) return true;  // registered: *this may already be resumed elsewhere
    registered_ = false;
    return false;
  }
  auto await_resume() {
    using result_type = decltype(s_->convert(env_));
    on_stop_.reset();  // no stop callback runs after this
    auto* st = s_->core().state();
    // A withdrawal (an adapter's, or a stop's) that lost to a claimed wake-up, or came before
    // the registration, set `withdrawing`; the delivery it asked for is this one.
    if (withdrew_ || (st->load_ctl() & state_base::withdrawing) != 0) {
      withdrew_ = true;
      st->clear_withdrawing();
    }
    if (status_ == poll_status::empty && (stopped_ || stop_.stop_requested())) status_ = poll_status::stopped;
    if (status_ == poll_status::empty) status_ = s_->core().try_take(env_);
    const poll_status got = std::exchange(status_, poll_status::empty);  // handed over now
    if (got == poll_status::stopped) return result_type(typename result_type::error_type(errc::cancelled));
    if (got == poll_status::empty) {
      // Only a withdrawal that lost the race to a claimed wake-up delivers nothing.
      UMP_CHECK(withdrew_, "a server awaiter resumes only when there is news");
      return result_type(typename result_type::error_type(errc::cancelled));
    }
    if (got == poll_status::no_clients) return result_type(s_->clients_gone());
    return s_->convert(env_);
  }

  // For adapters that drive this awaiter without a coroutine (ump/asio.hpp cancellation).
  // Precondition: await_suspend returned true and withdraw() has not been called yet.
  // Returns true if the waiter was withdrawn before any sender claimed it (the scheduler
  // will never be called; nothing was taken), false if a wake-up has been or is being
  // delivered: it brings either a message or, if the claim found nothing, an empty outcome
  // that await_resume() reports as errc::cancelled.
  bool withdraw() noexcept {
    if (s_->core().state()->withdraw_server_waiter()) {
      registered_ = false;
      return true;
    }
    withdrew_ = true;
    return false;
  }

 private:
  struct stop_fn {
    server_awaiter* a;
    void operator()() const noexcept { a->stop_requested(); }
  };
  // On the thread that requests stop, or inside await_suspend if it already was. If the
  // waiter is still registered, it is withdrawn and the coroutine resumes here (through the
  // scheduler) with errc::cancelled. Otherwise `withdrawing` is set, in the same RMW: a
  // waker that claimed it, or await_suspend that has not registered yet, then delivers at
  // once, and await_resume() reports the stop unless a message was already taken.
  void stop_requested() noexcept {
    stopped_ = true;
    if (!s_->core().state()->withdraw_server_waiter()) return;
    registered_ = false;
    sched_.schedule(h_);  // may resume (and destroy) *this: nothing after this line
  }
  // The caller holds the server exclusively: the coroutine before it suspends, or a waker
  // that claimed the registration. Returns true if there is news (a message taken into
  // env_, or the clients gone: deliver) or a withdrawal to deliver, false once the waiter is
  // registered (stay suspended until the next claim; from then on *this may be resumed and
  // destroyed by another waker at any moment, so nothing here touches it after that).
  bool news_or_register() noexcept {
    auto* st = s_->core().state();
    for (;;) {
      const std::uint32_t c = st->load_ctl();
      if ((c & state_base::withdrawing) != 0) return true;
      if (st->has_news(c)) {
        // Take it here, so that the coroutine never resumes with nothing: the news may be
        // only withdrawn requests, which try_take passes over.
        status_ = s_->core().try_take(env_);
        if (status_ != poll_status::empty) return true;
        continue;
      }
      if (st->register_server_waiter({&wake, this}, c)) return false;
    }
  }
  static void wake(void* self) noexcept {
    auto* a = static_cast<server_awaiter*>(self);
    if (!a->news_or_register()) return;  // stale: registered again, stays suspended
    a->registered_ = false;
    a->sched_.schedule(a->h_);  // may resume (and destroy) *a: nothing after this line
  }
  Server* s_;
  Sched sched_;
  std::stop_token stop_;
  std::coroutine_handle<> h_{};
  envelope env_{};
  poll_status status_ = poll_status::empty;
  bool registered_ = false;
  bool withdrew_ = false;  // withdraw() lost to a claim (the adapter's context only)
  bool stopped_ = false;   // stop_requested() ran (read after on_stop_ is reset)
  std::optional<std::stop_callback<stop_fn>> on_stop_;
};

// The awaiter behind server::async_wait_many(): a server_awaiter for the first message, then
// the messages already queued, taken on the thread that resumes the coroutine.
template <class Server, class Sched, class OutIt>
class [[nodiscard]] batch_awaiter {
 public:
  batch_awaiter(Server& s, Sched sched, OutIt out, std::size_t max) noexcept
      : s_(&s), first_(s, std::move(sched)), out_(std::move(out)), max_(max) {}
  batch_awaiter(batch_awaiter&&) noexcept = default;
  batch_awaiter& operator=(batch_awaiter&&) = delete;

  bool await_ready() noexcept { return first_.await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) noexcept { return first_.await_suspend(h); }
  typename Server::batch_result await_resume() {
    auto first = first_.await_resume();
    if (!first) return std::move(first).error();
    *out_ = std::move(*first);
    ++out_;
    return 1 + s_->take_queued(out_, max_ - 1);
  }

 private:
  Server* s_;
  server_awaiter<Server, Sched> first_;
  OutIt out_;
  std::size_t max_;
};

}  // namespace ump::detail
