// Tests for ump/reply_context.hpp and ump/wait_reply.hpp: every way a request can end, seen
// from both sides. no_reply, app_error, origin_disappeared (requester gave up before or
// after the server took the request, or timed out), contexts moved across objects and
// threads, and the racy probes.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "support/support.hpp"
#include "ump/ump.hpp"

using ump_test::failure;
using ump_test::lifetime_check;
using ump_test::tracked;

namespace {

using context_t = ump::reply_context<tracked, int>;

}  // namespace

TEST_CASE("context_destroyed_unreplied_gives_no_reply") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();

  // Requester not waiting yet (req_async).
  auto w = cli.req_async(tracked(1));
  REQUIRE(w.valid());
  {
    auto r = srv.wait();
    REQUIRE(r.has_value());
    CHECK(r->ctx.pending());
  }
  CHECK(w.ready());
  CHECK(failure(w.wait()) == ump::errc::no_reply);

  // Requester blocked in req() on another thread.
  std::optional<ump::errc> outcome;
  std::thread requester([&c = cli, &outcome] { outcome = failure(c.req(tracked(2))); });
  {
    auto r = srv.wait();
    REQUIRE(r.has_value());
  }
  requester.join();
  CHECK(outcome == ump::errc::no_reply);
}

TEST_CASE("fail_gives_app_error_with_value") {
  lifetime_check guard;
  const long before = tracked::live();
  // The app error is itself a tracked object: it must be delivered and destroyed once.
  auto [srv, cli] = ump::channel<tracked, tracked, tracked>();
  std::optional<std::uint64_t> app;
  std::optional<ump::errc> code;
  std::thread requester([&c = cli, &app, &code] {
    auto r = c.req(tracked(1));
    code = failure(r);
    if (code == ump::errc::app_error) app = r.error().app().value();
  });
  auto r = srv.wait();
  REQUIRE(r.has_value());
  CHECK(r->ctx.fail(tracked(42)).has_value());
  CHECK_FALSE(r->ctx.pending());
  requester.join();
  CHECK(code == ump::errc::app_error);
  CHECK(app == 42u);
  r = ump::error<tracked>(ump::errc::no_reply);  // drop the received message
  CHECK(tracked::live() == before);
}

TEST_CASE("reply_after_requester_gave_up_gives_origin_disappeared") {
  lifetime_check guard;
  const long before = tracked::live();
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto w = cli.req_async(tracked(1));
  REQUIRE(w.valid());
  auto r = srv.wait();
  REQUIRE(r.has_value());
  CHECK(r->ctx.requester_waiting());
  { auto gone = std::move(w); }  // the wait_reply is destroyed: requester gives up
  CHECK_FALSE(r->ctx.requester_waiting());

  const long with_msg = tracked::live();
  CHECK(failure(r->ctx.reply(tracked(2))) == ump::errc::origin_disappeared);
  // The reply value was destroyed by reply(), exactly once.
  CHECK(tracked::live() == with_msg);

  // fail() reports the same, and destroys the error value.
  auto w2 = cli.req_async(tracked(3));
  REQUIRE(w2.valid());
  auto r2 = srv.wait();
  REQUIRE(r2.has_value());
  { auto gone = std::move(w2); }
  CHECK(failure(r2->ctx.fail(5)) == ump::errc::origin_disappeared);

  r = ump::error<int>(ump::errc::no_reply);
  r2 = ump::error<int>(ump::errc::no_reply);
  CHECK(tracked::live() == before);
}

TEST_CASE("requester_waiting_probe") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::optional<ump::wait_reply<tracked, int>> w;
  {
    auto sent = cli.req_async(tracked(1));
    REQUIRE(sent.valid());
    w.emplace(std::move(sent));
  }
  auto r = srv.wait();
  REQUIRE(r.has_value());
  for (int i = 0; i < 3; ++i) CHECK(r->ctx.requester_waiting());  // stays true while it waits
  w.reset();
  for (int i = 0; i < 3; ++i) CHECK_FALSE(r->ctx.requester_waiting());  // false is final
  // Moving the context carries the probe's answer with it.
  auto moved = std::move(r->ctx);
  CHECK_FALSE(moved.requester_waiting());
  CHECK(failure(moved.reply(tracked(0))) == ump::errc::origin_disappeared);

  // A requester blocked in req() on another thread is waiting.
  std::optional<std::uint64_t> got;
  std::thread requester([&c = cli, &got] {
    auto x = c.req(tracked(2));
    if (x.has_value()) got = x->value();
  });
  auto r2 = srv.wait();
  REQUIRE(r2.has_value());
  CHECK(r2->ctx.requester_waiting());
  CHECK(r2->ctx.reply(tracked(3)).has_value());
  requester.join();
  CHECK(got == 3u);
}

TEST_CASE("reply_from_third_thread") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  int written_by_replier = 0;  // plain data: the reply must publish it to the requester
  std::optional<std::uint64_t> got;
  int seen_by_requester = -1;
  std::thread requester([&c = cli, &got, &seen_by_requester, &written_by_replier] {
    auto r = c.req(tracked(10));
    if (r.has_value()) got = r->value();
    seen_by_requester = written_by_replier;
  });
  std::thread server([&s = srv, &written_by_replier] {
    auto r = s.wait();
    CHECK(r.has_value());
    if (!r.has_value()) return;
    const std::uint64_t v = r->msg.value();
    std::thread replier([ctx = std::move(r->ctx), v, &written_by_replier]() mutable {
      written_by_replier = 7;
      CHECK(ctx.reply(tracked(v + 1)).has_value());
    });
    replier.join();
  });
  server.join();
  requester.join();
  CHECK(got == 11u);
  CHECK(seen_by_requester == 7);
}

TEST_CASE("reply_and_fail_consume_an_lvalue_or_an_rvalue_context") {
  // The four forms: lvalue and rvalue, reply and fail. Each consumes the context, delivers
  // exactly once, and its status may be dropped without a cast (this file compiles with
  // -Werror in the release modes).
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto a = cli.req_async(tracked(1));
  auto b = cli.req_async(tracked(2));
  auto c = cli.req_async(tracked(3));
  auto d = cli.req_async(tracked(4));
  REQUIRE_FALSE((a.ready() || b.ready() || c.ready() || d.ready()));  // sent, not yet answered
  auto ra = srv.wait();
  auto rb = srv.wait();
  auto rc = srv.wait();
  auto rd = srv.wait();
  REQUIRE((ra && rb && rc && rd));
  ra->ctx.reply(tracked(10));
  std::move(rb->ctx).reply(tracked(20));
  rc->ctx.fail(30);
  const ump::reply_status<int> st = std::move(rd->ctx).fail(40);
  CHECK(st.delivered());
  for (auto* r : {&ra, &rb, &rc, &rd}) CHECK_FALSE((*r)->ctx.pending());
  CHECK(a.wait()->value() == 10);
  CHECK(b.wait()->value() == 20);
  auto fc = c.wait();
  REQUIRE(failure(fc) == ump::errc::app_error);
  CHECK(fc.error().app() == 30);
  auto fd = d.wait();
  REQUIRE(failure(fd) == ump::errc::app_error);
  CHECK(fd.error().app() == 40);
}

TEST_CASE("context_moved_many_times_then_replied") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto w = cli.req_async(tracked(1));
  REQUIRE(w.valid());
  auto r = srv.wait();
  REQUIRE(r.has_value());

  std::optional<context_t> ctx(std::move(r->ctx));
  CHECK_FALSE(r->ctx.pending());
  std::vector<context_t> hops;
  for (int i = 0; i < 100; ++i) {
    hops.push_back(std::move(*ctx));  // move-construct (and vector reallocations move again)
    CHECK_FALSE(ctx->pending());
    ctx.emplace(std::move(hops.back()));
    hops.pop_back();
  }
  // Across a thread and back, then move-assigned onto an empty (moved-from) context.
  std::thread hop([&ctx] {
    context_t local = std::move(*ctx);
    *ctx = std::move(local);
  });
  hop.join();
  context_t target = std::move(*ctx);
  context_t last = std::move(target);
  target = std::move(last);
  CHECK(target.pending());
  CHECK_FALSE(w.ready());
  CHECK(target.reply(tracked(2)).has_value());
  auto out = w.wait();
  REQUIRE(out.has_value());
  CHECK(out->value() == 2);
}

TEST_CASE("context_move_assigned_over_a_live_one_answers_it_no_reply") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto a = cli.req_async(tracked(1));
  auto b = cli.req_async(tracked(2));
  REQUIRE_FALSE((a.ready() || b.ready()));  // sent, not yet answered
  auto ra = srv.wait();
  auto rb = srv.wait();
  REQUIRE((ra && rb));
  ra->ctx = std::move(rb->ctx);  // a's obligation is dropped: a gets no_reply
  CHECK(a.ready());
  CHECK(failure(a.wait()) == ump::errc::no_reply);
  CHECK_FALSE(b.ready());
  CHECK(ra->ctx.reply(tracked(20)).has_value());
  auto out = b.wait();
  REQUIRE(out.has_value());
  CHECK(out->value() == 20);
}

TEST_CASE("requester_gave_up_before_server_took_request") {
  lifetime_check guard;
  const long before = tracked::live();
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  { auto abandoned = cli.req_async(tracked(1)); }
  { auto abandoned = cli.req_async(tracked(2)); }

  // The server still receives both (they may have side effects); wait() does not fail.
  auto r = srv.wait();
  REQUIRE(r.has_value());
  CHECK(r->msg.value() == 1);
  CHECK_FALSE(r->ctx.requester_waiting());
  CHECK(failure(r->ctx.reply(tracked(10))) == ump::errc::origin_disappeared);
  auto t = srv.try_wait();
  REQUIRE(t.has_value());
  REQUIRE(t->has_value());
  CHECK((*t)->msg.value() == 2);
  CHECK_FALSE((*t)->ctx.requester_waiting());
  // And the channel goes on normally.
  auto w = cli.req_async(tracked(3));
  REQUIRE(w.valid());
  auto r3 = srv.wait();
  REQUIRE(r3.has_value());
  CHECK(r3->ctx.requester_waiting());
  CHECK(r3->ctx.reply(tracked(30)).has_value());
  CHECK(w.wait().has_value());

  r = ump::error<int>(ump::errc::no_reply);
  t = ump::error<int>(ump::errc::no_reply);  // dropped unreplied: nobody notices
  r3 = ump::error<int>(ump::errc::no_reply);
  CHECK(tracked::live() == before);
}

TEST_CASE("wait_reply_wait_for_times_out_then_reply_gets_origin_disappeared") {
  lifetime_check guard;
  const long before = tracked::live();
  auto [srv, cli] = ump::channel<tracked, tracked, int>();

  SUBCASE("server takes the request after the time-out") {
    auto w = cli.req_async(tracked(1));
    REQUIRE(w.valid());
    CHECK(failure(w.wait_for(std::chrono::milliseconds(1))) == ump::errc::timed_out);
    CHECK_FALSE(w.valid());
    CHECK_FALSE(w.ready());
    auto r = srv.wait();
    REQUIRE(r.has_value());
    CHECK_FALSE(r->ctx.requester_waiting());
    CHECK(failure(r->ctx.reply(tracked(2))) == ump::errc::origin_disappeared);
  }
  SUBCASE("server holds the request across the time-out") {
    auto w = cli.req_async(tracked(1));
    REQUIRE(w.valid());
    auto r = srv.wait();
    REQUIRE(r.has_value());
    CHECK(r->ctx.requester_waiting());
    CHECK(failure(w.wait_until(std::chrono::steady_clock::now() + std::chrono::microseconds(100))) ==
          ump::errc::timed_out);
    CHECK_FALSE(r->ctx.requester_waiting());
    CHECK(failure(r->ctx.fail(3)) == ump::errc::origin_disappeared);
  }
  SUBCASE("deadline already passed, reply not there yet") {
    auto w = cli.req_async(tracked(1));
    REQUIRE(w.valid());
    CHECK(failure(w.wait_for(std::chrono::nanoseconds(0))) == ump::errc::timed_out);
    auto r = srv.wait();
    REQUIRE(r.has_value());
    CHECK(failure(r->ctx.reply(tracked(2))) == ump::errc::origin_disappeared);
  }
  SUBCASE("reply already there: a passed deadline still returns it") {
    auto w = cli.req_async(tracked(1));
    REQUIRE(w.valid());
    auto r = srv.wait();
    REQUIRE(r.has_value());
    CHECK(r->ctx.reply(tracked(2)).has_value());
    auto out = w.wait_for(std::chrono::nanoseconds(0));
    REQUIRE(out.has_value());
    CHECK(out->value() == 2);
  }
  CHECK(tracked::live() == before);
}

TEST_CASE("wait_reply_time_out_racing_the_reply") {
  lifetime_check guard;
  // The requester's deadline and the replier's publish race; each round ends in exactly one
  // of "reply delivered" or "timed out + origin_disappeared", never both, never neither.
  const int rounds = ump_test::scaled(5000);
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::atomic<int> replier_delivered{0};
  std::atomic<int> replier_gone{0};
  std::thread server([&s = srv, &replier_delivered, &replier_gone] {
    for (;;) {
      auto r = s.wait();
      if (!r.has_value()) break;
      // ORDERING: relaxed; read after join().
      if (r->ctx.reply(tracked(r->msg.value())).has_value())
        replier_delivered.fetch_add(1, std::memory_order_relaxed);
      else
        replier_gone.fetch_add(1, std::memory_order_relaxed);
    }
  });
  const long deadlines[] = {0, 200, 1000, 2000, 5000, 50000};  // ns
  int got = 0;
  int timed_out = 0;
  int wrong = 0;
  for (int i = 0; i < rounds; ++i) {
    auto w = cli.req_async(tracked(static_cast<std::uint64_t>(i)));
    REQUIRE(w.valid());
    auto r = w.wait_for(std::chrono::nanoseconds(deadlines[static_cast<std::size_t>(i) % 6]));
    if (r.has_value()) {
      ++got;
      if (r->value() != static_cast<std::uint64_t>(i)) ++wrong;
    } else if (r.error().code() == ump::errc::timed_out) {
      ++timed_out;
    } else {
      ++wrong;
    }
  }
  { auto gone = std::move(cli); }
  server.join();
  MESSAGE("delivered " << got << ", timed out " << timed_out);
  CHECK(wrong == 0);
  CHECK(got + timed_out == rounds);
  CHECK(replier_delivered.load() == got);
  CHECK(replier_gone.load() == timed_out);
}

TEST_CASE("ready_probe") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto w = cli.req_async(tracked(1));
  REQUIRE(w.valid());
  CHECK_FALSE(w.ready());
  CHECK(w.valid());
  auto r = srv.wait();
  REQUIRE(r.has_value());
  CHECK_FALSE(w.ready());  // taken by the server is not answered
  CHECK(r->ctx.reply(tracked(5)).has_value());
  CHECK(w.ready());
  CHECK(w.ready());  // the probe does not consume
  CHECK(w.valid());
  auto out = w.wait();
  REQUIRE(out.has_value());
  CHECK(out->value() == 5);
  CHECK_FALSE(w.valid());
  CHECK_FALSE(w.ready());

  // Every outcome makes it ready: no_reply, app_error, server_disappeared.
  auto a = cli.req_async(tracked(2));
  auto b = cli.req_async(tracked(3));
  auto c = cli.req_async(tracked(4));
  REQUIRE_FALSE((a.ready() || b.ready() || c.ready()));  // sent, not yet answered
  { auto dropped = srv.wait(); }
  CHECK(a.ready());
  auto rb = srv.wait();
  REQUIRE(rb.has_value());
  CHECK(rb->ctx.fail(9).has_value());
  CHECK(b.ready());
  CHECK_FALSE(c.ready());
  { auto gone = std::move(srv); }
  CHECK(c.ready());
  CHECK(failure(a.wait()) == ump::errc::no_reply);
  CHECK(failure(b.wait()) == ump::errc::app_error);
  CHECK(failure(c.wait()) == ump::errc::server_disappeared);
}

TEST_CASE("fail_with_string_app_error_crosses_threads") {
  auto [srv, cli] = ump::channel<int, int, std::string>();
  std::optional<std::string> app;
  std::thread requester([&c = cli, &app] {
    auto r = c.req(1);
    if (!r.has_value() && r.error().is_app_error()) app = std::move(r).error().app();
  });
  auto r = srv.wait();
  REQUIRE(r.has_value());
  CHECK(r->ctx.fail(std::string(100, 'x')).has_value());
  requester.join();
  CHECK(app == std::string(100, 'x'));
}

TEST_CASE("extreme_timeouts_saturate_instead_of_overflowing") {
  auto [srv, cli] = ump::channel<int, int>();
  // A deadline far in the past times out at once; one beyond the clock's range is "none"
  // and must not wrap into the past.
  auto past = cli.req_async(1);
  CHECK(past.wait_for(std::chrono::nanoseconds::min()).error() == ump::errc::timed_out);
  CHECK(srv.wait_for(std::chrono::hours::min()).has_value());  // the abandoned request is still delivered
  auto far = cli.req_async(2);
  std::thread replier([&s = srv] {
    auto r = s.wait_for(std::chrono::hours::max());
    REQUIRE(r.has_value());
    r->ctx.reply(r->msg * 10);
  });
  auto got = far.wait_for(std::chrono::hours::max());
  replier.join();
  REQUIRE(got.has_value());
  CHECK(*got == 20);
}
