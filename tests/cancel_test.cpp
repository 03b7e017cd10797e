// Cancellation that withdraws, from threads: wait_reply::cancel(), wait_reply::wait(token)
// and client::req(s, token), for ump and ump::ng. A request cancelled before the server took
// it is withdrawn (never delivered, its message destroyed at once, the order of the others
// kept); one cancelled after is abandoned (the server's reply() reports origin_disappeared
// and the reply is destroyed); an outcome that arrived first wins over a stop.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <iterator>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "support/stop_race.hpp"
#include "support/support.hpp"
#include "ump/ng.hpp"
#include "ump/ump.hpp"

namespace {

using ump::errc;
using ump_test::await_value;
using ump_test::failure;
using ump_test::jitter;
using ump_test::lifetime_check;
using ump_test::pause_for;
using ump_test::scaled;
using ump_test::tracked;

// Spins until the server has a message queued (the requester's send is done).
template <class Server>
void await_queued(const Server& srv) {
  while (srv.empty()) std::this_thread::yield();
}

// The server takes the next request, which must carry `want`, and answers tracked(answer).
template <class Server>
void answer_next(Server& srv, std::uint64_t want, std::uint64_t answer) {
  auto r = srv.wait();
  REQUIRE(r);
  CHECK(r->msg.value() == want);
  CHECK(r->ctx.reply(tracked(answer)));
}

// --- wait_reply::cancel() -----------------------------------------------------------------

TEST_CASE("cancel_before_take_withdraws_and_keeps_order") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  auto w1 = cli.req_async(tracked(1));
  auto w2 = cli.req_async(tracked(2));
  auto w3 = cli.req_async(tracked(3));
  const long live_before = tracked::live();
  CHECK(w2.cancel());                         // not taken yet: withdrawn
  CHECK(tracked::live() == live_before - 1);  // its message destroyed inside cancel()
  CHECK_FALSE(w2.valid());
  auto r1 = srv.wait();
  REQUIRE(r1);
  CHECK(r1->msg.value() == 1);
  auto r3 = srv.try_wait();  // the withdrawn one is passed over
  REQUIRE(r3);
  REQUIRE(r3->has_value());
  CHECK((*r3)->msg.value() == 3);
  auto none = srv.try_wait();
  REQUIRE(none);
  CHECK_FALSE(none->has_value());  // nothing else: 2 is never delivered
  CHECK((*r3)->ctx.reply(tracked(30)));
  CHECK(r1->ctx.reply(tracked(10)));
  auto a1 = w1.wait();
  auto a3 = w3.wait();
  REQUIRE(a1);
  REQUIRE(a3);
  CHECK(a1->value() == 10);
  CHECK(a3->value() == 30);
}

TEST_CASE("cancel_of_the_only_queued_request_leaves_the_server_waiting_for_the_next") {
  // The withdrawn request is skipped by a blocking wait too: the next send is what it gets.
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  auto w1 = cli.req_async(tracked(1));
  CHECK(w1.cancel());
  auto w2 = cli.req_async(tracked(2));
  answer_next(srv, 2, 20);
  CHECK(w2.wait()->value() == 20);
}

TEST_CASE("cancel_after_take_returns_false_and_the_reply_is_refused_and_destroyed") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  auto w = cli.req_async(tracked(1));
  auto r = srv.wait();
  REQUIRE(r);
  CHECK(r->ctx.requester_waiting());
  CHECK_FALSE(w.cancel());  // the server has it
  CHECK_FALSE(w.valid());
  CHECK_FALSE(r->ctx.requester_waiting());
  const long live_before = tracked::live();
  auto st = r->ctx.reply(tracked(2));
  REQUIRE_FALSE(st);
  CHECK(st.error() == errc::origin_disappeared);
  CHECK(tracked::live() == live_before);  // the reply was destroyed by reply()
  CHECK(r->msg.value() == 1);             // the request's message is the server's to keep
}

TEST_CASE("cancel_after_the_reply_arrived_returns_false_and_destroys_the_reply_at_once") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  auto w = cli.req_async(tracked(1));
  {
    auto r = srv.wait();
    REQUIRE(r);
    CHECK(r->ctx.reply(tracked(2)));  // delivered
  }
  CHECK(w.ready());
  const long live_before = tracked::live();  // the reply, waiting in the cell
  CHECK_FALSE(w.cancel());
  CHECK(tracked::live() == live_before - 1);
  CHECK_FALSE(w.valid());
}

TEST_CASE("cancel_after_an_error_outcome_arrived_destroys_the_error_at_once") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, tracked>();
  auto w = cli.req_async(tracked(1));
  {
    auto r = srv.wait();
    REQUIRE(r);
    CHECK(r->ctx.fail(tracked(3)));
  }
  CHECK(w.ready());
  const long live_before = tracked::live();
  CHECK_FALSE(w.cancel());
  CHECK(tracked::live() == live_before - 1);
}

TEST_CASE("cancel_of_a_never_sent_request_returns_true") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  { auto gone = std::move(srv); }
  const long live_before = tracked::live();
  auto w = cli.req_async(tracked(1));
  CHECK(tracked::live() == live_before);  // destroyed at once: never sent
  CHECK(w.valid());
  CHECK(w.cancel());
  CHECK_FALSE(w.valid());
}

TEST_CASE("withdrawn_request_still_queued_when_the_server_is_destroyed_is_destroyed_once") {
  // Two withdrawn requests are still in the queue (no wait passed over them) when the server
  // is destroyed: its drain must neither destroy their messages again nor fail them. A double
  // destruction would take live() below its count at the start (lifetime_check), a leak above.
  lifetime_check guard;
  const long live_at_start = tracked::live();
  auto [srv, cli] = ump::channel<tracked, tracked>();
  auto w1 = cli.req_async(tracked(1));
  auto w2 = cli.req_async(tracked(2));
  auto w3 = cli.req_async(tracked(3));
  CHECK(tracked::live() == live_at_start + 3);
  CHECK(w2.cancel());
  CHECK(w1.cancel());
  CHECK(tracked::live() == live_at_start + 1);
  { auto gone = std::move(srv); }  // drains the queue: two withdrawn nodes and one live request
  CHECK(tracked::live() == live_at_start);
  CHECK(failure(w3.wait()) == errc::server_disappeared);
  CHECK(tracked::live() == live_at_start);
}

TEST_CASE("withdrawn_requests_in_the_receive_batch_when_the_server_is_destroyed_are_destroyed_once") {
  // The server's first take moves the queued requests into its receive batch; two of them
  // are then withdrawn, and the server is destroyed with them there.
  lifetime_check guard;
  const long live_at_start = tracked::live();
  auto [srv, cli] = ump::channel<tracked, tracked>();
  auto w1 = cli.req_async(tracked(1));
  auto w2 = cli.req_async(tracked(2));
  auto w3 = cli.req_async(tracked(3));
  auto w4 = cli.req_async(tracked(4));
  auto r1 = srv.wait();
  REQUIRE(r1);
  CHECK(r1->msg.value() == 1);
  CHECK(w3.cancel());
  CHECK(w2.cancel());
  CHECK(tracked::live() == live_at_start + 2);  // 1, held by the server's caller, and 4
  { auto gone = std::move(srv); }
  CHECK(tracked::live() == live_at_start + 1);  // 4 destroyed by the drain; 2 and 3 not again
  CHECK(failure(w4.wait()) == errc::server_disappeared);
  CHECK(r1->ctx.reply(tracked(10)));  // a context outlives its server
  CHECK(w1.wait()->value() == 10);
}

TEST_CASE("cancel_after_the_server_failed_the_queued_request_returns_false") {
  // Destroying the server took the queued request and answered it server_disappeared: the
  // outcome is already there, so cancel() finds nothing to withdraw and discards it.
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  auto w = cli.req_async(tracked(1));
  { auto gone = std::move(srv); }
  CHECK(w.ready());
  CHECK_FALSE(w.cancel());
  CHECK_FALSE(w.valid());
}

TEST_CASE("batch_receive_passes_over_a_withdrawn_request") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  std::vector<ump::wait_reply<tracked>> ws;
  for (std::uint64_t k = 1; k <= 4; ++k) ws.push_back(cli.req_async(tracked(k)));
  CHECK(ws[1].cancel());
  std::vector<ump::request<tracked, tracked>> got;
  auto n = srv.try_wait_many(std::back_inserter(got), 10);
  REQUIRE(n);
  REQUIRE(*n == 3);
  CHECK(got[0].msg.value() == 1);
  CHECK(got[1].msg.value() == 3);
  CHECK(got[2].msg.value() == 4);
  for (auto& r : got) CHECK(r.ctx.reply(tracked(r.msg.value() * 10)));
  CHECK(ws[0].wait()->value() == 10);
  CHECK(ws[2].wait()->value() == 30);
  CHECK(ws[3].wait()->value() == 40);
}

TEST_CASE("ng_cancel_before_take_between_posts_keeps_the_fifo") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked>();
  REQUIRE(cli.post(tracked(1)));
  auto w2 = cli.req_async(tracked(2));
  REQUIRE(cli.post(tracked(3)));
  auto w4 = cli.req_async(tracked(4));
  REQUIRE(cli.post(tracked(5)));
  auto w6 = cli.req_async(tracked(6));
  const long live_before = tracked::live();
  CHECK(w2.cancel());
  CHECK(tracked::live() == live_before - 1);
  std::vector<std::uint64_t> order;
  std::optional<ump::reply_context<tracked>> ctx4;
  for (int i = 0; i < 5; ++i) {
    auto m = srv.wait();
    REQUIRE(m);
    if (m->is_post()) {
      order.push_back(m->post().value());
    } else {
      order.push_back(m->req().msg.value());
      if (m->req().msg.value() == 4) {
        ctx4.emplace(std::move(m->req().ctx));
      } else {
        CHECK(m->req().ctx.reply(tracked(60)));
      }
    }
  }
  CHECK(order == std::vector<std::uint64_t>{1, 3, 4, 5, 6});
  auto none = srv.try_wait();  // 2 is never delivered
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  auto w6_reply = w6.wait();
  REQUIRE(w6_reply);
  CHECK(w6_reply->value() == 60);
  // The server holds 4: cancelled after the take, its reply is refused.
  REQUIRE(ctx4.has_value());
  CHECK_FALSE(w4.cancel());
  auto st = ctx4->reply(tracked(40));
  REQUIRE_FALSE(st);
  CHECK(st.error() == errc::origin_disappeared);
}

TEST_CASE("ng_cancel_before_take_between_inline_posts_keeps_the_fifo") {
  // Inline posts (small trivially copyable P) travel without a node; a withdrawn request
  // between them is passed over all the same.
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<int, tracked, tracked>();
  REQUIRE(cli.post(1));
  auto w = cli.req_async(tracked(2));
  REQUIRE(cli.post(3));
  CHECK(w.cancel());
  auto a = srv.wait();
  auto b = srv.wait();
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(a->is_post());
  REQUIRE(b->is_post());
  CHECK(a->post() == 1);
  CHECK(b->post() == 3);
  CHECK(srv.empty());
}

// --- req(s, stop_token) and wait_reply::wait(stop_token) --------------------------------

TEST_CASE("req_stop_before_take_cancels_and_the_server_never_sees_it") {
  lifetime_check guard;
  const long live_at_start = tracked::live();
  auto [srv, cli] = ump::channel<tracked, tracked>();
  std::stop_source stop;
  std::optional<errc> outcome;
  std::thread requester([&, c = cli]() mutable { outcome = failure(c.req(tracked(1), stop.get_token())); });
  await_queued(srv);  // sent, and blocked in req (or about to be)
  stop.request_stop();
  requester.join();
  CHECK(outcome == errc::cancelled);
  CHECK(tracked::live() == live_at_start);  // withdrawn: the message is destroyed
  auto none = srv.try_wait();
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
}

TEST_CASE("req_stop_after_take_cancels_and_the_reply_is_refused") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  std::stop_source stop;
  std::optional<errc> outcome = errc::timed_out;
  std::thread requester([&, c = cli]() mutable { outcome = failure(c.req(tracked(1), stop.get_token())); });
  auto r = srv.wait();
  REQUIRE(r);
  CHECK(r->msg.value() == 1);
  stop.request_stop();
  requester.join();
  CHECK(outcome == errc::cancelled);
  CHECK_FALSE(r->ctx.requester_waiting());
  const long live_before = tracked::live();
  auto st = r->ctx.reply(tracked(2));
  REQUIRE_FALSE(st);
  CHECK(st.error() == errc::origin_disappeared);
  CHECK(tracked::live() == live_before);
}

TEST_CASE("req_stop_already_requested_cancels_and_the_server_never_sees_it") {
  lifetime_check guard;
  const long live_at_start = tracked::live();
  auto [srv, cli] = ump::channel<tracked, tracked>();
  std::stop_source stop;
  stop.request_stop();
  CHECK(failure(cli.req(tracked(1), stop.get_token())) == errc::cancelled);
  CHECK(tracked::live() == live_at_start);
  auto none = srv.try_wait();
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  // The channel still works for the next request.
  auto w = cli.req_async(tracked(2));
  answer_next(srv, 2, 3);
  CHECK(w.wait()->value() == 3);
}

TEST_CASE("req_with_a_stop_token_after_the_server_is_gone_gives_server_disappeared") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  { auto gone = std::move(srv); }
  std::stop_source stop;
  CHECK(failure(cli.req(tracked(1), stop.get_token())) == errc::server_disappeared);
}

TEST_CASE("req_reply_delivered_before_the_stop_wins") {
  // The server replies (and sees it delivered), then requests the stop: the requester must
  // return the reply, whether it was woken by the reply or by the stop.
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  std::stop_source stop;
  std::thread server([&, s = std::move(srv)]() mutable {
    auto r = s.wait();
    REQUIRE(r);
    CHECK(r->ctx.reply(tracked(r->msg.value() + 1)));
    stop.request_stop();
  });
  auto got = cli.req(tracked(1), stop.get_token());
  server.join();
  REQUIRE(got);
  CHECK(got->value() == 2);
}

TEST_CASE("wait_with_stop_returns_the_reply_that_arrived_before_the_stop") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  auto w = cli.req_async(tracked(1));
  {
    auto r = srv.wait();
    REQUIRE(r);
    CHECK(r->ctx.reply(tracked(2)));
  }
  std::stop_source stop;
  stop.request_stop();
  auto got = w.wait(stop.get_token());
  REQUIRE(got);
  CHECK(got->value() == 2);
  CHECK_FALSE(w.valid());
}

TEST_CASE("wait_with_stop_before_take_withdraws_and_keeps_order") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>();
  auto w1 = cli.req_async(tracked(1));
  auto w2 = cli.req_async(tracked(2));
  std::stop_source stop;
  stop.request_stop();
  const long live_before = tracked::live();
  CHECK(failure(w1.wait(stop.get_token())) == errc::cancelled);
  CHECK(tracked::live() == live_before - 1);
  CHECK_FALSE(w1.valid());
  answer_next(srv, 2, 20);
  CHECK(w2.wait()->value() == 20);
}

TEST_CASE("ng_req_stop_before_and_after_take_with_posts") {
  lifetime_check guard;
  const long live_at_start = tracked::live();
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked>();
  REQUIRE(cli.post(tracked(1)));
  {  // before the take: withdrawn, the post after it still arrives next
    std::stop_source stop;
    std::optional<errc> outcome;
    std::thread requester([&, c = cli]() mutable { outcome = failure(c.req(tracked(2), stop.get_token())); });
    while (srv.queued() < 2) std::this_thread::yield();
    stop.request_stop();
    requester.join();
    CHECK(outcome == errc::cancelled);
    CHECK(tracked::live() == live_at_start + 1);  // only the post is left
  }
  REQUIRE(cli.post(tracked(3)));
  for (std::uint64_t want : {1, 3}) {
    auto m = srv.wait();
    REQUIRE(m);
    REQUIRE(m->is_post());
    CHECK(m->post().value() == want);
  }
  {  // after the take: cancelled, the reply refused
    std::stop_source stop;
    std::optional<errc> outcome;
    std::thread requester([&, c = cli]() mutable { outcome = failure(c.req(tracked(4), stop.get_token())); });
    auto m = srv.wait();
    REQUIRE(m);
    REQUIRE(m->is_request());
    CHECK(m->req().msg.value() == 4);
    stop.request_stop();
    requester.join();
    CHECK(outcome == errc::cancelled);
    auto st = m->req().ctx.reply(tracked(5));
    REQUIRE_FALSE(st);
    CHECK(st.error() == errc::origin_disappeared);
  }
}

// --- races ----------------------------------------------------------------------------------

TEST_CASE("cancel_racing_the_server_take_exactly_one_side_wins") {
  // Each round: this thread sends request k and opens the gate; the server thread, released
  // by it, says it is running (armed = k) and tries once to take k. This thread cancels in
  // one of three ways, by round: at once (the server is usually not running yet), once it
  // sees the server armed, or once armed and after a busy pause that sweeps 0..8191 steps
  // (jitter that moves the window, not synchronisation); the server pauses likewise on
  // alternate rounds. So each side wins some rounds whether the two threads really run in
  // parallel or take turns on one core. Exactly one of: the server received k and cancel()
  // returned false, or the server never received it and cancel() returned true. Batches of
  // rounds repeat, up to a bound, until each side has won at least once.
  lifetime_check guard;
  const int rounds = scaled(20000);
  constexpr int max_batches = 20;
  auto ends = ump::channel<tracked, tracked>();
  auto& srv = ends.first;
  auto& cli = ends.second;
  std::atomic<long> gate{-1};   // the round the server may try to take
  std::atomic<long> armed{-1};  // the round the server is about to take
  std::atomic<long> done{-1};   // the round the server has finished
  std::atomic<bool> quit{false};
  // Written by the server for round k before done = k, read here after.
  bool server_got = false;
  bool server_wrong = false;
  std::thread server([&] {
    for (long k = 0;; ++k) {
      // ORDERING: acquire, pairs with the release store of gate below.
      while (gate.load(std::memory_order_acquire) != k) {
        // ORDERING: acquire, pairs with the release store of quit below.
        if (quit.load(std::memory_order_acquire)) return;
        std::this_thread::yield();
      }
      // ORDERING: release, pairs with this thread's acquire spin below.
      armed.store(k, std::memory_order_release);
      if (k % 2 == 0) jitter(pause_for(k));
      auto r = srv.try_wait();
      server_got = r && r->has_value();
      server_wrong = !r || (server_got && (*r)->msg.value() != static_cast<std::uint64_t>(k));
      // Delivered or refused, depending on whether cancel() came before: either is right.
      if (server_got) (void)(*r)->ctx.reply(tracked(k));
      // ORDERING: release, publishes the fields above to the acquire spin below.
      done.store(k, std::memory_order_release);
    }
  });
  long cancel_won = 0;
  long server_won = 0;
  long inconsistent = 0;
  long round = 0;
  for (int batch = 0; batch < max_batches && (cancel_won == 0 || server_won == 0); ++batch) {
    for (int i = 0; i < rounds; ++i, ++round) {
      auto w = cli.req_async(tracked(round));
      // ORDERING: release, pairs with the server's acquire spin.
      gate.store(round, std::memory_order_release);
      if (round % 3 != 0) await_value(armed, round);
      if (round % 3 == 2) jitter(pause_for(round));
      const bool withdrawn = w.cancel();
      await_value(done, round);
      if (server_wrong || withdrawn == server_got) ++inconsistent;
      if (withdrawn)
        ++cancel_won;
      else
        ++server_won;
    }
  }
  // ORDERING: release, pairs with the server's acquire load.
  quit.store(true, std::memory_order_release);
  server.join();
  CHECK(inconsistent == 0);
  CHECK(cancel_won + server_won == round);
  MESSAGE("cancel withdrew " << cancel_won << " of " << round << " requests");
  CHECK_MESSAGE(cancel_won > 0, "the cancellation never won the race");
  CHECK_MESSAGE(server_won > 0, "the server's take never won the race");
  auto none = srv.try_wait();
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
}

TEST_CASE("stop_racing_the_reply_client_and_server_agree") {
  // The race of ump_test::stop_racing_the_reply (tests/support/stop_race.hpp), with each
  // round's request made by a blocking req(s, token) on this thread. Per request: the client
  // got its value ⇔ the server's reply was delivered; the client got cancelled ⇔ the reply
  // was refused or the server never saw it. Each side must win at least once.
  lifetime_check guard;
  ump_test::stop_racing_the_reply(ump::channel<tracked, tracked>(),
                                  [](ump::client<tracked, tracked>& cli, long round, std::stop_token stop) {
                                    return cli.req(tracked(round), std::move(stop));
                                  });
}

}  // namespace
