// Coroutine ends of ump channels (client::areq, co_await wait_reply, server::async_wait) in
// every sync/async permutation, their lifecycle outcomes, and where coroutines resume.
#include <doctest/doctest.h>

#include <atomic>
#include <latch>
#include <thread>
#include <vector>

#include "async/helpers.hpp"
#include "support/lifetime.hpp"
#include "ump/run_loop.hpp"
#include "ump/task.hpp"
#include "ump/ump.hpp"

namespace {

using ump::errc;
using ump_async_test::loop_thread;
using ump_async_test::own;
using ump_test::lifetime_check;
using ump_test::scaled;
using ump_test::tracked;
using loop_sched = ump::run_loop::scheduler_type;

using int_server = ump::server<int, int>;
using int_client = ump::client<int, int>;

// What a server coroutine saw, checked by the test thread after it joined.
struct server_log {
  long served = 0;
  bool resumed_on_loop = true;
  errc last = errc::timed_out;  // how the loop ended
  std::vector<std::thread::id> resumed_on;
};

// Replies 2 * msg until the clients are gone. With a run_loop scheduler it checks that every
// resumption happens inside that loop.
template <class Sched>
ump::task<void> doubling_server(int_server& srv, Sched sched, server_log* log) {
  for (;;) {
    auto r = co_await srv.async_wait(sched);
    if constexpr (std::is_same_v<Sched, loop_sched>) {
      log->resumed_on_loop = log->resumed_on_loop && sched.loop().running_in_this_thread();
    }
    log->resumed_on.push_back(std::this_thread::get_id());
    if (!r) {
      log->last = r.error().code();
      co_return;
    }
    auto& [msg, ctx] = *r;
    if (ctx.reply(msg * 2)) ++log->served;
  }
}

// What a client coroutine saw.
struct client_log {
  long ok = 0;
  long wrong = 0;
  bool resumed_on_loop = true;
};

template <class Sched>
ump::task<void> asking_client(int_client cli, Sched sched, int first, int count, client_log* log) {
  for (int i = first; i < first + count; ++i) {
    auto r = co_await cli.areq(i, sched);
    if constexpr (std::is_same_v<Sched, loop_sched>) {
      log->resumed_on_loop = log->resumed_on_loop && sched.loop().running_in_this_thread();
    }
    if (r && *r == 2 * i)
      ++log->ok;
    else
      ++log->wrong;
  }
}

// Blocking server thread body: replies 2 * msg until the clients are gone.
void blocking_doubling_server(int_server srv) {
  while (auto r = srv.wait()) {
    auto& [msg, ctx] = *r;
    ctx.reply(msg * 2);
  }
}

// --- permutations ---------------------------------------------------------------------------

TEST_CASE("sync_clients_against_async_server_on_a_loop_thread") {
  constexpr int threads = 3;
  const int per_thread = scaled(2000);
  auto [srv, cli] = ump::channel<int, int>();
  server_log log;
  loop_thread lt;
  lt.loop.spawn(doubling_server(srv, lt.loop.scheduler(), &log));
  lt.start();
  std::atomic<long> wrong{0};
  {
    std::vector<std::thread> clients;
    for (int t = 0; t < threads; ++t) {
      clients.emplace_back([c = cli, t, &wrong]() mutable {
        for (int i = 0; i < per_thread; ++i) {
          const int v = t * per_thread + i;
          auto r = c.req(v);
          // ORDERING: relaxed; read after join.
          if (!r || *r != 2 * v) wrong.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    for (auto& c : clients) c.join();
  }
  { auto last = std::move(cli); }  // the server's next wait sees clients_disappeared
  lt.join();
  CHECK(wrong.load() == 0);
  CHECK(log.served == threads * per_thread);
  CHECK(log.last == errc::clients_disappeared);
  CHECK(log.resumed_on_loop);
  for (auto id : log.resumed_on) CHECK(id == lt.id());
}

TEST_CASE("async_server_inline_resumes_on_the_sending_thread") {
  auto [srv, cli] = ump::channel<int, int>();
  server_log log;
  auto o = own(doubling_server(srv, ump::inline_scheduler{}, &log));
  REQUIRE_FALSE(o.done());  // suspended in async_wait: nothing was queued
  std::thread::id sender;
  int reply = 0;
  std::thread t([&, c = cli]() mutable {
    // The server resumes inside this send, on this thread, and replies before we wait.
    reply = *c.req(21);
  });
  sender = t.get_id();
  t.join();
  CHECK(reply == 42);
  { auto last = std::move(cli); }  // resumes the server inline, here, with clients_disappeared
  CHECK(o.done());
  REQUIRE(log.resumed_on.size() == 2);
  CHECK(log.resumed_on[0] == sender);
  CHECK(log.resumed_on[1] == std::this_thread::get_id());
  CHECK(log.last == errc::clients_disappeared);
}

TEST_CASE("async_clients_on_a_loop_against_a_blocking_server_thread") {
  constexpr int coroutines = 8;
  const int per_coroutine = scaled(500);
  auto [srv, cli] = ump::channel<int, int>();
  std::thread server(blocking_doubling_server, std::move(srv));
  ump::run_loop loop;
  client_log log;
  for (int c = 0; c < coroutines; ++c)
    loop.spawn(asking_client(cli, loop.scheduler(), c * per_coroutine, per_coroutine, &log));
  loop.run();
  { auto last = std::move(cli); }
  server.join();
  CHECK(log.ok == coroutines * per_coroutine);
  CHECK(log.wrong == 0);
  CHECK(log.resumed_on_loop);
}

TEST_CASE("areq_inline_resumes_on_the_replying_thread") {
  auto [srv, cli] = ump::channel<int, int>();
  std::latch taken(1);
  std::latch go(1);
  std::thread server([&, s = std::move(srv)]() mutable {
    auto r = s.wait();
    taken.count_down();
    go.wait();
    r->ctx.reply(r->msg + 1);
  });
  std::thread::id resumed_on;
  int got = 0;
  auto body = [](int_client c, std::thread::id* id, int* got) -> ump::task<void> {
    auto r = co_await c.areq(1);  // default scheduler: inline
    *id = std::this_thread::get_id();
    *got = *r;
  };
  auto o = own(body(cli, &resumed_on, &got));
  taken.wait();
  REQUIRE_FALSE(o.done());  // the reply is held back: suspended in areq
  go.count_down();
  const std::thread::id server_id = server.get_id();
  server.join();
  CHECK(o.done());
  CHECK(got == 2);
  CHECK(resumed_on == server_id);
}

TEST_CASE("co_await_req_async_collects_a_reply_or_the_early_failure") {
  // co_await on the prvalue req_async() returns: the reply, or server_disappeared carried
  // inside the wait_reply when the server was gone before the send.
  auto [srv, cli] = ump::channel<int, int>();
  std::thread server(blocking_doubling_server, std::move(srv));
  auto body = [](int_client c) -> ump::task<int> {
    int sum = 0;
    for (int i = 0; i < 10; ++i) sum += *co_await c.req_async(i);
    co_return sum;
  };
  CHECK(ump::sync_wait(body(cli)) == 2 * 45);
  { auto last = std::move(cli); }
  server.join();

  auto [srv2, cli2] = ump::channel<int, int>();
  { auto gone = std::move(srv2); }
  auto late = [](int_client c) -> ump::task<ump::errc> {
    auto r = co_await c.req_async(1);
    co_return r.error().code();
  };
  CHECK(ump::sync_wait(late(cli2)) == ump::errc::server_disappeared);
}

// co_await on an lvalue wait_reply would consume it silently: it does not compile.
template <class W>
concept co_awaitable_as_lvalue = requires(W& w) {
  w.operator co_await();
};
template <class W>
concept co_awaitable_as_rvalue = requires(W&& w) {
  std::move(w).operator co_await();
};
static_assert(co_awaitable_as_rvalue<ump::wait_reply<int, void>>);
static_assert(!co_awaitable_as_lvalue<ump::wait_reply<int, void>>);

TEST_CASE("co_await_wait_reply_resumes_inline_on_replier_or_on_loop") {
  auto [srv, cli] = ump::channel<int, int>();
  std::thread server(blocking_doubling_server, std::move(srv));
  ump::run_loop loop;
  std::vector<std::thread::id> ids;
  bool on_loop = true;
  int sum = 0;
  auto body = [](int_client c, ump::run_loop* l, std::vector<std::thread::id>* ids, bool* on_loop,
                 int* sum) -> ump::task<void> {
    // Through the loop's scheduler: always back on the loop thread.
    for (int i = 0; i < 10; ++i) {
      auto wr = c.req_async(i);
      auto aw = std::move(wr).async_wait(l->scheduler());
      auto r = co_await std::move(aw);
      *on_loop = *on_loop && l->running_in_this_thread();
      *sum += *r;
    }
    // Inline: continues on whichever thread completed it (the server's, if it suspended).
    auto wr = c.req_async(100);
    auto r = co_await std::move(wr);
    ids->push_back(std::this_thread::get_id());
    *sum += *r;
  };
  loop.spawn(body(cli, &loop, &ids, &on_loop, &sum));
  const std::thread::id server_id = server.get_id();
  loop.run();
  { auto last = std::move(cli); }
  server.join();
  CHECK(on_loop);
  CHECK(sum == 2 * 45 + 200);
  REQUIRE(ids.size() == 1);
  CHECK((ids[0] == server_id || ids[0] == std::this_thread::get_id()));
}

TEST_CASE("async_clients_and_async_server_on_one_loop_thread") {
  constexpr int coroutines = 10;
  const int per_coroutine = scaled(300);
  auto [srv, cli] = ump::channel<int, int>();
  ump::run_loop loop;
  server_log slog;
  client_log clog;
  loop.spawn(doubling_server(srv, loop.scheduler(), &slog));
  for (int c = 0; c < coroutines; ++c)
    loop.spawn(asking_client(cli, loop.scheduler(), c * per_coroutine, per_coroutine, &clog));
  { auto last = std::move(cli); }  // the client coroutines hold the only clients now
  loop.run();                      // ends when the server saw clients_disappeared
  CHECK(clog.ok == coroutines * per_coroutine);
  CHECK(clog.wrong == 0);
  CHECK(clog.resumed_on_loop);
  CHECK(slog.served == coroutines * per_coroutine);
  CHECK(slog.resumed_on_loop);
  CHECK(slog.last == errc::clients_disappeared);
}

TEST_CASE("async_clients_and_async_server_on_one_thread_inline") {
  // Everything on the loop thread with the inline default: each side resumes the other
  // inside its own call (reply() resumes the client, a send resumes the server).
  constexpr int coroutines = 10;
  const int per_coroutine = scaled(300);
  auto [srv, cli] = ump::channel<int, int>();
  ump::run_loop loop;
  server_log slog;
  client_log clog;
  loop.spawn(doubling_server(srv, ump::inline_scheduler{}, &slog));
  for (int c = 0; c < coroutines; ++c)
    loop.spawn(asking_client(cli, ump::inline_scheduler{}, c * per_coroutine, per_coroutine, &clog));
  { auto last = std::move(cli); }
  loop.run();
  CHECK(clog.ok == coroutines * per_coroutine);
  CHECK(clog.wrong == 0);
  CHECK(slog.served == coroutines * per_coroutine);
  CHECK(slog.last == errc::clients_disappeared);
  for (auto id : slog.resumed_on) CHECK(id == std::this_thread::get_id());
}

TEST_CASE("async_clients_and_async_server_on_two_loop_threads") {
  constexpr int coroutines = 6;
  const int per_coroutine = scaled(500);
  auto [srv, cli] = ump::channel<int, int>();
  loop_thread server_loop;
  server_log slog;
  server_loop.loop.spawn(doubling_server(srv, server_loop.loop.scheduler(), &slog));
  server_loop.start();
  ump::run_loop client_loop;  // runs on this thread
  client_log clog;
  for (int c = 0; c < coroutines; ++c)
    client_loop.spawn(asking_client(cli, client_loop.scheduler(), c * per_coroutine, per_coroutine, &clog));
  { auto last = std::move(cli); }
  client_loop.run();
  server_loop.join();  // the client coroutines' clients are gone: the server task ended
  CHECK(clog.ok == coroutines * per_coroutine);
  CHECK(clog.wrong == 0);
  CHECK(clog.resumed_on_loop);
  CHECK(slog.served == coroutines * per_coroutine);
  CHECK(slog.resumed_on_loop);
  for (auto id : slog.resumed_on) CHECK(id == server_loop.id());
}

TEST_CASE("thousand_client_coroutines_on_one_thread_against_one_server_coroutine") {
  constexpr int coroutines = 1000;
  const int per_coroutine = scaled(20);
  auto [srv, cli] = ump::channel<int, int>();
  ump::run_loop loop;
  server_log slog;
  client_log clog;
  loop.spawn(doubling_server(srv, loop.scheduler(), &slog));
  for (int c = 0; c < coroutines; ++c)
    loop.spawn(asking_client(cli, loop.scheduler(), c * per_coroutine, per_coroutine, &clog));
  { auto last = std::move(cli); }
  loop.run();
  CHECK(clog.ok == coroutines * per_coroutine);
  CHECK(clog.wrong == 0);
  CHECK(slog.served == coroutines * per_coroutine);
  CHECK(slog.last == errc::clients_disappeared);
}

TEST_CASE("async_outcomes_match_the_blocking_ones") {
  auto [srv, cli] = ump::channel<int, int, int>();
  ump::run_loop loop;
  std::vector<ump::result<int, int>> got;
  auto body = [](ump::client<int, int, int> c, std::vector<ump::result<int, int>>* out) -> ump::task<void> {
    for (int i = 0; i < 3; ++i) out->push_back(co_await c.areq(i));
  };
  loop.spawn(body(cli, &got));
  std::thread server([s = std::move(srv)]() mutable {
    for (int i = 0; i < 3; ++i) {
      auto r = s.wait();
      auto& [msg, ctx] = *r;
      if (msg == 0) ctx.reply(10);
      if (msg == 1) ctx.fail(-1);
      // msg == 2: ctx dropped unanswered
    }
  });
  loop.run();
  server.join();
  REQUIRE(got.size() == 3);
  CHECK(*got[0] == 10);
  REQUIRE_FALSE(got[1]);
  CHECK(got[1].error() == errc::app_error);
  CHECK(got[1].error().app() == -1);
  REQUIRE_FALSE(got[2]);
  CHECK(got[2].error() == errc::no_reply);
}

// --- lifecycle -------------------------------------------------------------------------------

TEST_CASE("areq_after_server_gone_completes_at_once_with_server_disappeared") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  { auto gone = std::move(srv); }
  errc code = errc::timed_out;
  auto body = [](ump::client<tracked, tracked> c, errc* code) -> ump::task<void> {
    auto r = co_await c.areq(tracked(1));
    *code = r.error().code();
  };
  auto o = own(body(cli, &code));
  CHECK(o.done());  // never suspended
  CHECK(code == errc::server_disappeared);
}

TEST_CASE("server_destroyed_while_coroutines_wait_in_areq_on_a_loop") {
  lifetime_check guard;
  constexpr int coroutines = 100;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  ump::run_loop loop;
  long disappeared = 0;
  long other = 0;
  bool on_loop = true;
  auto body = [](ump::client<tracked, tracked> c, ump::run_loop* l, long* gone, long* other,
                 bool* on_loop) -> ump::task<void> {
    auto r = co_await c.areq(tracked(1), l->scheduler());
    *on_loop = *on_loop && l->running_in_this_thread();
    if (!r && r.error() == errc::server_disappeared)
      ++*gone;
    else
      ++*other;
  };
  for (int i = 0; i < coroutines; ++i) loop.spawn(body(cli, &loop, &disappeared, &other, &on_loop));
  CHECK(loop.poll() == coroutines);  // all sent and suspended
  CHECK(srv.queued() == coroutines);
  { auto gone = std::move(srv); }  // fails every queued request; resumptions go to the loop
  CHECK(disappeared == 0);         // nothing resumed inline
  loop.run();
  CHECK(disappeared == coroutines);
  CHECK(other == 0);
  CHECK(on_loop);
}

TEST_CASE("server_destroyed_on_another_thread_resumes_inline_waiters_there") {
  lifetime_check guard;
  constexpr int coroutines = 20;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  std::vector<std::thread::id> ids;
  long disappeared = 0;
  auto body = [](ump::client<tracked, tracked> c, std::vector<std::thread::id>* ids, long* gone) -> ump::task<void> {
    auto r = co_await c.areq(tracked(2));
    ids->push_back(std::this_thread::get_id());
    if (!r && r.error() == errc::server_disappeared) ++*gone;
  };
  std::vector<ump_async_test::owner> owners;
  for (int i = 0; i < coroutines; ++i) owners.push_back(own(body(cli, &ids, &disappeared)));
  for (auto& o : owners) REQUIRE_FALSE(o.done());
  std::thread destroyer([s = std::move(srv)]() mutable { auto gone = std::move(s); });
  const std::thread::id destroyer_id = destroyer.get_id();
  destroyer.join();
  for (auto& o : owners) CHECK(o.done());
  CHECK(disappeared == coroutines);
  REQUIRE(ids.size() == static_cast<std::size_t>(coroutines));
  for (auto id : ids) CHECK(id == destroyer_id);
}

TEST_CASE("server_destroyed_after_taking_one_request_its_context_still_reaches_the_coroutine") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  ump::run_loop loop;
  std::vector<std::uint64_t> replies;
  long disappeared = 0;
  auto body = [](ump::client<tracked, tracked> c, ump::run_loop* l, std::vector<std::uint64_t>* out,
                 long* gone) -> ump::task<void> {
    auto r = co_await c.areq(tracked(7), l->scheduler());
    if (r)
      out->push_back(r->value());
    else if (r.error() == errc::server_disappeared)
      ++*gone;
  };
  for (int i = 0; i < 3; ++i) loop.spawn(body(cli, &loop, &replies, &disappeared));
  CHECK(loop.poll() == 3);
  auto first = srv.try_wait();
  REQUIRE(first);
  REQUIRE(first->has_value());
  { auto gone = std::move(srv); }
  auto& [msg, ctx] = **first;
  CHECK(ctx.reply(tracked(msg.value() * 10)));
  loop.run();
  CHECK(replies == std::vector<std::uint64_t>{70});
  CHECK(disappeared == 2);
}

TEST_CASE("last_client_gone_while_server_awaits_async_wait") {
  SUBCASE("loop_scheduler_resumes_on_the_loop") {
    auto [srv, cli] = ump::channel<int, int>();
    auto weak = cli.weak();  // weak clients do not count
    ump::run_loop loop;
    server_log log;
    loop.spawn(doubling_server(srv, loop.scheduler(), &log));
    CHECK(loop.poll() == 1);  // suspended in async_wait
    std::thread dropper([c = std::move(cli)]() mutable { auto gone = std::move(c); });
    dropper.join();
    loop.run();
    CHECK(log.last == errc::clients_disappeared);
    CHECK(log.resumed_on_loop);
    CHECK_FALSE(weak.upgrade().has_value());
  }
  SUBCASE("inline_resumes_on_the_dropping_thread") {
    auto [srv, cli] = ump::channel<int, int>();
    server_log log;
    auto o = own(doubling_server(srv, ump::inline_scheduler{}, &log));
    REQUIRE_FALSE(o.done());
    std::thread dropper([c = std::move(cli)]() mutable { auto gone = std::move(c); });
    const std::thread::id dropper_id = dropper.get_id();
    dropper.join();
    CHECK(o.done());
    CHECK(log.last == errc::clients_disappeared);
    REQUIRE(log.resumed_on.size() == 1);
    CHECK(log.resumed_on[0] == dropper_id);
  }
}

TEST_CASE("coroutine_destroyed_while_suspended_in_areq_is_never_resumed") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  bool resumed = false;
  auto ask = [](ump::client<tracked, tracked> c, bool* resumed) -> ump::task<void> {
    auto r = co_await c.areq(tracked(1));
    *resumed = true;
  };
  SUBCASE("before_the_server_took_it") {
    {
      auto o = own(ask(cli, &resumed));
      REQUIRE_FALSE(o.done());
    }  // frame destroyed: the request is abandoned
    auto r = srv.try_wait();
    REQUIRE(r);
    REQUIRE(r->has_value());  // still delivered to the server
    auto& [msg, ctx] = **r;
    CHECK(msg.value() == 1);
    CHECK_FALSE(ctx.requester_waiting());
    auto rep = ctx.reply(tracked(2));
    REQUIRE_FALSE(rep);
    CHECK(rep.error() == errc::origin_disappeared);
  }
  SUBCASE("after_the_server_took_it") {
    auto o = own(ask(cli, &resumed));
    REQUIRE_FALSE(o.done());
    auto r = srv.try_wait();
    REQUIRE(r);
    REQUIRE(r->has_value());
    auto& [msg, ctx] = **r;
    CHECK(ctx.requester_waiting());
    o.reset();
    CHECK_FALSE(ctx.requester_waiting());
    auto rep = ctx.reply(tracked(3));
    REQUIRE_FALSE(rep);
    CHECK(rep.error() == errc::origin_disappeared);
  }
  SUBCASE("spawned_on_a_loop_that_is_destroyed") {
    {
      ump::run_loop loop;
      auto ask_on_loop = [](ump::client<tracked, tracked> c, ump::run_loop* l, bool* resumed) -> ump::task<void> {
        auto r = co_await c.areq(tracked(4), l->scheduler());
        *resumed = true;
      };
      loop.spawn(ask_on_loop(cli, &loop, &resumed));
      CHECK(loop.poll() == 1);
    }
    auto r = srv.try_wait();
    REQUIRE(r);
    REQUIRE(r->has_value());
    auto rep = (*r)->ctx.reply(tracked(5));
    REQUIRE_FALSE(rep);
    CHECK(rep.error() == errc::origin_disappeared);
  }
  CHECK_FALSE(resumed);
}

TEST_CASE("loop_destroyed_after_the_reply_scheduled_the_resumption") {
  // The reply was delivered and the loop queued the coroutine; destroying the loop destroys
  // the task without resuming it, and the undelivered reply is destroyed exactly once.
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  bool resumed = false;
  {
    ump::run_loop loop;
    auto ask = [](ump::client<tracked, tracked> c, ump::run_loop* l, bool* resumed) -> ump::task<void> {
      auto r = co_await c.areq(tracked(1), l->scheduler());
      *resumed = true;
    };
    loop.spawn(ask(cli, &loop, &resumed));
    CHECK(loop.poll() == 1);
    auto r = srv.try_wait();
    REQUIRE(r);
    REQUIRE(r->has_value());
    CHECK((*r)->ctx.reply(tracked(2)));  // delivered: the resumption is queued
  }
  CHECK_FALSE(resumed);
}

TEST_CASE("server_coroutine_destroyed_while_suspended_in_async_wait") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  bool resumed = false;
  auto serve_once = [](ump::server<tracked, tracked>& s, bool* resumed) -> ump::task<void> {
    auto r = co_await s.async_wait();
    *resumed = true;
  };
  {
    auto o = own(serve_once(srv, &resumed));
    REQUIRE_FALSE(o.done());
  }                                     // the waiter is withdrawn
  auto wr = cli.req_async(tracked(8));  // a send after that touches nothing dead
  REQUIRE(wr.valid());
  auto r = srv.try_wait();  // the server itself is still usable
  REQUIRE(r);
  REQUIRE(r->has_value());
  CHECK((*r)->ctx.reply(tracked((*r)->msg.value() + 1)));
  auto rep = wr.wait();
  REQUIRE(rep);
  CHECK(rep->value() == 9);
  CHECK_FALSE(resumed);
}

// handoff, handoff_scheduler, drive: tests/async/helpers.hpp.
using ump_async_test::drive;
using ump_async_test::handoff;
using ump_async_test::handoff_scheduler;

TEST_CASE("reply_racing_await_suspend_registration") {
  // A server thread replies the moment it receives each request, while the coroutine (on
  // this thread) is between sending and registering its waiter (await_ready /
  // await_suspend). Either the registration wins (suspend, handed back by the reply) or the
  // reply wins (no suspension): every round must get exactly its own reply. The race must
  // have gone both ways: batches of rounds repeat (up to a bound) until each side has won
  // at least once.
  const int rounds = scaled(1000000);
  constexpr int max_batches = 50;
  auto [srv, cli] = ump::channel<int, int>();
  std::thread server(blocking_doubling_server, std::move(srv));
  handoff h;
  long wrong = 0;
  long total = 0;
  auto body = [](int_client c, handoff* h, int n, long* wrong) -> ump::task<void> {
    for (int i = 0; i < n; ++i) {
      auto r = co_await c.areq(i, handoff_scheduler{h});
      if (!r || *r != 2 * i) ++*wrong;
    }
  };
  for (int batch = 0; batch < max_batches; ++batch) {
    auto o = own(body(cli, &h, rounds, &wrong));
    drive(o, h);
    o.reset();  // its frame holds a client copy
    total += rounds;
    const long suspended = h.scheduled.load();
    if (suspended > 0 && suspended < total) break;
  }
  { auto last = std::move(cli); }
  server.join();
  CHECK(wrong == 0);
  MESSAGE("suspended in " << h.scheduled.load() << " of " << total << " rounds");
  CHECK_MESSAGE(h.scheduled.load() > 0, "the registration never won the race");
  CHECK_MESSAGE(h.scheduled.load() < total, "the reply never won the race");
}

TEST_CASE("wait_reply_await_racing_the_reply") {
  // As above, through req_async + co_await on the wait_reply, resuming through a run_loop
  // (which sleeps between rounds, so fewer rounds): the request is sent by req_async, so the
  // reply often lands before the coroutine even reaches co_await.
  const int rounds = scaled(20000);
  auto [srv, cli] = ump::channel<int, int>();
  std::thread server(blocking_doubling_server, std::move(srv));
  ump::run_loop loop;
  long wrong = 0;
  auto body = [](int_client c, ump::run_loop* l, int n, long* wrong) -> ump::task<void> {
    for (int i = 0; i < n; ++i) {
      auto wr = c.req_async(i);
      auto aw = std::move(wr).async_wait(l->scheduler());
      auto r = co_await std::move(aw);
      if (!r || *r != 2 * i) ++*wrong;
    }
  };
  loop.run(body(cli, &loop, rounds, &wrong));
  { auto last = std::move(cli); }
  server.join();
  CHECK(wrong == 0);
}

}  // namespace
