// Coroutine ends of ump::ng channels: posts from coroutines, an async server receiving posts
// and requests, every sync/async permutation, lifecycle outcomes, where coroutines resume.
#include <doctest/doctest.h>

#include <atomic>
#include <latch>
#include <thread>
#include <vector>

#include "async/helpers.hpp"
#include "support/lifetime.hpp"
#include "ump/ng.hpp"
#include "ump/run_loop.hpp"
#include "ump/task.hpp"

namespace {

using ump::errc;
using ump_async_test::loop_thread;
using ump_async_test::own;
using ump_test::lifetime_check;
using ump_test::scaled;
using ump_test::tracked;
using loop_sched = ump::run_loop::scheduler_type;

// Posts carry an int to add; a request asks for the running total (its message is ignored).
using sum_server = ump::ng::server<int, int, long>;
using sum_client = ump::ng::client<int, int, long>;

struct server_log {
  long total = 0;
  long posts = 0;
  long requests = 0;
  bool resumed_on_loop = true;
  errc last = errc::timed_out;
  std::vector<std::thread::id> resumed_on;
};

template <class Sched>
ump::task<void> summing_server(sum_server& srv, Sched sched, server_log* log) {
  for (;;) {
    auto m = co_await srv.async_wait(sched);
    if constexpr (std::is_same_v<Sched, loop_sched>) {
      log->resumed_on_loop = log->resumed_on_loop && sched.loop().running_in_this_thread();
    }
    log->resumed_on.push_back(std::this_thread::get_id());
    if (!m) {
      log->last = m.error().code();
      co_return;
    }
    if (m->is_post()) {
      log->total += m->post();
      ++log->posts;
    } else {
      ++log->requests;
      m->req().ctx.reply(log->total);
    }
  }
}

void blocking_summing_server(sum_server srv) {
  long total = 0;
  while (auto m = srv.wait()) {
    if (m->is_post())
      total += m->post();
    else
      m->req().ctx.reply(total);
  }
}

struct client_log {
  long ok = 0;
  long wrong = 0;
  bool resumed_on_loop = true;
};

// Posts 1..count through its own client; after each post asks for the total, which (per-client
// FIFO, one client) must include everything it posted so far. `base` is what other clients
// may have added; with one client it is exact.
template <class Sched>
ump::task<void> posting_client(sum_client cli, Sched sched, int count, bool exact, client_log* log) {
  long mine = 0;
  for (int i = 1; i <= count; ++i) {
    if (!cli.post(i)) {
      ++log->wrong;
      co_return;
    }
    mine += i;
    auto r = co_await cli.areq(0, sched);
    if constexpr (std::is_same_v<Sched, loop_sched>) {
      log->resumed_on_loop = log->resumed_on_loop && sched.loop().running_in_this_thread();
    }
    if (r && (exact ? *r == mine : *r >= mine))
      ++log->ok;
    else
      ++log->wrong;
  }
}

long triangle(long n) { return n * (n + 1) / 2; }

TEST_CASE("ng_coroutine_posts_and_requests_reach_async_server_in_order_on_one_loop") {
  const int count = scaled(2000);
  auto [srv, cli] = ump::ng::channel<int, int, long>();
  ump::run_loop loop;
  server_log slog;
  client_log clog;
  loop.spawn(summing_server(srv, loop.scheduler(), &slog));
  loop.spawn(posting_client(cli, loop.scheduler(), count, true, &clog));
  { auto last = std::move(cli); }
  loop.run();
  CHECK(clog.ok == count);
  CHECK(clog.wrong == 0);
  CHECK(clog.resumed_on_loop);
  CHECK(slog.posts == count);
  CHECK(slog.requests == count);
  CHECK(slog.total == triangle(count));
  CHECK(slog.resumed_on_loop);
  CHECK(slog.last == errc::clients_disappeared);
}

TEST_CASE("ng_async_clients_and_async_server_on_two_loop_threads") {
  constexpr int coroutines = 5;
  const int count = scaled(400);
  auto [srv, cli] = ump::ng::channel<int, int, long>();
  loop_thread server_loop;
  server_log slog;
  server_loop.loop.spawn(summing_server(srv, server_loop.loop.scheduler(), &slog));
  server_loop.start();
  ump::run_loop client_loop;
  client_log clog;
  for (int c = 0; c < coroutines; ++c)
    client_loop.spawn(posting_client(cli, client_loop.scheduler(), count, false, &clog));
  { auto last = std::move(cli); }
  client_loop.run();
  server_loop.join();
  CHECK(clog.ok == coroutines * count);
  CHECK(clog.wrong == 0);
  CHECK(clog.resumed_on_loop);
  CHECK(slog.total == coroutines * triangle(count));
  CHECK(slog.resumed_on_loop);
  for (auto id : slog.resumed_on) CHECK(id == server_loop.id());
}

TEST_CASE("ng_sync_posters_and_requesters_against_async_server") {
  constexpr int threads = 3;
  const int count = scaled(1000);
  auto [srv, cli] = ump::ng::channel<int, int, long>();
  loop_thread lt;
  server_log slog;
  lt.loop.spawn(summing_server(srv, lt.loop.scheduler(), &slog));
  lt.start();
  std::atomic<long> wrong{0};
  {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([p = cli.poster(), c = cli, &wrong]() mutable {
        for (int i = 1; i <= count; ++i) {
          // ORDERING: relaxed counters, read after join.
          if (!p.post(i)) wrong.fetch_add(1, std::memory_order_relaxed);
        }
        // The poster and the client are different objects: no order between them, so only
        // the client's own posts are certain to be counted once it has posted some itself.
        if (!c.post(0)) wrong.fetch_add(1, std::memory_order_relaxed);
        auto r = c.req(0);
        if (!r) wrong.fetch_add(1, std::memory_order_relaxed);
      });
    }
    for (auto& t : ts) t.join();
  }
  { auto last = std::move(cli); }
  lt.join();
  CHECK(wrong.load() == 0);
  CHECK(slog.posts == threads * (count + 1));
  CHECK(slog.requests == threads);
  CHECK(slog.total == threads * triangle(count));
  CHECK(slog.last == errc::clients_disappeared);
  for (auto id : slog.resumed_on) CHECK(id == lt.id());
}

TEST_CASE("ng_async_client_against_blocking_server_thread") {
  const int count = scaled(2000);
  auto [srv, cli] = ump::ng::channel<int, int, long>();
  std::thread server(blocking_summing_server, std::move(srv));
  ump::run_loop loop;
  client_log clog;
  loop.spawn(posting_client(cli, loop.scheduler(), count, true, &clog));
  loop.run();
  { auto last = std::move(cli); }
  server.join();
  CHECK(clog.ok == count);
  CHECK(clog.wrong == 0);
  CHECK(clog.resumed_on_loop);
}

TEST_CASE("ng_async_server_inline_resumes_on_the_posting_thread") {
  auto [srv, cli] = ump::ng::channel<int, int, long>();
  server_log slog;
  auto o = own(summing_server(srv, ump::inline_scheduler{}, &slog));
  REQUIRE_FALSE(o.done());
  std::thread poster([p = cli.poster()]() mutable { (void)p.post(5); });  // resumes the server here
  const std::thread::id poster_id = poster.get_id();
  poster.join();
  CHECK(slog.posts == 1);
  CHECK(slog.total == 5);
  { auto last = std::move(cli); }
  CHECK(o.done());
  REQUIRE(slog.resumed_on.size() == 2);
  CHECK(slog.resumed_on[0] == poster_id);
  CHECK(slog.resumed_on[1] == std::this_thread::get_id());
  CHECK(slog.last == errc::clients_disappeared);
}

TEST_CASE("ng_areq_inline_resumes_on_the_replying_thread") {
  auto [srv, cli] = ump::ng::channel<int, int, long>();
  std::latch taken(1);
  std::latch go(1);
  std::thread server([&, s = std::move(srv)]() mutable {
    auto m = s.wait();
    taken.count_down();
    go.wait();
    m->req().ctx.reply(99);
  });
  std::thread::id resumed_on;
  long got = 0;
  auto body = [](sum_client c, std::thread::id* id, long* got) -> ump::task<void> {
    auto r = co_await c.areq(1);
    *id = std::this_thread::get_id();
    *got = *r;
  };
  auto o = own(body(cli, &resumed_on, &got));
  taken.wait();
  REQUIRE_FALSE(o.done());
  go.count_down();
  const std::thread::id server_id = server.get_id();
  server.join();
  CHECK(o.done());
  CHECK(got == 99);
  CHECK(resumed_on == server_id);
}

// --- lifecycle -------------------------------------------------------------------------------

using tracked_server = ump::ng::server<tracked, tracked, tracked>;
using tracked_client = ump::ng::client<tracked, tracked, tracked>;

TEST_CASE("ng_server_destroyed_while_coroutines_wait_in_areq_and_posts_are_queued") {
  lifetime_check guard;
  constexpr int coroutines = 50;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked>();
  ump::run_loop loop;
  long disappeared = 0;
  bool on_loop = true;
  auto body = [](tracked_client c, ump::run_loop* l, long* gone, bool* on_loop) -> ump::task<void> {
    (void)c.post(tracked(1));  // queued, destroyed with the server
    auto r = co_await c.areq(tracked(2), l->scheduler());
    *on_loop = *on_loop && l->running_in_this_thread();
    if (!r && r.error() == errc::server_disappeared) ++*gone;
    auto p = c.post(tracked(3));  // after the server is gone
    if (p || p.error() != errc::server_disappeared) *gone = -1000000;
  };
  for (int i = 0; i < coroutines; ++i) loop.spawn(body(cli, &loop, &disappeared, &on_loop));
  CHECK(loop.poll() == coroutines);
  CHECK(srv.queued() == 2 * coroutines);
  { auto gone = std::move(srv); }
  loop.run();
  CHECK(disappeared == coroutines);
  CHECK(on_loop);
}

TEST_CASE("ng_last_client_and_poster_gone_while_server_awaits") {
  auto [srv, cli] = ump::ng::channel<int, int, long>();
  auto poster = cli.poster();
  ump::run_loop loop;
  server_log slog;
  loop.spawn(summing_server(srv, loop.scheduler(), &slog));
  CHECK(loop.poll() == 1);
  { auto gone = std::move(cli); }
  CHECK(loop.poll() == 0);  // the poster still counts as a client: nothing woke the server
  CHECK(poster.post(4));
  std::thread dropper([p = std::move(poster)]() mutable { auto gone = std::move(p); });
  dropper.join();
  loop.run();
  CHECK(slog.posts == 1);
  CHECK(slog.total == 4);
  CHECK(slog.last == errc::clients_disappeared);
  CHECK(slog.resumed_on_loop);
}

TEST_CASE("ng_coroutine_destroyed_while_suspended_in_areq") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked>();
  bool resumed = false;
  auto ask = [](tracked_client c, bool* resumed) -> ump::task<void> {
    (void)c.post(tracked(1));
    auto r = co_await c.areq(tracked(2));
    *resumed = true;
  };
  {
    auto o = own(ask(cli, &resumed));
    REQUIRE_FALSE(o.done());
  }
  auto first = srv.try_wait();
  REQUIRE(first);
  REQUIRE(first->has_value());
  CHECK((*first)->is_post());
  auto second = srv.try_wait();
  REQUIRE(second);
  REQUIRE(second->has_value());
  REQUIRE((*second)->is_request());
  auto& req = (*second)->req();
  CHECK(req.msg.value() == 2);
  CHECK_FALSE(req.ctx.requester_waiting());
  auto rep = req.ctx.reply(tracked(3));
  REQUIRE_FALSE(rep);
  CHECK(rep.error() == errc::origin_disappeared);
  CHECK_FALSE(resumed);
}

TEST_CASE("ng_server_coroutine_destroyed_while_suspended_in_async_wait") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked>();
  bool resumed = false;
  auto serve_once = [](tracked_server& s, bool* resumed) -> ump::task<void> {
    auto m = co_await s.async_wait();
    *resumed = true;
  };
  {
    auto o = own(serve_once(srv, &resumed));
    REQUIRE_FALSE(o.done());
  }
  CHECK(cli.post(tracked(6)));  // wakes nobody: the waiter was withdrawn
  auto m = srv.try_wait();
  REQUIRE(m);
  REQUIRE(m->has_value());
  CHECK((*m)->post().value() == 6);
  CHECK_FALSE(resumed);
}

}  // namespace
