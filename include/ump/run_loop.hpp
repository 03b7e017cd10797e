// ump/run_loop.hpp — run_loop: a small single-thread loop that runs coroutines.
//
// What for: keeping a group of coroutines (ump clients and servers written as ump::task) on
// one thread of your choice, without an executor library. Pass `loop.scheduler()` to ump's
// awaitables (areq, co_await wait_reply, async_wait) and the coroutine resumes on the loop's
// thread whatever thread completed the operation.
//
// Lifecycle: spawn() tasks (from any thread), then call run() on the thread that should run
// them. run() resumes queued coroutines one after another and sleeps (condition variable)
// while the queue is empty. It returns when no spawned task is left unfinished and the queue
// is empty, or after finish() — whichever comes first. run(task) instead returns as soon as
// that task has finished, with its result. Both may be called again later. Destroying the
// loop destroys the spawned tasks that have not finished (each one's frame, wherever it is
// suspended: requests they were waiting for are abandoned) and drops queued handles without
// resuming them.
//
// Threads: run(), run(task) and poll() are called by one thread at a time (the loop thread),
// and do not nest. Every coroutine resumed through the loop's scheduler, and every spawned
// task's first step, run on that thread, inside run()/poll(). A spawned task that awaits with
// another scheduler (the inline default, say) continues where that one resumes it.
// schedule()/post(), spawn() and finish() may be called from any thread. The loop must
// outlive every operation that may still call its scheduler: destroy it only when no other
// thread can complete an operation one of its coroutines waits for (join or drop the peers
// first).
//
// Cost: schedule() takes a short lock and appends to a vector that is swapped out whole by
// the loop, so steady-state scheduling allocates nothing. It never throws (an allocation
// failure while the queue grows terminates).
//
// Exceptions: an exception escaping a spawned task is rethrown by the run() or poll() that
// notices it (the other tasks stay alive; call run() again to go on). run(task) rethrows
// only its own task's exception.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

#include "ump/detail/config.hpp"
#include "ump/detail/park.hpp"
#include "ump/options.hpp"
#include "ump/scheduler.hpp"
#include "ump/task.hpp"

namespace ump {

class run_loop;

namespace detail {

// The frame that owns a spawned task: awaits it, then retires itself from its loop (which
// destroys the frame). Linked into its loop's list so the loop can destroy it early.
struct spawned_promise;
struct spawned {
  std::coroutine_handle<spawned_promise> h;
  using promise_type = spawned_promise;
};

struct spawned_promise {
  run_loop* loop = nullptr;
  spawned_promise* prev = nullptr;
  spawned_promise* next = nullptr;

  // At the end: the loop unlinks and destroys this frame (defined after run_loop).
  struct retire_self {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<spawned_promise> h) const noexcept;
    void await_resume() const noexcept {}
  };

  spawned get_return_object() noexcept { return {std::coroutine_handle<spawned_promise>::from_promise(*this)}; }
  std::suspend_always initial_suspend() const noexcept { return {}; }
  retire_self final_suspend() const noexcept { return {}; }
  void return_void() const noexcept {}
  void unhandled_exception() const noexcept;
};

inline spawned spawn_frame(task<void> t) { co_await std::move(t); }

}  // namespace detail

class run_loop {
 public:
  // The loop's scheduler (see ump/scheduler.hpp): resumes coroutines on the loop's thread.
  // Copyable, compares equal for the same loop; valid while the loop lives.
  class scheduler_type {
   public:
    // Effect: queues `h`; the loop's run() resumes it. Never blocks (a short lock), never
    // throws. Thread-safe.
    void schedule(std::coroutine_handle<> h) const noexcept { loop_->post(h); }
    [[nodiscard]] run_loop& loop() const noexcept { return *loop_; }
    friend bool operator==(const scheduler_type&, const scheduler_type&) noexcept = default;

   private:
    friend class run_loop;
    explicit scheduler_type(run_loop* l) noexcept : loop_(l) {}
    run_loop* loop_;
  };

  run_loop() = default;
  run_loop(const run_loop&) = delete;
  run_loop& operator=(const run_loop&) = delete;

  // Precondition: no run()/poll() in progress, and no other thread will complete an operation
  // that one of this loop's coroutines waits for. Destroys unfinished spawned tasks.
  ~run_loop() {
    std::lock_guard<std::mutex> lk(m_);
    while (spawned_head_ != nullptr) {
      detail::spawned_promise* p = spawned_head_;
      unlink(p);
      std::coroutine_handle<detail::spawned_promise>::from_promise(*p).destroy();
    }
    queue_.clear();
  }

  [[nodiscard]] scheduler_type scheduler() noexcept { return scheduler_type(this); }

  // Effect: queues `h` to be resumed on the loop thread by run()/poll(). Thread-safe; never
  // throws. Prefer scheduler(), which passes this to ump's awaitables.
  void post(std::coroutine_handle<> h) noexcept {
    std::lock_guard<std::mutex> lk(m_);
    queue_.push_back(h);  // noexcept function: a failed allocation terminates
    notify_locked();
  }

  // Effect: takes ownership of `t` and queues its start; it runs on the loop thread within
  // run()/poll(), and is destroyed when it finishes (or with the loop). Thread-safe.
  // Errors: std::bad_alloc (the task is then destroyed, never started).
  void spawn(task<void> t) {
    detail::spawned s = detail::spawn_frame(std::move(t));
    s.h.promise().loop = this;
    struct destroy_unless_queued {
      std::coroutine_handle<> h;
      ~destroy_unless_queued() {
        if (h) h.destroy();
      }
    } guard{s.h};  // declared before the lock: a failed push destroys the frame unlocked
    std::lock_guard<std::mutex> lk(m_);
    queue_.push_back(s.h);
    guard.h = {};
    link(&s.h.promise());
    ++spawned_;
    notify_locked();
  }

  // Effect: runs queued coroutines on the calling thread until no spawned task is left
  // unfinished and the queue is empty, or until finish(). Blocks (sleeps) while the queue
  // is empty. Errors: rethrows an exception that escaped a spawned task.
  void run() {
    drive([this] { return spawned_ == 0 && queue_.empty(); }, when_idle::sleep, on_finish::stop);
  }

  // Effect: starts `t` on the loop and runs the loop (spawned tasks included) until `t` has
  // finished; returns its result or rethrows its exception. finish() does not stop it.
  template <class T>
  T run(task<T> t) {
    struct done_flag {
      run_loop* loop;
      bool done = false;  // guarded by loop->m_
      static void fire(void* self) noexcept {
        auto* d = static_cast<done_flag*>(self);
        std::lock_guard<std::mutex> lk(d->loop->m_);
        d->done = true;
        d->loop->notify_locked();
      }
    };
    done_flag flag{this};
    detail::result_slot<T> out;
    detail::completion c = detail::complete_into(std::move(t), &out);
    c.prepare(&done_flag::fire, &flag);
    post(c.handle());
    drive([&flag] { return flag.done; }, when_idle::sleep, on_finish::ignore);
    c.rethrow_if_failed();
    return out.get();
  }

  // Effect: runs queued coroutines until the queue is empty; never sleeps. Returns how many
  // it resumed. Errors: as run().
  std::size_t poll() {
    return drive([] { return false; }, when_idle::return_, on_finish::stop);
  }

  // Effect: makes the current (or next) run() return after the coroutines it is resuming
  // right now. Thread-safe. Queued coroutines stay queued.
  void finish() noexcept {
    std::lock_guard<std::mutex> lk(m_);
    finish_requested_ = true;
    notify_locked();
  }

  // True when called from a coroutine (or code) that this loop is running right now.
  [[nodiscard]] bool running_in_this_thread() const noexcept { return current_ == this; }

 private:
  friend struct detail::spawned_promise;

  // Called with m_ held by everything that gives the loop work: ends a spin or a sleep.
  void notify_locked() noexcept {
    // ORDERING: relaxed; a spinning loop thread re-checks under m_ before relying on it.
    epoch_.fetch_add(1, std::memory_order_relaxed);
    if (sleeping_) cv_.notify_one();
  }

  // What drive() does when the queue is empty, and whether finish() (and a spawned task's
  // exception) ends it.
  enum class when_idle : bool { return_, sleep };
  enum class on_finish : bool { ignore, stop };

  // Runs rounds: each takes the whole queue and resumes it without the lock. Stops when
  // `stop()` (checked under the lock) is true, when the queue is empty and `idle` says
  // return_, or after finish() when `finish` says stop.
  template <class Stop>
  std::size_t drive(Stop stop, when_idle idle, on_finish finish) {
    const bool stoppable = finish == on_finish::stop;
    UMP_ASSERT(current_ != this, "run_loop::run/poll do not nest");
    const run_loop* const outer = current_;
    current_ = this;
    std::size_t resumed = 0;
    std::unique_lock<std::mutex> lk(m_);
    UMP_ASSERT(!running_, "one thread at a time runs a run_loop");
    running_ = true;
    for (;;) {
#if UMP_HAS_EXCEPTIONS
      if (stoppable && error_) {
        std::exception_ptr e = std::exchange(error_, nullptr);
        running_ = false;
        lk.unlock();
        current_ = outer;
        std::rethrow_exception(e);
      }
#endif
      if (stoppable && finish_requested_) {
        finish_requested_ = false;
        break;
      }
      if (stop()) break;
      if (queue_.empty()) {
        if (idle == when_idle::return_) break;
        // Spin (then yield) for a short budget before sleeping: a reply usually comes back
        // within microseconds, and a condition-variable wake-up costs tens of them here.
        // ORDERING: relaxed; the lock re-taken below orders everything the poster did.
        const std::uint32_t seen = epoch_.load(std::memory_order_relaxed);
        lk.unlock();
        (void)detail::spin_while_equal(epoch_, seen, wait_options{}, {});
        lk.lock();
        // ORDERING: relaxed; read under m_, which every bump of epoch_ holds (notify_locked).
        if (!queue_.empty() || epoch_.load(std::memory_order_relaxed) != seen) continue;
        sleeping_ = true;
        cv_.wait(lk);
        sleeping_ = false;
        continue;
      }
      batch_.swap(queue_);
      lk.unlock();
      for (std::coroutine_handle<> h : batch_) {
        h.resume();
        ++resumed;
      }
      batch_.clear();
      lk.lock();
    }
    running_ = false;
    lk.unlock();
    current_ = outer;
    return resumed;
  }

  // A spawned task has finished (on whatever thread ran its last step): unlink, destroy its
  // frame (so its locals are gone before run() can return), then count it out.
  void retire(std::coroutine_handle<detail::spawned_promise> h) noexcept {
    {
      std::lock_guard<std::mutex> lk(m_);
      unlink(&h.promise());
    }
    h.destroy();
    std::lock_guard<std::mutex> lk(m_);
    --spawned_;
    notify_locked();
  }

#if UMP_HAS_EXCEPTIONS
  void fail(std::exception_ptr e) noexcept {
    std::lock_guard<std::mutex> lk(m_);
    if (!error_) error_ = std::move(e);
    notify_locked();
  }
#endif

  // The spawned list and count are guarded by m_.
  void link(detail::spawned_promise* p) noexcept {
    p->prev = nullptr;
    p->next = spawned_head_;
    if (spawned_head_ != nullptr) spawned_head_->prev = p;
    spawned_head_ = p;
  }
  void unlink(detail::spawned_promise* p) noexcept {
    if (p->prev != nullptr)
      p->prev->next = p->next;
    else
      spawned_head_ = p->next;
    if (p->next != nullptr) p->next->prev = p->prev;
    p->prev = p->next = nullptr;
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::atomic<std::uint32_t> epoch_{0};         // bumped (under m_) by everything that wakes the loop
  std::vector<std::coroutine_handle<>> queue_;  // guarded by m_
  std::vector<std::coroutine_handle<>> batch_;  // loop thread only
  detail::spawned_promise* spawned_head_ = nullptr;
  std::size_t spawned_ = 0;
  bool sleeping_ = false;
  bool running_ = false;
  bool finish_requested_ = false;
#if UMP_HAS_EXCEPTIONS
  std::exception_ptr error_;
#endif
  static inline thread_local const run_loop* current_ = nullptr;
};

namespace detail {

inline void spawned_promise::retire_self::await_suspend(std::coroutine_handle<spawned_promise> h) const noexcept {
  h.promise().loop->retire(h);  // destroys this frame: nothing after this line
}

inline void spawned_promise::unhandled_exception() const noexcept {
#if UMP_HAS_EXCEPTIONS
  loop->fail(std::current_exception());
#else
  std::terminate();
#endif
}

}  // namespace detail

}  // namespace ump
