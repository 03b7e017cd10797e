// ump/ng.hpp — the "next generation" flavour: requests plus one-way posts on one channel.
//
// ng::channel<P, S, R, E>() makes a server and a client. Besides everything an ump client
// does (req, req_async, try_req_async, areq, weak), an ng client can post(P): a one-way
// message that needs no reply and never blocks on an unbounded channel. On a bounded one
// (channel_options::capacity) post() waits for room; try_post, post_for / post_until and
// co_await apost give up, time out or suspend instead (see post_front below).
// ng::post_client can only post. The server's wait() returns an ng::message: either a post
// P, or a request (S and its reply_context).
//
// Cost: a post of a trivially copyable P of at most 8 bytes (integers, enums, pointers,
// pairs of 32-bit values) is copied into the queue's slot itself; no node is taken from the
// pool, so a post costs one enqueue and one announce. Other posts travel in a pooled node,
// like requests.
//
// Ordering: posts and requests share the channel's one FIFO (see ump/client.hpp): a send that
// happens-before another is received first, whatever client, post_client or thread made it.
// Lifecycle and memory ordering are exactly those of ump (see ump/server.hpp, client.hpp):
// queued posts are destroyed when the server is destroyed; post() after the server is gone
// returns server_disappeared (the post is destroyed).
//
// The requester-gave-up case differs from the Rust ump-ng crate on purpose: the server still
// receives such a request normally (wait() does not fail); its reply() reports
// origin_disappeared.
#pragma once

#include <chrono>
#include <new>
#include <optional>
#include <stop_token>
#include <utility>
#include <variant>

#include "ump/detail/access.hpp"
#include "ump/detail/endpoint.hpp"
#include "ump/options.hpp"
#include "ump/reply_context.hpp"
#include "ump/result.hpp"
#include "ump/scheduler.hpp"
#include "ump/server.hpp"
#include "ump/wait_reply.hpp"

namespace ump::ng {

namespace detail {
template <class P, class S>
using node_message = std::variant<P, S>;  // index 0: post, index 1: request
}  // namespace detail

template <class P, class S, class R, class E = void>
class client;
template <class P, class S, class R, class E = void>
class server;
template <class P, class S, class R, class E = void>
class weak_client;

// A request as the ng server receives it: the same as ump::request (a post type plays no
// part in it).
template <class S, class R, class E = void>
using request = ump::request<S, R, E>;

// What the server receives: a post or a request.
template <class P, class S, class R, class E = void>
class message {
 public:
  explicit message(P p) : v_(std::in_place_index<0>, std::move(p)) {}
  explicit message(request<S, R, E> r) : v_(std::in_place_index<1>, std::move(r)) {}

  [[nodiscard]] bool is_post() const noexcept { return v_.index() == 0; }
  [[nodiscard]] bool is_request() const noexcept { return v_.index() == 1; }
  // The post. Precondition: is_post().
  [[nodiscard]] P& post() noexcept {
    UMP_ASSERT(is_post(), "message::post() called on a request");
    return *std::get_if<0>(&v_);
  }
  // The request (message and reply context). Precondition: is_request().
  [[nodiscard]] request<S, R, E>& req() noexcept {
    UMP_ASSERT(is_request(), "message::req() called on a post");
    return *std::get_if<1>(&v_);
  }
  // Calls f(P&) or f(request&), whichever this holds.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), v_);
  }

 private:
  std::variant<P, request<S, R, E>> v_;
};

namespace detail {
// The posting calls of ng::client and ng::post_client, written once. `Derived` has core().
template <class Derived, class P, class S, class R, class E>
class post_front {
  using core_type = ump::detail::client_core<node_message<P, S>, R, E>;

 public:
  // Effect: queues `p` for the server. Blocking: never on an unbounded channel (the
  // channel's short send lock aside); on a full bounded channel (channel_options::capacity)
  // it waits for room (spin, then park), in FIFO order with the other waiting senders.
  // Errors: server_disappeared (`p` is destroyed; also if the server goes while it waits).
  result<void, E> post(P p) { return post_with({}, p); }
  // Effect: as post(p), but never waits: on a full channel returns errc::full and leaves
  // `p` untouched (not moved from). Errors: full, server_disappeared. Never blocks.
  result<void, E> try_post(P&& p) {
    ump::detail::room_policy rp;
    rp.wait = false;
    return post_with(rp, p);
  }
  // Effect: as post(p), waiting for room at most `d` (until `tp`): then returns
  // errc::timed_out and leaves `p` untouched. Errors: timed_out, server_disappeared.
  template <class Rep, class Period>
  result<void, E> post_for(P&& p, std::chrono::duration<Rep, Period> d) {
    ump::detail::room_policy rp;
    rp.dl = ump::detail::deadline_after(d);
    return post_with(rp, p);
  }
  template <class Duration>
  result<void, E> post_until(P&& p, std::chrono::time_point<ump::detail::clock, Duration> tp) {
    ump::detail::room_policy rp;
    rp.dl = ump::detail::deadline_at(tp);
    return post_with(rp, p);
  }
  // Effect: posts `p` now or, on a full channel, suspends the coroutine until there is room
  // and posts it then (on the thread that made room; the coroutine resumes through `sched`).
  // co_await yields result<void, E>: server_disappeared, or cancelled if `stop` is requested
  // while it waits for room (nothing was posted). Never blocks a thread.
  template <scheduler Sched = inline_scheduler>
  ump::detail::post_awaiter<node_message<P, S>, R, E, P, Sched> apost(P p, Sched sched = {}) {
    return apost(std::move(p), std::stop_token{}, std::move(sched));
  }
  template <scheduler Sched = inline_scheduler>
  ump::detail::post_awaiter<node_message<P, S>, R, E, P, Sched> apost(P p, std::stop_token stop, Sched sched = {}) {
    ump::detail::room_policy rp;
    rp.wait = false;
    result<void, E> r = post_with(rp, p);
    if (!r && r.error().code() == errc::full) return {core(), std::move(p), std::move(sched), std::move(stop)};
    return {std::move(r), std::move(sched)};
  }

 private:
  core_type& core() noexcept { return static_cast<Derived&>(*this).core_; }
  // `p` is moved from only once it is sent.
  result<void, E> post_with(const ump::detail::room_policy& rp, P& p) {
    if constexpr (ump::detail::fits_inline<P>) {
      return core().post_inline(p, rp);
    } else {
      return core().post_with(rp, std::in_place_index<0>, std::move(p));
    }
  }
};
}  // namespace detail

template <class P, class S, class R, class E = void>
class post_client : public detail::post_front<post_client<P, S, R, E>, P, S, R, E> {
 private:
  friend class client<P, S, R, E>;
  friend class detail::post_front<post_client, P, S, R, E>;
  using core_type = ump::detail::client_core<detail::node_message<P, S>, R, E>;
  explicit post_client(const core_type& c) : core_(c) {}
  core_type core_;
};

template <class P, class S, class R, class E>
class client : public detail::post_front<client<P, S, R, E>, P, S, R, E> {
 public:
  client(const client&) = default;
  client(client&&) noexcept = default;
  client& operator=(const client&) = default;
  client& operator=(client&&) noexcept = default;

  // As ump::client::req / req_async / try_req_async / areq (see ump/client.hpp).
  [[nodiscard]] result<R, E> req(S s) { return core_.request(std::in_place_index<1>, std::move(s)); }
  [[nodiscard]] result<R, E> req(S s, const std::stop_token& stop) {
    return core_.request_stoppable(stop, std::in_place_index<1>, std::move(s));
  }
  wait_reply<R, E> req_async(S s) {
    return ump::detail::access::make<wait_reply<R, E>>(core_.start_request(std::in_place_index<1>, std::move(s)));
  }
  result<wait_reply<R, E>, E> try_req_async(S&& s) {
    ump::detail::room_policy rp;
    rp.wait = false;
    return ump::detail::try_wait_reply<R, E>(core_.start_request_with(rp, std::in_place_index<1>, std::move(s)));
  }
  template <scheduler Sched = inline_scheduler>
  ump::detail::request_awaiter<detail::node_message<P, S>, R, E, Sched> areq(S s, Sched sched = {}) {
    return core_.request_awaitable(std::move(sched), std::stop_token{}, std::in_place_index<1>, std::move(s));
  }
  template <scheduler Sched = inline_scheduler>
  ump::detail::request_awaiter<detail::node_message<P, S>, R, E, Sched> areq(S s, std::stop_token stop,
                                                                             Sched sched = {}) {
    return core_.request_awaitable(std::move(sched), std::move(stop), std::in_place_index<1>, std::move(s));
  }
  // post, try_post, post_for, post_until, apost: see post_front above.

  // A strong client that can only post (counts as a client for clients_disappeared).
  [[nodiscard]] post_client<P, S, R, E> poster() const { return post_client<P, S, R, E>(core_); }
  [[nodiscard]] weak_client<P, S, R, E> weak() const noexcept { return weak_client<P, S, R, E>(core_.state()); }

 private:
  friend struct ump::detail::access;
  friend class weak_client<P, S, R, E>;
  friend class detail::post_front<client, P, S, R, E>;
  template <class P2, class S2, class R2, class E2>
  friend std::pair<server<P2, S2, R2, E2>, client<P2, S2, R2, E2>> channel(channel_options);
  using core_type = ump::detail::client_core<detail::node_message<P, S>, R, E>;
  explicit client(typename core_type::state_type* st) : core_(st) {}
  core_type core_;
};

template <class P, class S, class R, class E>
class weak_client {
 public:
  [[nodiscard]] std::optional<client<P, S, R, E>> upgrade() const {
    if (auto* st = core_.try_upgrade()) return client<P, S, R, E>(st);
    return std::nullopt;
  }

 private:
  friend class client<P, S, R, E>;
  using core_type = ump::detail::weak_core<detail::node_message<P, S>, R, E>;
  explicit weak_client(typename core_type::state_type* st) noexcept : core_(st) {}
  core_type core_;
};

// Receiving calls as ump::server (wait, wait(stop_token), wait_for, wait_until, try_wait,
// async_wait, wait_many, try_wait_many, async_wait_many, empty, queued; see ump/server.hpp),
// returning messages.
template <class P, class S, class R, class E>
class server
    : public ump::detail::server_front<server<P, S, R, E>, detail::node_message<P, S>, R, E, message<P, S, R, E>> {
  using front = ump::detail::server_front<server<P, S, R, E>, detail::node_message<P, S>, R, E, message<P, S, R, E>>;

 public:
  using message_type = message<P, S, R, E>;
  using typename front::core_type;
  using typename front::node_type;

  server(server&&) noexcept = default;
  server& operator=(server&&) noexcept = default;

 private:
  friend front;
  template <class, class>
  friend class ump::detail::server_awaiter;
  template <class P2, class S2, class R2, class E2>
  friend std::pair<server<P2, S2, R2, E2>, client<P2, S2, R2, E2>> channel(channel_options);

  explicit server(typename core_type::state_type* st) noexcept : front(st) {}

  result<message_type, E> convert(ump::detail::envelope& e) {
    if constexpr (ump::detail::fits_inline<P>) {
      if (e.node == nullptr) {
        // An inline post: its bytes were copied in by post_inline (trivially copyable P).
        return message_type(*std::launder(reinterpret_cast<P*>(e.bytes)));
      }
    }
    node_type* n = core_type::node_of(e);
    auto& core = this->core_;
    if (n->is_post_) {
      ump::detail::scope_exit give_back([&]() noexcept { core.recycle(n); });
      return core.unpack(n,
                         [](detail::node_message<P, S>&& m) { return message_type(std::move(*std::get_if<0>(&m))); });
    }
    auto ctx = ump::detail::access::make<reply_context<R, E>>(core.state(), n);
    return core.unpack(n, [&](detail::node_message<P, S>&& m) {
      return message_type(request<S, R, E>{std::move(*std::get_if<1>(&m)), std::move(ctx)});
    });
  }
};

// Effect: makes a linked ng server and client (see ump::channel).
template <class P, class S, class R, class E = void>
std::pair<server<P, S, R, E>, client<P, S, R, E>> channel(channel_options opts = {}) {
  auto* st = new typename server<P, S, R, E>::core_type::state_type(opts);
  server<P, S, R, E> srv(st);
  return {std::move(srv), client<P, S, R, E>(st)};
}

}  // namespace ump::ng
