// ump/asio.hpp — ump operations as Asio asynchronous operations (any completion token).
//
// What for: using ump from Asio code. ump::asio::async_req(client, msg, token) sends a request
// and completes with its outcome; ump::asio::async_wait(server, token) completes with the next
// request (ng: the next message). Both accept any completion token: a callback,
// asio::use_future, asio::use_awaitable, asio::deferred, ... and work with both flavours
// (ump::client/server and ump::ng::client/server). Needs standalone Asio (<asio.hpp>,
// 1.22 or later) and exceptions (Asio's own headers do not compile without them); CMake
// target ump::asio, which with clang also defines ASIO_HAS_CO_AWAIT / ASIO_HAS_STD_COROUTINE
// (Asio 1.22 does not detect clang 14's coroutines, which use_awaitable needs).
//
// Completion signature: void(ump::result<R, E>) for async_req, void(ump::result<request, E>)
// (ng: result<message, E>) for async_wait — the same values as the blocking calls return.
//
// Where the handler runs: always through asio::post to the handler's associated executor
// (asio::get_associated_executor; asio::system_executor when it has none — bind one with
// asio::bind_executor, or use use_awaitable, whose executor is the coroutine's). Never
// inline inside the initiating call, never inside the replier's reply() or the sender's send.
// While an operation is pending it counts as outstanding work on that executor (an
// io_context's run() does not return). Each operation allocates one small state object.
//
// Cancellation: the per-operation cancellation slot is honoured (asio::bind_cancellation_slot,
// the slot use_awaitable and asio's awaitable operators install, ...). If the cancellation
// wins the race with the outcome:
//   * async_req cancels the request as wait_reply::cancel() does and completes with
//     errc::cancelled: if the server has not taken it yet it is withdrawn (never delivered,
//     its message destroyed); otherwise it is abandoned (the server's reply() returns
//     origin_disappeared). Honoured types: terminal and partial ("total" cancellation
//     promises no side effects, which a request the server already took cannot keep).
//     On a full bounded channel async_req first waits for room without blocking (it is sent
//     by the thread that makes room); cancelled then, it completes with errc::cancelled and
//     nothing was sent. A cancellation that finds room already granted has no effect.
//   * async_wait withdraws the server's waiter and completes with errc::cancelled; nothing
//     was taken and nothing is lost, the next wait gets the next message. Honoured types:
//     terminal, partial and total.
// If the outcome wins (it arrived before the cancellation), the operation completes normally
// with it and the cancellation has no effect. Either way the handler runs exactly once.
// As for every Asio operation, emit the cancellation signal from the handler's execution
// context (for a multi-threaded io_context, through a strand).
//
// Lifetimes: async_req needs the client only until the operation is initiated (the request
// is sent then; for lazy tokens such as use_awaitable that is when it is awaited). async_wait
// needs the server until completion, and one wait per server at a time (as for the server's
// other waits). The executor's execution context must outlive pending operations. If it is
// destroyed with a completion still queued, the handler is destroyed uninvoked and the
// outcome is released: a reply is destroyed; the message async_wait took for it (on the
// waking thread, before posting the completion) is released, a request answered no_reply
// (its context is destroyed), a post destroyed.
//
// Exceptions: initiation throws what sending throws (allocation, a throwing move of the
// message); then nothing was sent and the handler is destroyed. An exception thrown while
// moving the outcome out of ump during completion propagates out of the executor's run().
//
// Workers: ump::asio::worker_task<S, R, E>(make_handler) (ng: ump::asio::ng::worker_task<P,
// S, R, E>) makes a channel and returns its client and an asio::awaitable<T> that runs the
// worker loop of ump/worker.hpp — same handler, lifecycle, result T and exceptions — waiting
// with async_wait(server, use_awaitable) on the executor it runs on. Start it with
// asio::co_spawn(executor, std::move(task), token) (the completion gets (std::exception_ptr,
// T): use_future, a callback, detached, ...) or co_await it from an Asio coroutine. Needs
// Asio's coroutine support (ASIO_HAS_CO_AWAIT; with clang 14, the ump::asio target's
// definitions).
#pragma once

#include <coroutine>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/system_executor.hpp>

#include <asio/use_awaitable.hpp>

#include "ump/options.hpp"
#include "ump/result.hpp"
#include "ump/scheduler.hpp"
#include "ump/worker.hpp"

namespace ump::asio {

namespace detail {

// Where a registered ump waiter lands: the operation's wake(). It satisfies ump::scheduler;
// the coroutine handle it receives is a placeholder (no coroutine is involved) and ignored.
struct op_base {
  void (*wake)(op_base*) noexcept;
};
struct op_scheduler {
  op_base* op = nullptr;
  void schedule(std::coroutine_handle<>) const noexcept { op->wake(op); }
};

// One pending operation. `Awaiter` is the ump awaiter (reply_awaiter or server_awaiter) it
// drives by hand: await_ready, await_suspend(placeholder), and on wake-up await_resume.
// Which thread does what:
//   initiating thread: build, register the waiter (or, if the outcome is already there,
//                      collect it and post deliver());
//   waking thread (replier / sender): post deliver() to the handler's executor, nothing else;
//   handler's executor: deliver() — take the outcome, clear the slot, free, call the handler;
//                       cancel() — withdraw the waiter; if withdrawn, post deliver().
template <class Awaiter, class Handler>
class op final : op_base {
 public:
  using result_type = decltype(std::declval<Awaiter&>().await_resume());
  using executor_type = ::asio::associated_executor_t<Handler, ::asio::system_executor>;
  using slot_type = ::asio::associated_cancellation_slot_t<Handler>;

  template <class Make>
  op(Make& make, Handler&& h)
      : op_base{&on_wake},
        aw_(make(op_scheduler{this})),
        handler_(std::move(h)),
        work_(::asio::get_associated_executor(handler_, ::asio::system_executor())) {}
  op(const op&) = delete;
  op& operator=(const op&) = delete;
  ~op() = default;

  static void start(std::unique_ptr<op> o, ::asio::cancellation_type_t honoured) {
    if (o->aw_.await_ready()) {  // outcome already there: collect it now, as a coroutine would
      o->early_.emplace(o->aw_.await_resume());
      return post_deliver(std::move(o));
    }
    slot_type slot = ::asio::get_associated_cancellation_slot(o->handler_);
    if (slot.is_connected()) {
      o->slot_ = slot;
      slot.template emplace<cancel_handler>(o.get(), honoured);
    }
    o->waiting_ = true;
    // From here the wake (any thread) or a cancellation owns the operation.
    op* raw = o.release();
    if (!raw->aw_.await_suspend(std::noop_coroutine())) {
      // The outcome arrived while registering: nobody else knows about us.
      o.reset(raw);
      o->waiting_ = false;
      o->early_.emplace(o->aw_.await_resume());
      post_deliver(std::move(o));
    }
  }

 private:
  struct cancel_handler {
    cancel_handler(op* op_, ::asio::cancellation_type_t types) noexcept : o(op_), honoured(types) {}
    op* o;
    ::asio::cancellation_type_t honoured;
    void operator()(::asio::cancellation_type_t t) const {
      if ((t & honoured) != ::asio::cancellation_type::none) o->cancel();
    }
  };

  // Owns the op while a deliver() is queued on the executor: if the executor drops it
  // unrun, the op (and the outcome it guards) is released.
  struct deliver_fn {
    std::unique_ptr<op> o;
    void operator()() { deliver(std::move(o)); }
  };

  // Queues deliver() on the handler's executor. The work guard stays with the op until
  // deliver() runs, so the executor's work count never drops to zero in between.
  static void post_deliver(std::unique_ptr<op> o) {
    executor_type ex = o->work_.get_executor();
    ::asio::post(ex, deliver_fn{std::move(o)});
  }

  // On the waking thread (a replier or a sender): hand over to the handler's executor.
  static void on_wake(op_base* b) noexcept {
    post_deliver(std::unique_ptr<op>(static_cast<op*>(b)));  // noexcept: bad_alloc terminates
  }

  // On the handler's executor.
  static void deliver(std::unique_ptr<op> o) {
    if (o->slot_.is_connected()) o->slot_.clear();
    Handler h = std::move(o->handler_);
    if (o->early_.has_value()) {
      result_type r = std::move(*o->early_);
      o.reset();  // we run inside a posted function: that is the outstanding work now
      std::move(h)(std::move(r));
    } else {
      result_type r =
          o->withdrawn_ ? result_type(typename result_type::error_type(errc::cancelled)) : o->aw_.await_resume();
      o.reset();
      std::move(h)(std::move(r));
    }
  }

  // In the cancellation signal's context (the handler's executor). The slot is cleared by
  // deliver(), not here: we are running inside the slot's handler.
  void cancel() {
    if (!waiting_ || withdrawn_) return;
    if (!aw_.withdraw()) return;  // the wake-up is on its way: it completes the operation
    withdrawn_ = true;
    post_deliver(std::unique_ptr<op>(this));
  }

  Awaiter aw_;
  Handler handler_;
  ::asio::executor_work_guard<executor_type> work_;
  slot_type slot_{};
  std::optional<result_type> early_;  // the outcome, once collected
  bool waiting_ = false;              // the waiter is registered (set by the initiating thread)
  bool withdrawn_ = false;            // cancel() withdrew it (handler's context only)
};

template <class Awaiter, class Handler, class Make>
void start_op(Handler&& handler, Make& make, ::asio::cancellation_type_t honoured) {
  using op_type = op<Awaiter, std::decay_t<Handler>>;
  op_type::start(std::make_unique<op_type>(make, std::forward<Handler>(handler)), honoured);
}

template <class Client, class S>
using req_awaiter_t = decltype(std::declval<Client&>().areq(std::declval<S>(), op_scheduler{}));
template <class Server>
using wait_awaiter_t = decltype(std::declval<Server&>().async_wait(op_scheduler{}));

struct initiate_req {
  template <class Handler, class Client, class S>
  void operator()(Handler&& handler, Client* c, S s) const {
    auto make = [&](op_scheduler sch) { return c->areq(std::move(s), sch); };
    start_op<req_awaiter_t<Client, S>>(std::forward<Handler>(handler), make,
                                       ::asio::cancellation_type::terminal | ::asio::cancellation_type::partial);
  }
};

struct initiate_wait {
  template <class Handler, class Server>
  void operator()(Handler&& handler, Server* s) const {
    auto make = [&](op_scheduler sch) { return s->async_wait(sch); };
    start_op<wait_awaiter_t<Server>>(
        std::forward<Handler>(handler), make,
        ::asio::cancellation_type::terminal | ::asio::cancellation_type::partial | ::asio::cancellation_type::total);
  }
};

}  // namespace detail

// Effect: sends `s` through `client` (ump::client or ump::ng::client) when the operation is
// initiated, and completes with the outcome: void(ump::result<R, E>). Errors (in the result):
// server_disappeared, no_reply, app_error as for client.req(); cancelled when cancelled (see
// above). Never blocks.
template <class Client, class S, class Token>
requires requires(Client& c, S s) { c.areq(std::move(s), detail::op_scheduler{}); }
auto async_req(Client& client, S s, Token&& token) {
  using result_type = decltype(std::declval<detail::req_awaiter_t<Client, S>&>().await_resume());
  return ::asio::async_initiate<Token, void(result_type)>(detail::initiate_req{}, token, &client, std::move(s));
}

// Effect: waits for the next request (ump::server) or message (ump::ng::server) and completes
// with it: void(ump::result<request, E>) / void(ump::result<message, E>). Errors (in the
// result): clients_disappeared as for server.wait(); cancelled when cancelled (see
// above). Never blocks. One wait per server at a time; the server must outlive it.
template <class Server, class Token>
requires requires(Server& s) { s.async_wait(detail::op_scheduler{}); }
auto async_wait(Server& server, Token&& token) {
  using result_type = decltype(std::declval<detail::wait_awaiter_t<Server>&>().await_resume());
  return ::asio::async_initiate<Token, void(result_type)>(detail::initiate_wait{}, token, &server);
}

#if defined(ASIO_HAS_CO_AWAIT)

namespace detail {

template <class T>
using awaitable = ::asio::awaitable<T>;

// How the worker loop waits inside an Asio coroutine.
struct wait_awaitable {
  template <class Server>
  auto operator()(Server& s) const {
    return ump::asio::async_wait(s, ::asio::use_awaitable);
  }
};

template <class F, class Make>
auto worker_task(Make make_handler, const channel_options& opts) {
  auto w = ump::detail::make_worker<awaitable, F>(std::move(make_handler), opts, wait_awaitable{});
  return ump::spawned<typename F::client_type, ::asio::awaitable<ump::detail::result_of<F, Make>>>{std::move(w.second),
                                                                                                   std::move(w.first)};
}

}  // namespace detail

// Effect: makes a ump::channel<S, R, E>(opts) and returns its first client and an
// asio::awaitable<T> (T = ump::worker_result_t<H, S, R, E>) that, once started, calls
// make_handler() and serves the channel as ump/worker.hpp describes, on the executor it runs
// on: co_spawn it (any token; the completion gets the exception or T) or co_await it.
// Nothing runs before it is started; requests sent meanwhile queue. Destroying it unstarted
// destroys the server: queued requests get errc::server_disappeared. The executor's
// execution context must outlive the worker (as for every pending async_wait). Blocking:
// never. Errors: std::bad_alloc; errors of the worker reach the awaitable's completion.
template <class S, class R, class E = void, class Make>
requires ump::worker_handler<ump::detail::handler_of<Make>, S, R, E>
auto worker_task(Make make_handler, channel_options opts = {}) {
  return detail::worker_task<ump::detail::plain_flavour<S, R, E>>(std::move(make_handler), opts);
}

namespace ng {

// As ump::asio::worker_task, serving a ump::ng::channel<P, S, R, E>: posts go to
// handler.post.
template <class P, class S, class R, class E = void, class Make>
requires ump::ng::worker_handler<ump::detail::handler_of<Make>, P, S, R, E>
auto worker_task(Make make_handler, channel_options opts = {}) {
  return detail::worker_task<ump::ng::detail::flavour<P, S, R, E>>(std::move(make_handler), opts);
}

}  // namespace ng

#endif  // ASIO_HAS_CO_AWAIT

}  // namespace ump::asio
