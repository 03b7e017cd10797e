// ump::asio::worker_task (include/ump/asio.hpp): the worker loop of ump/worker.hpp as an Asio
// coroutine. The handler runs on the io_context's thread, serving Asio coroutine clients and
// thread clients; a break value and term's result through co_spawn's completion; all
// clients gone; an exception; ng posts; a task destroyed unstarted.
#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <cstdint>
#include <exception>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "support/lifetime.hpp"
#include "support/worker_handlers.hpp"
#include "ump/asio.hpp"
#include "ump/worker.hpp"

namespace {

using ump_test::failure;
using ump_test::lifetime_check;
using ump_test::tracked;

// Answers v with v + 1 and remembers which threads it ran on; 0 breaks with the count seen.
struct incrementer {
  std::thread::id* ran_on;
  bool* moved_threads;
  int seen = 0;
  std::optional<int> req(tracked msg, ump::reply_context<tracked> ctx) {
    if (*ran_on == std::thread::id{}) *ran_on = std::this_thread::get_id();
    if (*ran_on != std::this_thread::get_id()) *moved_threads = true;
    ++seen;
    if (msg.value() == 0) return seen;
    ctx.reply(tracked(msg.value() + 1));
    return std::nullopt;
  }
};

asio::awaitable<void> ask(ump::client<tracked, tracked> cli, int n, int* wrong) {
  for (int i = 1; i <= n; ++i) {
    auto r = co_await ump::asio::async_req(cli, tracked(static_cast<std::uint64_t>(i)), asio::use_awaitable);
    if (!r || r->value() != static_cast<std::uint64_t>(i) + 1) ++*wrong;
  }
}

}  // namespace

TEST_CASE("asio_worker_serves_coroutine_and_thread_clients_on_the_io_context_until_all_are_gone") {
  lifetime_check guard;
  asio::io_context ioc;
  std::thread::id ran_on;
  bool moved_threads = false;
  int wrong = 0;
  int wrong_thread = 0;
  constexpr int n = ump_test::scaled(300);
  auto [cli, worker] = ump::asio::worker_task<tracked, tracked>([&ran_on, &moved_threads] {
    return incrementer{&ran_on, &moved_threads};
  });
  static_assert(std::is_same_v<decltype(worker), asio::awaitable<std::optional<int>>>);
  std::future<std::optional<int>> done = asio::co_spawn(ioc, std::move(worker), asio::use_future);
  asio::co_spawn(ioc, ask(cli, n, &wrong), asio::detached);
  std::thread user([c = cli, &wrong_thread]() mutable {
    for (int i = 1; i <= n; ++i) {
      auto r = c.req(tracked(static_cast<std::uint64_t>(i)));
      if (!r || r->value() != static_cast<std::uint64_t>(i) + 1) ++wrong_thread;
    }
  });
  { auto gone = std::move(cli); }
  ioc.run();  // returns once the worker and the asker are done
  user.join();
  CHECK(done.get() == std::nullopt);
  CHECK(wrong == 0);
  CHECK(wrong_thread == 0);
  CHECK(ran_on == std::this_thread::get_id());
  CHECK_FALSE(moved_threads);
}

TEST_CASE("asio_worker_break_runs_term_and_the_completion_gets_its_result") {
  lifetime_check guard;
  struct handler {
    std::string* log;
    void init(ump::weak_client<tracked, tracked>) { *log += "init;"; }
    std::optional<std::uint64_t> req(tracked msg, ump::reply_context<tracked> ctx) {
      *log += "req " + std::to_string(msg.value()) + ";";
      if (msg.value() == 0) return 42;
      ctx.reply(std::move(msg));
      return std::nullopt;
    }
    std::string term(std::optional<std::uint64_t> stop) {
      *log += "term;";
      return stop ? std::to_string(*stop) : "none";
    }
  };
  std::string log;
  asio::io_context ioc;
  auto [cli, worker] = ump::asio::worker_task<tracked, tracked>([&log] { return handler{&log}; });
  auto one = cli.req_async(tracked(1));
  auto stop = cli.req_async(tracked(0));
  auto after = cli.req_async(tracked(2));  // behind the break: never handled
  std::optional<std::string> result;
  bool failed = false;
  asio::co_spawn(ioc, std::move(worker), [&result, &failed](std::exception_ptr e, std::string r) {
    failed = e != nullptr;
    result = std::move(r);
  });
  ioc.run();
  CHECK_FALSE(failed);
  CHECK(result == "42");
  CHECK(log == "init;req 1;req 0;term;");
  CHECK(one.wait()->value() == 1);
  CHECK(failure(stop.wait()) == ump::errc::no_reply);
  CHECK(failure(after.wait()) == ump::errc::server_disappeared);
  CHECK(failure(cli.req(tracked(3))) == ump::errc::server_disappeared);
}

TEST_CASE("asio_worker_exception_reaches_the_completion_and_queued_requests_fail") {
  lifetime_check guard;
  asio::io_context ioc;
  auto [cli, worker] = ump::asio::worker_task<tracked, tracked>([] { return ump_test::thrower{}; });
  auto bad = cli.req_async(tracked(13));
  auto queued = cli.req_async(tracked(2));
  auto done = asio::co_spawn(ioc, std::move(worker), asio::use_future);
  ioc.run();
  CHECK_THROWS_WITH_AS(done.get(), "unlucky", std::runtime_error);
  CHECK(failure(bad.wait()) == ump::errc::no_reply);
  CHECK(failure(queued.wait()) == ump::errc::server_disappeared);
}

TEST_CASE("asio_ng_worker_takes_posts_and_requests_in_order") {
  lifetime_check guard;
  asio::io_context ioc;
  auto [cli, worker] = ump::asio::ng::worker_task<tracked, tracked, tracked>([] { return ump_test::summer{}; });
  constexpr int n = ump_test::scaled(1000);
  std::uint64_t expected = 0;
  for (int i = 1; i <= n; ++i) {
    CHECK(cli.post(tracked(static_cast<std::uint64_t>(i))).has_value());
    expected += static_cast<std::uint64_t>(i);
  }
  auto sum_so_far = cli.req_async(tracked(0));
  CHECK(cli.post(tracked(0)).has_value());
  auto done = asio::co_spawn(ioc, std::move(worker), asio::use_future);
  ioc.run();
  CHECK(done.get() == expected);
  CHECK(sum_so_far.wait()->value() == expected);
}

TEST_CASE("asio_worker_destroyed_unstarted_destroys_its_server") {
  lifetime_check guard;
  bool made = false;
  auto spawned = ump::asio::worker_task<tracked, tracked>([&made] {
    made = true;
    return incrementer{nullptr, nullptr};
  });
  auto queued = spawned.client.req_async(tracked(1));
  { auto dropped = std::move(spawned.worker); }
  CHECK_FALSE(made);
  CHECK(failure(queued.wait()) == ump::errc::server_disappeared);
  CHECK(failure(spawned.client.req(tracked(2))) == ump::errc::server_disappeared);
}
