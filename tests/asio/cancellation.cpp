// Per-operation cancellation of ump::asio::async_req / async_wait (include/ump/asio.hpp):
// a request cancelled before the server took it is withdrawn (never delivered, its message
// destroyed; the handler sees errc::cancelled); one cancelled after is abandoned (the
// handler sees errc::cancelled, the server's reply() errc::origin_disappeared); an outcome
// that arrived first wins over the cancellation; a cancelled server wait loses nothing.
#include <doctest/doctest.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <thread>
#include <variant>

#include "support/lifetime.hpp"
#include "ump/asio.hpp"
#include "ump/ng.hpp"
#include "ump/ump.hpp"

namespace {

using ump::errc;
using ump_test::lifetime_check;
using ump_test::scaled;
using ump_test::tracked;

using tracked_result = ump::result<tracked>;

// Starts an async_req whose handler stores its result, cancellable through `sig`.
void start_req(ump::client<tracked, tracked>& cli, std::uint64_t v, asio::io_context& ioc,
               asio::cancellation_signal& sig, std::optional<tracked_result>& out) {
  ump::asio::async_req(cli, tracked(v),
                       asio::bind_cancellation_slot(sig.slot(), asio::bind_executor(ioc, [&out](tracked_result r) {
                                                      out.emplace(std::move(r));
                                                    })));
}

// When the cancellation is emitted, relative to the server's part.
enum class emit_at { before_take, after_take, after_reply };

// One request cancelled through async_req's cancellation slot: the handler's outcome, and
// what the server sees, depend on the cancellation type and its moment.
struct cancel_case {
  const char* name;
  asio::cancellation_type type;
  emit_at when;
  bool reply_wins;  // else the cancellation wins: the handler sees cancelled
};

const cancel_case cancel_cases[] = {
    // terminal, once the server holds the request: the handler's completion is posted at
    // once; the server's reply is refused.
    {"cancelled_after_the_server_took_it_the_reply_is_refused", asio::cancellation_type::terminal, emit_at::after_take,
     false},
    // partial, before the server took it: the request is withdrawn; the server never sees it.
    {"cancelled_before_the_server_took_it_is_withdrawn", asio::cancellation_type::partial, emit_at::before_take, false},
    // terminal, after the reply was delivered: too late, no effect.
    {"reply_that_arrived_first_wins_over_the_cancellation", asio::cancellation_type::terminal, emit_at::after_reply,
     true},
    // total: the request was sent, so async_req cannot promise that it had no effect.
    {"total_cancellation_is_not_honoured_by_async_req", asio::cancellation_type::total, emit_at::before_take, true},
};

TEST_CASE("async_req_cancellation_cases") {
  std::uint64_t v = 1;
  for (const cancel_case& c : cancel_cases) {
    SUBCASE(c.name) {
      lifetime_check guard;
      const long live_at_start = tracked::live();
      auto [srv, cli] = ump::channel<tracked, tracked>();
      asio::io_context ioc;
      asio::cancellation_signal sig;
      std::optional<tracked_result> got;
      start_req(cli, v, ioc, sig, got);
      if (c.when == emit_at::before_take) {
        sig.emit(c.type);
        ioc.poll();
        CHECK(got.has_value() == !c.reply_wins);  // a cancellation honoured completes at once
      }
      auto req = srv.try_wait();
      REQUIRE(req);
      if (c.when == emit_at::before_take && !c.reply_wins) {
        CHECK_FALSE(req->has_value());            // withdrawn: never delivered
        CHECK(tracked::live() == live_at_start);  // and its message destroyed at once
        REQUIRE(got.has_value());
        REQUIRE_FALSE(*got);
        CHECK(got->error() == errc::cancelled);
        v += 2;
        continue;
      }
      REQUIRE(req->has_value());
      auto& [msg, ctx] = **req;
      CHECK(msg.value() == v);
      if (c.when == emit_at::after_take) {
        CHECK(ctx.requester_waiting());
        sig.emit(c.type);              // this thread is the handler's context
        CHECK_FALSE(got.has_value());  // the completion is posted
      }
      CHECK(ctx.requester_waiting() == c.reply_wins);
      auto rep = ctx.reply(tracked(v + 1));
      if (c.reply_wins) {
        CHECK(rep);  // delivered
      } else {
        REQUIRE_FALSE(rep);
        CHECK(rep.error() == errc::origin_disappeared);
      }
      if (c.when == emit_at::after_reply) sig.emit(c.type);  // too late: no effect
      ioc.run();
      REQUIRE(got.has_value());
      if (c.reply_wins) {
        REQUIRE(*got);
        CHECK((*got)->value() == v + 1);
      } else {
        REQUIRE_FALSE(*got);
        CHECK(got->error() == errc::cancelled);
      }
    }
    v += 2;
  }
}

TEST_CASE("emit_after_completion_is_harmless") {
  auto [srv, cli] = ump::channel<int, int>();
  asio::io_context ioc;
  asio::cancellation_signal sig;
  std::optional<ump::result<int>> got;
  ump::asio::async_req(cli, 1,
                       asio::bind_cancellation_slot(sig.slot(), asio::bind_executor(ioc, [&](ump::result<int> r) {
                                                      got.emplace(std::move(r));
                                                    })));
  auto req = srv.try_wait();
  REQUIRE(req);
  REQUIRE(req->has_value());
  CHECK((*req)->ctx.reply(2));
  ioc.run();
  REQUIRE(got.has_value());
  CHECK(**got == 2);
  sig.emit(asio::cancellation_type::terminal);  // the slot was cleared on completion
}

TEST_CASE("awaitable_or_timer_withdraws_the_request_the_server_has_not_taken") {
  // `req || timer` with a timer that has already expired: the timer completes first and the
  // awaitable operator cancels the request, which the server has not taken: it is withdrawn.
  using namespace asio::experimental::awaitable_operators;
  lifetime_check guard;
  auto ends = ump::channel<tracked, tracked>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  asio::io_context ioc;
  auto f = asio::co_spawn(
      ioc,
      [&cli]() -> asio::awaitable<int> {
        asio::steady_timer timer(co_await asio::this_coro::executor, asio::steady_timer::duration::zero());
        auto req = ump::asio::async_req(cli, tracked(9), asio::use_awaitable);
        auto won = co_await (std::move(req) || timer.async_wait(asio::use_awaitable));
        co_return static_cast<int>(won.index());
      },
      asio::use_future);
  ioc.run();
  CHECK(f.get() == 1);  // the timer won
  auto req = srv.try_wait();
  REQUIRE(req);
  CHECK_FALSE(req->has_value());  // never delivered
  // Taken and then cancelled: abandoned instead; the server's reply is refused.
  auto f2 = asio::co_spawn(
      ioc,
      [&cli]() -> asio::awaitable<int> {
        asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
        auto req = ump::asio::async_req(cli, tracked(11), asio::use_awaitable);
        auto won = co_await (std::move(req) || timer.async_wait(asio::use_awaitable));
        co_return static_cast<int>(won.index());
      },
      asio::use_future);
  ioc.restart();
  while (srv.empty()) ioc.run_one();  // until the request is sent
  auto taken = srv.try_wait();
  REQUIRE(taken);
  REQUIRE(taken->has_value());
  CHECK((*taken)->msg.value() == 11);
  CHECK((*taken)->ctx.requester_waiting());
  CHECK((*taken)->ctx.reply(tracked(12)));  // the request wins now
  ioc.run();
  CHECK(f2.get() == 0);
}

TEST_CASE("cancellation_racing_the_reply_gives_both_sides_the_same_answer") {
  // The server thread replies at once; the io thread emits a cancellation shortly after each
  // initiation. Whichever wins, the handler and the server's reply() must agree: a reply the
  // server saw delivered reaches the handler; every cancelled handler matches either a reply
  // the server saw refused (cancelled after it took the request) or a request it never saw
  // (withdrawn). Emitted at once, the cancellation won every round; so the io thread first
  // busy-waits a pause that sweeps 0..199 us (jitter, not synchronisation: nothing depends
  // on it), and batches of rounds repeat, up to a bound, until each side has won once.
  const int rounds = scaled(20000);
  constexpr int max_batches = 20;
  auto ends = ump::channel<int, int>();  // not a structured binding: lambdas capture these (clang 14)
  auto& srv = ends.first;
  auto& cli = ends.second;
  std::atomic<long> server_delivered{0};
  std::atomic<long> server_refused{0};
  std::thread server([s = std::move(srv), &server_delivered, &server_refused]() mutable {
    while (auto r = s.wait()) {
      auto& [msg, ctx] = *r;
      // ORDERING: relaxed counters, read after join.
      if (ctx.reply(msg))
        server_delivered.fetch_add(1, std::memory_order_relaxed);
      else
        server_refused.fetch_add(1, std::memory_order_relaxed);
    }
  });
  asio::io_context ioc;
  asio::cancellation_signal sig;
  long replies = 0;
  long cancelled = 0;
  long wrong = 0;
  std::function<void(int)> next = [&](int i) {
    if (i == rounds) return;
    ump::asio::async_req(cli, i,
                         asio::bind_cancellation_slot(sig.slot(), asio::bind_executor(ioc, [&, i](ump::result<int> r) {
                                                        if (r && *r == i)
                                                          ++replies;
                                                        else if (!r && r.error() == errc::cancelled)
                                                          ++cancelled;
                                                        else
                                                          ++wrong;
                                                        next(i + 1);
                                                      })));
    asio::post(ioc, [&sig, pause = std::chrono::microseconds(i % 200)] {
      const auto until = std::chrono::steady_clock::now() + pause;
      while (std::chrono::steady_clock::now() < until) {
      }
      sig.emit(asio::cancellation_type::terminal);
    });
  };
  long total = 0;
  for (int batch = 0; batch < max_batches && (replies == 0 || cancelled == 0); ++batch) {
    next(0);
    ioc.run();
    ioc.restart();
    total += rounds;
  }
  { auto last = std::move(cli); }
  server.join();
  CHECK(wrong == 0);
  CHECK(replies + cancelled == total);
  CHECK(replies == server_delivered.load());
  CHECK(cancelled >= server_refused.load());
  MESSAGE("of the cancelled, the server refused the reply of " << server_refused.load() << " and never saw "
                                                               << cancelled - server_refused.load());
  MESSAGE("cancellation won " << cancelled << " of " << total << " rounds");
  CHECK_MESSAGE(replies > 0, "the reply never won the race");
  CHECK_MESSAGE(cancelled > 0, "the cancellation never won the race");
}

TEST_CASE("cancelled_async_wait_loses_nothing") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  asio::io_context ioc;
  asio::cancellation_signal sig;
  std::optional<errc> first;
  ump::asio::async_wait(
      srv, asio::bind_cancellation_slot(sig.slot(),
                                        asio::bind_executor(ioc, [&](ump::result<ump::request<tracked, tracked>> r) {
                                          first = r ? errc::timed_out : r.error().code();
                                        })));
  sig.emit(asio::cancellation_type::total);
  ioc.run();
  REQUIRE(first.has_value());
  CHECK(*first == errc::cancelled);
  // The server is still usable and nothing was taken.
  auto wr = cli.req_async(tracked(11));
  REQUIRE(wr.valid());
  ioc.restart();
  std::optional<std::uint64_t> second;
  ump::asio::async_wait(srv, asio::bind_executor(ioc, [&](ump::result<ump::request<tracked, tracked>> r) {
                          REQUIRE(r);
                          second = r->msg.value();
                          r->ctx.reply(tracked(12));
                        }));
  ioc.run();
  REQUIRE(second.has_value());
  CHECK(*second == 11);
  auto rep = wr.wait();
  REQUIRE(rep);
  CHECK(rep->value() == 12);
}

TEST_CASE("message_that_woke_async_wait_first_wins_over_the_cancellation") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked>();
  asio::io_context ioc;
  asio::cancellation_signal sig;
  std::optional<std::uint64_t> post;
  ump::asio::async_wait(
      srv, asio::bind_cancellation_slot(
               sig.slot(), asio::bind_executor(ioc, [&](ump::result<ump::ng::message<tracked, tracked, tracked>> m) {
                 if (m && m->is_post()) post = m->post().value();
               })));
  CHECK(cli.post(tracked(13)));  // wakes the wait: its completion is queued
  sig.emit(asio::cancellation_type::terminal);
  ioc.run();
  REQUIRE(post.has_value());
  CHECK(*post == 13);
}

TEST_CASE("last_client_gone_completes_a_pending_async_wait") {
  auto [srv, cli] = ump::channel<int, int>();
  asio::io_context ioc;
  std::optional<errc> code;
  ump::asio::async_wait(srv, asio::bind_executor(ioc, [&](ump::result<ump::request<int, int>> r) {
                          code = r ? errc::timed_out : r.error().code();
                        }));
  std::thread dropper([c = std::move(cli)]() mutable { auto gone = std::move(c); });
  ioc.run();
  dropper.join();
  REQUIRE(code.has_value());
  CHECK(*code == errc::clients_disappeared);
}

}  // namespace

TEST_CASE("async_req_on_a_full_channel_waits_for_room_and_a_cancellation_leaves_it_unsent") {
  lifetime_check guard;
  ump::channel_options opts;
  opts.capacity = 1;
  auto [srv, cli] = ump::channel<tracked, tracked>(opts);
  auto first = cli.req_async(tracked(1));
  asio::io_context ioc;
  asio::cancellation_signal sig;
  std::optional<tracked_result> cancelled;
  start_req(cli, 2, ioc, sig, cancelled);  // the channel is full: it waits for room
  ioc.poll();
  CHECK_FALSE(cancelled.has_value());
  sig.emit(asio::cancellation_type::terminal);
  ioc.run();
  REQUIRE(cancelled.has_value());
  REQUIRE_FALSE(*cancelled);
  CHECK(cancelled->error() == errc::cancelled);
  // Waiting for room again, this time not cancelled: taking the first request makes room,
  // and the grant sends it.
  std::optional<tracked_result> replied;
  ioc.restart();
  start_req(cli, 3, ioc, sig, replied);
  ioc.poll();
  CHECK_FALSE(replied.has_value());
  auto a = srv.try_wait();
  REQUIRE(a);
  REQUIRE(a->has_value());
  CHECK((*a)->msg.value() == 1);
  (*a)->ctx.reply(tracked(10));
  auto b = srv.try_wait();  // the request that waited for room; never the cancelled one
  REQUIRE(b);
  REQUIRE(b->has_value());
  CHECK((*b)->msg.value() == 3);
  (*b)->ctx.reply(tracked(30));
  ioc.run();
  REQUIRE(replied.has_value());
  REQUIRE(*replied);
  CHECK((*replied)->value() == 30);
  CHECK(first.wait()->value() == 10);
  auto none = srv.try_wait();
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
}
