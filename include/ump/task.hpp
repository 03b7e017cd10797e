// ump/task.hpp — task<T>: a minimal lazy coroutine type, and sync_wait().
//
// What for: writing ump clients and servers as coroutines without pulling in a coroutine
// library. Any coroutine type works with ump's awaitables; task<T> is the smallest one that
// does the job, and ump::run_loop runs it.
//
// Lifecycle: a function returning task<T> (T may be void) starts suspended. It runs when a
// coroutine co_awaits it (`T v = co_await f();`), when sync_wait() or run_loop::run() is
// given it, or when it is spawned on a run_loop. It runs to completion, then resumes the
// coroutine that awaited it by symmetric transfer (no stack growth however many tasks finish
// in a row). The task object owns the coroutine frame: destroying the task destroys the frame,
// wherever it is suspended. A coroutine suspended in an ump wait (areq, co_await wait_reply,
// async_wait) may be destroyed that way before its operation completes: it is then never
// resumed, and a request it was waiting for is abandoned (the server's reply() returns
// errc::origin_disappeared). Destroying it after ump has handed it to its scheduler is the
// scheduler's business (ump::run_loop never resumes a handle of a destroyed spawned task).
//
// Threads: a task runs on whichever thread resumes it. It starts on the thread that awaits it
// (or on sync_wait's caller, or on the run_loop's thread); after each co_await it continues
// where that awaitable resumed it (for ump's awaitables: see ump/scheduler.hpp — by default
// inline on the thread that completed the operation). A task awaited by another one resumes
// its awaiter on the thread it finished on.
//
// Exceptions: an exception escaping the task's body is stored and rethrown by the co_await
// (or sync_wait) that collects the result. Compiled with -fno-exceptions nothing is stored;
// the header compiles either way.
#pragma once

#include <condition_variable>
#include <coroutine>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "ump/detail/config.hpp"

namespace ump {

template <class T = void>
class task;

namespace detail {

// What a task's promise shares whatever T is: the continuation and the captured exception.
class task_promise_base {
 public:
  // Resumes the awaiting coroutine (if any) by symmetric transfer.
  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      return h.promise().continuation_;
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  final_awaiter final_suspend() const noexcept { return {}; }

  void unhandled_exception() noexcept {
#if UMP_HAS_EXCEPTIONS
    error_ = std::current_exception();
#else
    std::terminate();  // unreachable: nothing can throw without exceptions
#endif
  }

  void set_continuation(std::coroutine_handle<> c) noexcept { continuation_ = c; }

 protected:
  void rethrow_if_failed() {
#if UMP_HAS_EXCEPTIONS
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
#endif
  }

 private:
  std::coroutine_handle<> continuation_ = std::noop_coroutine();
#if UMP_HAS_EXCEPTIONS
  std::exception_ptr error_;
#endif
};

template <class T>
class task_promise final : public task_promise_base {
 public:
  task<T> get_return_object() noexcept;

  // `U = T` lets `co_return {a, b};` build a T from a braced list.
  template <class U = T>
  requires std::is_constructible_v<T, U&&>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) { value_.emplace(std::forward<U>(v)); }

  // The result: the value, or the stored exception rethrown. Called once.
  T take() {
    rethrow_if_failed();
    UMP_ASSERT(value_.has_value(), "a task's result is taken once, after it finished");
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class task_promise<void> final : public task_promise_base {
 public:
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() { rethrow_if_failed(); }
};

// A value slot for T that also works for void (used by sync_wait and run_loop::run).
template <class T>
struct result_slot {
  std::optional<T> v;
  template <class A>
  void set(A&& a) {
    v.emplace(std::forward<A>(a));
  }
  T get() {
    UMP_ASSERT(v.has_value(), "a completed task left its result");
    return std::move(*v);
  }
};
template <>
struct result_slot<void> {
  void set() noexcept {}
  void get() noexcept {}
};

// The frame that drives a task to completion for a non-coroutine caller (sync_wait,
// run_loop::run): it awaits the task, stores its result, and at its final suspension calls
// `on_done(ctx)` — possibly on another thread. It then stays suspended; its owner destroys
// it. Nothing touches the frame after on_done is called, so the owner may destroy it the
// moment it learns of the completion.
class completion {
 public:
  struct promise_type {
    void (*on_done)(void*) noexcept = nullptr;
    void* ctx = nullptr;
#if UMP_HAS_EXCEPTIONS
    std::exception_ptr error;
#endif

    completion get_return_object() noexcept {
      return completion(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    auto final_suspend() const noexcept {
      struct notify {
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
          promise_type& p = h.promise();
          p.on_done(p.ctx);  // the owner may destroy this frame now: nothing after this
        }
        void await_resume() const noexcept {}
      };
      return notify{};
    }
    void return_void() const noexcept {}
    void unhandled_exception() noexcept {
#if UMP_HAS_EXCEPTIONS
      error = std::current_exception();
#else
      std::terminate();
#endif
    }
  };

  completion(completion&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  completion& operator=(completion&&) = delete;
  ~completion() {
    if (h_) h_.destroy();
  }

  // Sets the completion callback; resume handle() to start the task.
  void prepare(void (*on_done)(void*) noexcept, void* ctx) noexcept {
    h_.promise().on_done = on_done;
    h_.promise().ctx = ctx;
  }
  std::coroutine_handle<> handle() const noexcept { return h_; }
  // Rethrows what escaped the task, if anything. Precondition: finished.
  void rethrow_if_failed() {
#if UMP_HAS_EXCEPTIONS
    if (h_.promise().error) std::rethrow_exception(std::exchange(h_.promise().error, nullptr));
#endif
  }

 private:
  explicit completion(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

template <class T>
completion complete_into(task<T> t, result_slot<T>* out);

}  // namespace detail

// A lazily started coroutine producing T. Move-only; owns its frame.
template <class T>
class [[nodiscard]] task {
  static_assert(!std::is_reference_v<T>, "task<T&> is not supported: return a pointer or a reference_wrapper");

 public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;

  task() noexcept = default;
  task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  task& operator=(task&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  // Destroys the frame, wherever the coroutine is suspended (see the contract above).
  ~task() { reset(); }

  // True while this object owns a coroutine.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }

  // co_await: starts the task on the awaiting thread; the awaiter continues (on the thread the
  // task finished on) with its result, or its exception rethrown. Once per task.
  auto operator co_await() && noexcept {
    UMP_ASSERT(h_ && !h_.done(), "a task is awaited once (awaited after move or twice)");
    struct awaiter {
      std::coroutine_handle<promise_type> h;
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) const noexcept {
        h.promise().set_continuation(awaiting);
        return h;  // symmetric transfer into the task
      }
      T await_resume() const { return h.promise().take(); }
    };
    return awaiter{h_};
  }

 private:
  friend class detail::task_promise<T>;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  void reset() noexcept {
    if (h_) std::exchange(h_, {}).destroy();
  }
  std::coroutine_handle<promise_type> h_{};
};

namespace detail {

template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<task_promise>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<task_promise>::from_promise(*this));
}

template <class T>
completion complete_into(task<T> t, result_slot<T>* out) {
  if constexpr (std::is_void_v<T>) {
    (void)out;
    co_await std::move(t);
  } else {
    out->set(co_await std::move(t));
  }
}

}  // namespace detail

// Effect: runs `t` to completion and returns its result (or rethrows its exception). The task
// starts on the calling thread; the caller then blocks (condition variable, no polling) until
// the task finishes, on whatever thread resumed it last. Must not be called from a thread the
// task needs in order to finish (a run_loop's own thread, for instance): that deadlocks.
template <class T>
T sync_wait(task<T> t) {
  struct event {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    // Notifies under the lock: the waiter cannot return (and destroy this event) before the
    // notifier has released the mutex, and the notifier touches nothing after that.
    static void fire(void* self) noexcept {
      auto* e = static_cast<event*>(self);
      std::lock_guard<std::mutex> lk(e->m);
      e->done = true;
      e->cv.notify_one();
    }
  };
  event ev;
  detail::result_slot<T> out;
  detail::completion c = detail::complete_into(std::move(t), &out);
  c.prepare(&event::fire, &ev);
  c.handle().resume();  // runs on this thread until the task's first suspension
  {
    std::unique_lock<std::mutex> lk(ev.m);
    ev.cv.wait(lk, [&ev] { return ev.done; });
  }
  c.rethrow_if_failed();
  return out.get();
}

}  // namespace ump
