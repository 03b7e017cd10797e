// Helpers for the coroutine tests (tests/async/): a scheduler that hands the coroutine to the
// test (handoff), an awaitable that resumes on a new thread, and a thread that runs a run_loop. The frame that starts a
// task and can destroy it while it is suspended is shared with fuzz/ (tests/support/support.hpp).
#pragma once

#include <atomic>
#include <coroutine>
#include <exception>
#include <thread>
#include <utility>

#include "support/support.hpp"
#include "ump/run_loop.hpp"
#include "ump/task.hpp"

namespace ump_async_test {

// The frame that owns a started task: ump_test::eager_coroutine (tests/support/support.hpp).
using owner = ump_test::eager_coroutine;
using ump_test::own;

// A scheduler that hands the handle over instead of resuming it: the coroutine stays
// suspended until the test resumes it (drive) or destroys it. The race tests' driver spins
// for the handle instead of sleeping, so a round costs about a round trip.
struct handoff {
  std::atomic<void*> slot{nullptr};
  std::atomic<long> scheduled{0};
};
struct handoff_scheduler {
  handoff* to;
  void schedule(std::coroutine_handle<> h) const noexcept {
    // ORDERING: relaxed; a statistic read after the run.
    to->scheduled.fetch_add(1, std::memory_order_relaxed);
    // ORDERING: release publishes the suspended frame to the driver's acquire exchange.
    to->slot.store(h.address(), std::memory_order_release);
  }
};
// Runs the owned coroutine on this thread: resumes it each time it is handed back.
inline void drive(owner& o, handoff& h) {
  while (!o.done()) {
    // ORDERING: acquire pairs with the release store in handoff_scheduler::schedule.
    if (void* a = h.slot.exchange(nullptr, std::memory_order_acquire)) {
      std::coroutine_handle<>::from_address(a).resume();
    } else {
      std::this_thread::yield();
    }
  }
}

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
