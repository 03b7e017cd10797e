// Tests for ump/server.hpp: the server's lifecycle. The server dropped with requests queued,
// while clients are blocked, while it still holds reply contexts; the last client dropped
// while the server is blocked or after sending; try_wait, wait_for and the racy probes.
//
// Synchronisation is always real: joins, the channel itself, or polling a probe that another
// running thread is bound to change (queued(), the process-wide park counter). Nothing
// sleeps, and no assertion depends on timing.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "support/support.hpp"
#include "ump/detail/park.hpp"
#include "ump/ump.hpp"

using ump_test::failure;
using ump_test::lifetime_check;
using ump_test::tracked;

namespace {

using client_t = ump::client<tracked, tracked, int>;
using server_t = ump::server<tracked, tracked, int>;
using wait_reply_t = ump::wait_reply<tracked, int>;

// The error code of a failed result, nullopt for a value.
// Polls `pred` (a racy probe another running thread is bound to make true), yielding the
// core in between. A wrong program hangs here and hits the ctest timeout.
template <class Pred>
void yield_until(Pred pred) {
  while (!pred()) std::this_thread::yield();
}

// Waits until at least `n` more park calls (futex waits) have been made in this process
// since `before`: the thread we wait for has given up spinning and published its parked
// state. Only the threads of the running test case park, so the count is theirs.
void yield_until_parked(std::uint64_t before, std::uint64_t n = 1) {
  yield_until([&] { return ump::detail::read_park_stats().parks >= before + n; });
}

std::uint64_t parks_now() { return ump::detail::read_park_stats().parks; }

// Sends n requests through `clients` (round robin) without waiting, drops the server, and
// checks every outcome and every message's lifetime.
void drop_server_with_queued(int n) {
  lifetime_check guard;
  const long before = tracked::live();
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::vector<client_t> clients{cli, cli, cli};
  clients.push_back(std::move(cli));

  std::vector<wait_reply_t> pending;
  pending.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto w = clients[static_cast<std::size_t>(i) % clients.size()].req_async(tracked(static_cast<std::uint64_t>(i)));
    REQUIRE(w.valid());
    pending.push_back(std::move(w));
  }
  CHECK(srv.queued() == static_cast<std::size_t>(n));
  CHECK(srv.empty() == (n == 0));
  CHECK(tracked::live() - before == n);

  { auto gone = std::move(srv); }
  // The drop destroyed every queued message, before any requester looked.
  CHECK(tracked::live() == before);

  int wrong = 0;
  for (auto& w : pending) {
    if (!w.ready()) ++wrong;  // the drop answered every request already
    if (failure(w.wait()) != ump::errc::server_disappeared) ++wrong;
    if (w.valid()) ++wrong;
  }
  CHECK(wrong == 0);

  // Later sends fail at once, on every clone, and destroy their message.
  for (auto& c : clients) CHECK(failure(c.req(tracked(99))) == ump::errc::server_disappeared);
  CHECK(tracked::live() == before);
}

}  // namespace

TEST_CASE("server_dropped_with_0_queued_requests") { drop_server_with_queued(0); }
TEST_CASE("server_dropped_with_1_queued_requests") { drop_server_with_queued(1); }
// The queue's block size is 32: one short of a block, exactly one, one past.
TEST_CASE("server_dropped_with_31_queued_requests") { drop_server_with_queued(31); }
TEST_CASE("server_dropped_with_32_queued_requests") { drop_server_with_queued(32); }
TEST_CASE("server_dropped_with_33_queued_requests") { drop_server_with_queued(33); }
TEST_CASE("server_dropped_with_10000_queued_requests") { drop_server_with_queued(10000); }

TEST_CASE("send_after_server_gone") {
  lifetime_check guard;
  const long before = tracked::live();
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  { auto gone = std::move(srv); }

  CHECK(failure(cli.req(tracked(1))) == ump::errc::server_disappeared);
  CHECK(tracked::live() == before);  // the message was destroyed, not leaked

  auto w = cli.req_async(tracked(2));
  CHECK(w.ready());  // the early outcome travels inside the wait_reply
  CHECK(failure(w.wait()) == ump::errc::server_disappeared);
  CHECK(tracked::live() == before);

  // A clone and an upgraded weak client fail the same way.
  auto clone = cli;
  CHECK(failure(clone.req(tracked(3))) == ump::errc::server_disappeared);
  auto up = cli.weak().upgrade();
  REQUIRE(up.has_value());
  CHECK(failure(up->req(tracked(4))) == ump::errc::server_disappeared);
  CHECK(tracked::live() == before);
}

TEST_CASE("server_dropped_while_client_blocked_in_req") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  const auto parks = parks_now();
  std::optional<ump::errc> outcome;
  std::thread requester([&c = cli, &outcome] { outcome = failure(c.req(tracked(1))); });

  // The request is counted in the queue, and the requester has parked waiting for it.
  yield_until([&s = srv] { return s.queued() == 1; });
  yield_until_parked(parks);
  { auto gone = std::move(srv); }
  requester.join();
  CHECK(outcome == ump::errc::server_disappeared);
}

TEST_CASE("server_dropped_while_client_blocked_in_wait_reply") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  const auto parks = parks_now();
  std::atomic<bool> sent{false};
  std::optional<ump::errc> outcome;
  std::thread requester([&c = cli, &sent, &outcome] {
    auto w = c.req_async(tracked(1));
    // ORDERING: release, pairs with the acquire load below: the request is in the queue.
    sent.store(true, std::memory_order_release);
    if (w.valid()) outcome = failure(w.wait());
  });

  // ORDERING: acquire, pairs with the release store above.
  yield_until([&] { return sent.load(std::memory_order_acquire); });
  CHECK(srv.queued() == 1);
  yield_until_parked(parks);
  { auto gone = std::move(srv); }
  requester.join();
  CHECK(outcome == ump::errc::server_disappeared);
}

TEST_CASE("server_dropped_while_several_clients_blocked_in_req") {
  lifetime_check guard;
  constexpr int n = 4;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  const auto parks = parks_now();
  std::vector<std::optional<ump::errc>> outcomes(n);
  std::vector<std::thread> requesters;
  for (int i = 0; i < n; ++i) {
    requesters.emplace_back([c = cli, &out = outcomes[static_cast<std::size_t>(i)], i]() mutable {
      out = failure(c.req(tracked(static_cast<std::uint64_t>(i))));
    });
  }
  yield_until([&s = srv] { return s.queued() == n; });
  yield_until_parked(parks, n);
  { auto gone = std::move(srv); }
  for (auto& t : requesters) t.join();
  for (const auto& o : outcomes) CHECK(o == ump::errc::server_disappeared);
}

TEST_CASE("server_dropped_holding_unanswered_contexts") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto a = cli.req_async(tracked(1));
  auto b = cli.req_async(tracked(2));
  auto c = cli.req_async(tracked(3));
  REQUIRE_FALSE((a.ready() || b.ready() || c.ready()));  // sent, not yet answered

  auto ra = srv.wait();
  auto rb = srv.wait();
  auto rc = srv.wait();
  REQUIRE((ra && rb && rc));
  CHECK(ra->msg.value() == 1);
  CHECK(rb->msg.value() == 2);
  CHECK(rc->msg.value() == 3);
  auto ctx_a = std::move(ra->ctx);
  auto ctx_b = std::move(rb->ctx);
  auto ctx_c = std::move(rc->ctx);

  { auto gone = std::move(srv); }
  // New requests fail, but the contexts already handed out still answer.
  CHECK(failure(cli.req(tracked(4))) == ump::errc::server_disappeared);
  CHECK_FALSE(a.ready());

  CHECK(ctx_a.reply(tracked(10)).has_value());
  CHECK(ctx_b.fail(7).has_value());
  { auto dropped = std::move(ctx_c); }

  auto oa = a.wait();
  REQUIRE(oa.has_value());
  CHECK(oa->value() == 10);
  auto ob = b.wait();
  REQUIRE(failure(ob) == ump::errc::app_error);
  CHECK(ob.error().app() == 7);
  CHECK(failure(c.wait()) == ump::errc::no_reply);
}

TEST_CASE("server_dropped_holding_context_while_client_blocked_in_req") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::optional<std::uint64_t> got;
  std::thread requester([&c = cli, &got] {
    auto r = c.req(tracked(5));
    if (r.has_value()) got = r->value();
  });
  auto req = srv.wait();
  REQUIRE(req.has_value());
  auto ctx = std::move(req->ctx);
  const std::uint64_t v = req->msg.value();
  { auto gone = std::move(srv); }
  CHECK(ctx.reply(tracked(v * 3)).has_value());
  requester.join();
  CHECK(got == 15u);
}

TEST_CASE("last_client_dropped_while_server_blocked") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto weak = cli.weak();  // a weak client must not keep the server waiting
  const auto parks = parks_now();
  std::optional<ump::errc> outcome;
  std::thread server([&s = srv, &outcome] { outcome = failure(s.wait()); });

  yield_until_parked(parks);
  { auto gone = std::move(cli); }
  server.join();
  CHECK(outcome == ump::errc::clients_disappeared);
  CHECK_FALSE(weak.upgrade().has_value());
}

TEST_CASE("last_client_dropped_on_another_thread_while_server_blocked_in_wait_for") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto clone = cli;
  { auto gone = std::move(cli); }
  const auto parks = parks_now();
  std::optional<ump::errc> outcome;
  std::thread server([&s = srv, &outcome] { outcome = failure(s.wait_for(std::chrono::hours(1))); });
  yield_until_parked(parks);
  std::thread dropper([c = std::move(clone)]() mutable { auto gone = std::move(c); });
  dropper.join();
  server.join();
  CHECK(outcome == ump::errc::clients_disappeared);
}

TEST_CASE("last_client_sends_k_then_dies") {
  lifetime_check guard;
  const long before = tracked::live();
  const int k = ump_test::scaled(1000);
  auto [srv, cli] = ump::channel<tracked, tracked, int>();

  std::vector<std::uint64_t> seen;
  std::optional<ump::errc> end;
  std::thread server([&s = srv, &seen, &end] {
    for (;;) {
      auto r = s.wait();
      if (!r.has_value()) {
        end = r.error().code();
        break;
      }
      seen.push_back(r->msg.value());
      r->ctx.reply(tracked(r->msg.value() + 1));
    }
  });

  std::vector<wait_reply_t> pending;
  for (int i = 0; i < k; ++i) {
    auto w = cli.req_async(tracked(static_cast<std::uint64_t>(i)));
    REQUIRE(w.valid());
    pending.push_back(std::move(w));
  }
  { auto gone = std::move(cli); }  // wait_replies outlive their client
  server.join();

  REQUIRE(seen.size() == static_cast<std::size_t>(k));
  int out_of_order = 0;
  for (int i = 0; i < k; ++i)
    if (seen[static_cast<std::size_t>(i)] != static_cast<std::uint64_t>(i)) ++out_of_order;
  CHECK(out_of_order == 0);
  CHECK(end == ump::errc::clients_disappeared);
  // clients_disappeared is final.
  CHECK(failure(srv.wait()) == ump::errc::clients_disappeared);

  int wrong = 0;
  for (int i = 0; i < k; ++i) {
    auto r = pending[static_cast<std::size_t>(i)].wait();
    if (!r.has_value() || r->value() != static_cast<std::uint64_t>(i) + 1) ++wrong;
  }
  CHECK(wrong == 0);
  CHECK(tracked::live() == before);
}

TEST_CASE("last_client_sends_k_abandons_them_then_dies") {
  lifetime_check guard;
  const long before = tracked::live();
  const int k = 100;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  for (int i = 0; i < k; ++i) {
    auto w = cli.req_async(tracked(static_cast<std::uint64_t>(i)));
    REQUIRE(w.valid());
  }  // each wait_reply is destroyed at once: the request is abandoned, not withdrawn
  { auto gone = std::move(cli); }

  int delivered = 0;
  int origin_gone = 0;
  for (;;) {
    auto r = srv.wait();
    if (!r.has_value()) {
      CHECK(r.error().code() == ump::errc::clients_disappeared);
      break;
    }
    CHECK(r->msg.value() == static_cast<std::uint64_t>(delivered));
    ++delivered;
    CHECK_FALSE(r->ctx.requester_waiting());
    if (failure(r->ctx.reply(tracked(0))) == ump::errc::origin_disappeared) ++origin_gone;
  }
  CHECK(delivered == k);
  CHECK(origin_gone == k);
  CHECK(tracked::live() == before);
}

TEST_CASE("try_wait_on_empty_returns_nothing") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto none = srv.try_wait();
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());

  auto w = cli.req_async(tracked(5));
  REQUIRE(w.valid());
  auto got = srv.try_wait();
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK((*got)->msg.value() == 5);
  CHECK((*got)->ctx.reply(tracked(6)).has_value());
  auto r = w.wait();
  REQUIRE(r.has_value());
  CHECK(r->value() == 6);

  auto again = srv.try_wait();
  REQUIRE(again.has_value());
  CHECK_FALSE(again->has_value());
}

TEST_CASE("try_wait_after_clients_gone") {
  lifetime_check guard;
  const long before = tracked::live();
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto a = cli.req_async(tracked(1));
  auto b = cli.req_async(tracked(2));
  REQUIRE_FALSE((a.ready() || b.ready()));  // sent, not yet answered
  { auto gone = std::move(cli); }

  // Queued requests come first, then clients_disappeared, for good.
  auto first = srv.try_wait();
  REQUIRE(first.has_value());
  REQUIRE(first->has_value());
  CHECK((*first)->msg.value() == 1);
  auto second = srv.try_wait();
  REQUIRE(second.has_value());
  REQUIRE(second->has_value());
  CHECK((*second)->msg.value() == 2);
  for (int i = 0; i < 3; ++i) CHECK(failure(srv.try_wait()) == ump::errc::clients_disappeared);
  CHECK(failure(srv.wait()) == ump::errc::clients_disappeared);
  CHECK(failure(srv.wait_for(std::chrono::hours(1))) == ump::errc::clients_disappeared);

  first = ump::error<int>(ump::errc::no_reply);  // contexts dropped unreplied
  second = ump::error<int>(ump::errc::no_reply);
  CHECK(failure(a.wait()) == ump::errc::no_reply);
  CHECK(failure(b.wait()) == ump::errc::no_reply);
  CHECK(tracked::live() == before);
}

TEST_CASE("try_wait_with_no_client_ever_sending") {
  auto [srv, cli] = ump::channel<int, int>();
  { auto gone = std::move(cli); }
  CHECK(failure(srv.try_wait()) == ump::errc::clients_disappeared);
}

TEST_CASE("wait_for_times_out_without_losing_anything") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();

  // Nothing is sent: each of these must time out (and not report anything else).
  CHECK(failure(srv.wait_for(std::chrono::milliseconds(1))) == ump::errc::timed_out);
  CHECK(failure(srv.wait_for(std::chrono::nanoseconds(0))) == ump::errc::timed_out);
  CHECK(failure(srv.wait_until(std::chrono::steady_clock::now() - std::chrono::seconds(1))) == ump::errc::timed_out);
  CHECK(srv.empty());

  // A queued request is returned even with a deadline already passed.
  auto w = cli.req_async(tracked(1));
  REQUIRE(w.valid());
  auto got = srv.wait_for(std::chrono::nanoseconds(0));
  REQUIRE(got.has_value());
  CHECK(got->msg.value() == 1);
  CHECK(got->ctx.reply(tracked(2)).has_value());
  CHECK(w.wait().has_value());

  // Requests arriving while the server keeps timing out: every one is delivered, in order.
  const int n = ump_test::scaled(2000);
  std::atomic<int> wrong{0};
  std::thread requester([c = cli, &wrong]() mutable {
    for (int i = 0; i < n; ++i) {
      auto r = c.req(tracked(static_cast<std::uint64_t>(i)));
      if (!r.has_value() || r->value() != static_cast<std::uint64_t>(i) * 2)
        // ORDERING: relaxed; read after join().
        wrong.fetch_add(1, std::memory_order_relaxed);
    }
  });
  const std::chrono::nanoseconds deadlines[] = {std::chrono::nanoseconds(0), std::chrono::nanoseconds(500),
                                                std::chrono::microseconds(20), std::chrono::microseconds(200)};
  int received = 0;
  long timeouts = 0;
  int out_of_order = 0;
  for (unsigned round = 0; received < n; ++round) {
    auto r = srv.wait_for(deadlines[round % 4]);
    if (!r.has_value()) {
      REQUIRE(r.error().code() == ump::errc::timed_out);
      ++timeouts;
      continue;
    }
    if (r->msg.value() != static_cast<std::uint64_t>(received)) ++out_of_order;
    ++received;
    CHECK(r->ctx.reply(tracked(r->msg.value() * 2)).has_value());
  }
  requester.join();
  MESSAGE("time-outs while requests were in flight: " << timeouts);
  CHECK(out_of_order == 0);
  CHECK(wrong.load() == 0);
  CHECK(srv.empty());
}

TEST_CASE("empty_and_queued_probes") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  CHECK(srv.empty());
  CHECK(srv.queued() == 0);

  std::vector<wait_reply_t> pending;
  for (int i = 0; i < 3; ++i) {
    auto w = cli.req_async(tracked(static_cast<std::uint64_t>(i)));
    REQUIRE(w.valid());
    pending.push_back(std::move(w));
    CHECK_FALSE(srv.empty());
    CHECK(srv.queued() == static_cast<std::size_t>(i) + 1);
  }
  for (int i = 3; i > 0; --i) {
    auto r = srv.wait();
    REQUIRE(r.has_value());
    CHECK(srv.queued() == static_cast<std::size_t>(i) - 1);
    CHECK(srv.empty() == (i == 1));
    CHECK(r->ctx.reply(tracked(0)).has_value());
  }
  // An abandoned request still counts as queued until taken.
  { auto abandoned = cli.req_async(tracked(9)); }
  CHECK(srv.queued() == 1);
  auto r = srv.try_wait();
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK(srv.empty());
  // The probes count messages, not clients.
  { auto gone = std::move(cli); }
  CHECK(srv.empty());
  CHECK(srv.queued() == 0);
  for (auto& w : pending) CHECK(w.wait().has_value());
}

// The server receives in batches (up to 16 at a time): part of the queue sits in its local
// batch after the first wait. Dropping the server then must fail those requests as well as
// the ones still in the queue.
TEST_CASE("server_dropped_after_receiving_one_of_a_batch") {
  lifetime_check guard;
  for (int n : {2, 16, 17, 40}) {
    CAPTURE(n);
    const long before = tracked::live();
    auto [srv, cli] = ump::channel<tracked, tracked, int>();
    std::vector<wait_reply_t> pending;
    for (int i = 0; i < n; ++i) {
      auto w = cli.req_async(tracked(static_cast<std::uint64_t>(i)));
      REQUIRE(w.valid());
      pending.push_back(std::move(w));
    }
    {
      auto first = srv.wait();
      REQUIRE(first.has_value());
      CHECK(first->msg.value() == 0);
      CHECK(srv.queued() == static_cast<std::size_t>(n - 1));
      CHECK(first->ctx.reply(tracked(100)).has_value());
    }
    { auto gone = std::move(srv); }
    int wrong = 0;
    if (auto r0 = pending[0].wait(); !r0.has_value() || r0->value() != 100) ++wrong;
    for (std::size_t i = 1; i < pending.size(); ++i)
      if (failure(pending[i].wait()) != ump::errc::server_disappeared) ++wrong;
    CHECK(wrong == 0);
    CHECK(tracked::live() == before);
  }
}
