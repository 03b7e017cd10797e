// Batch receive (server::wait_many, try_wait_many, async_wait_many; ump and ng): how many a
// batch takes, in which order, when it blocks, and what happens at the clients' end.
#include <doctest/doctest.h>

#include <cstdint>
#include <iterator>
#include <latch>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "support/support.hpp"
#include "ump/ng.hpp"
#include "ump/task.hpp"
#include "ump/ump.hpp"

using ump_test::failure;
using ump_test::lifetime_check;
using ump_test::tracked;

namespace {
using server_t = ump::server<tracked, tracked, int>;
using request_t = server_t::request_type;
}  // namespace

TEST_CASE("wait_many_takes_what_is_queued_up_to_max_in_fifo_order") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::vector<ump::wait_reply<tracked, int>> pending;
  for (std::uint64_t i = 0; i < 10; ++i) pending.push_back(cli.req_async(tracked(i)));

  std::vector<request_t> got;
  auto first = srv.wait_many(std::back_inserter(got), 4);
  REQUIRE(first.has_value());
  CHECK(*first == 4);
  CHECK(srv.queued() == 6);
  auto rest = srv.wait_many(std::back_inserter(got), 100);
  REQUIRE(rest.has_value());
  CHECK(*rest == 6);
  REQUIRE(got.size() == 10);
  for (std::uint64_t i = 0; i < 10; ++i) {
    CHECK(got[i].msg.value() == i);
    got[i].ctx.reply(tracked(i + 100));
  }
  for (std::uint64_t i = 0; i < 10; ++i) CHECK(pending[i].wait()->value() == i + 100);
}

TEST_CASE("try_wait_many_on_an_empty_queue_takes_nothing_and_does_not_block") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::vector<request_t> got;
  auto none = srv.try_wait_many(std::back_inserter(got), 8);
  REQUIRE(none.has_value());
  CHECK(*none == 0);
  CHECK(got.empty());

  auto w = cli.req_async(tracked(1));
  auto one = srv.try_wait_many(std::back_inserter(got), 8);
  REQUIRE(one.has_value());
  CHECK(*one == 1);
  REQUIRE(got.size() == 1);
  got[0].ctx.reply(tracked(2));
  CHECK(w.wait()->value() == 2);
}

TEST_CASE("batches_drain_the_queue_before_clients_disappeared") {
  // The last client goes with requests queued: batches deliver them all first, then report
  // clients_disappeared (wait_many and try_wait_many alike), never an empty success.
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::vector<ump::wait_reply<tracked, int>> pending;
  for (std::uint64_t i = 0; i < 5; ++i) pending.push_back(cli.req_async(tracked(i)));
  { auto last = std::move(cli); }

  std::vector<request_t> got;
  auto a = srv.try_wait_many(std::back_inserter(got), 3);
  REQUIRE(a.has_value());
  CHECK(*a == 3);
  auto b = srv.wait_many(std::back_inserter(got), 3);
  REQUIRE(b.has_value());
  CHECK(*b == 2);
  CHECK(failure(srv.wait_many(std::back_inserter(got), 3)) == ump::errc::clients_disappeared);
  CHECK(failure(srv.try_wait_many(std::back_inserter(got), 3)) == ump::errc::clients_disappeared);
  REQUIRE(got.size() == 5);
  got.clear();  // every context dropped unanswered
  for (auto& w : pending) CHECK(failure(w.wait()) == ump::errc::no_reply);
}

TEST_CASE("wait_many_blocks_until_the_first_message_then_takes_the_rest") {
  // The server blocks in wait_many with nothing queued; a client thread sends a burst. Every
  // message arrives exactly once, in order, in batches of at most 3, the first of at least 1.
  lifetime_check guard;
  auto chan = ump::channel<tracked, tracked, int>();
  auto& srv = chan.first;
  auto& cli = chan.second;
  constexpr std::uint64_t total = 2000;
  std::vector<std::uint64_t> seen;
  std::vector<std::size_t> sizes;
  std::thread server([&, s = std::move(srv)]() mutable {
    for (;;) {
      std::vector<request_t> batch;
      auto n = s.wait_many(std::back_inserter(batch), 3);
      if (!n) break;  // clients_disappeared
      sizes.push_back(*n);
      for (auto& r : batch) {
        seen.push_back(r.msg.value());
        r.ctx.reply(tracked(r.msg.value() * 2));
      }
    }
  });
  std::thread client([c = std::move(cli)]() mutable {
    std::vector<ump::wait_reply<tracked, int>> burst;
    for (std::uint64_t i = 0; i < total; ++i) {
      burst.push_back(c.req_async(tracked(i)));
      if (burst.size() == 16 || i + 1 == total) {
        for (std::size_t k = 0; k < burst.size(); ++k) {
          const std::uint64_t v = i + 1 - burst.size() + k;
          CHECK(burst[k].wait()->value() == v * 2);
        }
        burst.clear();
      }
    }
  });
  client.join();
  server.join();
  REQUIRE(seen.size() == total);
  for (std::uint64_t i = 0; i < total; ++i) CHECK(seen[i] == i);
  for (std::size_t n : sizes) CHECK((n >= 1 && n <= 3));
}

TEST_CASE("ng_batches_mix_posts_and_requests_in_one_fifo") {
  // Inline posts (u64), posts in nodes (std::string) and requests share one order.
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<std::uint64_t, tracked, tracked, int>();
  auto [ssrv, scli] = ump::ng::channel<std::string, tracked, tracked, int>();
  using message_t = decltype(srv)::message_type;
  using smessage_t = decltype(ssrv)::message_type;
  std::vector<ump::wait_reply<tracked, int>> pending;
  for (std::uint64_t i = 0; i < 6; ++i) {
    if (i % 3 == 2) {
      pending.push_back(cli.req_async(tracked(i)));
      pending.push_back(scli.req_async(tracked(i)));
    } else {
      REQUIRE(cli.post(i).has_value());
      REQUIRE(scli.post(std::to_string(i)).has_value());
    }
  }
  std::vector<message_t> got;
  std::vector<smessage_t> sgot;
  REQUIRE(*srv.wait_many(std::back_inserter(got), 64) == 6);
  REQUIRE(*ssrv.try_wait_many(std::back_inserter(sgot), 64) == 6);
  for (std::uint64_t i = 0; i < 6; ++i) {
    REQUIRE(got[i].is_request() == (i % 3 == 2));
    REQUIRE(sgot[i].is_request() == (i % 3 == 2));
    if (got[i].is_request()) {
      CHECK(got[i].req().msg.value() == i);
      CHECK(sgot[i].req().msg.value() == i);
      got[i].req().ctx.reply(tracked(i));
      sgot[i].req().ctx.reply(tracked(i));
    } else {
      CHECK(got[i].post() == i);
      CHECK(sgot[i].post() == std::to_string(i));
    }
  }
  for (auto& w : pending) CHECK(w.wait().has_value());
}

TEST_CASE("async_wait_many_suspends_for_the_first_message_then_takes_the_rest") {
  // A coroutine server fed by a thread: every message once, in order, batches within max,
  // and it ends on clients_disappeared.
  lifetime_check guard;
  auto chan = ump::channel<tracked, tracked, int>();
  auto& srv = chan.first;
  auto& cli = chan.second;
  constexpr std::uint64_t total = 1000;
  struct log {
    std::vector<std::uint64_t> seen;
    bool batches_within_max = true;
    bool ended_on_clients_gone = false;
  } out;
  auto body = [](server_t s, log* l) -> ump::task<void> {
    for (;;) {
      std::vector<request_t> batch;
      auto n = co_await s.async_wait_many(std::back_inserter(batch), 5);
      if (!n) {
        l->ended_on_clients_gone = n.error() == ump::errc::clients_disappeared;
        co_return;
      }
      l->batches_within_max = l->batches_within_max && *n >= 1 && *n <= 5 && batch.size() == *n;
      for (auto& r : batch) {
        l->seen.push_back(r.msg.value());
        r.ctx.reply(tracked(r.msg.value() + 1));
      }
    }
  };
  std::latch started(1);
  std::thread client([&started, c = std::move(cli)]() mutable {
    started.wait();
    for (std::uint64_t i = 0; i < total; ++i) {
      auto r = c.req(tracked(i));
      CHECK((r.has_value() && r->value() == i + 1));
    }
  });
  auto server_task = body(std::move(srv), &out);
  started.count_down();
  ump::sync_wait(std::move(server_task));
  client.join();
  REQUIRE(out.seen.size() == total);
  for (std::uint64_t i = 0; i < total; ++i) CHECK(out.seen[i] == i);
  CHECK(out.batches_within_max);
  CHECK(out.ended_on_clients_gone);
}

#if defined(__cpp_exceptions)
TEST_CASE("a_throwing_move_mid_batch_keeps_what_was_taken_and_what_is_queued") {
  // Four requests queued; the k-th move of a message during the batch throws, for every k
  // until a batch runs through. Each time: what was written before the throw stays written,
  // in order; the request whose move threw gets no_reply; the others stay queued, in order.
  bool ran_through = false;
  int throws = 0;
  for (long k = 1; !ran_through && k < 64; ++k) {
    CAPTURE(k);
    lifetime_check guard;
    auto [srv, cli] = ump::channel<tracked, tracked, int>();
    std::vector<ump::wait_reply<tracked, int>> pending;
    for (std::uint64_t i = 0; i < 4; ++i) pending.push_back(cli.req_async(tracked(i)));
    std::vector<request_t> got;
    got.reserve(4);  // the output's own growth is not under test
    tracked::throw_on_move(k);
    bool threw = false;
    try {
      auto n = srv.wait_many(std::back_inserter(got), 4);
      REQUIRE(n.has_value());
      CHECK(*n == 4);
    } catch (const ump_test::move_failure&) {
      threw = true;
      ++throws;
    }
    tracked::throw_on_move(0);
    ran_through = !threw;
    const std::size_t taken = got.size();
    for (std::size_t i = 0; i < taken; ++i) CHECK(got[i].msg.value() == i);
    // The rest: everything not taken and not lost to the throw, still in order.
    std::vector<request_t> rest;
    if (auto n = srv.try_wait_many(std::back_inserter(rest), 4)) CHECK(*n == rest.size());
    const std::size_t lost = threw ? 1 : 0;
    REQUIRE(taken + lost + rest.size() == 4);
    for (std::size_t i = 0; i < rest.size(); ++i) CHECK(rest[i].msg.value() == taken + lost + i);
    for (auto& r : got) r.ctx.reply(tracked(r.msg.value()));
    for (auto& r : rest) r.ctx.reply(tracked(r.msg.value()));
    for (std::size_t i = 0; i < 4; ++i) {
      auto out = pending[i].wait();
      if (threw && i == taken) {
        CHECK(failure(out) == ump::errc::no_reply);
      } else {
        REQUIRE(out.has_value());
        CHECK(out->value() == i);
      }
    }
  }
  CHECK(ran_through);
  CHECK(throws >= 4);  // at least one move per message could throw
}
#endif
