// ump/detail/endpoint.hpp — the machinery shared by ump:: and ump::ng:: clients and servers.
//
// Internal. client_core<M, R, E> and server_core<M, R, E> implement sending, waiting,
// cloning, weak references and receiving once, for a node message type M (S for ump,
// std::variant<P, S> for ng). The public classes only say how to build and unpack M.
#pragma once

#include <chrono>
#include <cstring>
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

template <class M, class R, class E>
class client_core {
 public:
  using state_type = channel_state<M, R, E>;
  using node_type = typename state_type::node_type;

  client_core(const client_core& o) noexcept : st_(o.st_) {
    UMP_CHECK(st_ != nullptr, "a moved-from client is not used (copied after move)");
    st_->add_ref(state_base::client_group);
    st_->add_strong();
  }
  client_core(client_core&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  client_core& operator=(client_core o) noexcept {
    std::swap(st_, o.st_);
    return *this;
  }
  ~client_core() {
    if (st_ == nullptr) return;
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
  // (the message was destroyed). Throws only what building M (or allocation) throws, and
  // then nothing was sent.
  template <class... A>
  node_type* send(message_kind kind, A&&... a) {
    const sent s = send_unwoken(kind, std::forward<A>(a)...);
    if (s.wake) st_->wake_server();
    return s.node;
  }

  // The first half of send() (announce and enqueue through send_locked()): queues the message, and says whether the
  // server was parked when it was announced; the caller then owes it a wake_server(). One hold of the channel's send
  // lock covers taking a node from the stock, building the message, announcing and enqueueing it; the wake comes after
  // the lock is released, so another sender may have woken the server in between (tests use this to pin down that
  // window).
  struct sent {
    node_type* node;
    bool wake;
  };
  template <class... A>
  sent send_unwoken(message_kind kind, A&&... a) {
    UMP_CHECK(st_ != nullptr, "a moved-from client is not used");
    using status = state_base::send_status;
    st_->lock_send();
    scope_exit unlock([&]() noexcept { st_->unlock_send(); });
    node_type* n = st_->acquire_node_locked();
    {
      scope_exit give_back([&]() noexcept { st_->push_stock(n); });
      n->msg_.emplace(std::forward<A>(a)...);
      give_back.dismiss();
    }
    n->is_post_ = kind == message_kind::post;
    n->reset();
    const status s = st_->send_locked(envelope{n, {}});
    if (s == status::rejected) {
      n->msg_.destroy();
      st_->push_stock(n);
      return {nullptr, false};
    }
    return {n, s == status::sent_wake};
  }

  // Blocking request: send, then wait on the cell with this channel's spin budget.
  template <class... A>
  result<R, E> request(A&&... a) {
    node_type* n = send(message_kind::request, std::forward<A>(a)...);
    if (n == nullptr) return error<E>(errc::server_disappeared);
    (void)n->wait_ready(st_->wait_opts(), {});  // no deadline: cannot time out
    return consume(*st_, *n);
  }

  // As request(), giving up when `stop` is requested (errc::cancelled; see pending_reply).
  template <class... A>
  result<R, E> request_stoppable(const std::stop_token& stop, A&&... a) {
    return start_request(std::forward<A>(a)...).wait({}, &stop);
  }

  // A sent request, or the early outcome of one the server was gone for.
  template <class... A>
  pending_reply<R, E> start_request(A&&... a) {
    node_type* n = send(message_kind::request, std::forward<A>(a)...);
    if (n == nullptr) return pending_reply<R, E>(errc::server_disappeared);
    return pending_reply<R, E>(st_, n);
  }

  template <class Sched, class... A>
  reply_awaiter<R, E, Sched> request_awaitable(Sched sched, A&&... a) {
    return {start_request(std::forward<A>(a)...), std::move(sched)};
  }
  template <class Sched, class... A>
  reply_awaiter<R, E, Sched> request_awaitable_stoppable(std::stop_token stop, Sched sched, A&&... a) {
    return {start_request(std::forward<A>(a)...), std::move(sched), std::move(stop)};
  }

  // A post that fits an envelope: copied into it, no node. Same outcomes as post().
  template <class P>
  result<void, E> post_inline(const P& x) noexcept {
    static_assert(fits_inline<P>);
    UMP_CHECK(st_ != nullptr, "a moved-from client is not used");
    envelope e{nullptr, {}};
    std::memcpy(e.bytes, std::addressof(x), sizeof(P));
    st_->lock_send();
    const auto s = st_->send_locked(e);
    st_->unlock_send();
    if (s == state_base::send_status::rejected) return error<E>(errc::server_disappeared);
    if (s == state_base::send_status::sent_wake) st_->wake_server();
    return {};
  }

  template <class... A>
  result<void, E> post(A&&... a) {
    if (send(message_kind::post, std::forward<A>(a)...) == nullptr) return error<E>(errc::server_disappeared);
    return {};
  }

 private:
  state_type* st_;
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
    while (n < max && core_.try_take(e) == poll_status::got) {
      *out = *self().convert(e);
      ++out;
      ++n;
    }
    return n;
  }
};

}  // namespace ump::detail
