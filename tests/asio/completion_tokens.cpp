// ump::asio::async_req / async_wait (include/ump/asio.hpp) with each kind of completion
// token — callback, asio::use_future, asio::use_awaitable — for both flavours, and where
// the handler runs (always on its associated executor, never inline in the initiating call).
#include <doctest/doctest.h>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/lifetime.hpp"
#include "ump/asio.hpp"
#include "ump/ng.hpp"
#include "ump/ump.hpp"

namespace {

using ump::errc;
using ump_test::lifetime_check;
using ump_test::scaled;
using ump_test::tracked;

void blocking_doubling_server(ump::server<int, int> srv) {
  while (auto r = srv.wait()) {
    auto& [msg, ctx] = *r;
    ctx.reply(msg * 2);
  }
}

TEST_CASE("callback_completes_on_its_executor_and_keeps_run_alive") {
  auto [srv, cli] = ump::channel<int, int>();
  std::thread server(blocking_doubling_server, std::move(srv));
  asio::io_context ioc;
  std::optional<ump::result<int>> got;
  std::thread::id ran_on;
  ump::asio::async_req(cli, 21, asio::bind_executor(ioc, [&](ump::result<int> r) {
                         ran_on = std::this_thread::get_id();
                         got.emplace(std::move(r));
                       }));
  CHECK_FALSE(got.has_value());  // never inline in the initiating call
  ioc.run();                     // pending work: returns only after the handler ran
  REQUIRE(got.has_value());
  REQUIRE(*got);
  CHECK(**got == 42);
  CHECK(ran_on == std::this_thread::get_id());
  { auto last = std::move(cli); }
  server.join();
}

TEST_CASE("immediate_outcome_is_posted_not_called_inline") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  { auto gone = std::move(srv); }
  asio::io_context ioc;
  std::optional<errc> code;
  ump::asio::async_req(cli, tracked(1),
                       asio::bind_executor(ioc, [&](ump::result<tracked> r) { code = r.error().code(); }));
  CHECK_FALSE(code.has_value());
  ioc.run();
  REQUIRE(code.has_value());
  CHECK(*code == errc::server_disappeared);
}

TEST_CASE("handler_runs_on_the_io_thread_not_on_the_replier_thread") {
  const int rounds = scaled(2000);
  auto ends = ump::channel<int, int>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  std::thread server(blocking_doubling_server, std::move(srv));
  const std::thread::id server_id = server.get_id();
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  std::thread io([&ioc] { ioc.run(); });
  const std::thread::id io_id = io.get_id();
  auto strand = asio::make_strand(ioc);
  std::promise<void> finished;
  int ok = 0;
  int elsewhere = 0;
  std::function<void(int)> next = [&](int i) {
    if (i == rounds) {
      finished.set_value();
      return;
    }
    ump::asio::async_req(cli, i, asio::bind_executor(strand, [&, i](ump::result<int> r) {
                           if (r && *r == 2 * i) ++ok;
                           const auto me = std::this_thread::get_id();
                           if (me != io_id || me == server_id || !strand.running_in_this_thread()) ++elsewhere;
                           next(i + 1);
                         }));
  };
  asio::post(strand, [&] { next(0); });
  finished.get_future().wait();
  work.reset();
  io.join();
  CHECK(ok == rounds);
  CHECK(elsewhere == 0);
  { auto last = std::move(cli); }
  server.join();
}

TEST_CASE("use_future_yields_the_result") {
  auto [srv, cli] = ump::channel<int, int>();
  std::thread server(blocking_doubling_server, std::move(srv));
  std::future<ump::result<int>> f = ump::asio::async_req(cli, 8, asio::use_future);
  ump::result<int> r = f.get();
  REQUIRE(r);
  CHECK(*r == 16);
  { auto last = std::move(cli); }
  server.join();
}

TEST_CASE("use_future_with_app_error") {
  auto [srv, cli] = ump::channel<int, int, std::string>();
  std::thread server([s = std::move(srv)]() mutable {
    auto r = s.wait();
    r->ctx.fail("nope");
  });
  auto f = ump::asio::async_req(cli, 1, asio::use_future);
  auto r = f.get();
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::app_error);
  CHECK(r.error().app() == "nope");
  server.join();
}

asio::awaitable<void> awaitable_server(ump::server<int, int>& srv, long* served, bool* on_io, asio::io_context* ioc) {
  for (;;) {
    auto r = co_await ump::asio::async_wait(srv, asio::use_awaitable);
    *on_io = *on_io && ioc->get_executor().running_in_this_thread();
    if (!r) co_return;
    auto& [msg, ctx] = *r;
    if (ctx.reply(msg + 1)) ++*served;
  }
}

asio::awaitable<void> awaitable_client(ump::client<int, int> cli, int n, long* ok, bool* on_io, asio::io_context* ioc) {
  for (int i = 0; i < n; ++i) {
    auto r = co_await ump::asio::async_req(cli, i, asio::use_awaitable);
    *on_io = *on_io && ioc->get_executor().running_in_this_thread();
    if (r && *r == i + 1) ++*ok;
  }
}

TEST_CASE("use_awaitable_client_and_server_on_one_io_context") {
  constexpr int clients = 5;
  const int per_client = scaled(400);
  auto [srv, cli] = ump::channel<int, int>();
  asio::io_context ioc;
  long served = 0;
  long ok = 0;
  bool on_io = true;
  asio::co_spawn(ioc, awaitable_server(srv, &served, &on_io, &ioc), asio::detached);
  for (int c = 0; c < clients; ++c)
    asio::co_spawn(ioc, awaitable_client(cli, per_client, &ok, &on_io, &ioc), asio::detached);
  { auto last = std::move(cli); }  // the client coroutines hold the only clients
  ioc.run();                       // ends once the server saw clients_disappeared
  CHECK(ok == clients * per_client);
  CHECK(served == clients * per_client);
  CHECK(on_io);
}

TEST_CASE("use_awaitable_client_against_blocking_server_thread") {
  auto ends = ump::channel<int, int>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  std::thread server(blocking_doubling_server, std::move(srv));
  asio::io_context ioc;
  auto f = asio::co_spawn(
      ioc,
      [&cli]() -> asio::awaitable<int> {
        auto r = co_await ump::asio::async_req(cli, 50, asio::use_awaitable);
        co_return *r;
      },
      asio::use_future);
  ioc.run();
  CHECK(f.get() == 100);
  { auto last = std::move(cli); }
  server.join();
}

TEST_CASE("async_wait_callback_server_with_blocking_clients") {
  constexpr int threads = 3;
  const int per_thread = scaled(500);
  auto ends = ump::channel<int, int>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  asio::io_context ioc;
  long served = 0;
  errc last = errc::timed_out;
  std::function<void()> serve = [&] {
    ump::asio::async_wait(srv, asio::bind_executor(ioc, [&](ump::result<ump::request<int, int>> r) {
                            if (!r) {
                              last = r.error().code();
                              return;
                            }
                            if (r->ctx.reply(r->msg * 3)) ++served;
                            serve();
                          }));
  };
  serve();
  std::atomic<int> wrong{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([c = cli, &wrong]() mutable {
      for (int i = 0; i < per_thread; ++i) {
        auto r = c.req(i);
        // ORDERING: relaxed; read after join.
        if (!r || *r != 3 * i) wrong.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  { auto gone = std::move(cli); }
  ioc.run();  // until the server's wait completes with clients_disappeared
  for (auto& t : ts) t.join();
  CHECK(wrong.load() == 0);
  CHECK(served == threads * per_thread);
  CHECK(last == errc::clients_disappeared);
}

TEST_CASE("ng_async_wait_receives_posts_and_requests_and_async_req_works") {
  const int count = scaled(500);
  auto ends = ump::ng::channel<int, int, long>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  asio::io_context ioc;
  long total = 0;
  long answers_ok = 0;
  errc last = errc::timed_out;
  std::function<void()> serve = [&] {
    ump::asio::async_wait(srv, asio::bind_executor(ioc, [&](ump::result<ump::ng::message<int, int, long>> m) {
                            if (!m) {
                              last = m.error().code();
                              return;
                            }
                            if (m->is_post())
                              total += m->post();
                            else
                              m->req().ctx.reply(total);
                            serve();
                          }));
  };
  serve();
  auto client = [](ump::ng::client<int, int, long> c, int n, long* ok) -> asio::awaitable<void> {
    long mine = 0;
    for (int i = 1; i <= n; ++i) {
      (void)c.post(i);
      mine += i;
      auto r = co_await ump::asio::async_req(c, 0, asio::use_awaitable);
      if (r && *r == mine) ++*ok;  // one client: its posts and requests arrive in order
    }
  };
  asio::co_spawn(ioc, client(cli, count, &answers_ok), asio::detached);
  { auto gone = std::move(cli); }
  ioc.run();
  CHECK(answers_ok == count);
  CHECK(total == static_cast<long>(count) * (count + 1) / 2);
  CHECK(last == errc::clients_disappeared);
}

TEST_CASE("unrun_completion_is_released_when_the_io_context_is_destroyed") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  bool called = false;
  {
    asio::io_context ioc;
    ump::asio::async_req(cli, tracked(1), asio::bind_executor(ioc, [&](ump::result<tracked>) { called = true; }));
    auto r = srv.try_wait();
    REQUIRE(r);
    REQUIRE(r->has_value());
    CHECK((*r)->ctx.reply(tracked(2)));  // delivered; completion queued on ioc
  }                                      // ioc destroyed without running: the handler and the reply are destroyed
  CHECK_FALSE(called);
}

}  // namespace
