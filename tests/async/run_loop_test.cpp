// ump::run_loop (include/ump/run_loop.hpp): where spawned and scheduled coroutines run, when
// run() returns, finish(), run(task), poll(), cross-thread scheduling, exceptions, and
// destruction with unfinished tasks.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "async/helpers.hpp"
#include "support/lifetime.hpp"
#include "ump/run_loop.hpp"
#include "ump/task.hpp"

namespace {

using ump_test::lifetime_check;
using ump_test::tracked;

// Suspends, handing the coroutine to `sched` at once (a yield through the scheduler).
template <class Sched>
struct yield_via {
  Sched sched;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { sched.schedule(h); }
  void await_resume() const noexcept {}
};

// Suspends and stores the handle; the test resumes it through a scheduler from elsewhere.
struct park {
  std::coroutine_handle<>* slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { *slot = h; }
  void await_resume() const noexcept {}
};

TEST_CASE("spawned_tasks_start_inside_run_on_the_loop_thread") {
  ump::run_loop loop;
  std::vector<std::thread::id> ran_on;
  bool inside = true;
  auto body = [](ump::run_loop* l, std::vector<std::thread::id>* ids, bool* inside) -> ump::task<void> {
    *inside = *inside && l->running_in_this_thread();
    ids->push_back(std::this_thread::get_id());
    co_await yield_via<ump::run_loop::scheduler_type>{l->scheduler()};
    *inside = *inside && l->running_in_this_thread();
    ids->push_back(std::this_thread::get_id());
  };
  for (int i = 0; i < 3; ++i) loop.spawn(body(&loop, &ran_on, &inside));
  CHECK(ran_on.empty());  // spawn only queues
  std::thread runner([&loop] { loop.run(); });
  const std::thread::id runner_id = runner.get_id();
  runner.join();  // run() returned: every spawned task finished
  REQUIRE(ran_on.size() == 6);
  for (auto id : ran_on) CHECK(id == runner_id);
  CHECK(inside);
  CHECK_FALSE(loop.running_in_this_thread());
}

TEST_CASE("run_returns_at_once_with_nothing_spawned") {
  ump::run_loop loop;
  loop.run();
  CHECK(loop.poll() == 0);
}

TEST_CASE("run_waits_for_a_task_resumed_from_another_thread") {
  // The task parks; another thread resumes it through the loop's scheduler while run()
  // sleeps. run() must wake, resume it on the loop thread and return once it finished.
  ump::run_loop loop;
  std::coroutine_handle<> parked;
  std::atomic<bool> parked_ready{false};
  std::thread::id resumed_on;
  auto body = [](std::coroutine_handle<>* slot, std::atomic<bool>* ready, std::thread::id* id) -> ump::task<void> {
    struct park_and_tell {
      std::coroutine_handle<>* slot;
      std::atomic<bool>* ready;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) const noexcept {
        *slot = h;
        // ORDERING: release publishes *slot to the resuming thread's acquire load.
        ready->store(true, std::memory_order_release);
        ready->notify_one();
      }
      void await_resume() const noexcept {}
    };
    co_await park_and_tell{slot, ready};
    *id = std::this_thread::get_id();
  };
  loop.spawn(body(&parked, &parked_ready, &resumed_on));
  std::thread resumer([&] {
    // ORDERING: acquire pairs with the release store above: *slot is readable.
    parked_ready.wait(false, std::memory_order_acquire);
    loop.scheduler().schedule(parked);
  });
  loop.run();
  resumer.join();
  CHECK(resumed_on == std::this_thread::get_id());
}

TEST_CASE("run_task_returns_its_value_while_spawned_tasks_progress") {
  ump::run_loop loop;
  int side = 0;
  auto spawned = [](int* s) -> ump::task<void> {
    *s += 1;
    co_return;
  };
  auto main_task = [](ump::run_loop* l) -> ump::task<int> {
    co_await yield_via<ump::run_loop::scheduler_type>{l->scheduler()};
    co_return 17;
  };
  loop.spawn(spawned(&side));
  CHECK(loop.run(main_task(&loop)) == 17);
  loop.run();  // whatever is left
  CHECK(side == 1);
}

TEST_CASE("finish_stops_run_and_queued_work_stays_queued") {
  ump::run_loop loop;
  std::coroutine_handle<> parked;
  int steps = 0;
  auto body = [](ump::run_loop* l, std::coroutine_handle<>* slot, int* steps) -> ump::task<void> {
    ++*steps;
    l->finish();  // run() returns after this round
    co_await yield_via<ump::run_loop::scheduler_type>{l->scheduler()};
    ++*steps;
    co_await park{slot};
    ++*steps;
  };
  loop.spawn(body(&loop, &parked, &steps));
  loop.run();
  CHECK(steps == 1);  // the yield's resumption is still queued
  CHECK(loop.poll() == 1);
  CHECK(steps == 2);
  REQUIRE(parked != nullptr);
  loop.scheduler().schedule(parked);
  loop.run();  // runs it to the end, then no spawned task is left
  CHECK(steps == 3);
}

TEST_CASE("schedule_from_many_threads_resumes_each_once_on_the_loop") {
  constexpr int threads = 4;
  const int per_thread = ump_test::scaled(5000);
  ump::run_loop loop;
  std::vector<std::coroutine_handle<>> parked(static_cast<std::size_t>(threads * per_thread));
  long resumed = 0;
  bool all_inside = true;
  auto body = [](ump::run_loop* l, std::coroutine_handle<>* slot, long* count, bool* inside) -> ump::task<void> {
    co_await park{slot};
    *inside = *inside && l->running_in_this_thread();
    ++*count;
  };
  for (auto& slot : parked) loop.spawn(body(&loop, &slot, &resumed, &all_inside));
  CHECK(loop.poll() == parked.size());  // every task started and parked
  std::vector<std::thread> posters;
  for (int t = 0; t < threads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i)
        loop.scheduler().schedule(parked[static_cast<std::size_t>(t * per_thread + i)]);
    });
  }
  loop.run();  // returns once all of them finished
  for (auto& p : posters) p.join();
  CHECK(resumed == threads * per_thread);
  CHECK(all_inside);
}

TEST_CASE("loop_destroyed_with_suspended_tasks_destroys_them_unresumed") {
  lifetime_check guard;
  std::vector<std::coroutine_handle<>> parked(3);
  bool resumed = false;
  auto body = [](std::coroutine_handle<>* slot, bool* resumed) -> ump::task<void> {
    tracked local(1);
    co_await park{slot};
    *resumed = true;
  };
  std::coroutine_handle<> never;
  {
    ump::run_loop loop;
    for (auto& slot : parked) loop.spawn(body(&slot, &resumed));
    CHECK(loop.poll() == 3);
    loop.spawn(body(&never, &resumed));    // queued, never started
    loop.scheduler().schedule(parked[1]);  // queued resumption, dropped with the loop
    CHECK(tracked::live() >= 3);
  }
  CHECK(never == nullptr);
  CHECK_FALSE(resumed);
}

TEST_CASE("scheduler_copies_compare_equal_for_one_loop") {
  ump::run_loop a;
  ump::run_loop b;
  const auto sa = a.scheduler();
  const auto sa2 = sa;  // NOLINT(performance-unnecessary-copy-initialization)
  CHECK(sa == sa2);
  CHECK_FALSE(sa == b.scheduler());
  CHECK(&sa.loop() == &a);
  static_assert(ump::scheduler<ump::run_loop::scheduler_type>);
}

#if UMP_HAS_EXCEPTIONS
TEST_CASE("exception_from_spawned_task_is_rethrown_by_run_and_others_survive") {
  ump::run_loop loop;
  int finished = 0;
  auto bad = []() -> ump::task<void> {
    throw std::runtime_error("spawned");
    co_return;
  };
  auto good = [](ump::run_loop* l, int* n) -> ump::task<void> {
    co_await yield_via<ump::run_loop::scheduler_type>{l->scheduler()};
    co_await yield_via<ump::run_loop::scheduler_type>{l->scheduler()};
    ++*n;
  };
  loop.spawn(good(&loop, &finished));
  loop.spawn(bad());
  CHECK_THROWS_AS(loop.run(), std::runtime_error);
  loop.run();
  CHECK(finished == 1);
}

TEST_CASE("run_task_rethrows_its_own_exception") {
  ump::run_loop loop;
  auto bad = []() -> ump::task<int> {
    throw std::logic_error("mine");
    co_return 0;
  };
  CHECK_THROWS_AS(loop.run(bad()), std::logic_error);
}
#endif

}  // namespace
