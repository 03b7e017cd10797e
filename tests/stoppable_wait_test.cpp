// server::wait(std::stop_token): returns errc::cancelled once stop is requested, whether the
// server is about to wait, spinning or parked, and never takes a message after that.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <stop_token>
#include <thread>
#include <utility>

#include "support/lifetime.hpp"
#include "support/support.hpp"
#include "ump/detail/park.hpp"
#include "ump/ng.hpp"
#include "ump/ump.hpp"

using ump_test::failure;
using ump_test::lifetime_check;
using ump_test::tracked;

namespace {
std::uint64_t parks_now() { return ump::detail::read_park_stats().parks; }
}  // namespace

TEST_CASE("stop_requested_before_wait_cancels_and_leaves_the_queue_alone") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto w = cli.req_async(tracked(1));
  std::stop_source stop;
  stop.request_stop();
  CHECK(failure(srv.wait(stop.get_token())) == ump::errc::cancelled);
  CHECK(srv.queued() == 1);              // not taken
  auto r = srv.wait(std::stop_token{});  // a token that can never stop: a plain wait
  REQUIRE(r.has_value());
  CHECK(r->msg.value() == 1);
  r->ctx.reply(tracked(2));
  CHECK(w.wait()->value() == 2);
}

TEST_CASE("stop_wakes_a_parked_server") {
  // The server parks in wait(token) (the park counter says when); the stop wakes it.
  for (int round = 0; round < 20; ++round) {
    auto [srv, cli] = ump::channel<int, int>();
    std::stop_source stop;
    const auto parks = parks_now();
    std::optional<ump::errc> outcome;
    std::thread server([&, s = std::move(srv), t = stop.get_token()]() mutable { outcome = failure(s.wait(t)); });
    // Only the server parks in this process now: the count moves when it parks (or is
    // about to: the stop must then keep it from sleeping).
    while (parks_now() == parks) std::this_thread::yield();
    stop.request_stop();
    server.join();
    CHECK(outcome == ump::errc::cancelled);
  }
}

TEST_CASE("stop_racing_a_send_gives_the_message_or_cancelled_and_loses_nothing") {
  // A sender and a stopper race a server blocked in wait(token). Whatever the outcome of
  // that wait, the request is answered exactly once: by that wait, or by the next one.
  lifetime_check guard;
  int got_message = 0;
  int got_cancelled = 0;
  for (int round = 0; round < ump_test::scaled(2000); ++round) {
    auto [srv, cli] = ump::channel<tracked, tracked, int>();
    std::stop_source stop;
    std::atomic<bool> go{false};
    std::thread stopper([&] {
      // ORDERING: acquire, pairs with the release store below.
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      stop.request_stop();
    });
    std::thread sender([&, c = cli]() mutable {
      // ORDERING: acquire, pairs with the release store below.
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      auto r = c.req(tracked(7));
      CHECK((r.has_value() && r->value() == 8));
    });
    // ORDERING: release, pairs with the threads' acquire loads.
    go.store(true, std::memory_order_release);
    auto first = srv.wait(stop.get_token());
    if (first.has_value()) {
      ++got_message;
      first->ctx.reply(tracked(8));
    } else {
      REQUIRE(failure(first) == ump::errc::cancelled);
      ++got_cancelled;
      auto second = srv.wait();  // the request is still there, or still coming
      REQUIRE(second.has_value());
      second->ctx.reply(tracked(8));
    }
    stopper.join();
    sender.join();
  }
  INFO("message first: " << got_message << ", cancelled first: " << got_cancelled);
  CHECK(got_message + got_cancelled == ump_test::scaled(2000));
  CHECK(got_cancelled > 0);
}

TEST_CASE("a_jthread_server_ends_when_its_stop_is_requested") {
  // The std::jthread idiom: the server loop runs until the jthread is asked to stop, even
  // though its clients are still alive.
  auto [srv, cli] = ump::ng::channel<std::uint64_t, int, int>();
  std::atomic<std::uint64_t> sum{0};
  std::atomic<bool> ended_cancelled{false};
  {
    std::jthread server([&, s = std::move(srv)](std::stop_token token) mutable {
      for (;;) {
        auto m = s.wait(token);
        if (!m) {
          // ORDERING: release; read after the jthread is joined.
          ended_cancelled.store(m.error() == ump::errc::cancelled, std::memory_order_release);
          return;
        }
        if (m->is_post()) {
          // ORDERING: relaxed; read after the join.
          sum.fetch_add(m->post(), std::memory_order_relaxed);
        } else {
          m->req().ctx.reply(static_cast<int>(sum.load(std::memory_order_relaxed)));
        }
      }
    });
    for (std::uint64_t i = 1; i <= 10; ++i) REQUIRE(cli.post(i).has_value());
    CHECK(*cli.req(0) == 55);  // every post before it was handled
  }                            // ~jthread: request_stop, then join
  // ORDERING: acquire, pairs with the server's release store (the join orders it anyway).
  CHECK(ended_cancelled.load(std::memory_order_acquire));
  CHECK(sum.load(std::memory_order_relaxed) == 55);
}
