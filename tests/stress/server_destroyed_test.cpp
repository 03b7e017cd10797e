// The server destroyed while many senders are mid-flight (testing.md, "Server lifecycle").
// Promised (server.hpp, semantics.md): a request either reaches the server, which then
// answers it (also after the server itself is gone, through its reply_context), or its
// client gets server_disappeared: immediately if sent after the destruction, or from the
// destruction's drain if it was still queued. Queued ng posts are destroyed. Nothing leaks.
//
// Each round: S sender threads send M requests each (blocking req, or req_async + wait);
// the server thread answers a random number of them, keeps the last one's context, destroys
// the server, and only then answers that context. Checked per round: served +
// server_disappeared == S·M at the clients, the clients saw exactly as many replies as the
// server sent, every reply carried its own request's value, and every payload was
// destroyed (lifetime_check).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "ump/channel.hpp"
#include "ump/ng.hpp"

namespace {

using ump_test::tracked;

std::uint64_t next_random(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr int senders = 4;

struct client_counts {
  std::atomic<long> served{0};
  std::atomic<long> gone{0};
  std::atomic<long> wrong{0};  // another error, or a reply that is not this request's
  std::atomic<long> posts_ok{0};
  std::atomic<long> posts_gone{0};
};

// Records one request's outcome. ORDERING (all counters): relaxed; read after join().
template <class R>
void record(client_counts& c, const R& r, std::uint64_t sent) {
  if (r) {
    (r->value() == sent + 1 ? c.served : c.wrong).fetch_add(1, std::memory_order_relaxed);
  } else {
    (r.error().code() == ump::errc::server_disappeared ? c.gone : c.wrong).fetch_add(1, std::memory_order_relaxed);
  }
}

template <class Client>
void send_all(Client c, int sender, int per_sender, client_counts& counts, bool with_posts) {
  for (int i = 0; i < per_sender; ++i) {
    const auto v = static_cast<std::uint64_t>(sender) * 1000000 + static_cast<std::uint64_t>(i);
    if constexpr (requires { c.post(tracked(v)); }) {
      if (with_posts && i % 3 == 0) {
        auto p = c.post(tracked(v));
        // ORDERING: relaxed, like every counter here (read after join()).
        (p ? counts.posts_ok : counts.posts_gone).fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (i % 2 == 0) {
      record(counts, c.req(tracked(v)), v);
    } else {
      record(counts, c.req_async(tracked(v)).wait(), v);
    }
  }
}

// Answers requests until `limit` were taken (or the clients are gone), keeps the last one's
// context, destroys the server, then answers that context. Returns {replies, posts}.
template <class Server>
std::pair<long, long> serve_then_destroy(Server srv, long limit) {
  long replies = 0;
  long posts = 0;
  long taken = 0;
  std::optional<ump::reply_context<tracked>> held;
  std::uint64_t held_value = 0;
  while (taken < limit) {
    auto m = srv.wait();
    if (!m) break;  // clients_disappeared: every request was served
    if constexpr (requires { m->is_post(); }) {
      if (m->is_post()) {
        ++posts;
        continue;
      }
      ++taken;
      auto& rq = m->req();
      if (taken == limit) {
        held.emplace(std::move(rq.ctx));
        held_value = rq.msg.value();
      } else if (rq.ctx.reply(tracked(rq.msg.value() + 1))) {
        ++replies;
      }
    } else {
      ++taken;
      if (taken == limit) {
        held.emplace(std::move(m->ctx));
        held_value = m->msg.value();
      } else if (m->ctx.reply(tracked(m->msg.value() + 1))) {
        ++replies;
      }
    }
  }
  { Server gone = std::move(srv); }  // destroyed with senders still sending
  if (held && held->reply(tracked(held_value + 1))) ++replies;
  return {replies, posts};
}

template <class Make>
void run_rounds(Make make, bool with_posts) {
  ump_test::lifetime_check guard;
  constexpr int rounds = ump_test::scaled(120);
  constexpr int per_sender = ump_test::scaled(400) + 1;
  constexpr long total = static_cast<long>(senders) * per_sender;
  std::uint64_t rng = 0xdead5eedULL;
  long destroyed_early = 0;
  for (int r = 0; r < rounds; ++r) {
    CAPTURE(r);
    // Sometimes the server outlives every request (limit > total).
    const long limit = static_cast<long>(next_random(rng) % static_cast<std::uint64_t>(total + total / 4));
    if (limit < total) ++destroyed_early;
    auto [srv, cli] = make();
    client_counts counts;
    std::pair<long, long> server_side{};
    std::thread server(
        [&server_side, limit, s = std::move(srv)]() mutable { server_side = serve_then_destroy(std::move(s), limit); });
    std::vector<std::thread> threads;
    for (int t = 0; t < senders; ++t) {
      threads.emplace_back(
          [&counts, t, with_posts, c = cli]() mutable { send_all(std::move(c), t, per_sender, counts, with_posts); });
    }
    { auto last = std::move(cli); }  // only the senders hold clients now
    for (auto& t : threads) t.join();
    server.join();
    CHECK(counts.wrong.load() == 0);
    CHECK(counts.served.load() + counts.gone.load() == total);
    CHECK(counts.served.load() == server_side.first);
    CHECK(counts.served.load() == std::min(limit, total));
    CHECK(server_side.second <= counts.posts_ok.load());
    if (limit >= total) {
      CHECK(counts.gone.load() == 0);
      CHECK(server_side.second == counts.posts_ok.load());
    }
  }
  CHECK(destroyed_early > 0);
}

}  // namespace

TEST_CASE("server_destroyed_concurrently_with_senders") {
  run_rounds([] { return ump::channel<tracked, tracked>(); }, false);
}

TEST_CASE("ng_server_destroyed_concurrently_with_senders_and_posters") {
  run_rounds([] { return ump::ng::channel<tracked, tracked, tracked>(); }, true);
}
