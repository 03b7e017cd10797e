// ump/worker.hpp — a handler object served on its own thread or as a coroutine task.
//
// What for: the loop every server writes by hand ("wait for a message, handle it, stop when
// the clients are gone"), written once. You supply a handler object; spawn_thread() runs it
// on a new thread, spawn_task() as a coroutine on a ump::run_loop (and
// ump::asio::worker_task, in ump/asio.hpp, on an Asio executor). Each returns the first
// client and a handle that yields the worker's result. The Rust crates call these helpers
// umpx / ump-ngx.
//
// The handler is any object with
//   std::optional<RV> req(S msg, ump::reply_context<R, E> ctx);    // every request
//   std::optional<RV> post(P msg);                                  // ump::ng only: posts
// and optionally
//   void init(ump::weak_client<S, R, E> self);                     // ng: ng::weak_client<P, S, R, E>
//   T term(std::optional<RV> stop);
// (parameters may also be taken by reference; init's return value is ignored). req and
// post must return the same std::optional<RV>. Returning a value from req or post ("break")
// stops the loop with it; std::nullopt goes on. req may answer the request at once or move
// the reply_context out and answer it later, from any thread (reply contexts outlive the
// worker); a context it neither answers nor moves out is destroyed when req returns, and
// its client gets errc::no_reply, as always. The concepts ump::worker_handler and
// ump::ng::worker_handler state this; an `init` or `term` member that does not fit the
// signatures above is a compile-time error rather than being silently skipped.
//
// The result (what join() returns, or what the task yields): term's result T if the handler
// has term (T may be void), else the std::optional<RV> itself — RV's value when a handler
// broke the loop, std::nullopt when every client went away. Both are deduced from the type
// make_handler() returns: ump::worker_result_t<H, S, R, E> (ng: ump::ng::worker_result_t<H,
// P, S, R, E>) names it.
//
// Lifecycle, in this order, all on the worker (the new thread, the run_loop's thread, or
// the Asio executor):
//   1. make_handler() builds the handler;
//   2. handler.init(weak) gets a weak client of the channel (it does not keep the worker
//      alive; upgrading it and keeping the client does, until that client is dropped);
//   3. the loop: each request goes to handler.req, each ng post to handler.post, one at a
//      time, in the channel's FIFO order, until one returns a value or — once every strong
//      client is gone and the queue is drained — the channel reports clients_disappeared;
//   4. the server is destroyed: requests still queued (after a break) get
//      errc::server_disappeared, queued posts are destroyed, later sends fail at once;
//   5. handler.term(stop) runs, with the break value or std::nullopt;
//   6. the handler is destroyed, then the result is handed to the join handle.
// A worker whose handler keeps a strong client of its own channel never sees step 3's end.
//
// Exceptions: if make_handler, init, req, post or term throws, the worker stops there; the
// server and the handler are destroyed (queued requests get server_disappeared, as in
// step 4; term is not called after another call threw), and join() / co_await on the task
// rethrows the exception (Asio: co_spawn's completion receives it).
// In a -fno-exceptions build nothing can throw, so there is nothing to catch: a handler
// reports failures with fail(e), a break value or term's result (and a misuse inside ump
// aborts with a message, as everywhere).
//
// Threads: the handler is only touched by the worker, one call at a time, so it needs no
// locking of its own. Its calls are plain functions, also in a task: there they run on the
// loop's thread, and one that blocks stalls every coroutine of that loop (to wait for
// something, move the reply_context out and answer when it comes). spawn_thread's handle
// (worker_thread) is used by one thread at a time.
// Memory ordering: everything the worker did (term, the handler's destructor) happens-before
// join() returns, or the awaiting coroutine resumes.
//
// Asio: ump/asio.hpp adds ump::asio::worker_task (and ump::asio::ng::worker_task), the same
// loop as an asio::awaitable to co_spawn on an executor.
#pragma once

#include <atomic>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

#if defined(__linux__)
#include <pthread.h>
#endif

#include "ump/channel.hpp"
#include "ump/client.hpp"
#include "ump/detail/config.hpp"
#include "ump/ng.hpp"
#include "ump/options.hpp"
#include "ump/reply_context.hpp"
#include "ump/run_loop.hpp"
#include "ump/server.hpp"
#include "ump/task.hpp"

namespace ump {

// Options of spawn_thread.
struct worker_options {
  // The new thread's name, as debuggers and `top -H` show it (Linux: pthread_setname_np,
  // the first 15 bytes). Empty: the thread keeps the name it inherits.
  std::string name;
  // Options of the channel the worker serves.
  channel_options channel{};
};

namespace detail {

template <class T>
inline constexpr bool is_optional_v = false;
template <class T>
inline constexpr bool is_optional_v<std::optional<T>> = true;
template <class T>
concept optional_type = is_optional_v<T>;

// What req(S, reply_context) returns: std::optional<RV>.
template <class H, class S, class R, class E>
using req_return_t = decltype(std::declval<H&>().req(std::declval<S>(), std::declval<reply_context<R, E>>()));

}  // namespace detail

// H can serve a ump::channel<S, R, E>: h.req(S, reply_context<R, E>) returns a std::optional.
template <class H, class S, class R, class E = void>
concept worker_handler = requires(H& h, S s, reply_context<R, E> ctx) {
  { h.req(std::move(s), std::move(ctx)) } -> detail::optional_type;
};

namespace detail {

// The flavour of channel a worker serves: how to make it and how to hand a message to the
// handler. plain_flavour is ump's; ng::detail::flavour (below) is ump::ng's.
template <class S, class R, class E>
struct plain_flavour {
  using server_type = server<S, R, E>;
  using client_type = client<S, R, E>;
  using weak_type = weak_client<S, R, E>;
  template <class H>
  using stop_type = req_return_t<H, S, R, E>;

  static std::pair<server_type, client_type> make_channel(const channel_options& o) { return channel<S, R, E>(o); }
  template <class H>
  static stop_type<H> dispatch(H& h, request<S, R, E>& m) {
    return h.req(std::move(m.msg), std::move(m.ctx));
  }
};

// What a handler H of flavour F has, and what its worker yields.
template <class F, class H>
struct handler_traits {
  using stop_type = typename F::template stop_type<H>;  // std::optional<RV>
  static constexpr bool has_init = requires(H & h, typename F::weak_type w) { h.init(std::move(w)); };
  static constexpr bool has_term = requires(H & h, stop_type v) { h.term(std::move(v)); };
  // A member named init or term that the loop cannot call is a mistake, not an absence.
  static_assert(
      has_init || !requires { &H::init; }, "ump worker: the handler's init must accept the channel's weak_client");
  static_assert(
      has_term || !requires { &H::term; }, "ump worker: the handler's term must accept std::optional<RV>");
};

template <class F, class H, bool = handler_traits<F, H>::has_term>
struct worker_result {
  using type = typename handler_traits<F, H>::stop_type;
};
template <class F, class H>
struct worker_result<F, H, true> {
  using type = decltype(std::declval<H&>().term(std::declval<typename handler_traits<F, H>::stop_type>()));
  static_assert(!std::is_reference_v<type>, "ump worker: term returns a value (or void), not a reference");
};

// The handler make_handler() builds: a plain object type, returned by value.
template <class Make>
using handler_of = std::invoke_result_t<Make&>;

template <class F, class Make>
using result_of = typename worker_result<F, handler_of<Make>>::type;

// The worker's result, shared by the worker and its join handle. The worker stores the
// value (or exception) and then calls complete(); one coroutine may wait for that.
template <class T>
class worker_outcome {
 public:
  template <class... A>
  void set(A&&... a) {
    value_.set(std::forward<A>(a)...);
  }
#if UMP_HAS_EXCEPTIONS
  void fail(std::exception_ptr e) noexcept { error_ = std::move(e); }
#endif

  // Worker, once the outcome is stored: marks it done and resumes the registered waiter, if
  // any, inline on this thread.
  void complete() noexcept {
    // ORDERING: acq_rel; the release publishes the outcome to done()'s and register's
    // acquire, the acquire sees the waiter's frame before resuming it.
    void* prev = state_.exchange(done_tag(), std::memory_order_acq_rel);
    if (prev != nullptr) std::coroutine_handle<>::from_address(prev).resume();
  }
  [[nodiscard]] bool done() const noexcept {
    // ORDERING: acquire; pairs with complete()'s exchange: the outcome is visible.
    return state_.load(std::memory_order_acquire) == done_tag();
  }
  // Registers `h` to be resumed by complete(). False if the outcome is already there.
  bool register_waiter(std::coroutine_handle<> h) noexcept {
    void* expected = nullptr;
    // ORDERING: acq_rel on success (publishes the frame to complete()); acquire on failure
    // (pairs with complete(): the outcome is visible).
    return state_.compare_exchange_strong(expected, h.address(), std::memory_order_acq_rel, std::memory_order_acquire);
  }
  // Withdraws a registration whose coroutine is being destroyed. False if complete() has
  // already claimed it (its resumption is under way).
  bool withdraw_waiter(std::coroutine_handle<> h) noexcept {
    void* expected = h.address();
    // ORDERING: relaxed; nothing is published either way.
    return state_.compare_exchange_strong(expected, nullptr, std::memory_order_relaxed);
  }

  // The result, or the worker's exception rethrown. Precondition: done. Once.
  T take() {
#if UMP_HAS_EXCEPTIONS
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
#endif
    return value_.get();
  }

 private:
  // Marks "done": an address no coroutine frame has.
  void* done_tag() const noexcept { return const_cast<worker_outcome*>(this); }

  // nullptr: running, nobody waits; done_tag(): finished; else the waiting frame's address.
  std::atomic<void*> state_{nullptr};
  result_slot<T> value_;
#if UMP_HAS_EXCEPTIONS
  std::exception_ptr error_;
#endif
};

// How the loop waits for the next message. On a thread: blocking, through an awaitable that
// never suspends (the body below is a coroutine either way).
struct wait_blocking {
  template <class Server>
  struct awaiter {
    Server* s;
    bool await_ready() const noexcept { return true; }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    auto await_resume() const { return s->wait(); }
  };
  template <class Server>
  awaiter<Server> operator()(Server& s) const noexcept {
    return {&s};
  }
};
// As a task: suspending, resumed through `sched`.
template <class Sched>
struct wait_async {
  Sched sched;
  template <class Server>
  auto operator()(Server& s) const {
    return s.async_wait(sched);
  }
};

// The one loop body, for threads, run_loop tasks and Asio coroutines alike (see the
// lifecycle above). Coro is the coroutine type (ump::task, or asio::awaitable through
// ump/asio.hpp); Next(server&) returns what to co_await for the next message.
template <template <class> class Coro, class F, class Make, class Next>
Coro<result_of<F, Make>> serve(typename F::server_type srv_in, typename F::weak_type weak, Make make, Next next) {
  using H = handler_of<Make>;
  using traits = handler_traits<F, H>;
  static_assert(std::is_object_v<H> && !std::is_const_v<H>, "ump worker: make_handler() returns the handler by value");
  // Locals, not the parameters: an exception destroys them on its way out, so queued
  // requests fail before join() rethrows.
  std::optional<typename F::server_type> srv(std::move(srv_in));
  H h = make();
  if constexpr (traits::has_init) h.init(std::move(weak));
  typename traits::stop_type stop;
  for (;;) {
    auto m = co_await next(*srv);
    if (!m) break;  // clients_disappeared
    if (auto r = F::dispatch(h, *m)) {
      stop.emplace(std::move(*r));
      break;
    }
  }
  srv.reset();  // what is still queued: server_disappeared
  if constexpr (traits::has_term) {
    co_return h.term(std::move(stop));
  } else {
    co_return std::move(stop);
  }
}

// Runs `body` and stores its result or exception in `out`, then completes it.
template <class T>
task<void> finish_into(task<T> body, std::shared_ptr<worker_outcome<T>> out) {
#if UMP_HAS_EXCEPTIONS
  try {
#endif
    if constexpr (std::is_void_v<T>) {
      co_await std::move(body);
      out->set();
    } else {
      out->set(co_await std::move(body));
    }
#if UMP_HAS_EXCEPTIONS
  } catch (...) {
    out->fail(std::current_exception());
  }
#endif
  out->complete();
}

// The join handle of spawn_task: waits for complete(), then yields the outcome.
template <class T>
struct outcome_awaiter {
  worker_outcome<T>* out;
  std::coroutine_handle<> h{};
  explicit outcome_awaiter(worker_outcome<T>* o) noexcept : out(o) {}
  outcome_awaiter(const outcome_awaiter&) = delete;
  outcome_awaiter& operator=(const outcome_awaiter&) = delete;
  // Destroyed while suspended here: withdraw, so complete() never resumes a dead frame.
  ~outcome_awaiter() {
    if (h) (void)out->withdraw_waiter(h);
  }
  bool await_ready() const noexcept { return out->done(); }
  bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
    // Set before registering: once registered, complete() may resume (and end) the
    // coroutine on another thread at once, so *this is not touched after a success.
    h = awaiting;
    if (out->register_waiter(awaiting)) return true;
    h = {};
    return false;
  }
  void await_resume() noexcept { h = {}; }
};

template <class T>
task<T> join_worker(std::shared_ptr<worker_outcome<T>> out) {
  co_await outcome_awaiter<T>(out.get());
  co_return out->take();
}

// Gives the calling thread `name` (first 15 bytes; Linux only, elsewhere nothing).
inline void name_this_thread(const std::string& name) noexcept {
#if defined(__linux__)
  if (name.empty()) return;
  char shortened[16] = {};  // the kernel keeps 15 bytes and a terminator
  name.copy(shortened, sizeof shortened - 1);
  (void)pthread_setname_np(pthread_self(), shortened);
#else
  (void)name;
#endif
}

struct worker_access;

}  // namespace detail

// What spawn_thread and spawn_task return: the first client, and the worker's handle.
// Use structured bindings: `auto [cli, worker] = ump::spawn_thread<S, R>(make_handler);`.
// The client is destroyed before the handle, so a scope that ends with both lets the
// worker see its clients disappear before the handle joins it.
template <class Client, class Handle>
struct spawned {
  Handle worker;  // declared first: destroyed last
  Client client;

  template <std::size_t I>
  decltype(auto) get() & noexcept {
    if constexpr (I == 0)
      return (client);
    else
      return (worker);
  }
  template <std::size_t I>
  decltype(auto) get() const& noexcept {
    if constexpr (I == 0)
      return (client);
    else
      return (worker);
  }
  template <std::size_t I>
  decltype(auto) get() && noexcept {
    if constexpr (I == 0)
      return std::move(client);
    else
      return std::move(worker);
  }
};

// A worker running on its own thread: join() for its result. Like std::jthread, destroying
// (or assigning over) a handle that was not joined joins its thread, discarding the result
// (and an exception the worker ended with). That blocks until the worker ends: drop every
// client of its channel first (spawned<> destroys its client before the handle).
template <class T>
class worker_thread {
 public:
  // An empty handle: not joinable.
  worker_thread() noexcept = default;
  worker_thread(worker_thread&&) noexcept = default;
  // Joins the thread this handle had first, if it had one (see above).
  worker_thread& operator=(worker_thread&& o) noexcept {
    if (this != &o) {
      discard();
      out_ = std::move(o.out_);
      th_ = std::move(o.th_);
    }
    return *this;
  }
  worker_thread(const worker_thread&) = delete;
  worker_thread& operator=(const worker_thread&) = delete;
  ~worker_thread() { discard(); }

  // Effect: waits for the worker to end (after term and the handler's destructor), and
  // returns its result: term's value, or the std::optional<RV> break value (std::nullopt:
  // every client went away). Blocking: until the worker ends — that is, until a handler
  // breaks the loop or every strong client of its channel is gone. Errors: rethrows the
  // exception the worker ended with. Aborts (every build): joined twice, or on an empty or
  // moved-from handle. Called from the worker's own thread: std::system_error (deadlock).
  // Thread-safety: one thread at a time uses a handle, as for std::thread.
  T join() {
    UMP_CHECK(th_.joinable(), "a worker_thread is joined once, and not after a move");
    th_.join();
    return std::exchange(out_, nullptr)->take();
  }

  // True until join() (or a move): the handle still owns a thread.
  [[nodiscard]] bool joinable() const noexcept { return th_.joinable(); }
  // The worker thread's id (std::thread::id{} once not joinable).
  [[nodiscard]] std::thread::id get_id() const noexcept { return th_.get_id(); }

 private:
  friend struct detail::worker_access;
  worker_thread(std::shared_ptr<detail::worker_outcome<T>> out, std::thread th) noexcept
      : out_(std::move(out)), th_(std::move(th)) {}
  void discard() noexcept {
    if (th_.joinable()) th_.join();
    out_.reset();
  }

  std::shared_ptr<detail::worker_outcome<T>> out_;
  std::thread th_;
};

namespace detail {

struct worker_access {
  template <class T>
  static worker_thread<T> make(std::shared_ptr<worker_outcome<T>> out, std::thread th) noexcept {
    return worker_thread<T>(std::move(out), std::move(th));
  }
};

// The thread's function: names the thread, then runs the loop right there (it never
// suspends; sync_wait only collects its end).
struct worker_thread_main {
  std::string name;
  task<void> run;
  void operator()() {
    name_this_thread(name);
    sync_wait(std::move(run));
  }
};

// Makes the channel and the loop's coroutine, not started yet: the client and the body.
template <template <class> class Coro, class F, class Make, class Next>
auto make_worker(Make make_handler, const channel_options& opts, Next next) {
  auto ends = F::make_channel(opts);
  auto weak = ends.second.weak();
  Coro<result_of<F, Make>> body =
      serve<Coro, F>(std::move(ends.first), std::move(weak), std::move(make_handler), std::move(next));
  return std::pair<typename F::client_type, Coro<result_of<F, Make>>>(std::move(ends.second), std::move(body));
}

// spawn_thread and spawn_task for either flavour F.
template <class F, class Make>
auto spawn_thread(Make make_handler, worker_options opts) {
  using T = result_of<F, Make>;
  auto w = make_worker<task, F>(std::move(make_handler), opts.channel, wait_blocking{});
  auto out = std::make_shared<worker_outcome<T>>();
  std::thread th(worker_thread_main{std::move(opts.name), finish_into(std::move(w.second), out)});
  return ump::spawned<typename F::client_type, worker_thread<T>>{worker_access::make(std::move(out), std::move(th)),
                                                                 std::move(w.first)};
}

template <class F, class Make>
auto spawn_task(run_loop& loop, Make make_handler, const channel_options& opts) {
  using T = result_of<F, Make>;
  auto w = make_worker<task, F>(std::move(make_handler), opts, wait_async<run_loop::scheduler_type>{loop.scheduler()});
  auto out = std::make_shared<worker_outcome<T>>();
  loop.spawn(finish_into(std::move(w.second), out));
  return ump::spawned<typename F::client_type, task<T>>{join_worker(std::move(out)), std::move(w.first)};
}

}  // namespace detail

// The result of a worker whose handler has type H, serving a ump::channel<S, R, E>.
template <class H, class S, class R, class E = void>
requires worker_handler<H, S, R, E>
using worker_result_t = typename detail::worker_result<detail::plain_flavour<S, R, E>, H>::type;

// Effect: makes a ump::channel<S, R, E>(opts.channel) and starts a thread (named opts.name)
// that calls make_handler() and serves the channel with the handler it returns, through the
// lifecycle above. Returns the first client and the thread's handle (worker_thread<T>, T =
// worker_result_t<H, S, R, E>); more clients are copies of it. Blocking: no (the thread may
// not have started yet; requests sent meanwhile queue). Errors: std::system_error if the
// thread cannot be started (then nothing ran; the channel is gone), std::bad_alloc.
// Errors of the worker itself reach join(). Thread-safe: any thread may call it.
template <class S, class R, class E = void, class Make>
requires worker_handler<detail::handler_of<Make>, S, R, E>
auto spawn_thread(Make make_handler, worker_options opts = {}) {
  return detail::spawn_thread<detail::plain_flavour<S, R, E>>(std::move(make_handler), std::move(opts));
}

// Effect: makes a ump::channel<S, R, E>(opts) and spawns on `loop` a task that calls
// make_handler() and serves the channel with the handler, through the lifecycle above; it
// runs on the loop's thread, inside loop.run() / poll(), waiting with
// co_await srv.async_wait(loop.scheduler()). Returns the first client and a task<T> (T =
// worker_result_t<H, S, R, E>) that yields the worker's result: `co_await std::move(t)`,
// `loop.run(std::move(t))`, or ump::sync_wait from another thread while the loop runs.
// That task, once started, resumes its awaiter on the thread that finished the worker (the
// loop's). Destroying it unstarted (or while it waits) detaches: the worker goes on, and its
// result or exception is discarded. The loop owns the worker: destroying the loop destroys
// an unfinished worker wherever it waits (its server and handler with it; term is not
// called). Blocking: never (a short lock, as run_loop::spawn). Errors: std::bad_alloc.
// Errors of the worker reach the task. Thread-safe: any thread may call it, as spawn().
template <class S, class R, class E = void, class Make>
requires worker_handler<detail::handler_of<Make>, S, R, E>
auto spawn_task(run_loop& loop, Make make_handler, channel_options opts = {}) {
  return detail::spawn_task<detail::plain_flavour<S, R, E>>(loop, std::move(make_handler), opts);
}

namespace ng {

// H can serve a ump::ng::channel<P, S, R, E>: req as for ump, and h.post(P) returning the
// same std::optional.
template <class H, class P, class S, class R, class E = void>
concept worker_handler = ump::worker_handler<H, S, R, E> && requires(H& h, P p) {
  { h.post(std::move(p)) } -> std::same_as<ump::detail::req_return_t<H, S, R, E>>;
};

namespace detail {

template <class P, class S, class R, class E>
struct flavour {
  using server_type = server<P, S, R, E>;
  using client_type = client<P, S, R, E>;
  using weak_type = weak_client<P, S, R, E>;
  template <class H>
  using stop_type = ump::detail::req_return_t<H, S, R, E>;

  static std::pair<server_type, client_type> make_channel(const channel_options& o) { return channel<P, S, R, E>(o); }
  template <class H>
  static stop_type<H> dispatch(H& h, message<P, S, R, E>& m) {
    if (m.is_post()) return h.post(std::move(m.post()));
    auto& r = m.req();
    return h.req(std::move(r.msg), std::move(r.ctx));
  }
};

}  // namespace detail

// The result of a worker whose handler has type H, serving a ump::ng::channel<P, S, R, E>.
template <class H, class P, class S, class R, class E = void>
requires worker_handler<H, P, S, R, E>
using worker_result_t = typename ump::detail::worker_result<detail::flavour<P, S, R, E>, H>::type;

// As ump::spawn_thread, serving a ump::ng::channel<P, S, R, E>: posts go to handler.post.
template <class P, class S, class R, class E = void, class Make>
requires worker_handler<ump::detail::handler_of<Make>, P, S, R, E>
auto spawn_thread(Make make_handler, worker_options opts = {}) {
  return ump::detail::spawn_thread<detail::flavour<P, S, R, E>>(std::move(make_handler), std::move(opts));
}

// As ump::spawn_task, serving a ump::ng::channel<P, S, R, E>: posts go to handler.post.
template <class P, class S, class R, class E = void, class Make>
requires worker_handler<ump::detail::handler_of<Make>, P, S, R, E>
auto spawn_task(run_loop& loop, Make make_handler, channel_options opts = {}) {
  return ump::detail::spawn_task<detail::flavour<P, S, R, E>>(loop, std::move(make_handler), opts);
}

}  // namespace ng

}  // namespace ump

// Structured bindings for ump::spawned: element 0 is the client, element 1 the handle.
template <class Client, class Handle>
struct std::tuple_size<ump::spawned<Client, Handle>> : std::integral_constant<std::size_t, 2> {};
template <class Client, class Handle>
struct std::tuple_element<0, ump::spawned<Client, Handle>> {
  using type = Client;
};
template <class Client, class Handle>
struct std::tuple_element<1, ump::spawned<Client, Handle>> {
  using type = Handle;
};
