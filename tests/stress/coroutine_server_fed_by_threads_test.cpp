// Programs shaped like the README's: a coroutine server (co_await srv.async_wait(), inline
// scheduler, run by ump::sync_wait on its own thread) fed by several blocking threads, on
// many fresh channels. This shape hid the stale wake-up (tests/async/stale_wake_test.cpp)
// from every other test: a fresh channel per round puts the server's first registration,
// and the race between the senders' wakes, into every round.
//
// Each round checks, per sender, that every request got its own answer and, for ng, that
// the server saw exactly the posts that were sent (no phantom post, none lost, no
// duplicate), in per-sender order.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "support/lifetime.hpp"
#include "ump/run_loop.hpp"
#include "ump/ng.hpp"
#include "ump/task.hpp"
#include "ump/ump.hpp"

namespace {

using ump::errc;
using ump_test::scaled;

constexpr int senders = 3;

// Answers msg + 1 until the clients are gone; resumes through `sched`.
template <class Sched = ump::inline_scheduler>
ump::task<long> summing_server(ump::server<int, int>& srv, Sched sched = {}) {
  long served = 0;
  for (;;) {
    auto r = co_await srv.async_wait(sched);
    if (!r) {
      CHECK(r.error() == errc::clients_disappeared);
      co_return served;
    }
    r->ctx.reply(r->msg + 1);
    ++served;
  }
}

// `count` threads, each with its own copy of `cli`, send `per_sender` blocking requests;
// `cli` itself is dropped, so the server sees clients_disappeared once they are done.
// Returns how many answers were missing or wrong.
int run_blocking_senders(ump::client<int, int> cli, int count, int per_sender) {
  std::vector<std::thread> threads;
  std::vector<int> wrong(static_cast<std::size_t>(count), 0);
  for (int t = 0; t < count; ++t) {
    threads.emplace_back([&wrong, t, per_sender, c = cli]() mutable {
      for (int i = 0; i < per_sender; ++i) {
        const int v = t * 100000 + i;
        auto r = c.req(v);
        if (!r || *r != v + 1) ++wrong[static_cast<std::size_t>(t)];
      }
    });
  }
  { auto gone = std::move(cli); }
  for (auto& th : threads) th.join();
  int total = 0;
  for (int w : wrong) total += w;
  return total;
}

TEST_CASE("coroutine_server_fed_by_blocking_threads_on_fresh_channels") {
  const int rounds = scaled(400);
  const int per_sender = 300;
  for (int round = 0; round < rounds; ++round) {
    auto chan = ump::channel<int, int>();
    long served = -1;
    std::thread server([&served, s = std::move(chan.first)]() mutable { served = ump::sync_wait(summing_server(s)); });
    REQUIRE(run_blocking_senders(std::move(chan.second), senders, per_sender) == 0);
    server.join();
    REQUIRE(served == senders * per_sender);
  }
}

// The same with the server coroutine on a run_loop (resumed through the loop's scheduler,
// on the loop's thread) and six blocking senders.
TEST_CASE("run_loop_coroutine_server_fed_by_six_blocking_threads_on_fresh_channels") {
  const int rounds = scaled(150);
  const int per_sender = 100;
  constexpr int many = 6;
  for (int round = 0; round < rounds; ++round) {
    auto chan = ump::channel<int, int>();
    ump::run_loop loop;
    long served = -1;
    std::thread server([&] { served = loop.run(summing_server(chan.first, loop.scheduler())); });
    REQUIRE(run_blocking_senders(std::move(chan.second), many, per_sender) == 0);
    server.join();
    REQUIRE(served == many * per_sender);
  }
}

// ump::ng: three threads post distinct values (every 50th message is a request instead).
template <class P>
struct ng_round_log {
  std::vector<P> posts;
  long requests = 0;
};

template <class P>
ump::task<void> recording_ng_server(ump::ng::server<P, int, int> srv, ng_round_log<P>& log) {
  for (;;) {
    auto m = co_await srv.async_wait();
    if (!m) {
      CHECK(m.error() == errc::clients_disappeared);
      co_return;
    }
    if (m->is_post()) {
      log.posts.push_back(std::move(m->post()));
    } else {
      m->req().ctx.reply(m->req().msg);
      ++log.requests;
    }
  }
}

std::uint32_t encode(int sender, int i) {
  return static_cast<std::uint32_t>(sender) << 24 | static_cast<std::uint32_t>(i);
}

template <class P>
P make_post(std::uint32_t code) {
  if constexpr (std::is_same_v<P, std::string>) {
    return std::string(24, 'x') + std::to_string(code);  // a heap-allocated string
  } else {
    return static_cast<P>(code) + 1;  // never 0: an empty envelope read as a post would show up
  }
}

TEST_CASE_TEMPLATE("ng_coroutine_server_fed_by_posting_threads_on_fresh_channels", P, std::uint64_t, std::string) {
  const int rounds = scaled(std::is_same_v<P, std::string> ? 600 : 1500);
  const int per_sender = 200;
  for (int round = 0; round < rounds; ++round) {
    auto chan = ump::ng::channel<P, int, int>();
    auto& srv = chan.first;
    auto& cli = chan.second;
    ng_round_log<P> log;
    std::thread server(
        [&log, s = std::move(srv)]() mutable { ump::sync_wait(recording_ng_server<P>(std::move(s), log)); });
    std::vector<std::thread> threads;
    std::vector<int> wrong(senders, 0);
    for (int t = 0; t < senders; ++t) {
      threads.emplace_back([&wrong, t, c = cli]() mutable {
        for (int i = 0; i < per_sender; ++i) {
          if (i % 50 == 49) {
            auto r = c.req(i);
            if (!r || *r != i) ++wrong[t];
          } else if (!c.post(make_post<P>(encode(t, i)))) {
            ++wrong[t];
          }
        }
      });
    }
    { auto gone = std::move(cli); }
    for (auto& th : threads) th.join();
    server.join();
    for (int t = 0; t < senders; ++t) REQUIRE(wrong[t] == 0);
    REQUIRE(log.requests == senders * (per_sender / 50));
    // Exactly the posts that were sent, each sender's in its own order.
    std::vector<std::vector<P>> by_sender(senders);
    for (int t = 0; t < senders; ++t) {
      for (int i = 0; i < per_sender; ++i) {
        if (i % 50 != 49) by_sender[t].push_back(make_post<P>(encode(t, i)));
      }
    }
    std::vector<std::size_t> next(senders, 0);
    long phantom = 0;
    for (const P& p : log.posts) {
      bool matched = false;
      for (int t = 0; t < senders && !matched; ++t) {
        if (next[t] < by_sender[t].size() && by_sender[t][next[t]] == p) {
          ++next[t];
          matched = true;
        }
      }
      if (!matched) ++phantom;
    }
    REQUIRE(phantom == 0);
    for (int t = 0; t < senders; ++t) REQUIRE(next[t] == by_sender[t].size());
  }
}

// weak_client::upgrade() racing the last strong drop while the coroutine server is parked:
// the original and the upgraded client both send.
TEST_CASE("coroutine_server_with_upgrade_racing_the_last_drop") {
  const int rounds = scaled(2000);
  long upgraded = 0;
  int round = 0;
  // Rounds go on past `rounds`, up to a bound, until the upgrade has both won and lost.
  for (; round < rounds || ((upgraded == 0 || upgraded == round) && round < 50 * rounds); ++round) {
    auto chan = ump::channel<int, int>();
    auto& srv = chan.first;
    auto& cli = chan.second;
    long served = -1;
    std::thread server([&served, s = std::move(srv)]() mutable { served = ump::sync_wait(summing_server(s)); });
    auto weak = cli.weak();
    int sent = 0;
    std::thread other([&weak, &sent] {
      if (auto c = weak.upgrade()) {
        for (int i = 0; i < 20; ++i) {
          auto r = c->req(i);
          REQUIRE(r.has_value());
          CHECK(*r == i + 1);
          ++sent;
        }
      }
    });
    for (int i = 0; i < 20; ++i) REQUIRE(*cli.req(i) == i + 1);
    { auto gone = std::move(cli); }
    other.join();
    server.join();
    REQUIRE(served == 20 + sent);
    if (sent > 0) ++upgraded;
  }
  // The outcome check above holds either way; both branches of the race must have run.
  MESSAGE("upgrades that won the race: " << upgraded << " of " << round);
  CHECK_MESSAGE(upgraded > 0, "the upgrade never won the race");
  CHECK_MESSAGE(upgraded < round, "the upgrade never lost the race");
}

}  // namespace
