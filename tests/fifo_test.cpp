// One FIFO per channel: if one send happens-before another, the server receives it first,
// whichever client object, clone, post_client, upgraded weak client or thread made it.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "support/lifetime.hpp"
#include "ump/detail/access.hpp"
#include "ump/ng.hpp"
#include "ump/ump.hpp"

namespace {

using ump_test::scaled;

// Drains an ng server without blocking and returns every message as a number: posts as
// themselves, requests (answered at once) as their message.
template <class Server>
std::vector<int> drain(Server& srv) {
  std::vector<int> got;
  while (auto m = srv.try_wait()) {
    if (!m->has_value()) break;
    auto& msg = **m;
    if (msg.is_post()) {
      got.push_back(msg.post());
    } else {
      got.push_back(msg.req().msg);
      msg.req().ctx.reply(0);
    }
  }
  return got;
}

std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

TEST_CASE("clones_used_round_robin_on_one_thread_arrive_in_send_order") {
  auto chan = ump::channel<int, int>();
  auto& srv = chan.first;
  auto& cli = chan.second;
  std::vector<ump::client<int, int>> clones(4, cli);
  auto weak = cli.weak();
  clones.push_back(*weak.upgrade());
  std::vector<ump::wait_reply<int, void>> pending;
  for (int i = 0; i < 200; ++i) pending.push_back(clones[static_cast<std::size_t>(i) % clones.size()].req_async(i));
  std::vector<int> got;
  while (auto r = srv.try_wait()) {
    if (!r->has_value()) break;
    got.push_back((*r)->msg);
    (*r)->ctx.reply((*r)->msg);
  }
  CHECK(got == iota(200));
  for (int i = 0; i < 200; ++i) CHECK(*pending[static_cast<std::size_t>(i)].wait() == i);
}

TEST_CASE("post_client_and_client_interleaved_on_one_thread_arrive_in_send_order") {
  // Small posts travel inline, large ones in nodes: both kinds and requests share the order.
  auto chan = ump::ng::channel<int, int, int>();
  auto& srv = chan.first;
  auto& cli = chan.second;
  auto poster = cli.poster();
  std::vector<ump::wait_reply<int, void>> pending;
  for (int i = 0; i < 300; ++i) {
    switch (i % 3) {
      case 0:
        REQUIRE(poster.post(i).has_value());
        break;
      case 1:
        pending.push_back(cli.req_async(i));
        break;
      default:
        REQUIRE(cli.post(i).has_value());
        break;
    }
  }
  CHECK(drain(srv) == iota(300));
}

TEST_CASE("clones_made_and_dropped_one_after_another_reuse_one_lane") {
  // A client object takes a lane at its first send and lets it go when destroyed; the next
  // object's first send takes that lane again, so a copy per send costs no memory per copy.
  auto chan = ump::ng::channel<int, int, int>();
  auto& srv = chan.first;
  auto& cli = chan.second;
  auto* st = ump::detail::access::core(cli).state();
  CHECK(st->lane_count() == 0);  // nothing sent yet: an idle channel has no lane
  for (int i = 0; i < 1000; ++i) {
    auto copy = cli;
    if (i % 2 == 0) {
      REQUIRE(copy.post(i).has_value());
    } else {
      (void)copy.req_async(i);
    }
  }
  CHECK(st->lane_count() == 1);
  CHECK(drain(srv) == iota(1000));
}

TEST_CASE("more_client_objects_than_lanes_share_lanes_and_keep_send_order") {
  // Past max_lanes live senders, client objects share lanes (taking turns on the lane's
  // lock): the lanes stay bounded, and the server still receives in send order.
  using state = ump::detail::state_base;
  constexpr int objects = 3 * static_cast<int>(state::max_lanes);
  auto chan = ump::ng::channel<int, int, int>();
  auto& srv = chan.first;
  auto& cli = chan.second;
  std::vector<ump::ng::client<int, int, int>> clones(objects, cli);
  std::vector<ump::ng::post_client<int, int, int>> posters;
  for (int i = 0; i < 4; ++i) posters.push_back(cli.poster());
  for (int i = 0; i < 2000; ++i) {
    if (i % 5 == 4) {
      REQUIRE(posters[static_cast<std::size_t>(i) % posters.size()].post(i).has_value());
    } else {
      REQUIRE(clones[static_cast<std::size_t>(i * 7) % clones.size()].post(i).has_value());
    }
  }
  CHECK(ump::detail::access::core(cli).state()->lane_count() == state::max_lanes);
  CHECK(drain(srv) == iota(2000));
}

TEST_CASE("first_sends_through_one_shared_client_object_race_and_keep_each_threads_order") {
  // Several threads make their first sends through one client object at the same moment:
  // each may take a lane, one wins, the others let theirs go. Every message arrives, and
  // each thread's messages arrive in the order it sent them.
  constexpr int threads = 4;
  const int per_thread = scaled(2000);
  auto chan = ump::ng::channel<int, int, int>();
  auto& srv = chan.first;
  auto shared = chan.second;
  std::atomic<int> ready{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() != threads) {
      }
      for (int k = 0; k < per_thread; ++k) REQUIRE(shared.post(t * per_thread + k).has_value());
    });
  }
  for (auto& th : ts) th.join();
  auto* st = ump::detail::access::core(shared).state();
  CHECK(st->lane_count() >= 1);
  CHECK(st->lane_count() <= threads);
  const std::vector<int> got = drain(srv);
  CHECK(got.size() == static_cast<std::size_t>(threads * per_thread));
  std::vector<int> next(threads, 0);
  long out_of_order = 0;
  for (int v : got) {
    const auto t = static_cast<std::size_t>(v / per_thread);
    if (v % per_thread != next[t]) ++out_of_order;
    next[t] = v % per_thread + 1;
  }
  CHECK(out_of_order == 0);
  // The lanes lost in the race are free: new client objects take them, not new lanes.
  const std::size_t lanes = st->lane_count();
  {
    std::vector<ump::ng::client<int, int, int>> more(threads - 1, shared);
    for (auto& c : more) REQUIRE(c.post(0).has_value());
  }
  CHECK(st->lane_count() <= std::max<std::size_t>(lanes, threads));
  CHECK(drain(srv).size() == threads - 1);
}

// Threads take turns: each sends, then hands a token to the next through an atomic
// (release/acquire), so every send happens-before the next one.
template <class MakeSender>
void token_passing_round(int threads, int per_thread, MakeSender make_sender, std::vector<int>& expect) {
  std::atomic<int> turn{0};
  std::vector<std::thread> ts;
  const int total = threads * per_thread;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t, send = make_sender()]() mutable {
      for (int k = t; k < total; k += threads) {
        // ORDERING: acquire, pairs with the release store of the thread before us.
        while (turn.load(std::memory_order_acquire) != k) std::this_thread::yield();
        send(k);
        turn.store(k + 1, std::memory_order_release);
      }
    });
  }
  for (auto& th : ts) th.join();
  expect = iota(total);
}

TEST_CASE("two_and_four_threads_passing_a_token_arrive_in_send_order") {
  for (int threads : {2, 4}) {
    CAPTURE(threads);
    auto chan = ump::ng::channel<int, int, int>();
    auto& srv = chan.first;
    auto& cli = chan.second;
    std::vector<int> expect;
    token_passing_round(
        threads, scaled(1000),
        [&cli] {
          // Each thread has its own client object; every third message is a request sent
          // with req_async and dropped (the server still receives it, in order).
          return [c = cli](int k) mutable {
            if (k % 3 == 2) {
              (void)c.req_async(k);
            } else {
              REQUIRE(c.post(k).has_value());
            }
          };
        },
        expect);
    CHECK(drain(srv) == expect);
  }
}

// Seeded stress: several threads send through several client objects each; a send may hand
// the "baton" to a random thread, and every message sent after the baton was received is
// stamped with the baton's round, so that sends ordered by the hand-off must arrive in
// round order. Within a thread, all sends (through any of its objects) must arrive in order.
TEST_CASE("seeded_random_hand_offs_keep_happens_before_order") {
  const std::uint64_t seed = std::random_device{}();
  CAPTURE(seed);
  std::printf("fifo stress seed %llu\n", static_cast<unsigned long long>(seed));
  constexpr int threads = 4;
  const int rounds = scaled(2000);
  auto chan = ump::ng::channel<std::uint64_t, int, int>();
  auto& srv = chan.first;
  auto& cli = chan.second;
  std::atomic<int> baton{0};  // round number; the thread holding it is baton % threads
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t, c = cli]() mutable {
      std::mt19937_64 rng(seed + static_cast<std::uint64_t>(t));
      std::vector<ump::ng::client<std::uint64_t, int, int>> objs(3, c);
      std::uint32_t seq = 0;
      for (;;) {
        // ORDERING: acquire, pairs with the release that passed the baton.
        const int r = baton.load(std::memory_order_acquire);
        if (r >= rounds) return;
        if (r % threads != t) {
          // Not ours: send unordered messages meanwhile (round stamp r is a lower bound).
          const auto msg = (static_cast<std::uint64_t>(r) << 40) | (static_cast<std::uint64_t>(t) << 32) | seq++;
          REQUIRE(objs[rng() % objs.size()].post(msg).has_value());
          std::this_thread::yield();
          continue;
        }
        const int n = 1 + static_cast<int>(rng() % 3);
        for (int i = 0; i < n; ++i) {
          const auto msg = (static_cast<std::uint64_t>(r) << 40) | (static_cast<std::uint64_t>(t) << 32) | seq++;
          REQUIRE(objs[rng() % objs.size()].post(msg).has_value());
        }
        // Hand the baton on: the next round belongs to thread (r + 1) % threads.
        baton.store(r + 1, std::memory_order_release);
      }
    });
  }
  { auto gone = std::move(cli); }
  std::vector<std::uint64_t> got;
  while (auto m = srv.wait()) got.push_back(m->post());
  for (auto& th : ts) th.join();
  // A message stamped with round r was sent after the baton reached round r, so after every
  // message that the holder of round r-1 sent with stamp r-1 while holding it... and in
  // general after every message stamped < r by its holder. Check: the stamps of baton
  // holders' messages never decrease, and each thread's own sequence numbers increase.
  std::vector<std::int64_t> last_seq(threads, -1);
  int max_round_seen = -1;
  long out_of_order = 0;
  for (std::uint64_t m : got) {
    const int r = static_cast<int>(m >> 40);
    const int t = static_cast<int>((m >> 32) & 0xff);
    const auto s = static_cast<std::int64_t>(m & 0xffffffffu);
    if (s <= last_seq[static_cast<std::size_t>(t)]) ++out_of_order;
    last_seq[static_cast<std::size_t>(t)] = s;
    // Every message carries a stamp no greater than the baton when it was sent; a message
    // from the holder of round r was sent before the baton moved past r, so no message of
    // a later holder stamped > r may precede it. Tracked as: stamps of holder messages
    // (r % threads == t) must not be below a holder stamp already seen.
    if (r % threads == t) {
      if (r < max_round_seen) ++out_of_order;
      max_round_seen = std::max(max_round_seen, r);
    }
  }
  CHECK(out_of_order == 0);
  CHECK(max_round_seen == rounds - 1);
}

}  // namespace
