// Tests for ump/worker.hpp on a thread (spawn_thread; the coroutine flavour is in
// tests/async/worker_task_test.cpp): a break value, all clients gone, the init / req / term
// order and the thread everything runs on, term's result, an exception, ng posts, replies
// given later from another thread, the handle's join-on-destruction, and the thread's name.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#endif

#include "support/lifetime.hpp"
#include "support/worker_handlers.hpp"
#include "ump/worker.hpp"

using ump_test::failure;
using ump_test::lifetime_check;
using ump_test::tracked;

namespace {

// Answers v with v + 1; a request for 0 breaks the loop with the number of requests seen.
struct counter {
  int seen = 0;
  std::optional<int> req(tracked msg, ump::reply_context<tracked> ctx) {
    ++seen;
    if (msg.value() == 0) return seen;
    ctx.reply(tracked(msg.value() + 1));
    return std::nullopt;
  }
};

// Answers every int with itself.
struct echo {
  std::optional<int> req(int msg, ump::reply_context<int> ctx) {
    ctx.reply(msg);
    return std::nullopt;
  }
};

// Records what happens to it, and where, in a log the test reads after join().
struct event_log {
  std::vector<std::string> events;
  std::vector<std::thread::id> threads;
  void add(std::string what) {
    events.push_back(std::move(what));
    threads.push_back(std::this_thread::get_id());
  }
};

struct recording {
  event_log* log;
  explicit recording(event_log* l) : log(l) { log->add("make"); }
  recording(recording&&) = delete;  // built in place by make_handler: never moved
  ~recording() { log->add("destroy"); }
  void init(ump::weak_client<int, int> self) {
    // Someone still holds a client, so the weak one upgrades; dropping it at once keeps the
    // worker's end in the clients' hands.
    log->add(self.upgrade().has_value() ? "init(upgradable)" : "init(dead)");
  }
  std::optional<std::string> req(int msg, ump::reply_context<int> ctx) {
    log->add("req " + std::to_string(msg));
    ctx.reply(msg * 2);
    return std::nullopt;
  }
  std::size_t term(std::optional<std::string> stop) {
    log->add(stop ? "term(" + *stop + ")" : "term(nullopt)");
    return log->events.size();
  }
};

}  // namespace

TEST_CASE("break_value_ends_the_loop_join_returns_it_and_later_requests_see_server_disappeared") {
  lifetime_check guard;
  auto [cli, worker] = ump::spawn_thread<tracked, tracked>([] { return counter{}; });
  static_assert(std::is_same_v<decltype(worker), ump::worker_thread<std::optional<int>>>);
  CHECK(worker.joinable());
  auto one = cli.req_async(tracked(1));
  auto stop = cli.req_async(tracked(0));   // the break: the handler drops its context
  auto after = cli.req_async(tracked(2));  // FIFO: never reaches the handler
  const std::optional<int> result = worker.join();
  CHECK_FALSE(worker.joinable());
  REQUIRE(result.has_value());
  CHECK(*result == 2);  // requests 1 and 0
  auto r1 = one.wait();
  REQUIRE(r1.has_value());
  CHECK(r1->value() == 2);
  CHECK(failure(stop.wait()) == ump::errc::no_reply);
  CHECK(failure(after.wait()) == ump::errc::server_disappeared);
  CHECK(failure(cli.req(tracked(3))) == ump::errc::server_disappeared);  // the server is gone
}

TEST_CASE("last_client_gone_ends_the_loop_and_join_returns_nullopt") {
  lifetime_check guard;
  auto [cli, worker] = ump::spawn_thread<tracked, tracked>([] { return counter{}; });
  constexpr int n = ump_test::scaled(1000);
  std::vector<std::thread> users;
  for (int t = 0; t < 2; ++t) {
    users.emplace_back([c = cli]() mutable {  // each thread owns a copy of the client
      for (int i = 1; i <= n; ++i) {
        auto r = c.req(tracked(static_cast<std::uint64_t>(i)));
        CHECK((r.has_value() && r->value() == static_cast<std::uint64_t>(i) + 1));
      }
    });
  }
  { auto gone = std::move(cli); }
  for (auto& u : users) u.join();  // their copies die with the threads
  CHECK(worker.join() == std::nullopt);
}

TEST_CASE("make_init_req_term_destroy_run_in_order_on_the_worker_thread") {
  event_log log;
  std::size_t result = 0;
  std::thread::id worker_id;
  {
    auto [cli, worker] = ump::spawn_thread<int, int>([&log] { return recording(&log); });
    static_assert(std::is_same_v<ump::worker_result_t<recording, int, int>, std::size_t>);
    worker_id = worker.get_id();
    CHECK(worker_id != std::this_thread::get_id());
    CHECK(*cli.req(1) == 2);
    CHECK(*cli.req(2) == 4);
    { auto gone = std::move(cli); }
    result = worker.join();
  }
  const std::vector<std::string> expected{"make", "init(upgradable)", "req 1", "req 2", "term(nullopt)", "destroy"};
  CHECK(log.events == expected);
  CHECK(result == 5);  // term saw five events, its own included
  for (auto id : log.threads) CHECK(id == worker_id);
}

TEST_CASE("the_weak_client_kept_from_init_does_not_keep_the_worker_alive") {
  struct holder {
    std::optional<ump::weak_client<int, int>> self;
    void init(ump::weak_client<int, int> w) { self.emplace(std::move(w)); }
    std::optional<int> req(int msg, ump::reply_context<int> ctx) {
      ctx.reply(msg);
      return std::nullopt;
    }
    // true: the loop ended by its clients, and the weak client can no longer upgrade.
    bool term(std::optional<int> stop) { return !stop && self && !self->upgrade().has_value(); }
  };
  auto [cli, worker] = ump::spawn_thread<int, int>([] { return holder{}; });
  CHECK(*cli.req(3) == 3);
  { auto gone = std::move(cli); }
  CHECK(worker.join());
}

TEST_CASE("term_returning_void_makes_join_return_void") {
  struct quiet {
    int* terms;
    std::optional<int> req(int msg, ump::reply_context<int> ctx) {
      ctx.reply(msg);
      return msg < 0 ? std::optional<int>(msg) : std::nullopt;
    }
    void term(std::optional<int> stop) { *terms += stop.value_or(100); }
  };
  int terms = 0;
  auto [cli, worker] = ump::spawn_thread<int, int>([&terms] { return quiet{&terms}; });
  static_assert(std::is_void_v<decltype(worker.join())>);
  CHECK(*cli.req(-7) == -7);  // replies, then breaks
  worker.join();
  CHECK(terms == -7);
}

TEST_CASE("destroying_the_pair_drops_the_client_first_so_the_implicit_join_returns") {
  lifetime_check guard;
  event_log log;
  {
    auto [cli, worker] = ump::spawn_thread<int, int>([&log] { return recording(&log); });
    CHECK(*cli.req(5) == 10);
  }  // the client goes first, then the handle joins the worker, which saw clients disappear
  REQUIRE(log.events.size() == 5);
  CHECK(log.events.back() == "destroy");
}

TEST_CASE("assigning_over_an_unjoined_handle_joins_its_thread") {
  event_log first_log;
  auto first = ump::spawn_thread<int, int>([&first_log] { return recording(&first_log); });
  ump::worker_thread<std::size_t> handle = std::move(first.worker);
  CHECK_FALSE(first.worker.joinable());
  CHECK(handle.joinable());
  { auto gone = std::move(first.client); }
  handle = ump::worker_thread<std::size_t>();  // joins the first worker, result discarded
  CHECK_FALSE(handle.joinable());
  REQUIRE_FALSE(first_log.events.empty());
  CHECK(first_log.events.back() == "destroy");
}

TEST_CASE("ng_posts_and_requests_reach_the_handler_in_order_and_a_post_can_break") {
  lifetime_check guard;
  auto [cli, worker] = ump::ng::spawn_thread<tracked, tracked, tracked>([] { return ump_test::summer{}; });
  static_assert(std::is_same_v<ump::ng::worker_result_t<ump_test::summer, tracked, tracked, tracked>,
                               std::optional<std::uint64_t>>);
  constexpr int n = ump_test::scaled(2000);
  std::uint64_t expected = 0;
  for (int i = 1; i <= n; ++i) {
    REQUIRE(cli.post(tracked(static_cast<std::uint64_t>(i))).has_value());
    expected += static_cast<std::uint64_t>(i);
    if (i % 100 == 0) {
      auto r = cli.req(tracked(0));  // every post before it has been handled
      REQUIRE(r.has_value());
      CHECK(r->value() == expected);
    }
  }
  auto poster = cli.poster();
  REQUIRE(poster.post(tracked(0)).has_value());
  auto late = cli.req_async(tracked(0));  // queued behind the break
  CHECK(worker.join() == expected);
  CHECK(failure(late.wait()) == ump::errc::server_disappeared);
  CHECK(failure(poster.post(tracked(1))) == ump::errc::server_disappeared);
}

TEST_CASE("a_handler_moves_contexts_out_and_another_thread_replies_while_it_goes_on") {
  lifetime_check guard;
  // The handler forwards every context to a replier thread (over an ng channel of its own)
  // and returns at once; the replier answers from its own thread.
  struct deferred {
    std::uint64_t msg;
    ump::reply_context<tracked> ctx;
  };
  auto replier_ends = ump::ng::channel<deferred, int, int>();
  auto& replier_srv = replier_ends.first;
  std::thread replier([srv = std::move(replier_srv)]() mutable {
    while (auto m = srv.wait()) {
      CHECK(m->is_post());  // nothing but posts is sent to it
      if (!m->is_post()) continue;
      deferred& d = m->post();
      d.ctx.reply(tracked(d.msg * 10));
    }
  });
  struct forwarder {
    ump::ng::post_client<deferred, int, int> to_replier;
    std::optional<int> req(tracked msg, ump::reply_context<tracked> ctx) {
      CHECK(to_replier.post(deferred{msg.value(), std::move(ctx)}).has_value());
      return std::nullopt;  // the context is no longer here: nothing is answered now
    }
  };
  {
    auto [cli, worker] =
        ump::spawn_thread<tracked, tracked>([p = replier_ends.second.poster()] { return forwarder{p}; });
    { auto gone = std::move(replier_ends.second); }  // the worker's handler holds the last one
    constexpr int n = ump_test::scaled(500);
    for (int i = 1; i <= n; ++i) {
      auto r = cli.req(tracked(static_cast<std::uint64_t>(i)));
      REQUIRE(r.has_value());
      CHECK(r->value() == static_cast<std::uint64_t>(i) * 10);
    }
  }  // client gone, worker joined: its handler (and the replier's last client) destroyed
  replier.join();
}

TEST_CASE("contexts_kept_past_the_break_are_answered_after_join_from_the_joining_thread") {
  lifetime_check guard;
  // The handler keeps every context and breaks on the third request, handing them out as its
  // result; the worker is gone (server destroyed) when they are answered.
  struct keeper {
    std::vector<ump::reply_context<tracked>> kept;
    std::optional<std::vector<ump::reply_context<tracked>>> req(tracked, ump::reply_context<tracked> ctx) {
      kept.push_back(std::move(ctx));
      if (kept.size() < 3) return std::nullopt;
      return std::move(kept);
    }
  };
  auto [cli, worker] = ump::spawn_thread<tracked, tracked>([] { return keeper{}; });
  std::vector<ump::wait_reply<tracked>> pending;
  for (std::uint64_t i = 0; i < 3; ++i) pending.push_back(cli.req_async(tracked(i)));
  auto contexts = worker.join();
  REQUIRE(contexts.has_value());
  REQUIRE(contexts->size() == 3);
  for (auto& w : pending) CHECK_FALSE(w.ready());
  for (std::uint64_t i = 0; i < 3; ++i) {
    CHECK((*contexts)[2 - i].reply(tracked(100 + i)).has_value());  // last first
  }
  CHECK(pending[2].wait()->value() == 100);
  CHECK(pending[1].wait()->value() == 101);
  CHECK(pending[0].wait()->value() == 102);
}

#if UMP_HAS_EXCEPTIONS
TEST_CASE("a_throwing_handler_ends_the_worker_queued_requests_see_server_disappeared_join_rethrows") {
  lifetime_check guard;
  bool termed = false;
  auto [cli, worker] = ump::spawn_thread<tracked, tracked>([&termed] { return ump_test::thrower{&termed}; });
  CHECK(cli.req(tracked(1))->value() == 1);
  auto bad = cli.req_async(tracked(13));
  auto queued = cli.req_async(tracked(2));  // behind the throw: never handled
  CHECK_THROWS_WITH_AS(worker.join(), "unlucky", std::runtime_error);
  CHECK_FALSE(termed);                                // term does not run after an exception
  CHECK(failure(bad.wait()) == ump::errc::no_reply);  // its context died in the unwinding
  CHECK(failure(queued.wait()) == ump::errc::server_disappeared);
  CHECK(failure(cli.req(tracked(3))) == ump::errc::server_disappeared);
}

TEST_CASE("make_handler_throwing_reaches_join_and_the_clients") {
  lifetime_check guard;
  auto [cli, worker] = ump::spawn_thread<tracked, tracked>([]() -> counter { throw std::logic_error("no handler"); });
  auto r = cli.req_async(tracked(1));
  CHECK_THROWS_AS(worker.join(), std::logic_error);
  CHECK(failure(r.wait()) == ump::errc::server_disappeared);
}
#endif

#if defined(__linux__)
TEST_CASE("the_worker_thread_is_named_with_the_first_15_bytes") {
  std::string seen;  // written by the worker, read after the implicit join
  {
    ump::worker_options opts;
    opts.name = "ump-worker-with-a-long-name";
    auto [cli, worker] = ump::spawn_thread<int, int>(
        [&seen] {
          char buf[32] = {};
          (void)pthread_getname_np(pthread_self(), buf, sizeof buf);
          seen = buf;
          return echo{};
        },
        opts);
    CHECK(*cli.req(1) == 1);
  }
  CHECK(seen == "ump-worker-with");
}
#endif
