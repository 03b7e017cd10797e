// Tests for ump/client.hpp: clones, weak clients and upgrade, per-client FIFO, one client
// object shared by several threads, and many requests outstanding at once.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <latch>
#include <optional>
#include <random>
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

using client_t = ump::client<tracked, tracked, int>;
using server_t = ump::server<tracked, tracked, int>;
using wait_reply_t = ump::wait_reply<tracked, int>;
using request_t = ump::request<tracked, tracked, int>;

// The reply every server below computes.
std::uint64_t f(std::uint64_t v) { return v * 3 + 1; }

// Answers every request with f(value) until the clients are gone; returns how many.
int serve_all(server_t& srv) {
  int n = 0;
  for (;;) {
    auto r = srv.wait();
    if (!r.has_value()) {
      CHECK(r.error().code() == ump::errc::clients_disappeared);
      return n;
    }
    ++n;
    r->ctx.reply(tracked(f(r->msg.value())));
  }
}

// Takes one request and answers it with f(value).
void serve_one(server_t& srv) {
  auto r = srv.wait();
  REQUIRE(r.has_value());
  CHECK(r->ctx.reply(tracked(f(r->msg.value()))).has_value());
}

// True when `w` yields f(v).
bool answered(wait_reply_t& w, std::uint64_t v) {
  auto r = w.wait();
  return r.has_value() && r->value() == f(v);
}

}  // namespace

TEST_CASE("clones_are_independent") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto clone = cli;
  client_t assigned = clone;
  assigned = cli;  // copy-assignment gives a third independent client

  auto a = cli.req_async(tracked(1));
  auto b = clone.req_async(tracked(2));
  auto c = assigned.req_async(tracked(3));
  REQUIRE_FALSE((a.ready() || b.ready() || c.ready()));  // sent, not yet answered
  for (int i = 0; i < 3; ++i) serve_one(srv);
  CHECK(answered(a, 1));
  CHECK(answered(b, 2));
  CHECK(answered(c, 3));

  // Dropping the original leaves the others working, and the server still has clients.
  { auto gone = std::move(cli); }
  auto none = srv.try_wait();
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
  auto d = clone.req_async(tracked(4));
  REQUIRE(d.valid());
  serve_one(srv);
  CHECK(answered(d, 4));

  { auto gone = std::move(assigned); }
  // A moved-to client is the same client, not an extra one.
  client_t moved = std::move(clone);
  none = srv.try_wait();
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
  { auto gone = std::move(moved); }
  CHECK(failure(srv.wait()) == ump::errc::clients_disappeared);
}

TEST_CASE("clones_destroyed_on_several_threads_give_clients_disappeared_once") {
  lifetime_check guard;
  constexpr int threads = 4;
  const int rounds = ump_test::scaled(500);
  int bad_rounds = 0;
  for (int round = 0; round < rounds; ++round) {
    auto [srv, cli] = ump::channel<tracked, tracked, int>();
    auto weak = cli.weak();
    std::latch gate(threads);
    std::atomic<int> wrong{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([c = cli, &gate, &wrong, t]() mutable {
        auto w = c.req_async(tracked(static_cast<std::uint64_t>(t)));
        gate.arrive_and_wait();  // every clone is dropped at (nearly) the same moment
        { auto gone = std::move(c); }
        // ORDERING: relaxed; read after join().
        if (!w.valid() || !answered(w, static_cast<std::uint64_t>(t))) wrong.fetch_add(1, std::memory_order_relaxed);
      });
    }
    { auto gone = std::move(cli); }

    // Each clone sent before it was dropped, so all `threads` requests come first, then
    // clients_disappeared, which stays.
    const int served = serve_all(srv);
    for (auto& t : pool) t.join();
    const bool ok = served == threads && wrong.load() == 0 && failure(srv.wait()) == ump::errc::clients_disappeared &&
                    failure(srv.try_wait()) == ump::errc::clients_disappeared && !weak.upgrade().has_value();
    if (!ok) ++bad_rounds;
  }
  CHECK(bad_rounds == 0);
}

TEST_CASE("weak_client_does_not_keep_server_alive") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto weak = cli.weak();
  auto weak_copy = weak;
  auto w = cli.req_async(tracked(1));
  REQUIRE(w.valid());
  { auto gone = std::move(cli); }
  // The queued request is still delivered, then the weak clients do not count.
  serve_one(srv);
  CHECK(answered(w, 1));
  CHECK(failure(srv.wait()) == ump::errc::clients_disappeared);
  CHECK_FALSE(weak_copy.upgrade().has_value());
}

TEST_CASE("weak_client_outlives_the_server") {
  std::optional<ump::weak_client<int, int>> weak;
  {
    auto [srv, cli] = ump::channel<int, int>();
    weak = cli.weak();
  }
  CHECK_FALSE(weak->upgrade().has_value());
}

TEST_CASE("upgrade_after_last_strong_died_is_empty") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto weak = cli.weak();
  { auto gone = std::move(cli); }
  CHECK_FALSE(weak.upgrade().has_value());
  CHECK(failure(srv.wait()) == ump::errc::clients_disappeared);
  // Once the server has seen clients_disappeared, no upgrade ever succeeds.
  for (int i = 0; i < 100; ++i) {
    auto copy = weak;
    CHECK_FALSE(copy.upgrade().has_value());
  }
  CHECK(failure(srv.try_wait()) == ump::errc::clients_disappeared);
}

TEST_CASE("upgrade_while_strong_alive_works") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  auto weak = cli.weak();
  auto up = weak.upgrade();
  REQUIRE(up.has_value());
  auto w = up->req_async(tracked(7));
  REQUIRE(w.valid());
  serve_one(srv);
  CHECK(answered(w, 7));

  // The upgraded client is a strong client of its own: it keeps the server's clients alive.
  { auto gone = std::move(cli); }
  auto none = srv.try_wait();
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
  auto again = weak.upgrade();
  REQUIRE(again.has_value());
  { auto gone = std::move(up); }
  { auto gone = std::move(again); }
  CHECK(failure(srv.wait()) == ump::errc::clients_disappeared);
  CHECK_FALSE(weak.upgrade().has_value());
}

TEST_CASE("upgrade_racing_last_strong_drop") {
  lifetime_check guard;
  const int rounds = ump_test::scaled(20000);
  int inconsistent = 0;
  long upgrades_during_race = 0;
  int rounds_failed_while_racing = 0;
  // Rounds in which the drop landed between two upgrades (one succeeded, a later one
  // failed): the interleaving this test is for. Rounds go on past `rounds`, up to a bound,
  // until there has been one.
  int rounds_straddled = 0;
  for (int round = 0; round < rounds || (rounds_straddled == 0 && round < 50 * rounds); ++round) {
    auto [srv, cli] = ump::channel<tracked, tracked, int>();
    auto weak = cli.weak();
    std::atomic<bool> running{false};
    std::atomic<bool> go{false};
    std::thread dropper([c = std::move(cli), &running, &go]() mutable {
      // ORDERING: release/acquire pairs on both flags only make a start gate; the drop's own
      // ordering is the library's.
      running.store(true, std::memory_order_release);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      auto gone = std::move(c);
    });
    while (!running.load(std::memory_order_acquire)) std::this_thread::yield();
    go.store(true, std::memory_order_release);

    // Upgrade until it fails or the attempts run out (a descheduled dropper must not turn
    // this into a long loop). The first few successes send a request: a real client's
    // request must reach the server before clients_disappeared.
    int sent = 0;
    bool failed = false;
    bool upgraded = false;
    for (int attempt = 0; attempt < 256; ++attempt) {
      auto up = weak.upgrade();
      if (!up.has_value()) {
        failed = true;
        break;
      }
      ++upgrades_during_race;
      upgraded = true;
      if (sent < 8) {
        auto w = up->req_async(tracked(static_cast<std::uint64_t>(sent)));
        if (w.valid()) ++sent;
      }
    }
    if (failed) {
      ++rounds_failed_while_racing;
      if (upgraded) ++rounds_straddled;
      // Monotonic: after one failure, never a success.
      for (int i = 0; i < 3; ++i)
        if (weak.upgrade().has_value()) ++inconsistent;
    }
    dropper.join();
    int received = 0;
    for (;;) {
      auto r = srv.wait();
      if (!r.has_value()) break;
      ++received;
    }
    if (received != sent || weak.upgrade().has_value()) ++inconsistent;
  }
  MESSAGE("successful upgrades while racing: " << upgrades_during_race << "; rounds that saw the drop while racing: "
                                               << rounds_failed_while_racing << " (" << rounds_straddled
                                               << " between two upgrades)");
  CHECK(inconsistent == 0);
  CHECK_MESSAGE(rounds_straddled > 0, "the drop never landed between two upgrades");
}

TEST_CASE("per_client_fifo") {
  lifetime_check guard;
  const int n = ump_test::scaled(10000);
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  int out_of_order = 0;
  int received = 0;
  std::thread server([&s = srv, &out_of_order, &received] {
    for (;;) {
      auto r = s.wait();
      if (!r.has_value()) break;
      if (r->msg.value() != static_cast<std::uint64_t>(received)) ++out_of_order;
      ++received;
      r->ctx.reply(tracked(f(r->msg.value())));
    }
  });
  std::vector<wait_reply_t> pending;
  pending.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto w = cli.req_async(tracked(static_cast<std::uint64_t>(i)));
    REQUIRE(w.valid());
    pending.push_back(std::move(w));
  }
  int wrong = 0;
  for (int i = 0; i < n; ++i)
    if (!answered(pending[static_cast<std::size_t>(i)], static_cast<std::uint64_t>(i))) ++wrong;
  { auto gone = std::move(cli); }
  server.join();
  CHECK(received == n);
  CHECK(out_of_order == 0);
  CHECK(wrong == 0);
}

// Values carry the sending thread in the high half and a per-thread sequence number in the
// low half, so the server can check each thread's order through the shared object.
TEST_CASE("one_client_shared_by_several_threads") {
  lifetime_check guard;
  constexpr int threads = 4;
  const int per_thread = ump_test::scaled(2000);
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::vector<std::uint64_t> next(threads, 0);
  int out_of_order = 0;
  int received = 0;
  std::thread server([&s = srv, &next, &out_of_order, &received] {
    for (;;) {
      auto r = s.wait();
      if (!r.has_value()) break;
      const std::uint64_t v = r->msg.value();
      auto& expect = next[static_cast<std::size_t>(v >> 32)];
      if ((v & 0xffffffffu) != expect) ++out_of_order;
      expect = (v & 0xffffffffu) + 1;
      ++received;
      r->ctx.reply(tracked(f(v)));
    }
  });

  std::atomic<int> wrong{0};
  std::vector<std::thread> users;
  for (int t = 0; t < threads; ++t) {
    users.emplace_back([&shared = cli, &wrong, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::uint64_t v = (static_cast<std::uint64_t>(t) << 32) | static_cast<std::uint64_t>(i);
        // Alternate blocking requests with short bursts of req_async on the same object.
        if (i % 4 == 3) {
          auto a = shared.req_async(tracked(v));
          if (!a.valid() || !answered(a, v))
            // ORDERING: relaxed; read after join().
            wrong.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        auto r = shared.req(tracked(v));
        if (!r.has_value() || r->value() != f(v)) wrong.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& u : users) u.join();
  { auto gone = std::move(cli); }
  server.join();
  CHECK(wrong.load() == 0);
  CHECK(received == threads * per_thread);
  CHECK(out_of_order == 0);
}

TEST_CASE("many_outstanding_req_async_answered_out_of_order") {
  lifetime_check guard;
  constexpr int n = 64;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::vector<client_t> clients{cli, cli, cli, cli};
  const unsigned seed = std::random_device{}();
  INFO("shuffle seed: " << seed);
  std::mt19937 rng(seed);

  for (int order = 0; order < 2; ++order) {  // 0: reverse, 1: random
    std::vector<wait_reply_t> pending;
    for (int i = 0; i < n; ++i) {
      auto w = clients[static_cast<std::size_t>(i) % clients.size()].req_async(tracked(static_cast<std::uint64_t>(i)));
      REQUIRE(w.valid());
      pending.push_back(std::move(w));
    }
    std::vector<request_t> held;
    for (int i = 0; i < n; ++i) {
      auto r = srv.wait();
      REQUIRE(r.has_value());
      held.push_back(std::move(*r));
    }
    CHECK(srv.empty());
    if (order == 0) {
      std::reverse(held.begin(), held.end());
    } else {
      std::shuffle(held.begin(), held.end(), rng);
    }
    int ready_too_early = 0;
    for (auto& h : held) {
      if (pending[h.msg.value()].ready()) ++ready_too_early;
      CHECK(h.ctx.reply(tracked(f(h.msg.value()))).has_value());
      if (!pending[h.msg.value()].ready()) ++ready_too_early;
    }
    CHECK(ready_too_early == 0);
    int wrong = 0;
    for (int i = 0; i < n; ++i)
      if (!answered(pending[static_cast<std::size_t>(i)], static_cast<std::uint64_t>(i))) ++wrong;
    CHECK(wrong == 0);
  }
}

TEST_CASE("blocked_requesters_answered_out_of_order") {
  lifetime_check guard;
  constexpr int threads = 8;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::atomic<int> wrong{0};
  std::vector<std::thread> requesters;
  for (int t = 0; t < threads; ++t) {
    requesters.emplace_back([c = cli, &wrong, t]() mutable {
      auto r = c.req(tracked(static_cast<std::uint64_t>(t)));
      // ORDERING: relaxed; read after join().
      if (!r.has_value() || r->value() != f(static_cast<std::uint64_t>(t)))
        wrong.fetch_add(1, std::memory_order_relaxed);
    });
  }
  std::vector<request_t> held;
  for (int i = 0; i < threads; ++i) {
    auto r = srv.wait();
    REQUIRE(r.has_value());
    held.push_back(std::move(*r));
  }
  std::reverse(held.begin(), held.end());
  for (auto& h : held) CHECK(h.ctx.reply(tracked(f(h.msg.value()))).has_value());
  for (auto& t : requesters) t.join();
  CHECK(wrong.load() == 0);
}

// Each client object keeps a small stock of free nodes taken from the channel's pool. When
// clones die, their stock goes back: the channel's teardown checks (debug builds) that every
// node it ever allocated is back in the pool, and LeakSanitizer (ASan builds) reports any
// node that is not.
TEST_CASE("clones_destroyed_return_their_cached_nodes") {
  lifetime_check guard;
  auto [srv, cli] = ump::channel<tracked, tracked, int>();
  std::thread server([&s = srv] {
    while (auto r = s.wait()) r->ctx.reply(tracked(r->msg.value() * 2));
  });
  int wrong = 0;
  for (int round = 0; round < 20; ++round) {
    std::vector<client_t> clones(8, cli);
    std::vector<ump::wait_reply<tracked, int>> pending;
    for (std::size_t i = 0; i < clones.size() * 5; ++i) {
      auto w = clones[i % clones.size()].req_async(tracked(i));
      REQUIRE(w.valid());
      pending.push_back(std::move(w));
    }
    for (std::size_t i = 0; i < pending.size(); ++i) {
      auto r = pending[i].wait();
      if (!r.has_value() || r->value() != i * 2) ++wrong;
    }
  }
  { auto gone = std::move(cli); }
  server.join();
  CHECK(wrong == 0);
}
