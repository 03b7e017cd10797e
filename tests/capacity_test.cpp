// channel_options::capacity: a bounded channel. Senders that find it full wait for room in
// FIFO order (post, req, req_async), give up (post_for / post_until: timed_out; a stop
// token: cancelled) or fail at once (try_post, try_req_async: full), leaving their message
// untouched; the server's death releases every waiting sender with server_disappeared.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "support/support.hpp"
#include "ump/ng.hpp"
#include "ump/ump.hpp"

using ump::errc;
using ump_test::failure;
using ump_test::lifetime_check;
using ump_test::tracked;

namespace {

ump::channel_options bounded(std::uint32_t n) {
  ump::channel_options o;
  o.capacity = n;
  return o;
}

// Senders waiting for room on the channel of `c` (a probe of the room list).
template <class C>
std::size_t waiting_senders(C& c) {
  return ump::detail::access::core(c).state()->waiting_senders();
}
// Spins until `n` senders wait for room (they link themselves in order; no sleeps).
template <class C>
void until_waiting(C& c, std::size_t n) {
  while (waiting_senders(c) < n) std::this_thread::yield();
}

using ng_client = ump::ng::client<std::string, int, int>;

}  // namespace

TEST_CASE("try_post_on_a_full_channel_returns_full_and_leaves_the_message") {
  auto [srv, cli] = ump::ng::channel<std::string, int, int>(bounded(2));
  CHECK(cli.post(std::string("a")));
  CHECK(cli.post(std::string("b")));
  std::string c = "a message long enough to live on the heap, not in the string itself";
  const std::string copy = c;
  CHECK(failure(cli.try_post(std::move(c))) == errc::full);
  CHECK(c == copy);  // untouched
  CHECK(srv.queued() == 2);
  auto m = srv.try_wait();
  REQUIRE(m);
  REQUIRE(m->has_value());
  CHECK((*m)->post() == "a");
  CHECK(cli.try_post(std::move(c)));  // room for exactly one more
  CHECK(failure(cli.try_post(std::string("d"))) == errc::full);
  CHECK(srv.queued() == 2);
}

TEST_CASE("inline_posts_and_requests_share_the_capacity") {
  auto [srv, cli] = ump::ng::channel<std::uint64_t, int, int>(bounded(3));
  CHECK(cli.post(1));
  auto w = cli.req_async(2);
  CHECK(cli.post(3));
  std::uint64_t p = 4;
  CHECK(failure(cli.try_post(std::move(p))) == errc::full);
  int s = 5;
  auto t = cli.try_req_async(std::move(s));
  CHECK(failure(t) == errc::full);
  std::vector<int> got;
  for (int k = 0; k < 3; ++k) {
    auto m = srv.try_wait();
    REQUIRE(m);
    REQUIRE(m->has_value());
    if ((*m)->is_post()) {
      got.push_back(static_cast<int>((*m)->post()));
    } else {
      got.push_back((*m)->req().msg);
      (*m)->req().ctx.reply(20);
    }
  }
  CHECK(got == std::vector<int>{1, 2, 3});
  CHECK(w.wait().value() == 20);
  auto t2 = cli.try_req_async(std::move(s));
  REQUIRE(t2);
  CHECK(srv.queued() == 1);
}

TEST_CASE("post_for_on_a_full_channel_times_out_with_the_message_untouched") {
  auto [srv, cli] = ump::ng::channel<std::string, int, int>(bounded(1));
  CHECK(cli.post(std::string("first")));
  std::string p(100, 'x');
  CHECK(failure(cli.post_for(std::move(p), std::chrono::microseconds(200))) == errc::timed_out);
  CHECK(p == std::string(100, 'x'));
  CHECK(failure(cli.post_until(std::move(p), ump::detail::clock::now())) == errc::timed_out);
  CHECK(p == std::string(100, 'x'));
  CHECK(waiting_senders(cli) == 0);  // the timed-out waiter left the room list
  REQUIRE(srv.try_wait());
  CHECK(cli.post_for(std::move(p), std::chrono::hours(1)));  // room: no wait at all
  auto m = srv.try_wait();
  REQUIRE(m);
  REQUIRE(m->has_value());
  CHECK((*m)->post() == std::string(100, 'x'));
}

TEST_CASE("waiting_senders_get_room_in_fifo_order") {
  constexpr int senders = 6;
  auto [srv, cli] = ump::ng::channel<std::string, int, int>(bounded(1));
  CHECK(cli.post(std::string("0")));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 1; i <= senders; ++i) {
    threads.emplace_back([&cli = cli, &ok, i] {
      // ORDERING: relaxed counter, read after join.
      if (cli.post(std::to_string(i))) ok.fetch_add(1, std::memory_order_relaxed);
    });
    until_waiting(cli, static_cast<std::size_t>(i));  // linked in the order started
  }
  std::vector<std::string> got;
  for (int i = 0; i <= senders; ++i) {
    auto m = srv.wait();
    REQUIRE(m);
    got.push_back(m->post());
  }
  for (auto& t : threads) t.join();
  CHECK(ok.load() == senders);
  std::vector<std::string> want;
  for (int i = 0; i <= senders; ++i) want.push_back(std::to_string(i));
  CHECK(got == want);
}

TEST_CASE("blocking_req_and_req_async_wait_for_room") {
  auto [srv, cli] = ump::channel<int, int>(bounded(1));
  auto first = cli.req_async(1);
  std::optional<ump::result<int>> blocked_req;
  std::thread t1([&cli = cli, &blocked_req] { blocked_req.emplace(cli.req(2)); });
  until_waiting(cli, 1);
  std::optional<ump::wait_reply<int>> second;
  std::thread t2([&cli = cli, &second] { second.emplace(cli.req_async(3)); });
  until_waiting(cli, 2);
  for (int k = 1; k <= 3; ++k) {
    auto r = srv.wait();
    REQUIRE(r);
    CHECK(r->msg == k);  // FIFO: the first, then the waiters in the order they came
    r->ctx.reply(k * 10);
  }
  t1.join();
  t2.join();
  CHECK(first.wait().value() == 10);
  REQUIRE(blocked_req.has_value());
  CHECK(blocked_req->value() == 20);
  REQUIRE(second.has_value());
  CHECK(second->wait().value() == 30);
}

TEST_CASE("server_destroyed_with_senders_waiting_for_room") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, int>(bounded(1));
  CHECK(cli.post(tracked(1)));
  std::vector<std::thread> threads;
  std::atomic<int> gone{0};
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&cli = cli, &gone, i] {
      const auto r = i == 0 ? failure(cli.post(tracked(2))) : failure(cli.req(tracked(3)));
      // ORDERING: relaxed counter, read after join.
      if (r == errc::server_disappeared) gone.fetch_add(1, std::memory_order_relaxed);
    });
  }
  until_waiting(cli, 3);
  { auto dying = std::move(srv); }
  for (auto& t : threads) t.join();
  CHECK(gone.load() == 3);
  CHECK(waiting_senders(cli) == 0);
  std::uint64_t p = 7;
  CHECK(failure(cli.post(tracked(p))) == errc::server_disappeared);
}

TEST_CASE("waiting_sender_against_the_last_other_client_drop") {
  // A sender waits for room with its own client; every other client is dropped meanwhile.
  // The server must still receive the waiting sender's message, and see clients_disappeared
  // only after that sender's client is gone too.
  auto [srv, cli] = ump::channel<int, int>(bounded(1));
  auto first = cli.req_async(1);
  std::optional<ump::result<int>> got;
  std::thread sender([mine = cli, &got]() mutable {
    got.emplace(mine.req(2));
    auto drop = std::move(mine);
  });
  until_waiting(cli, 1);
  { auto last_other = std::move(cli); }
  auto a = srv.wait();
  REQUIRE(a);
  CHECK(a->msg == 1);
  a->ctx.reply(10);
  auto b = srv.wait();
  REQUIRE(b);
  CHECK(b->msg == 2);
  b->ctx.reply(20);
  CHECK(failure(srv.wait()) == errc::clients_disappeared);
  sender.join();
  CHECK(got->value() == 20);
  CHECK(first.wait().value() == 10);
}

TEST_CASE("stop_while_waiting_for_room_cancels_without_sending") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked>(bounded(1));
  auto first = cli.req_async(tracked(1));
  std::stop_source stop;
  std::optional<ump::result<tracked>> got;
  std::thread t([&cli = cli, &got, token = stop.get_token()] { got.emplace(cli.req(tracked(2), token)); });
  until_waiting(cli, 1);
  stop.request_stop();
  t.join();
  REQUIRE(got.has_value());
  CHECK(failure(*got) == errc::cancelled);
  CHECK(waiting_senders(cli) == 0);
  CHECK(srv.queued() == 1);  // only the first
  auto r = srv.try_wait();
  REQUIRE(r);
  REQUIRE(r->has_value());
  CHECK((*r)->msg.value() == 1);
  (*r)->ctx.reply(tracked(10));
  CHECK(first.wait()->value() == 10);
}

TEST_CASE("apost_and_areq_suspend_until_room") {
  auto [srv, cli] = ump::ng::channel<std::string, int, int>(bounded(1));
  CHECK(cli.post(std::string("0")));
  std::optional<ump::result<void>> posted;
  std::optional<ump::result<int>> replied;
  auto poster = [](ng_client& c, std::optional<ump::result<void>>& out) -> ump_test::eager_coroutine {
    out.emplace(co_await c.apost(std::string("1")));
  };
  auto requester = [](ng_client& c, std::optional<ump::result<int>>& out) -> ump_test::eager_coroutine {
    out.emplace(co_await c.areq(2));
  };
  auto p = poster(cli, posted);
  auto q = requester(cli, replied);
  CHECK_FALSE(p.done());
  CHECK_FALSE(q.done());
  CHECK(waiting_senders(cli) == 2);
  auto m0 = srv.try_wait();  // frees room: the poster's grant posts "1" here, and resumes it
  REQUIRE(m0);
  REQUIRE(m0->has_value());
  CHECK((*m0)->post() == "0");
  CHECK(p.done());
  REQUIRE(posted.has_value());
  CHECK(posted->has_value());
  CHECK_FALSE(q.done());
  auto m1 = srv.try_wait();  // frees room: the requester's grant sends its request
  REQUIRE(m1);
  REQUIRE(m1->has_value());
  CHECK((*m1)->post() == "1");
  CHECK_FALSE(q.done());  // sent, waiting for the reply
  auto m2 = srv.try_wait();
  REQUIRE(m2);
  REQUIRE(m2->has_value());
  REQUIRE((*m2)->is_request());
  CHECK((*m2)->req().msg == 2);
  (*m2)->req().ctx.reply(22);
  CHECK(q.done());
  REQUIRE(replied.has_value());
  CHECK(replied->value() == 22);
}

TEST_CASE("apost_waiting_for_room_is_released_by_server_death_and_by_stop") {
  lifetime_check guard;
  using cli_t = ump::ng::client<tracked, int, int>;
  auto [srv, cli] = ump::ng::channel<tracked, int, int>(bounded(1));
  CHECK(cli.post(tracked(0)));
  std::optional<ump::result<void>> a;
  std::optional<ump::result<void>> b;
  std::stop_source stop;
  auto poster = [](cli_t& c, std::uint64_t v, std::stop_token t,
                   std::optional<ump::result<void>>& out) -> ump_test::eager_coroutine {
    out.emplace(co_await c.apost(tracked(v), std::move(t)));
  };
  auto pa = poster(cli, 1, stop.get_token(), a);
  auto pb = poster(cli, 2, {}, b);
  CHECK(waiting_senders(cli) == 2);
  stop.request_stop();  // resumes the first waiter here, with nothing sent
  CHECK(pa.done());
  REQUIRE(a.has_value());
  CHECK(failure(*a) == errc::cancelled);
  CHECK(waiting_senders(cli) == 1);
  { auto dying = std::move(srv); }  // resumes the second with server_disappeared
  CHECK(pb.done());
  REQUIRE(b.has_value());
  CHECK(failure(*b) == errc::server_disappeared);
}

TEST_CASE("bounded_channel_never_holds_more_than_its_capacity") {
  // Four threads post as fast as they can into a bounded channel; the server checks at every
  // step that no more than the capacity is queued (not yet taken), and that each thread's
  // posts arrive in its own order. Capacity 4 lets waiting senders in one slot at a time,
  // 64 sixteen at a time (a quarter of the capacity).
  for (const std::uint32_t cap : {4u, 64u}) {
    CAPTURE(cap);
    int per_thread = ump_test::scaled(20000);  // not a constant: the lambda below captures it
    auto [srv, cli] = ump::ng::channel<std::uint64_t, int, int>(bounded(cap));
    std::vector<std::thread> threads;
    for (std::uint64_t t = 0; t < 4; ++t) {
      threads.emplace_back([c = cli, t, per_thread]() mutable {
        for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(per_thread); ++i) REQUIRE(c.post((t << 32) | i));
      });
    }
    { auto mine = std::move(cli); }
    std::uint64_t next[4] = {0, 0, 0, 0};
    std::size_t most = 0;
    long n = 0;
    while (auto m = srv.wait()) {
      most = std::max<std::size_t>(most, srv.queued());  // the message in hand is taken: not counted
      const std::uint64_t v = m->post();
      const auto t = static_cast<std::size_t>(v >> 32);
      CHECK(v - (t << 32) == next[t]);
      ++next[t];
      ++n;
    }
    for (auto& t : threads) t.join();
    CHECK(n == 4L * per_thread);
    CHECK(most <= cap);
    MESSAGE("capacity " << cap << ": most messages queued at once: " << most);
  }
}

TEST_CASE("moved_awaiters_on_a_full_channel_are_inert") {
  // An awaiter that waits for room may be moved before it is awaited; the moved-from one
  // owns nothing (destroying it must not touch the room list or the message), and one never
  // awaited is destroyed unsent.
  auto [srv, cli] = ump::ng::channel<std::string, int, int>(bounded(1));
  CHECK(cli.post(std::string("0")));
  std::optional<ump::result<void>> posted;
  auto poster = [](ng_client& c, std::optional<ump::result<void>>& out) -> ump_test::eager_coroutine {
    auto a = c.apost(std::string("1"));
    auto b = std::move(a);
    auto r = c.areq(5);
    auto r2 = std::move(r);
    out.emplace(co_await std::move(b));
    (void)r2;
  };
  auto p = poster(cli, posted);
  CHECK_FALSE(p.done());
  auto m0 = srv.try_wait();
  REQUIRE(m0);
  REQUIRE(m0->has_value());
  CHECK(p.done());
  REQUIRE(posted.has_value());
  CHECK(posted->has_value());
  auto m1 = srv.try_wait();
  REQUIRE(m1);
  REQUIRE(m1->has_value());
  CHECK((*m1)->post() == "1");
  auto none = srv.try_wait();
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
}

TEST_CASE("senders_waiting_for_room_race_the_server_s_destruction") {
  // Rounds of: three threads post (tracked payloads) into a channel of capacity 2 until a
  // post fails; the server takes a round-dependent number of messages and is destroyed.
  // Every post ends exactly once: taken by the server, destroyed in the queue by the
  // server's destruction, or refused with server_disappeared (waiting for room, or after).
  // Nothing leaks and nothing is destroyed twice (lifetime_check).
  lifetime_check guard;
  const int rounds = ump_test::scaled(300);
  long refused_while_waiting_or_after = 0;
  long taken_total = 0;
  for (int round = 0; round < rounds; ++round) {
    auto [srv, cli] = ump::ng::channel<tracked, int, int>(bounded(2));
    std::atomic<long> ok{0};
    std::atomic<long> refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([c = cli, &ok, &refused, t]() mutable {
        for (std::uint64_t i = 0;; ++i) {
          auto r = c.post(tracked((static_cast<std::uint64_t>(t) << 32) | i));
          // ORDERING: relaxed counters, read after join.
          if (r) {
            ok.fetch_add(1, std::memory_order_relaxed);
          } else {
            CHECK(r.error() == errc::server_disappeared);
            refused.fetch_add(1, std::memory_order_relaxed);
            return;
          }
        }
      });
    }
    { auto mine = std::move(cli); }
    long taken = 0;
    const int take = round % 7;
    for (int k = 0; k < take; ++k) {
      auto m = srv.wait();
      REQUIRE(m);
      ++taken;
    }
    { auto dying = std::move(srv); }  // fails what is queued, releases every waiting sender
    for (auto& th : threads) th.join();
    CHECK(refused.load() == 3);  // each thread ends on exactly one refusal
    CHECK(ok.load() >= taken);   // everything taken was posted; the rest died in the queue
    refused_while_waiting_or_after += refused.load();
    taken_total += taken;
  }
  MESSAGE("posts refused: " << refused_while_waiting_or_after << ", taken: " << taken_total);
}
