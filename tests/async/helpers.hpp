// Helpers for the coroutine tests (tests/async/): a frame that starts a task and can destroy
// it while it is suspended, an awaitable that resumes on a new thread, and a thread that
// runs a run_loop.
#pragma once

#include <coroutine>
#include <exception>
#include <thread>
#include <utility>

#include "ump/run_loop.hpp"
#include "ump/task.hpp"

namespace ump_async_test {

// Starts a task on the calling thread (it runs until its first suspension before own()
// returns) and keeps its frame. Destroying the owner destroys the task wherever it is
// suspended, without resuming it.
class owner {
 public:
  struct promise_type {
    owner get_return_object() noexcept { return owner(std::coroutine_handle<promise_type>::from_promise(*this)); }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    [[noreturn]] void unhandled_exception() const noexcept { std::terminate(); }
  };
  owner(owner&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  owner& operator=(owner&&) = delete;
  ~owner() { reset(); }
  // Only meaningful when nothing can resume the task concurrently.
  [[nodiscard]] bool done() const noexcept { return h_.done(); }
  void reset() noexcept {
    if (h_) std::exchange(h_, {}).destroy();
  }

 private:
  explicit owner(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

inline owner own(ump::task<void> t) { co_await std::move(t); }

// co_await resume_on_new_thread{&th}: continues on a new thread (joined by the test).
struct resume_on_new_thread {
  std::thread* th;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    // The new thread may finish the coroutine and free its frame (holding *this) before the
    // constructor returns: read the member first, touch nothing of *this afterwards.
    std::thread* const out = th;
    *out = std::thread([h] { h.resume(); });
  }
  void await_resume() const noexcept {}
};

// A run_loop whose run() happens on its own thread, started after tasks were spawned.
class loop_thread {
 public:
  ump::run_loop loop;
  void start() {
    th_ = std::thread([this] { loop.run(); });
    id_ = th_.get_id();
  }
  // Waits for run() to return (every spawned task finished).
  void join() { th_.join(); }
  [[nodiscard]] std::thread::id id() const noexcept { return id_; }
  ~loop_thread() {
    if (th_.joinable()) th_.join();
  }

 private:
  std::thread th_;
  std::thread::id id_;
};

}  // namespace ump_async_test
