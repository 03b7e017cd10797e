// ump/detail/endpoint.hpp — the machinery shared by ump:: and ump::ng:: clients and servers.
//
// Internal. client_core<M, R, E> and server_core<M, R, E> implement sending, waiting,
// cloning, weak references and receiving once, for a node message type M (S for ump,
// std::variant<P, S> for ng). The public classes only say how to build and unpack M.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <utility>

#include "ump/detail/access.hpp"
#include "ump/detail/awaiters.hpp"
#include "ump/detail/channel_state.hpp"
#include "ump/detail/config.hpp"
#include "ump/detail/park.hpp"
#include "ump/detail/pending_reply.hpp"
#include "ump/detail/reply_protocol.hpp"
#include "ump/detail/scope_exit.hpp"
#include "ump/detail/state.hpp"
#include "ump/result.hpp"
#include "ump/scheduler.hpp"

namespace ump::detail {

// What a send carries: a request (the server answers through its reply cell) or a one-way
// post (the server recycles its node at once).
enum class message_kind : bool { request, post };

// How a sender meets a full bounded channel (channel_options::capacity).
struct room_policy {
  bool wait = true;                       // false: errc::full at once
  deadline dl{};                          // waiting gives up here: errc::timed_out
  const std::stop_token* stop = nullptr;  // waiting gives up on stop: errc::cancelled
};

template <class M, class R, class E, class Sched>
class request_awaiter;

template <class M, class R, class E>
class client_core {
 public:
  using state_type = channel_state<M, R, E>;
  using node_type = typename state_type::node_type;

  // A copy sends through a lane of its own (taken at its first send), not through o's.
  client_core(const client_core& o) noexcept : st_(o.st_) {
    UMP_CHECK(st_ != nullptr, "a moved-from client is not used (copied after move)");
    st_->add_ref(state_base::client_group);
    st_->add_strong();
  }
  client_core(client_core&& o) noexcept : st_(std::exchange(o.st_, nullptr)), lane_(o.take_lane_ptr()) {}
  client_core& operator=(client_core o) noexcept {
    std::swap(st_, o.st_);
    lane* mine = take_lane_ptr();
    // ORDERING: relaxed; assignment is not concurrent with other uses of either object.
    lane_.store(o.take_lane_ptr(), std::memory_order_relaxed);
    // ORDERING: relaxed; as above.
    o.lane_.store(mine, std::memory_order_relaxed);
    return *this;
  }
  ~client_core() {
    if (st_ == nullptr) return;
    if (lane* l = take_lane_ptr()) st_->release_lane(*l);
    st_->drop_strong();
    st_->release(state_base::client_group);
  }

  // Adopts a strong reference the caller already counted (channel(), upgrade()).
  explicit client_core(state_type* st) noexcept : st_(st) {}

  // The channel, for weak() and poster(). Aborts (every build) on a moved-from client.
  state_type* state() const noexcept {
    UMP_CHECK(st_ != nullptr, "a moved-from client is not used");
    return st_;
  }

  // Sends a request built from `a...`. Returns the node, or nullptr if the server is gone
  // (the message was destroyed). On a full bounded channel, waits for room first. Throws
  // only what building M (or allocation) throws, and then nothing was sent.
  template <class... A>
  node_type* send(message_kind kind, A&&... a) {
    const sent s = send_unwoken(kind, std::forward<A>(a)...);
    if (s.wake) st_->wake_server();
    return s.node;
  }

  // The first half of send() (announce and enqueue through send_on()): queues the message,
  // and says whether the server was parked when it was announced; the caller then owes it
  // a wake_server(). One hold of the lane's lock (and, bounded, the send lock) covers taking
  // a node from the stock, building the message, announcing and enqueueing it; the wake comes after the
  // lock is released, so another sender may have woken the server in between (tests use
  // this to pin down that window). err: why nothing was sent (node == nullptr).
  struct sent {
    node_type* node;
    bool wake;
    errc err;
  };
  template <class... A>
  sent send_unwoken(message_kind kind, A&&... a) {
    return send_unwoken_with(kind, room_policy{}, std::forward<A>(a)...);
  }
  // As send_unwoken(), meeting a full channel as `rp` says (wait, give up, or fail at once).
  // `a...` is only used (moved from) once the message is sent: on errc::full, timed_out or
  // cancelled the caller's message is untouched.
  template <class... A>
  sent send_unwoken_with(message_kind kind, const room_policy& rp, A&&... a) {
    UMP_CHECK(st_ != nullptr, "a moved-from client is not used");
    if (!st_->bounded()) {
      lane& l = own_lane();
      l.lock.lock();
      scope_exit unlock([&]() noexcept { l.lock.unlock(); });
      return send_through(l, kind, std::forward<A>(a)...);
    }
    bool reserved = false;
    const errc e = lock_with_room(rp, reserved);
    if (e != errc{}) return {nullptr, false, e};
    return send_locked_and_unlock(kind, reserved, std::forward<A>(a)...);
  }
  // The send of a bounded channel, through its lane. Send lock held on entry, released here.
  // `reserved`: this sender was granted room while it waited (room_waiter::granted); if it
  // does not use it (the server is gone, or building the message throws), the room passes
  // to the next waiter.
  template <class... A>
  sent send_locked_and_unlock(message_kind kind, bool reserved, A&&... a) {
    bool used = !reserved;
    scope_exit pass_on([&]() noexcept {
      if (!used) st_->grant_room();  // after the unlock below (destroyed first)
    });
    scope_exit unlock([&]() noexcept { st_->unlock_send(); });
    if (reserved) st_->take_reservation_locked();
    const sent s = send_through(st_->channel_lane(), kind, std::forward<A>(a)...);
    if (s.node != nullptr) used = true;
    return s;
  }
  // The send itself, through lane `l`, whose lock the caller holds (bounded: the send
  // lock): a node from the lane's stock, the message built in it, announced and enqueued.
  template <class... A>
  sent send_through(lane& l, message_kind kind, A&&... a) {
    using status = state_base::send_status;
    node_type* n = st_->acquire_node(l);
    {
      scope_exit give_back([&]() noexcept { state_base::push_stock(l, n); });
      n->msg_.emplace(std::forward<A>(a)...);
      give_back.dismiss();
    }
    n->is_post_ = kind == message_kind::post;
    n->reset();
    const status s = st_->send_on(l, envelope{n, {}});
    if (s == status::rejected) {
      n->msg_.destroy();
      state_base::push_stock(l, n);
      return {nullptr, false, errc::server_disappeared};
    }
    return {n, s == status::sent_wake, errc{}};
  }

  // Blocking request: send, then wait on the cell with this channel's spin budget.
  template <class... A>
  result<R, E> request(A&&... a) {
    node_type* n = send(message_kind::request, std::forward<A>(a)...);
    if (n == nullptr) return error<E>(errc::server_disappeared);
    (void)n->wait_ready(st_->wait_opts(), {});  // no deadline, no interrupt: only `ready`
    return consume(*st_, *n);
  }

  // As request(), giving up when `stop` is requested (errc::cancelled), while it waits for
  // room or for the reply (see pending_reply).
  template <class... A>
  result<R, E> request_stoppable(const std::stop_token& stop, A&&... a) {
    room_policy rp;
    rp.stop = &stop;
    return start_request_with(rp, std::forward<A>(a)...).wait({}, &stop);
  }

  // A sent request, or the early outcome of one that was not sent.
  template <class... A>
  pending_reply<R, E> start_request(A&&... a) {
    return start_request_with(room_policy{}, std::forward<A>(a)...);
  }
  template <class... A>
  pending_reply<R, E> start_request_with(const room_policy& rp, A&&... a) {
    const sent s = send_unwoken_with(message_kind::request, rp, std::forward<A>(a)...);
    if (s.wake) st_->wake_server();
    if (s.node == nullptr) return pending_reply<R, E>(s.err);
    return pending_reply<R, E>(st_, s.node);
  }

  template <class Sched, class... A>
  request_awaiter<M, R, E, Sched> request_awaitable(Sched sched, std::stop_token stop, A&&... a);

  // A post that fits an envelope: copied into it, no node. Same outcomes as post(). Never
  // throws (room waits included).
  template <class P>
  result<void, E> post_inline(const P& x, const room_policy& rp = {}) noexcept {
    static_assert(fits_inline<P>);
    UMP_CHECK(st_ != nullptr, "a moved-from client is not used");
    if (!st_->bounded()) {
      lane& l = own_lane();
      l.lock.lock();
      const auto s = st_->send_on(l, inline_envelope(x));
      l.lock.unlock();
      return posted(s, false);
    }
    bool reserved = false;
    const errc e = lock_with_room(rp, reserved);
    if (e != errc{}) return error<E>(e);
    return post_inline_locked_and_unlock(x, reserved);
  }
  // The send of post_inline() in a bounded channel. Send lock held on entry, released here.
  template <class P>
  result<void, E> post_inline_locked_and_unlock(const P& x, bool reserved) noexcept {
    if (reserved) st_->take_reservation_locked();
    const auto s = st_->send_on(st_->channel_lane(), inline_envelope(x));
    st_->unlock_send();
    return posted(s, reserved);
  }

  template <class... A>
  result<void, E> post(A&&... a) {
    return post_with(room_policy{}, std::forward<A>(a)...);
  }
  template <class... A>
  result<void, E> post_with(const room_policy& rp, A&&... a) {
    const sent s = send_unwoken_with(message_kind::post, rp, std::forward<A>(a)...);
    if (s.wake) st_->wake_server();
    if (s.node == nullptr) return error<E>(s.err);
    return {};
  }

  // The lane this client object sends through, taken at its first send (several threads
  // may make that first send at once: one lane wins, the others are let go again).
  lane& own_lane() noexcept {
    // ORDERING: acquire, pairs with the CAS below: a lane set by another thread is complete.
    lane* l = lane_.load(std::memory_order_acquire);
    if (l != nullptr) [[likely]]
      return *l;
    lane* mine = &st_->acquire_lane();
    // ORDERING: acq_rel on success (publishes the lane to this object's other threads);
    // acquire on failure, as the load above.
    if (lane_.compare_exchange_strong(l, mine, std::memory_order_acq_rel, std::memory_order_acquire)) return *mine;
    st_->release_lane(*mine);
    return *l;
  }
  // This object's lane, which it no longer holds (moved from, assigned, destroyed).
  lane* take_lane_ptr() noexcept {
    // ORDERING: relaxed; moving, assigning and destroying are not concurrent with sends
    // through the same object.
    return lane_.exchange(nullptr, std::memory_order_relaxed);
  }
  template <class P>
  static envelope inline_envelope(const P& x) noexcept {
    envelope e{nullptr, {}};
    std::memcpy(e.bytes, std::addressof(x), sizeof(P));
    return e;
  }
  // An inline post's outcome, the lock(s) released.
  result<void, E> posted(state_base::send_status s, bool reserved) noexcept {
    if (s == state_base::send_status::rejected) {
      if (reserved) st_->grant_room();  // unused room passes on
      return error<E>(errc::server_disappeared);
    }
    if (s == state_base::send_status::sent_wake) st_->wake_server();
    return {};
  }

  // Takes the send lock with room for one message, waiting for it as `rp` says on a full
  // channel. Returns errc{} with the lock held (`reserved`: the room was granted to this
  // sender while it waited), else why not (wait_for_room's errors), lock not held.
  errc lock_with_room(const room_policy& rp, bool& reserved) noexcept {
    st_->lock_send();
    if (st_->has_room_locked(!rp.wait)) return errc{};
    st_->unlock_send();
    const errc e = wait_for_room(rp);
    if (e != errc{}) return e;
    st_->lock_send();
    reserved = true;
    return errc{};
  }

  // A full channel: waits for room as `rp` says. Returns errc{} once room is reserved for
  // this sender (send lock not held), else why not: full (rp.wait false), timed_out,
  // cancelled, server_disappeared.
  errc wait_for_room(const room_policy& rp) noexcept {
    if (!rp.wait) return errc::full;
    room_waiter w;
    st_->lock_send();
    const bool settled = st_->add_room_waiter_locked(w);
    st_->unlock_send();
    std::uint32_t status;
    if (settled) {
      // ORDERING: relaxed; set by this thread, under the lock it just released.
      status = w.status.load(std::memory_order_relaxed);
    } else {
      struct cancel_fn {
        state_type* st;
        room_waiter* w;
        void operator()() const noexcept { (void)st->cancel_room_waiter(*w); }
      };
      // Runs on the thread that requests stop (or here, if it already was); destroyed before
      // `w`, and its destructor waits for a run in progress.
      std::optional<std::stop_callback<cancel_fn>> on_stop;
      if (rp.stop != nullptr && rp.stop->stop_possible()) on_stop.emplace(*rp.stop, cancel_fn{st_, &w});
      status = st_->await_room(w, rp.dl);
    }
    switch (status) {
      case room_waiter::granted:
        return errc{};
      case room_waiter::closed:
        return errc::server_disappeared;
      case room_waiter::cancelled:
        return errc::cancelled;
      default:
        return errc::timed_out;
    }
  }

 private:
  state_type* st_;
  atomic<lane*> lane_{nullptr};  // see own_lane()
};

// What areq() and apost() share when the channel is full: the message waits in the awaiter
// (never moved from before it is sent) and the coroutine suspends, linked in the channel's
// room list. The grant (room_waiter::on_grant, on the thread that freed the room: the
// server's as it takes a message) sends the message there, through Derived::send_now, and
// resumes the coroutine, or leaves it suspended for its reply. Server gone: resumed with
// errc::server_disappeared. A stop request (or an adapter's withdraw()) while it waits for
// room unlinks it and resumes it with errc::cancelled: nothing was sent.
//
// Derived provides bool send_now(bool reserved) noexcept: called with the send lock held
// (it releases it); sends the message, and returns true if the coroutine stays suspended
// (it will be resumed by someone else), false if it must be resumed now.
template <class Derived, class Core, class Sched>
class room_awaiter_base {
 public:
  room_awaiter_base(const room_awaiter_base&) = delete;
  room_awaiter_base& operator=(const room_awaiter_base&) = delete;

 protected:
  room_awaiter_base(Sched sched, std::stop_token stop) noexcept : sched_(std::move(sched)), stop_(std::move(stop)) {}
  room_awaiter_base(Core c, Sched sched, std::stop_token stop) noexcept
      : client_(std::move(c)), sched_(std::move(sched)), stop_(std::move(stop)) {}
  room_awaiter_base(room_awaiter_base&& o) noexcept
      : client_(std::move(o.client_)), sched_(std::move(o.sched_)), stop_(std::move(o.stop_)) {
    UMP_ASSERT(!o.on_stop_.has_value(), "an awaiter is not moved while suspended");
    o.client_.reset();  // the moved-from one has no wait to end
  }
  ~room_awaiter_base() { leave(); }

  // Ends what the awaiter may still have going: a stop callback (it finishes first if it is
  // running elsewhere), and, if the coroutine is destroyed while it waits for room, its
  // place in the room list. Derived destructors call it before their members (the message)
  // go. Idempotent.
  void leave() noexcept {
    on_stop_.reset();
    if (client_.has_value()) (void)client_->state()->cancel_room_waiter(w_);
  }

  // await_suspend while the message still waits for room. Returns true to stay suspended.
  bool suspend_for_room(std::coroutine_handle<> h) noexcept {
    h_ = h;
    w_.on_grant = {&granted, this};
    auto* st = client_->state();
    // Registered before linking: a stop from then on either finds `w_` linked (and unlinks
    // it) or ran before the check below, under the same lock.
    if (stop_.stop_possible()) on_stop_.emplace(stop_, stop_fn{this});
    st->lock_send();
    if (stop_.stop_requested()) {
      st->unlock_send();
      outcome_ = errc::cancelled;
      return false;
    }
    if (st->has_room_locked()) return self().send_now(false);  // room came since the first try
    if (!st->add_room_waiter_locked(w_)) {
      st->unlock_send();
      return true;  // linked: from here a grant, close or stop owns *this
    }
    st->unlock_send();
    // ORDERING: relaxed; settled by this thread, under the lock it just released.
    if (w_.status.load(std::memory_order_relaxed) == room_waiter::closed) {
      outcome_ = errc::server_disappeared;
      return false;
    }
    st->lock_send();
    return self().send_now(true);
  }
  // For adapters (ump/asio.hpp): cancels a wait for room. Returns true if it did (nothing
  // was sent; await_resume reports errc::cancelled, the scheduler will not be called).
  bool withdraw_room() noexcept {
    if (!client_->state()->cancel_room_waiter(w_)) return false;
    outcome_ = errc::cancelled;
    return true;
  }
  // In await_resume: no stop callback runs after this.
  void end_room_wait() noexcept {
    on_stop_.reset();
#if UMP_HAS_EXCEPTIONS
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
#endif
  }
  // Runs `send` (which may throw), catching what it throws into error_ (rethrown by
  // end_room_wait). Returns false if it threw.
  template <class F>
  bool guarded(F&& send) noexcept {
#if UMP_HAS_EXCEPTIONS
    try {
      std::forward<F>(send)();
    } catch (...) {
      error_ = std::current_exception();
      return false;
    }
#else
    std::forward<F>(send)();
#endif
    return true;
  }
  void resume() noexcept { sched_.schedule(h_); }  // may destroy *this

  std::optional<Core> client_;
  Sched sched_;
  std::stop_token stop_;
  std::coroutine_handle<> h_{};
  errc outcome_{};  // nonzero: the outcome, without a reply (cancelled, server_disappeared, ...)

 private:
  struct stop_fn {
    room_awaiter_base* a;
    void operator()() const noexcept {
      if (a->client_->state()->cancel_room_waiter(a->w_)) {
        a->outcome_ = errc::cancelled;
        a->resume();
      }
    }
  };
  // On the granting thread, send lock released.
  static void granted(void* self) noexcept {
    auto* a = static_cast<room_awaiter_base*>(self);
    // ORDERING: relaxed; settled under the send lock, which the granter released on this thread.
    if (a->w_.status.load(std::memory_order_relaxed) == room_waiter::closed) {
      a->outcome_ = errc::server_disappeared;
      a->resume();
      return;
    }
    a->client_->state()->lock_send();
    if (!a->self().send_now(true)) a->resume();
  }
  Derived& self() noexcept { return static_cast<Derived&>(*this); }

  room_waiter w_{};
#if UMP_HAS_EXCEPTIONS
  std::exception_ptr error_;
#endif
  std::optional<std::stop_callback<stop_fn>> on_stop_;
};

// The awaiter behind client::areq(). With room (or an unbounded channel) the request is sent
// when areq() is called, and this is a reply_awaiter. On a full channel it waits for room as
// room_awaiter_base says; once sent, it waits for the reply like a reply_awaiter (the stop
// token then cancels the request as wait_reply::cancel() does).
template <class M, class R, class E, class Sched>
class [[nodiscard]] request_awaiter
    : public room_awaiter_base<request_awaiter<M, R, E, Sched>, client_core<M, R, E>, Sched> {
  using base = room_awaiter_base<request_awaiter, client_core<M, R, E>, Sched>;
  friend base;

 public:
  // Sent already (or failed early: `p` holds the outcome).
  request_awaiter(pending_reply<R, E> p, Sched sched, std::stop_token stop) noexcept : base(sched, stop) {
    reply_.emplace(std::move(p), std::move(sched), std::move(stop));
  }
  // The channel was full: `m` is sent once room is granted.
  request_awaiter(client_core<M, R, E> c, M m, Sched sched, std::stop_token stop)
      : base(std::move(c), std::move(sched), std::move(stop)) {
    msg_.emplace(std::move(m));
  }
  request_awaiter(request_awaiter&& o) noexcept
      : base(std::move(o)), reply_(std::move(o.reply_)), msg_(std::move(o.msg_)) {
    o.reply_.reset();
    o.msg_.reset();
  }
  ~request_awaiter() { this->leave(); }

  bool await_ready() const noexcept { return reply_.has_value() && reply_->await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    if (reply_.has_value()) return reply_->await_suspend(h);
    return this->suspend_for_room(h);
  }
  result<R, E> await_resume() {
    this->end_room_wait();
    if (this->outcome_ != errc{}) return error<E>(this->outcome_);
    return reply_->await_resume();
  }
  // For adapters (ump/asio.hpp). Precondition: await_suspend returned true. Cancels the
  // request while it waits for room (nothing sent) or for its reply (reply_awaiter::
  // withdraw). Returns false if the outcome (or a grant of room, which sends the request)
  // is already under way: the scheduler will be called.
  bool withdraw() noexcept {
    if (!this->client_.has_value()) return reply_->withdraw();  // sent by areq() itself
    // Waiting for room: unlinked. Else a grant has sent it (or is sending it) on another
    // thread, and its reply awaiter is not ours to touch: the outcome will come.
    return this->withdraw_room();
  }

 private:
  bool send_now(bool reserved) noexcept {
    auto* st = this->client_->state();
    typename client_core<M, R, E>::sent s{};
    if (!this->guarded(
            [&] { s = this->client_->send_locked_and_unlock(message_kind::request, reserved, std::move(*msg_)); }))
      return false;
    msg_.reset();
    if (s.wake) st->wake_server();
    if (s.node == nullptr) {
      this->outcome_ = s.err;
      return false;
    }
    reply_.emplace(pending_reply<R, E>(st, s.node), this->sched_, this->stop_);
    return reply_->await_suspend(this->h_);
  }
  std::optional<reply_awaiter<R, E, Sched>> reply_;
  std::optional<M> msg_;
};

template <class M, class R, class E>
template <class Sched, class... A>
request_awaiter<M, R, E, Sched> client_core<M, R, E>::request_awaitable(Sched sched, std::stop_token stop, A&&... a) {
  room_policy rp;
  rp.wait = false;  // a coroutine never blocks its thread: on a full channel it suspends
  const sent s = send_unwoken_with(message_kind::request, rp, std::forward<A>(a)...);
  if (s.err == errc::full) return {*this, M(std::forward<A>(a)...), std::move(sched), std::move(stop)};
  if (s.wake) st_->wake_server();
  pending_reply<R, E> p = s.node != nullptr ? pending_reply<R, E>(st_, s.node) : pending_reply<R, E>(s.err);
  return {std::move(p), std::move(sched), std::move(stop)};
}

// The awaiter behind ng::client::apost(): a post sent at once, or on a full channel when room
// is granted (room_awaiter_base). co_await yields result<void, E>.
template <class M, class R, class E, class P, class Sched>
class [[nodiscard]] post_awaiter
    : public room_awaiter_base<post_awaiter<M, R, E, P, Sched>, client_core<M, R, E>, Sched> {
  using base = room_awaiter_base<post_awaiter, client_core<M, R, E>, Sched>;
  friend base;

 public:
  // Posted already (or failed: `done` holds the outcome).
  post_awaiter(result<void, E> done, Sched sched) noexcept : base(std::move(sched), {}), done_(std::move(done)) {}
  // The channel was full: `p` is posted once room is granted.
  post_awaiter(client_core<M, R, E> c, P p, Sched sched, std::stop_token stop)
      : base(std::move(c), std::move(sched), std::move(stop)) {
    msg_.emplace(std::move(p));
  }
  post_awaiter(post_awaiter&& o) noexcept : base(std::move(o)), done_(std::move(o.done_)), msg_(std::move(o.msg_)) {
    o.msg_.reset();
  }
  ~post_awaiter() { this->leave(); }

  bool await_ready() const noexcept { return !msg_.has_value(); }
  bool await_suspend(std::coroutine_handle<> h) noexcept { return this->suspend_for_room(h); }
  result<void, E> await_resume() {
    this->end_room_wait();
    if (this->outcome_ != errc{}) return error<E>(this->outcome_);
    return std::move(done_);
  }
  bool withdraw() noexcept { return this->client_.has_value() && this->withdraw_room(); }

 private:
  bool send_now(bool reserved) noexcept {
    if constexpr (fits_inline<P>) {
      done_ = this->client_->post_inline_locked_and_unlock(*msg_, reserved);
    } else {
      auto* st = this->client_->state();
      typename client_core<M, R, E>::sent s{};
      if (!this->guarded([&] {
            s = this->client_->send_locked_and_unlock(message_kind::post, reserved, std::in_place_index<0>,
                                                      std::move(*msg_));
          }))
        return false;
      if (s.wake) st->wake_server();
      if (s.node == nullptr) done_ = error<E>(s.err);
    }
    msg_.reset();
    return false;
  }
  result<void, E> done_{};
  std::optional<P> msg_;
};

// A weak reference: keeps the shared state, not the server's clients, alive.
template <class M, class R, class E>
class weak_core {
 public:
  using state_type = channel_state<M, R, E>;
  explicit weak_core(state_type* st) noexcept : st_(st) { st_->add_ref(state_base::client_group); }
  weak_core(const weak_core& o) noexcept : weak_core(o.st_) {}
  weak_core(weak_core&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  weak_core& operator=(weak_core o) noexcept {
    std::swap(st_, o.st_);
    return *this;
  }
  ~weak_core() {
    if (st_ != nullptr) st_->release(state_base::client_group);
  }
  // increment-if-not-zero on the strong count; on success the caller adopts a strong client.
  state_type* try_upgrade() const noexcept {
    UMP_CHECK(st_ != nullptr, "a moved-from weak_client is not used");
    if (!st_->try_add_strong()) return nullptr;
    st_->add_ref(state_base::client_group);
    return st_;
  }

 private:
  state_type* st_;
};

template <class M, class R, class E>
class server_core {
 public:
  using state_type = channel_state<M, R, E>;
  using node_type = typename state_type::node_type;

  explicit server_core(state_type* st) noexcept : st_(st) {}
  server_core(server_core&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  server_core& operator=(server_core&& o) noexcept {
    if (this != &o) {
      close();
      st_ = std::exchange(o.st_, nullptr);
    }
    return *this;
  }
  ~server_core() { close(); }

  state_type* state() const noexcept { return st_; }

  poll_status take(envelope& out, deadline dl, const stop_check* stop = nullptr) noexcept {
    return checked_state()->take(out, dl, stop);
  }
  poll_status try_take(envelope& out) noexcept { return checked_state()->try_take(out); }
  poll_status try_take_queued(envelope& out) noexcept { return checked_state()->try_take_queued(out); }
  // The channel. Aborts (every build) on a moved-from server.
  state_type* checked_state() const noexcept {
    UMP_CHECK(st_ != nullptr, "a moved-from server is not used");
    return st_;
  }
  static node_type* node_of(const envelope& e) noexcept {
    UMP_ASSERT(e.node != nullptr, "a request always travels in a node");
    return static_cast<node_type*>(e.node);
  }

  // Moves the message out of a received node into `f(M&&)`'s result, destroying the node's
  // copy whatever happens.
  template <class F>
  decltype(auto) unpack(node_type* n, F&& f) {
    scope_exit destroy([n]() noexcept { n->msg_.destroy(); });
    return std::forward<F>(f)(std::move(n->msg_.get()));
  }

  void recycle(node_type* n) noexcept { st_->recycle(n); }

  // Releases a message taken but never handed to the user (a server coroutine destroyed
  // after a message was taken for it): as close() would, except that a request, which the
  // server did take, is answered no_reply. Never throws.
  void discard(envelope& e) noexcept {
    if (e.node == nullptr) return;  // an inline post: trivially destructible
    node_type* n = node_of(e);
    n->msg_.destroy();
    if (n->is_post_) {
      recycle(n);
      return;
    }
    (void)complete(*st_, *n, error<E>(errc::no_reply));  // error<E>(errc) cannot throw
  }

 private:
  void close() noexcept {
    if (st_ == nullptr) return;
    st_->close();
    std::exchange(st_, nullptr)->release(state_base::server_group);
  }
  state_type* st_;
};

// The receiving calls shared by ump::server and ump::ng::server, written once. `Derived`
// turns a received envelope into its message type Msg with convert(envelope&). The public
// contracts are in ump/server.hpp.
template <class Derived, class M, class R, class E, class Msg>
class server_front {
 public:
  using core_type = server_core<M, R, E>;
  using node_type = typename core_type::node_type;

  result<Msg, E> wait() { return wait_until_({}); }
  result<Msg, E> wait(const std::stop_token& stop) { return wait_until_({}, &stop); }
  template <class Rep, class Period>
  result<Msg, E> wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until_(deadline_after(d));
  }
  template <class Duration>
  result<Msg, E> wait_until(std::chrono::time_point<clock, Duration> tp) {
    return wait_until_(deadline_at(tp));
  }
  result<std::optional<Msg>, E> try_wait() {
    envelope e{};
    const poll_status s = core_.try_take(e);
    if (s == poll_status::empty) return std::optional<Msg>{};
    if (s == poll_status::no_clients) return clients_gone();
    return std::optional<Msg>(*self().convert(e));
  }
  template <scheduler Sched = inline_scheduler>
  server_awaiter<Derived, Sched> async_wait(Sched sched = {}) {
    return {self(), std::move(sched)};
  }
  template <scheduler Sched = inline_scheduler>
  server_awaiter<Derived, Sched> async_wait(std::stop_token stop, Sched sched = {}) {
    return {self(), std::move(sched), std::move(stop)};
  }

  // Batch receive: the first message as wait() / try_wait() / async_wait() take it, then
  // whatever is already queued, up to `max` in all, written to `out` in FIFO order.
  using batch_result = result<std::size_t, E>;
  template <class OutIt>
  batch_result wait_many(OutIt out, std::size_t max) {
    UMP_CHECK(max > 0, "a batch receive takes at most max messages, and max is at least 1");
    result<Msg, E> first = wait();
    if (!first) return std::move(first).error();
    *out = std::move(*first);
    ++out;
    return 1 + take_queued(out, max - 1);
  }
  template <class OutIt>
  batch_result try_wait_many(OutIt out, std::size_t max) {
    UMP_CHECK(max > 0, "a batch receive takes at most max messages, and max is at least 1");
    envelope e{};
    const poll_status s = core_.try_take(e);
    if (s == poll_status::empty) return std::size_t{0};
    if (s == poll_status::no_clients) return clients_gone();
    *out = *self().convert(e);
    ++out;
    return 1 + take_queued(out, max - 1);
  }
  template <class OutIt, scheduler Sched = inline_scheduler>
  batch_awaiter<Derived, Sched, OutIt> async_wait_many(OutIt out, std::size_t max, Sched sched = {}) {
    UMP_CHECK(max > 0, "a batch receive takes at most max messages, and max is at least 1");
    return {self(), std::move(sched), std::move(out), max};
  }
  [[nodiscard]] bool empty() const noexcept { return core_.checked_state()->empty(); }
  [[nodiscard]] std::size_t queued() const noexcept { return core_.checked_state()->queued(); }

 protected:
  template <class, class>
  friend class server_awaiter;
  template <class, class, class>
  friend class batch_awaiter;
  friend struct access;
  explicit server_front(channel_state<M, R, E>* st) noexcept : core_(st) {}
  server_front(server_front&&) noexcept = default;
  server_front& operator=(server_front&&) noexcept = default;
  ~server_front() = default;
  core_type& core() noexcept { return core_; }
  static error<E> clients_gone() noexcept { return error<E>(errc::clients_disappeared); }
  core_type core_;

 private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
  result<Msg, E> wait_until_(deadline dl, const std::stop_token* token = nullptr) {
    envelope e{};
    poll_status s;
    if (token == nullptr || !token->stop_possible()) {
      s = core_.take(e, dl);
    } else {
      const stop_check check{
          [](const void* t) noexcept { return static_cast<const std::stop_token*>(t)->stop_requested(); }, token};
      auto* st = core_.checked_state();
      // Runs on the thread that requests stop (or here, if it already was); its destructor
      // waits for a run in progress, so the state outlives it.
      std::stop_callback interrupt(*token, [st]() noexcept { st->interrupt_server_thread(); });
      s = core_.take(e, dl, &check);
    }
    if (s == poll_status::stopped) return error<E>(errc::cancelled);
    if (s == poll_status::empty) return error<E>(errc::timed_out);  // only with a deadline
    if (s == poll_status::no_clients) return clients_gone();
    return self().convert(e);
  }
  // Takes what is queued right now, up to `max`, without waiting; returns how many. Stops
  // at the first empty poll (or clients gone: the next receive reports that).
  template <class OutIt>
  std::size_t take_queued(OutIt& out, std::size_t max) {
    std::size_t n = 0;
    envelope e{};
    while (n < max && core_.try_take_queued(e) == poll_status::got) {
      *out = *self().convert(e);
      ++out;
      ++n;
    }
    return n;
  }
};

}  // namespace ump::detail
