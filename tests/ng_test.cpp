// Tests for ump/ng.hpp: posts next to requests. Order of posts and requests from one client,
// post-only clients, posts after and across the server's drop, the message type's accessors
// and visit, weak clients, and abandoned requests still delivered.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "support/support.hpp"
#include "ump/ng.hpp"

using ump_test::failure;
using ump_test::lifetime_check;
using ump_test::tracked;

namespace {

// P = S = R = tracked, E = int.
using client_t = ump::ng::client<tracked, tracked, tracked, int>;
using server_t = ump::ng::server<tracked, tracked, tracked, int>;
using request_t = ump::ng::request<tracked, tracked, int>;
template <class P>
using client_t_for = ump::ng::client<P, tracked, tracked, int>;

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

}  // namespace

TEST_CASE("posts_and_requests_interleaved_in_order") {
  lifetime_check guard;
  const int n = ump_test::scaled(6000);
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
  // Message i is a post when i % 3 == 0, a request otherwise (every fifth a blocking req).
  int received = 0;
  int wrong_kind = 0;
  int out_of_order = 0;
  std::thread server([&s = srv, &received, &wrong_kind, &out_of_order] {
    for (;;) {
      auto m = s.wait();
      if (!m.has_value()) break;
      const bool should_be_post = received % 3 == 0;
      if (m->is_post() != should_be_post || m->is_request() == should_be_post) ++wrong_kind;
      if (m->is_post()) {
        if (m->post().value() != static_cast<std::uint64_t>(received)) ++out_of_order;
      } else {
        auto& [msg, ctx] = m->req();
        if (msg.value() != static_cast<std::uint64_t>(received)) ++out_of_order;
        ctx.reply(tracked(msg.value() + 1));
      }
      ++received;
    }
  });

  std::vector<std::pair<std::uint64_t, ump::wait_reply<tracked, int>>> pending;
  int wrong = 0;
  for (int i = 0; i < n; ++i) {
    const auto v = static_cast<std::uint64_t>(i);
    if (i % 3 == 0) {
      if (!cli.post(tracked(v)).has_value()) ++wrong;
    } else if (i % 5 == 4) {
      auto r = cli.req(tracked(v));
      if (!r.has_value() || r->value() != v + 1) ++wrong;
    } else {
      auto w = cli.req_async(tracked(v));
      REQUIRE(w.valid());
      pending.emplace_back(v, std::move(w));
    }
  }
  for (auto& [v, w] : pending) {
    auto r = w.wait();
    if (!r.has_value() || r->value() != v + 1) ++wrong;
  }
  { auto gone = std::move(cli); }
  server.join();
  CHECK(received == n);
  CHECK(wrong_kind == 0);
  CHECK(out_of_order == 0);
  CHECK(wrong == 0);
}

TEST_CASE("post_client_counts_as_a_client") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
  auto poster = cli.poster();
  auto weak = cli.weak();
  { auto gone = std::move(cli); }

  // Only the poster is left: the server still has a client, and the weak one can upgrade.
  auto none = srv.try_wait();
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
  CHECK(weak.upgrade().has_value());

  CHECK(poster.post(tracked(1)).has_value());
  auto copy = poster;
  CHECK(copy.post(tracked(2)).has_value());
  { auto gone = std::move(poster); }
  { auto gone = std::move(copy); }

  // The posts queued before the last poster died come first, in the order they were sent
  // (one FIFO, though they came through two client objects), then clients_disappeared.
  std::vector<std::uint64_t> got;
  for (int i = 0; i < 2; ++i) {
    auto m = srv.wait();
    REQUIRE(m.has_value());
    REQUIRE(m->is_post());
    got.push_back(m->post().value());
  }
  CHECK(got == std::vector<std::uint64_t>{1, 2});
  CHECK(failure(srv.wait()) == ump::errc::clients_disappeared);
  CHECK_FALSE(weak.upgrade().has_value());
}

TEST_CASE("wait_with_a_passed_deadline_after_posts_and_the_last_client_gone") {
  // After handing out a message the server's next look is at its lanes only (and after two
  // posts in a row it pauses before looking again); a wait whose deadline has passed must
  // still look at the channel's state before it says timed_out.
  auto [srv, cli] = ump::ng::channel<int, int, int>();
  CHECK(failure(srv.wait_for(std::chrono::nanoseconds(0))) == ump::errc::timed_out);
  REQUIRE(cli.post(1).has_value());
  REQUIRE(cli.post(2).has_value());
  auto w = cli.req_async(3);
  REQUIRE(w.valid());
  REQUIRE(cli.post(4).has_value());
  REQUIRE(cli.post(5).has_value());
  { auto gone = std::move(cli); }
  std::vector<int> got;
  for (int i = 0; i < 5; ++i) {
    auto m = srv.wait_for(std::chrono::nanoseconds(0));
    REQUIRE(m.has_value());
    if (m->is_post()) {
      got.push_back(m->post());
    } else {
      auto& [msg, ctx] = m->req();
      got.push_back(msg);
      CHECK(ctx.reply(msg * 10).has_value());
    }
  }
  CHECK(got == std::vector<int>{1, 2, 3, 4, 5});
  CHECK(w.wait().value_or(0) == 30);
  CHECK(failure(srv.wait_for(std::chrono::nanoseconds(0))) == ump::errc::clients_disappeared);
  CHECK(failure(srv.wait_until(std::chrono::steady_clock::now() - std::chrono::seconds(1))) ==
        ump::errc::clients_disappeared);
  // Deadlines that may pass during the wait, at any point of it: never timed_out.
  int wrong = 0;
  for (int i = 0; i < ump_test::scaled(4000); ++i) {
    if (failure(srv.wait_for(std::chrono::nanoseconds(50 * (i % 40)))) != ump::errc::clients_disappeared) ++wrong;
  }
  CHECK(wrong == 0);
  CHECK(failure(srv.wait()) == ump::errc::clients_disappeared);
}

TEST_CASE("post_client_keeps_blocked_server_waiting_until_it_dies") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
  auto poster = cli.poster();
  { auto gone = std::move(cli); }
  std::vector<std::uint64_t> posts;
  std::optional<ump::errc> end;
  std::thread server([&s = srv, &posts, &end] {
    for (;;) {
      auto m = s.wait();
      if (!m.has_value()) {
        end = m.error().code();
        return;
      }
      posts.push_back(m->is_post() ? m->post().value() : 0);
    }
  });
  std::thread sender([p = std::move(poster)]() mutable {
    for (std::uint64_t i = 1; i <= 100; ++i) (void)p.post(tracked(i));
  });
  sender.join();
  server.join();
  CHECK(end == ump::errc::clients_disappeared);
  REQUIRE(posts.size() == 100);
  for (std::size_t i = 0; i < posts.size(); ++i) CHECK(posts[i] == i + 1);
}

TEST_CASE("post_after_server_gone") {
  lifetime_check guard;
  const long before = tracked::live();
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
  auto poster = cli.poster();
  { auto gone = std::move(srv); }
  CHECK(failure(cli.post(tracked(1))) == ump::errc::server_disappeared);
  CHECK(failure(poster.post(tracked(2))) == ump::errc::server_disappeared);
  CHECK(failure(cli.req(tracked(3))) == ump::errc::server_disappeared);
  auto w = cli.req_async(tracked(4));
  CHECK(w.ready());  // the early outcome travels inside the wait_reply
  CHECK(failure(w.wait()) == ump::errc::server_disappeared);
  CHECK(tracked::live() == before);  // each message destroyed at once
}

TEST_CASE("queued_posts_destroyed_when_server_dropped") {
  lifetime_check guard;
  for (int n : {1, 31, 32, 33, 1000}) {
    CAPTURE(n);
    const long before = tracked::live();
    auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
    auto poster = cli.poster();
    std::vector<ump::wait_reply<tracked, int>> pending;
    for (int i = 0; i < n; ++i) {
      const auto v = static_cast<std::uint64_t>(i);
      if (i % 4 == 3) {
        auto w = cli.req_async(tracked(v));
        REQUIRE(w.valid());
        pending.push_back(std::move(w));
      } else {
        REQUIRE((i % 2 == 0 ? poster.post(tracked(v)) : cli.post(tracked(v))).has_value());
      }
    }
    CHECK(srv.queued() == static_cast<std::size_t>(n));
    CHECK(tracked::live() - before == n);
    { auto gone = std::move(srv); }
    CHECK(tracked::live() == before);  // posts and requests destroyed by the drop
    int wrong = 0;
    for (auto& w : pending)
      if (failure(w.wait()) != ump::errc::server_disappeared) ++wrong;
    CHECK(wrong == 0);
  }
}

TEST_CASE("message_visit") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
  REQUIRE(cli.post(tracked(1)).has_value());
  auto w = cli.req_async(tracked(2));
  REQUIRE(w.valid());

  std::vector<std::uint64_t> posts;
  std::vector<std::uint64_t> requests;
  auto visitor = overloaded{
      [&](tracked& p) {
        posts.push_back(p.value());
        return 'p';
      },
      [&](request_t& r) {
        requests.push_back(r.msg.value());
        CHECK(r.ctx.reply(tracked(r.msg.value() * 10)).has_value());
        return 'r';
      },
  };
  auto first = srv.wait();
  REQUIRE(first.has_value());
  CHECK(first->visit(visitor) == 'p');
  auto second = srv.wait();
  REQUIRE(second.has_value());
  CHECK(second->visit(visitor) == 'r');
  CHECK(posts == std::vector<std::uint64_t>{1});
  CHECK(requests == std::vector<std::uint64_t>{2});
  auto out = w.wait();
  REQUIRE(out.has_value());
  CHECK(out->value() == 20);

  // visit can also move the payload out of the message.
  REQUIRE(cli.post(tracked(3)).has_value());
  auto third = srv.try_wait();
  REQUIRE(third.has_value());
  REQUIRE(third->has_value());
  std::optional<tracked> taken;
  (*third)->visit(overloaded{[&](tracked& p) { taken.emplace(std::move(p)); }, [](request_t&) {}});
  REQUIRE(taken.has_value());
  CHECK(taken->value() == 3);
}

TEST_CASE("ng_weak_client") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
  auto weak = cli.weak();
  auto up = weak.upgrade();
  REQUIRE(up.has_value());
  CHECK(up->post(tracked(1)).has_value());
  auto up_poster = up->poster();
  { auto gone = std::move(up); }
  { auto gone = std::move(cli); }
  CHECK(up_poster.post(tracked(2)).has_value());
  CHECK(weak.upgrade().has_value());  // the poster is still a strong client
  { auto gone = std::move(up_poster); }

  // Two client objects sent these: both arrive, in no promised order.
  std::vector<std::uint64_t> got;
  for (int i = 0; i < 2; ++i) {
    auto m = srv.wait();
    REQUIRE(m.has_value());
    REQUIRE(m->is_post());
    got.push_back(m->post().value());
  }
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::uint64_t>{1, 2});
  CHECK(failure(srv.wait()) == ump::errc::clients_disappeared);
  CHECK_FALSE(weak.upgrade().has_value());
  CHECK(failure(srv.try_wait()) == ump::errc::clients_disappeared);
}

TEST_CASE("ng_last_client_dropped_while_server_blocked") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
  std::optional<ump::errc> end;
  std::thread server([&s = srv, &end] { end = failure(s.wait()); });
  std::thread dropper([c = std::move(cli)]() mutable { auto gone = std::move(c); });
  dropper.join();
  server.join();
  CHECK(end == ump::errc::clients_disappeared);
}

TEST_CASE("ng_abandoned_request_is_still_delivered") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
  { auto abandoned = cli.req_async(tracked(1)); }
  REQUIRE(cli.post(tracked(2)).has_value());
  // ump-ng 0.2's wait() fails here; ours delivers the request, then the post.
  auto m = srv.wait();
  REQUIRE(m.has_value());
  REQUIRE(m->is_request());
  CHECK(m->req().msg.value() == 1);
  CHECK_FALSE(m->req().ctx.requester_waiting());
  CHECK(failure(m->req().ctx.reply(tracked(0))) == ump::errc::origin_disappeared);
  auto p = srv.wait();
  REQUIRE(p.has_value());
  REQUIRE(p->is_post());
  CHECK(p->post().value() == 2);
}

TEST_CASE("ng_context_outlives_server_and_fail_reaches_client") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
  auto w = cli.req_async(tracked(1));
  REQUIRE(w.valid());
  REQUIRE(cli.post(tracked(2)).has_value());
  auto m = srv.wait();
  REQUIRE(m.has_value());
  REQUIRE(m->is_request());
  auto ctx = std::move(m->req().ctx);
  { auto gone = std::move(srv); }  // the queued post is destroyed; the context still works
  CHECK(failure(cli.post(tracked(3))) == ump::errc::server_disappeared);
  CHECK(ctx.fail(-1).has_value());
  auto out = w.wait();
  REQUIRE(failure(out) == ump::errc::app_error);
  CHECK(out.error().app() == -1);
}

TEST_CASE("ng_probes_and_try_wait_count_posts") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<tracked, tracked, tracked, int>();
  CHECK(srv.empty());
  auto none = srv.try_wait();
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
  REQUIRE(cli.post(tracked(1)).has_value());
  REQUIRE(cli.post(tracked(2)).has_value());
  CHECK(srv.queued() == 2);
  auto a = srv.try_wait();
  REQUIRE(a.has_value());
  REQUIRE(a->has_value());
  CHECK((*a)->post().value() == 1);
  auto b = srv.wait_for(std::chrono::hours(1));
  REQUIRE(b.has_value());
  CHECK(b->post().value() == 2);
  CHECK(srv.empty());
  CHECK(failure(srv.wait_for(std::chrono::nanoseconds(0))) == ump::errc::timed_out);
}

// --- posts that travel inline (trivially copyable, at most 8 bytes): no node --------------

namespace {
struct tag8 {  // exactly the inline capacity
  std::uint32_t seq;
  std::uint16_t who;
  std::uint16_t check;
};
static_assert(ump::detail::fits_inline<tag8>);
static_assert(ump::detail::fits_inline<int>);
static_assert(ump::detail::fits_inline<void*>);
struct too_big {
  std::uint64_t a;
  char b;
};
static_assert(!ump::detail::fits_inline<too_big>);
static_assert(!ump::detail::fits_inline<tracked>);

std::uint16_t check_of(std::uint32_t seq, std::uint16_t who) {
  return static_cast<std::uint16_t>((seq * 40503u + who * 977u) >> 7);
}
tag8 make_tag(std::uint64_t v) {
  const auto seq = static_cast<std::uint32_t>(v & 0xffffffffu);
  const auto who = static_cast<std::uint16_t>(v >> 32);
  return {seq, who, check_of(seq, who)};
}
std::uint64_t value_of(const tag8& t) { return (std::uint64_t{t.who} << 32) | t.seq; }
bool intact(const tag8& t) { return t.check == check_of(t.seq, t.who); }
}  // namespace

TEST_CASE("inline_posts_and_node_requests_interleaved_in_order") {
  lifetime_check guard;
  const int n = ump_test::scaled(6000);
  // Two client objects on two threads; within each, posts (inline) and requests (nodes)
  // must arrive in the order sent, with every byte of each post intact.
  auto [srv, cli] = ump::ng::channel<tag8, tracked, tracked, int>();
  std::atomic<int> bad{0};
  std::thread server([&s = srv, &bad] {
    std::uint64_t next[2] = {0, 0};
    while (auto m = s.wait()) {
      if (m->is_post()) {
        const tag8 t = m->post();
        if (t.who > 1 || !intact(t) || t.seq != next[t.who]++) bad.fetch_add(1, std::memory_order_relaxed);
      } else {
        auto& [msg, ctx] = m->req();
        const std::uint64_t who = msg.value() >> 32;
        const std::uint64_t i = msg.value() & 0xffffffffu;
        if (who > 1 || i != next[who]++) bad.fetch_add(1, std::memory_order_relaxed);
        ctx.reply(tracked(msg.value() + 1));
      }
    }
  });
  auto sender = [&](client_t_for<tag8> c, std::uint64_t who) {
    for (int i = 0; i < n; ++i) {
      const std::uint64_t v = (who << 32) | static_cast<std::uint64_t>(i);
      if (i % 4 == 3) {
        auto r = c.req(tracked(v));
        if (!r.has_value() || r->value() != v + 1) bad.fetch_add(1, std::memory_order_relaxed);
      } else if (!c.post(make_tag(v)).has_value()) {
        bad.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };
  std::thread t0(sender, cli, 0);
  std::thread t1(sender, std::move(cli), 1);
  t0.join();
  t1.join();
  server.join();  // both clients are gone: wait() returned clients_disappeared
  CHECK(bad.load() == 0);
}

TEST_CASE("queued_inline_posts_dropped_with_server_then_post_fails") {
  lifetime_check guard;
  for (int n : {1, 15, 16, 17, 40, 1000}) {
    CAPTURE(n);
    const long before = tracked::live();
    auto [srv, cli] = ump::ng::channel<tag8, tracked, tracked, int>();
    std::vector<ump::wait_reply<tracked, int>> pending;
    for (int i = 0; i < n; ++i) {
      if (i % 5 == 4) {
        auto w = cli.req_async(tracked(static_cast<std::uint64_t>(i)));
        REQUIRE(w.valid());
        pending.push_back(std::move(w));
      } else {
        REQUIRE(cli.post(make_tag(static_cast<std::uint64_t>(i))).has_value());
      }
    }
    CHECK(srv.queued() == static_cast<std::size_t>(n));
    // Take one: the server receives in batches, so part of the queue now sits in its local
    // batch. Dropping it must fail those too.
    auto first = srv.try_wait();
    REQUIRE(first.has_value());
    REQUIRE(first->has_value());
    REQUIRE((*first)->is_post());
    CHECK(intact((*first)->post()));
    CHECK(value_of((*first)->post()) == 0);
    CHECK(srv.queued() == static_cast<std::size_t>(n - 1));
    { auto gone = std::move(srv); }
    CHECK(tracked::live() == before);  // the queued requests' messages were destroyed
    int wrong = 0;
    for (auto& w : pending)
      if (failure(w.wait()) != ump::errc::server_disappeared) ++wrong;
    CHECK(wrong == 0);
    CHECK(failure(cli.post(make_tag(7))) == ump::errc::server_disappeared);
    CHECK(failure(cli.poster().post(make_tag(8))) == ump::errc::server_disappeared);
  }
}

TEST_CASE("ng_wait_until_times_out_then_receives") {
  lifetime_check guard;
  auto [srv, cli] = ump::ng::channel<int, tracked, tracked, int>();
  const auto past = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  CHECK(failure(srv.wait_until(past)) == ump::errc::timed_out);
  REQUIRE(cli.post(42).has_value());
  auto m = srv.wait_until(std::chrono::steady_clock::now() + std::chrono::hours(1));
  REQUIRE(m.has_value());
  REQUIRE(m->is_post());
  CHECK(m->post() == 42);
  { auto gone = std::move(cli); }
  CHECK(failure(srv.wait_until(std::chrono::steady_clock::time_point::max())) == ump::errc::clients_disappeared);
}
