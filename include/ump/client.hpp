// ump/client.hpp — the requesting end of a channel: client and weak_client.
//
// client<S, R, E> sends requests of type S and receives replies R (or error<E>). Copies are
// independent clients of the same server; each copy keeps the server's "clients alive"
// count up. A client object may be used by several threads at once. All messages of a
// channel share one FIFO: a send that happens-before another (on one thread, or ordered by
// any synchronisation between threads) is received first, whatever client object, copy or
// thread made it. A moved-from client may only be assigned to or destroyed: any other use
// aborts with a message naming the rule, in every build.
//
// weak_client<S, R, E> refers to the channel without counting as a client: when only weak
// clients remain, the server's wait() returns clients_disappeared. upgrade() gives a client
// back while at least one strong client lives; once the count has reached zero, never again.
//
// Threads and coroutines: req() blocks the calling thread (spin, then park); areq() and
// co_await on a wait_reply suspend the coroutine and never block. Any mix works on one
// channel. On a bounded channel (channel_options::capacity), a full channel makes req() and
// req_async() wait for room first (FIFO among waiting senders) and areq() suspend;
// try_req_async() returns errc::full instead. A request can be cancelled
// (wait_reply::cancel(), or a std::stop_token given to req/areq): withdrawn if the server
// has not taken it, else abandoned. Memory ordering: writes made before sending are visible to the server once it
// has received the message; the server's writes before replying are visible once the reply
// is returned.
#pragma once

#include <optional>
#include <stop_token>
#include <utility>

#include "ump/detail/access.hpp"
#include "ump/detail/awaiters.hpp"
#include "ump/detail/endpoint.hpp"
#include "ump/options.hpp"
#include "ump/result.hpp"
#include "ump/scheduler.hpp"
#include "ump/wait_reply.hpp"

namespace ump {

template <class S, class R, class E = void>
class weak_client;
template <class S, class R, class E = void>
class server;

template <class S, class R, class E = void>
class client {
 public:
  client(const client&) = default;
  client(client&&) noexcept = default;
  client& operator=(const client&) = default;
  client& operator=(client&&) noexcept = default;
  ~client() = default;

  // Effect: sends `s` and blocks until the reply. Blocking: spins for the channel's spin
  // budget, then parks; on a full bounded channel (channel_options::capacity) it first waits
  // for room. Errors: server_disappeared (the server was gone before taking the request;
  // `s` has been destroyed), no_reply, app_error. Thread-safe.
  [[nodiscard]] result<R, E> req(S s) { return core_.request(std::move(s)); }

  // Effect: as req(s), but gives up once `stop` is requested, while waiting for room (nothing
  // sent) or for the reply: the request is then withdrawn if the server has not taken it
  // yet (never delivered, `s` destroyed), else abandoned (the server's reply() returns
  // origin_disappeared). Blocking: as req(); a stop request wakes it. Errors: as req(),
  // plus cancelled. If the reply arrives first, it is returned.
  [[nodiscard]] result<R, E> req(S s, const std::stop_token& stop) {
    return core_.request_stoppable(stop, std::move(s));
  }

  // Effect: sends `s` now; the returned wait_reply collects the outcome later, blocking
  // (`cli.req_async(s).wait()`) or suspending (`co_await cli.req_async(s)`). Blocking: only
  // on a full bounded channel, until there is room. Errors, reported when the outcome is
  // collected: server_disappeared if the server was gone before taking the request (`s`
  // has been destroyed at once), no_reply, app_error.
  wait_reply<R, E> req_async(S s) { return detail::access::make<wait_reply<R, E>>(core_.start_request(std::move(s))); }

  // Effect: as req_async(), but never waits: on a full bounded channel it returns
  // errc::full and leaves `s` untouched (not moved from). Errors (at once): full,
  // server_disappeared (`s` may have been moved from). Never blocks.
  result<wait_reply<R, E>, E> try_req_async(S&& s) {
    detail::room_policy rp;
    rp.wait = false;
    return detail::try_wait_reply<R, E>(core_.start_request_with(rp, std::move(s)));
  }

  // Effect: sends `s` now (on a full bounded channel: once there is room, the coroutine
  // suspended meanwhile) and returns an awaitable; co_await yields result<R, E>. The
  // coroutine resumes through `sched` (default: inline on the replying thread, see
  // ump/scheduler.hpp). Never blocks a thread. Errors: as req(). If the awaitable (or the
  // coroutine suspended on it) is destroyed first, the request is abandoned (or, still
  // waiting for room, never sent).
  template <scheduler Sched = inline_scheduler>
  detail::request_awaiter<S, R, E, Sched> areq(S s, Sched sched = {}) {
    return core_.request_awaitable(std::move(sched), std::stop_token{}, std::move(s));
  }

  // As areq(s, sched), but a stop request while the coroutine is suspended cancels the
  // request as req(s, stop) does and resumes it (through `sched`, on the thread that
  // requested stop) with errc::cancelled. A stop already requested cancels it at co_await.
  template <scheduler Sched = inline_scheduler>
  detail::request_awaiter<S, R, E, Sched> areq(S s, std::stop_token stop, Sched sched = {}) {
    return core_.request_awaitable(std::move(sched), std::move(stop), std::move(s));
  }

  // A weak reference to the same channel. Never blocks, never fails.
  [[nodiscard]] weak_client<S, R, E> weak() const noexcept { return weak_client<S, R, E>(core_.state()); }

 private:
  friend struct detail::access;
  friend class weak_client<S, R, E>;
  template <class S2, class R2, class E2>
  friend std::pair<server<S2, R2, E2>, client<S2, R2, E2>> channel(channel_options);
  explicit client(detail::channel_state<S, R, E>* st) : core_(st) {}
  detail::client_core<S, R, E> core_;
};

template <class S, class R, class E>
class weak_client {
 public:
  // Effect: a strong client if any strong client is still alive, else nullopt. Lock-free.
  [[nodiscard]] std::optional<client<S, R, E>> upgrade() const {
    if (auto* st = core_.try_upgrade()) return client<S, R, E>(st);
    return std::nullopt;
  }

 private:
  friend class client<S, R, E>;
  explicit weak_client(detail::channel_state<S, R, E>* st) noexcept : core_(st) {}
  detail::weak_core<S, R, E> core_;
};

}  // namespace ump
