// ump/server.hpp — the receiving end of a channel.
//
// server<S, R, E> is move-only and unique per channel. wait() (blocking), try_wait()
// (never blocks) and co_await async_wait() (suspends) each return the next request: the
// message S and the reply_context that must answer it. Call them from one thread or
// coroutine at a time.
//
// Lifecycle: when the last strong client is gone, the requests already queued are still
// delivered, then every wait returns errc::clients_disappeared. Destroying the server fails
// every queued request with errc::server_disappeared (its message destroyed) and makes later
// sends fail at once; reply contexts already handed out keep working.
//
// Memory ordering: what a client wrote before sending is visible once the request is
// returned here.
#pragma once

#include <chrono>
#include <optional>
#include <utility>

#include "ump/client.hpp"
#include "ump/detail/endpoint.hpp"
#include "ump/reply_context.hpp"
#include "ump/result.hpp"
#include "ump/scheduler.hpp"

namespace ump {

// One received request: the message and its obligation to answer. Use structured bindings:
//   auto [msg, ctx] = *server.wait();
template <class S, class R, class E = void>
struct request {
  S msg;
  reply_context<R, E> ctx;
};

template <class S, class R, class E>
class server {
 public:
  using request_type = request<S, R, E>;
  using node_type = typename detail::server_core<S, R, E>::node_type;

  server(server&&) noexcept = default;
  server& operator=(server&&) noexcept = default;

  // Effect: returns the next request, blocking (spin, then park) while there is none.
  // Errors: clients_disappeared once no strong client is left and the queue is empty.
  result<request_type, E> wait() {
    node_type* n = nullptr;
    const auto s = core_.take(n, {});
    return finish(s, n);
  }

  // As wait(), giving up at the deadline with errc::timed_out. Nothing is lost on time-out.
  template <class Rep, class Period>
  result<request_type, E> wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until_(detail::deadline_after(d));
  }
  template <class Duration>
  result<request_type, E> wait_until(std::chrono::time_point<detail::clock, Duration> tp) {
    return wait_until_(detail::deadline_at(tp));
  }

  // Effect: the next request if one is queued, nullopt if none, never blocking.
  // Errors: clients_disappeared, as wait().
  result<std::optional<request_type>, E> try_wait() {
    node_type* n = nullptr;
    const auto s = core_.try_take(n);
    if (s == detail::poll_status::empty) return std::optional<request_type>{};
    if (s == detail::poll_status::no_clients) return clients_gone();
    return std::optional<request_type>(*convert(n));
  }

  // co_await: suspends until a request arrives (or clients disappear), then resumes via
  // `sched` (default: inline on the sending thread, see ump/scheduler.hpp).
  template <scheduler Sched = inline_scheduler>
  detail::server_awaiter<server, Sched> async_wait(Sched sched = {}) {
    return {*this, std::move(sched)};
  }

  // Racy probe: true when no request is queued right now.
  [[nodiscard]] bool empty() const noexcept { return core_.state()->empty(); }
  // Racy probe: how many requests are queued right now.
  [[nodiscard]] std::size_t queued() const noexcept { return core_.state()->queued(); }

 private:
  template <class, class>
  friend class detail::server_awaiter;
  template <class S2, class R2, class E2>
  friend std::pair<server<S2, R2, E2>, client<S2, R2, E2>> channel(channel_options);

  explicit server(detail::channel_state<S, R, E>* st) noexcept : core_(st) {}
  detail::server_core<S, R, E>& core() noexcept { return core_; }
  static error<E> clients_gone() noexcept { return error<E>(errc::clients_disappeared); }

  result<request_type, E> wait_until_(detail::deadline dl) {
    node_type* n = nullptr;
    const auto s = core_.take(n, dl);
    if (s == detail::poll_status::empty) return error<E>(errc::timed_out);
    return finish(s, n);
  }
  result<request_type, E> finish(detail::poll_status s, node_type* n) {
    if (s == detail::poll_status::no_clients) return clients_gone();
    return convert(n);
  }
  // The context is made first: if moving the message out throws, the context's destructor
  // answers no_reply and the exception reaches the server's caller.
  result<request_type, E> convert(node_type* n) {
    reply_context<R, E> ctx = core_.context_for(n);
    return core_.unpack(n, [&](S&& s) { return request_type{std::move(s), std::move(ctx)}; });
  }

  detail::server_core<S, R, E> core_;
};

}  // namespace ump
