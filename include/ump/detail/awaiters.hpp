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

// The awaiter behind server::async_wait(). `Server` provides core() and convert(node*) →
// the message type, and clients_gone() → the error result.
//
// Stale wake-ups. A sender that saw the waiter's flag in its announce wakes it later, after
// releasing the send lock; by then another sender may have woken the server, which took both
// messages and registered again. The late waker then claims a registration made after its
// message was taken. So a wake-up is checked where it lands: the claim gives the waker sole
// use of the suspended server, and wake() looks for news (a message announced and not yet
// taken, or the clients gone). Only then is the coroutine scheduled, and it takes the
// message itself when it resumes; otherwise the waiter is registered again and stays
// suspended. A coroutine therefore never resumes with nothing to take, and a message is
// taken only by the coroutine that handles it.
template <class Server, class Sched>
class [[nodiscard]] server_awaiter {
 public:
  server_awaiter(Server& s, Sched sched) noexcept : s_(&s), sched_(std::move(sched)) {}
  server_awaiter(server_awaiter&&) noexcept = default;
  server_awaiter& operator=(server_awaiter&&) = delete;
  ~server_awaiter() {
    // The coroutine was destroyed while parked here: withdraw the waiter if no sender has
    // claimed it yet (if one has, its resumption is already under way).
    if (registered_) (void)s_->core().state()->unregister_server_waiter();
  }

  bool await_ready() noexcept { return (status_ = s_->core().try_take(env_)) != poll_status::empty; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    h_ = h;
    registered_ = true;
    if (!news_or_register()) return true;  // registered: *this may already be resumed elsewhere
    registered_ = false;
    return false;
  }
  auto await_resume() {
    using result_type = decltype(s_->convert(env_));
    auto* st = s_->core().state();
    if (withdrew_) st->clear_withdrawing();  // the delivery it asked for is this one
    if (status_ == poll_status::empty) status_ = s_->core().try_take(env_);
    if (status_ == poll_status::empty) {
      // Only a withdrawal that lost the race to a claimed wake-up delivers nothing.
      UMP_CHECK(withdrew_, "a server awaiter resumes only when there is news");
      return result_type(typename result_type::error_type(errc::origin_disappeared));
    }
    if (status_ == poll_status::no_clients) return result_type(s_->clients_gone());
    return s_->convert(env_);
  }

  // For adapters that drive this awaiter without a coroutine (ump/asio.hpp cancellation).
  // Precondition: await_suspend returned true and withdraw() has not been called yet.
  // Returns true if the waiter was withdrawn before any sender claimed it (the scheduler
  // will never be called; nothing was taken), false if a wake-up has been or is being
  // delivered: it brings either a message or, if the claim found nothing, an empty outcome
  // that await_resume() reports as errc::origin_disappeared.
  bool withdraw() noexcept {
    if (s_->core().state()->withdraw_server_waiter()) {
      registered_ = false;
      return true;
    }
    withdrew_ = true;
    return false;
  }

 private:
  // The caller holds the server exclusively: the coroutine before it suspends, or a waker
  // that claimed the registration. Returns true if there is news (deliver: the coroutine
  // takes it when it resumes) or a withdrawal to deliver, false once the waiter is
  // registered (stay suspended until the next claim; from then on *this may be resumed and
  // destroyed by another waker at any moment, so nothing here touches it after that).
  bool news_or_register() noexcept {
    auto* st = s_->core().state();
    for (;;) {
      const std::uint32_t c = st->load_ctl();
      if ((c & state_base::withdrawing) != 0 || st->has_news(c)) return true;
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
  std::coroutine_handle<> h_{};
  envelope env_{};
  poll_status status_ = poll_status::empty;
  bool registered_ = false;
  bool withdrew_ = false;  // withdraw() lost to a claim (the adapter's context only)
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
