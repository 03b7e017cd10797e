// ump::task and ump::sync_wait (include/ump/task.hpp): laziness, results, exceptions,
// symmetric transfer, destruction of suspended and unstarted tasks, sync_wait across threads.
#include <doctest/doctest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "async/helpers.hpp"
#include "support/lifetime.hpp"
#include "ump/task.hpp"

namespace {

using ump_test::lifetime_check;
using ump_test::tracked;

ump::task<int> forty_one() { co_return 41; }
ump::task<int> add_one() { co_return co_await forty_one() + 1; }

ump::task<void> set_flag(bool* flag) {
  *flag = true;
  co_return;
}

ump::task<tracked> make_tracked(std::uint64_t v) { co_return tracked(v); }

struct pair_result {
  int a;
  std::string b;
};
ump::task<pair_result> braced() { co_return {7, "seven"}; }

TEST_CASE("task_is_lazy_until_awaited") {
  bool ran = false;
  {
    ump::task<void> t = set_flag(&ran);
    CHECK(t.valid());
    CHECK_FALSE(ran);
  }  // destroyed unstarted
  CHECK_FALSE(ran);
  ump::sync_wait(set_flag(&ran));
  CHECK(ran);
}

TEST_CASE("task_value_flows_to_awaiting_task") {
  CHECK(ump::sync_wait(add_one()) == 42);
  const pair_result p = ump::sync_wait(braced());
  CHECK(p.a == 7);
  CHECK(p.b == "seven");
}

TEST_CASE("task_move_only_result_destroyed_once") {
  lifetime_check guard;
  tracked t = ump::sync_wait(make_tracked(9));
  CHECK(t.value() == 9);
}

TEST_CASE("unstarted_task_destroys_its_arguments") {
  lifetime_check guard;
  auto keep = [](tracked x) -> ump::task<std::uint64_t> { co_return x.value(); };
  {
    ump::task<std::uint64_t> t = keep(tracked(3));
    CHECK(tracked::live() >= 1);  // the argument lives in the unstarted frame
  }
  CHECK(ump::sync_wait(keep(tracked(4))) == 4);
}

TEST_CASE("moved_from_task_is_empty") {
  ump::task<int> a = forty_one();
  ump::task<int> b = std::move(a);
  CHECK_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  CHECK(b.valid());
  a = std::move(b);
  CHECK(a.valid());
  CHECK(ump::sync_wait(std::move(a)) == 41);
}

// A long chain of tasks that complete without suspending: each final_suspend transfers
// straight back to the awaiting coroutine, so the stack does not grow with the count (a
// resume()-based continuation would overflow it well before this many).
ump::task<int> one() { co_return 1; }
ump::task<long> sum_of_ones(int n) {
  long s = 0;
  for (int i = 0; i < n; ++i) s += co_await one();
  co_return s;
}

// g++ emits the symmetric-transfer resume as a tail call only when it may optimise sibling
// calls, which the sanitizers' instrumentation (ASan and TSan) prevents: under g++ with a
// sanitizer the frames pile up (one → sum_of_ones → one ...) whatever the task type does, so
// the chain is shorter there. clang guarantees the tail call (musttail) in every build, g++
// in every other build.
#if (defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)) && !defined(__clang__)
constexpr int chain_length = 1000;  // about 800 bytes of stack per level there
#else
constexpr int chain_length = 1000000;
#endif

TEST_CASE("symmetric_transfer_keeps_the_stack_flat") {
  CHECK(ump::sync_wait(sum_of_ones(chain_length)) == chain_length);
}

TEST_CASE("task_destroyed_while_suspended_destroys_its_locals_and_never_resumes") {
  lifetime_check guard;
  std::coroutine_handle<> parked;
  bool resumed = false;
  struct park {
    std::coroutine_handle<>* slot;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const noexcept { *slot = h; }
    void await_resume() const noexcept {}
  };
  auto body = [](std::coroutine_handle<>* slot, bool* resumed) -> ump::task<void> {
    tracked local(5);
    co_await park{slot};
    *resumed = true;
  };
  {
    auto o = ump_async_test::own(body(&parked, &resumed));
    CHECK_FALSE(o.done());
    CHECK(parked != nullptr);
    CHECK(tracked::live() >= 1);
  }  // destroys the suspended task
  CHECK_FALSE(resumed);
}

TEST_CASE("sync_wait_returns_after_the_task_finished_on_another_thread") {
  std::thread other;
  std::thread::id ran_on;
  auto body = [](std::thread* th, std::thread::id* id) -> ump::task<int> {
    co_await ump_async_test::resume_on_new_thread{th};
    *id = std::this_thread::get_id();
    co_return 5;
  };
  CHECK(ump::sync_wait(body(&other, &ran_on)) == 5);
  const std::thread::id other_id = other.get_id();
  other.join();
  CHECK(ran_on == other_id);
  CHECK(ran_on != std::this_thread::get_id());
}

TEST_CASE("awaiting_task_continues_on_the_thread_the_awaited_task_finished_on") {
  std::thread other;
  auto inner = [](std::thread* th) -> ump::task<void> { co_await ump_async_test::resume_on_new_thread{th}; };
  auto outer = [&inner](std::thread* th) -> ump::task<std::thread::id> {
    ump::task<void> t = inner(th);  // named first (g++ 12 and temporaries in co_await)
    co_await std::move(t);
    co_return std::this_thread::get_id();
  };
  const std::thread::id after = ump::sync_wait(outer(&other));
  const std::thread::id other_id = other.get_id();
  other.join();
  CHECK(after == other_id);
}

#if UMP_HAS_EXCEPTIONS
ump::task<int> throws() {
  throw std::runtime_error("boom");
  co_return 0;
}
ump::task<int> catches() {
  try {
    co_return co_await throws();
  } catch (const std::runtime_error& e) {
    co_return std::string(e.what()) == "boom" ? 1 : 2;
  }
}

TEST_CASE("exception_rethrown_at_await_and_by_sync_wait") {
  CHECK(ump::sync_wait(catches()) == 1);
  CHECK_THROWS_AS(ump::sync_wait(throws()), std::runtime_error);
  auto void_throw = []() -> ump::task<void> {
    throw std::logic_error("void");
    co_return;
  };
  CHECK_THROWS_AS(ump::sync_wait(void_throw()), std::logic_error);
}
#endif

}  // namespace
