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
#include "ump/detail/access.hpp"
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

// Receiving calls (from detail::server_front, shared with ng::server):
//   wait()              the next request, blocking (spin, then park) while there is none.
//                       Errors: clients_disappeared once no strong client is left and the
//                       queue is empty.
//   wait(stop_token)    as wait(), and errc::cancelled once stop is requested on the token
//                       (checked before each attempt: a request made after stop stays
//                       queued for the next wait; a parked server is woken by the stop).
//   wait_for(d), wait_until(tp)
//                       as wait(), giving up at the deadline with errc::timed_out. Nothing
//                       is lost on time-out.
//   try_wait()          the next request if one is queued, nullopt if none; never blocks.
//                       Errors: clients_disappeared, as wait().
//   co_await async_wait(sched = {})
//                       suspends until a request arrives (or clients disappear), then
//                       resumes via `sched` (default: inline on the sending thread, see
//                       ump/scheduler.hpp).
//   co_await async_wait(stop_token, sched = {})
//                       as async_wait(sched), and errc::cancelled once stop is requested:
//                       a suspended coroutine resumes (via `sched`, on the stopping thread);
//                       a stop already requested returns at once. Nothing is taken.
// Withdrawn requests (wait_reply::cancel, a stop on req(s, token)) are passed over: no
// receiving call ever returns one.
//   wait_many(out, max), try_wait_many(out, max), co_await async_wait_many(out, max, sched = {})
//                       batch receive: the first message as wait() / try_wait() /
//                       async_wait() take it, then whatever is already queued, up to `max`
//                       in all, written to the output iterator `out` in FIFO order (each
//                       as wait() returns it). Returns how many: at least 1 for wait_many
//                       and async_wait_many, 0 for try_wait_many when nothing is queued.
//                       Errors: clients_disappeared, as wait(), only when nothing was taken.
//                       Aborts (every build) if max is 0. If moving a message out throws, the
//                       messages already written stay written, that request gets no_reply,
//                       and the rest stay queued.
//   empty(), queued()   racy probes: whether / how many requests are queued right now.
template <class S, class R, class E>
class server : public detail::server_front<server<S, R, E>, S, R, E, request<S, R, E>> {
  using front = detail::server_front<server<S, R, E>, S, R, E, request<S, R, E>>;

 public:
  using request_type = request<S, R, E>;
  using typename front::node_type;

  server(server&&) noexcept = default;
  server& operator=(server&&) noexcept = default;

 private:
  friend front;
  template <class, class>
  friend class detail::server_awaiter;
  template <class S2, class R2, class E2>
  friend std::pair<server<S2, R2, E2>, client<S2, R2, E2>> channel(channel_options);

  explicit server(detail::channel_state<S, R, E>* st) noexcept : front(st) {}

  // The context is made first: if moving the message out throws, the context's destructor
  // answers no_reply and the exception reaches the server's caller.
  result<request_type, E> convert(detail::envelope& e) {
    node_type* n = front::core_type::node_of(e);
    auto ctx = detail::access::make<reply_context<R, E>>(this->core_.state(), n);
    return this->core_.unpack(n, [&](S&& s) { return request_type{std::move(s), std::move(ctx)}; });
  }
};

}  // namespace ump
