// Tests for ump/worker.hpp as a coroutine (spawn_task on a ump::run_loop): the handler runs
// on the loop's thread, served to coroutine and thread clients; a break value and term's
// result through the join task; all clients gone; an exception; ng posts; collecting the
// result from another thread; a dropped join task; the loop destroyed under a waiting worker.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "async/helpers.hpp"
#include "support/lifetime.hpp"
#include "support/worker_handlers.hpp"
#include "ump/run_loop.hpp"
#include "ump/task.hpp"
#include "ump/worker.hpp"

using ump_test::failure;
using ump_test::lifetime_check;
using ump_test::tracked;

namespace {

using loop_scheduler = ump::run_loop::scheduler_type;

// Answers v with v + 1 and counts calls made off the loop's thread; 0 breaks with the
// number of requests seen.
struct on_loop_counter {
  ump::run_loop* loop;
  int* off_loop;
  int seen = 0;
  std::optional<int> req(tracked msg, ump::reply_context<tracked> ctx) {
    if (!loop->running_in_this_thread()) ++*off_loop;
    ++seen;
    if (msg.value() == 0) return seen;
    ctx.reply(tracked(msg.value() + 1));
    return std::nullopt;
  }
};

// A coroutine client on the loop: n requests, each answer checked; ends by dropping its client.
ump::task<void> ask_n(ump::client<tracked, tracked> cli, loop_scheduler sched, int n, int* wrong) {
  for (int i = 1; i <= n; ++i) {
    auto r = co_await cli.areq(tracked(static_cast<std::uint64_t>(i)), sched);
    if (!r || r->value() != static_cast<std::uint64_t>(i) + 1) ++*wrong;
  }
}

}  // namespace

TEST_CASE("task_worker_serves_coroutine_and_thread_clients_on_the_loop_thread_until_all_are_gone") {
  lifetime_check guard;
  ump::run_loop loop;
  int off_loop = 0;
  int wrong = 0;         // the coroutine client's (loop thread)
  int wrong_thread = 0;  // the thread client's
  constexpr int n = ump_test::scaled(500);
  auto [cli, done] = ump::spawn_task<tracked, tracked>(loop, [&loop, &off_loop] {
    return on_loop_counter{&loop, &off_loop};
  });
  static_assert(std::is_same_v<decltype(done), ump::task<std::optional<int>>>);
  loop.spawn(ask_n(cli, loop.scheduler(), n, &wrong));
  std::thread user([c = cli, &wrong_thread]() mutable {
    for (int i = 1; i <= n; ++i) {
      auto r = c.req(tracked(static_cast<std::uint64_t>(i)));
      if (!r || r->value() != static_cast<std::uint64_t>(i) + 1) ++wrong_thread;
    }
  });
  { auto gone = std::move(cli); }
  const std::optional<int> result = loop.run(std::move(done));  // the loop runs here, on this thread
  user.join();
  CHECK(result == std::nullopt);  // every client went away
  CHECK(wrong == 0);
  CHECK(wrong_thread == 0);
  CHECK(off_loop == 0);
  loop.run();  // nothing left: returns at once
}

TEST_CASE("task_worker_break_runs_term_and_the_join_task_yields_its_result") {
  lifetime_check guard;
  struct handler {
    std::vector<std::string>* log;
    void init(ump::weak_client<tracked, tracked>) { log->push_back("init"); }
    std::optional<std::uint64_t> req(tracked msg, ump::reply_context<tracked> ctx) {
      log->push_back("req " + std::to_string(msg.value()));
      if (msg.value() == 0) return 99;
      ctx.reply(std::move(msg));
      return std::nullopt;
    }
    std::string term(std::optional<std::uint64_t> stop) {
      log->push_back("term");
      return stop ? std::to_string(*stop) : "none";
    }
  };
  std::vector<std::string> log;
  ump::run_loop loop;
  auto [cli, done] = ump::spawn_task<tracked, tracked>(loop, [&log] { return handler{&log}; });
  static_assert(std::is_same_v<decltype(done), ump::task<std::string>>);
  auto kept = cli;  // alive after the break: the worker ends by the break, not by its clients
  std::optional<ump::errc> break_outcome;
  auto ask_then_break = [](ump::client<tracked, tracked> c, loop_scheduler sched,
                           std::optional<ump::errc>* out) -> ump::task<void> {
    auto r = co_await c.areq(tracked(7), sched);
    REQUIRE(r.has_value());
    CHECK(r->value() == 7);
    *out = failure(co_await c.areq(tracked(0), sched));
  };
  loop.spawn(ask_then_break(std::move(cli), loop.scheduler(), &break_outcome));
  CHECK(loop.run(std::move(done)) == "99");
  loop.run();                                   // lets the asking task finish if it has not yet
  CHECK(break_outcome == ump::errc::no_reply);  // the break dropped its context
  CHECK(failure(kept.req(tracked(5))) == ump::errc::server_disappeared);
  const std::vector<std::string> expected{"init", "req 7", "req 0", "term"};
  CHECK(log == expected);
}

TEST_CASE("task_worker_ng_posts_from_a_thread_and_requests_from_a_coroutine") {
  lifetime_check guard;
  ump::run_loop loop;
  auto [cli, done] = ump::ng::spawn_task<tracked, tracked, tracked>(loop, [] { return ump_test::summer{}; });
  constexpr int n = ump_test::scaled(2000);
  std::uint64_t expected = 0;
  for (int i = 1; i <= n; ++i) expected += static_cast<std::uint64_t>(i);
  std::uint64_t seen = 0;
  auto ask_sum = [](ump::ng::client<tracked, tracked, tracked> c, loop_scheduler sched,
                    std::uint64_t* out) -> ump::task<void> {
    auto r = co_await c.areq(tracked(0), sched);  // after every post: sent once they were
    if (r) *out = r->value();
  };
  std::thread poster([p = cli.poster()]() mutable {
    for (int i = 1; i <= n; ++i) CHECK(p.post(tracked(static_cast<std::uint64_t>(i))).has_value());
  });
  poster.join();  // happens-before the request below: FIFO puts it after the posts
  loop.spawn(ask_sum(std::move(cli), loop.scheduler(), &seen));
  CHECK(loop.run(std::move(done)) == std::nullopt);
  CHECK(seen == expected);
}

TEST_CASE("task_worker_result_collected_by_sync_wait_on_another_thread") {
  lifetime_check guard;
  ump_async_test::loop_thread lt;
  int off_loop = 0;
  auto [cli, done] = ump::spawn_task<tracked, tracked>(lt.loop, [&lt, &off_loop] {
    return on_loop_counter{&lt.loop, &off_loop};
  });
  lt.start();
  CHECK(cli.req(tracked(1))->value() == 2);
  CHECK(failure(cli.req(tracked(0))) == ump::errc::no_reply);  // breaks
  CHECK(ump::sync_wait(std::move(done)) == 2);
  lt.join();  // run() returned: the worker finished
  CHECK(off_loop == 0);
}

TEST_CASE("task_worker_goes_on_when_its_join_task_is_dropped") {
  lifetime_check guard;
  ump_async_test::loop_thread lt;
  int off_loop = 0;
  {
    auto [cli, done] = ump::spawn_task<tracked, tracked>(lt.loop, [&lt, &off_loop] {
      return on_loop_counter{&lt.loop, &off_loop};
    });
    { auto dropped = std::move(done); }  // detaches
    lt.start();
    for (std::uint64_t i = 1; i <= 3; ++i) CHECK(cli.req(tracked(i))->value() == i + 1);
  }  // last client gone: the worker ends, and with it the loop's run()
  lt.join();
  CHECK(off_loop == 0);
}

TEST_CASE("loop_destroyed_under_a_waiting_worker_and_a_waiting_joiner") {
  lifetime_check guard;
  struct handler {
    bool* destroyed;
    bool* termed;
    std::optional<int> req(tracked, ump::reply_context<tracked>) { return std::nullopt; }
    std::optional<int> term(std::optional<int> s) {
      *termed = true;
      return s;
    }
    ~handler() { *destroyed = true; }
  };
  bool destroyed = false;
  bool termed = false;
  bool joiner_resumed = false;
  std::optional<ump::client<tracked, tracked>> cli;
  {
    ump::run_loop loop;
    auto spawned = ump::spawn_task<tracked, tracked>(loop, [&destroyed, &termed] {
      return handler{&destroyed, &termed};
    });
    cli.emplace(std::move(spawned.client));
    auto joiner = [](ump::task<std::optional<int>> t, bool* resumed) -> ump::task<void> {
      (void)co_await std::move(t);
      *resumed = true;
    };
    loop.spawn(joiner(std::move(spawned.worker), &joiner_resumed));
    CHECK(loop.poll() > 0);  // the worker waits for a request, the joiner for the worker
    CHECK_FALSE(destroyed);
  }  // destroys both, wherever they wait
  CHECK(destroyed);
  CHECK_FALSE(termed);
  CHECK_FALSE(joiner_resumed);
  CHECK(failure(cli->req(tracked(1))) == ump::errc::server_disappeared);
}

#if UMP_HAS_EXCEPTIONS
TEST_CASE("task_worker_exception_reaches_the_join_task_not_run") {
  lifetime_check guard;
  ump::run_loop loop;
  auto [cli, done] = ump::spawn_task<tracked, tracked>(loop, [] { return ump_test::thrower{}; });
  auto bad = cli.req_async(tracked(13));
  auto queued = cli.req_async(tracked(2));
  CHECK_THROWS_WITH_AS(loop.run(std::move(done)), "unlucky", std::runtime_error);
  CHECK_NOTHROW(loop.run());  // the loop itself saw nothing: the exception went to the task
  CHECK(failure(bad.wait()) == ump::errc::no_reply);
  CHECK(failure(queued.wait()) == ump::errc::server_disappeared);
}
#endif
