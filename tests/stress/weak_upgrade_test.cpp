// weak_client::upgrade() racing the drop of the last strong client (testing.md, "Client
// lifecycle"). Promised (client.hpp, semantics.md): upgrade() succeeds while a strong client
// lives and never again once the count has reached zero; once the server has seen
// clients_disappeared no upgrade succeeds; requests sent by upgraded clients are delivered
// before clients_disappeared.
//
// Each round: a fresh channel; a dropper thread holds the only strong client and drops it
// after a random short spin; an upgrader thread upgrades the weak client until an attempt
// fails (then twice more; the drop always comes, so every round ends with failures, unless
// a safety bound on the attempts is reached first), and after each successful upgrade sends
// one message (ump: a request, abandoned at once; ng: a post) through the upgraded client
// and drops it; the main thread is the server, blocked in wait() until
// clients_disappeared. The two threads leave the round's barrier at different times (a
// futex wake each), so they meet once more on a spinning gate before their jitter starts:
// without it, and with a fixed number of attempts, the drop seldom fell between two of
// them (never in 100000 rounds with six attempts; with 64, in 5 of 10000 rounds of an
// ASan build on a loaded machine, where the dropper is often descheduled). Checked:
//   * monotonic: in the upgrader's sequence of attempts, no success follows a failure;
//   * consistent: the server received exactly one message per successful upgrade, and
//     then clients_disappeared, and no upgrade attempted after the server saw that event
//     succeeded;
//   * the race happened: in some round the drop fell between two attempts (one succeeded, a
//     later one failed). Rounds go on past the requested count, up to a bound, until one has.
#include <doctest/doctest.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "ump/channel.hpp"
#include "ump/ng.hpp"

namespace {

// splitmix64: a small, seedable generator for the threads' jitter.
std::uint64_t next_random(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void spin_for(std::uint64_t pauses) {
  for (std::uint64_t i = 0; i < pauses; ++i) ump::detail::cpu_relax();
}

constexpr int max_attempts = 1 << 20;      // a safety bound: the drop comes long before
constexpr int attempts_after_failure = 2;  // made after the first failure, to check monotony

// Both racing threads arrive, then both go: a start gate that does not wait for a wake-up.
void meet(std::atomic<int>& arrived) {
  // ORDERING: relaxed; only a start signal, the barrier orders the round's data.
  arrived.fetch_add(1, std::memory_order_relaxed);
  // ORDERING: relaxed; as above.
  for (int i = 0; arrived.load(std::memory_order_relaxed) < 2; ++i) {
    if (i < 1024) {
      ump::detail::cpu_relax();
    } else {
      std::this_thread::yield();  // the other thread is not running: give it the core
    }
  }
}

struct round_totals {
  long rounds = 0;
  long non_monotonic = 0;       // a success after a failure in one upgrader's sequence
  long count_mismatch = 0;      // messages received != successful upgrades
  long upgrade_after_gone = 0;  // success although the server had already seen the end
  long wrong_end = 0;           // the server's wait ended with something else
  long late_upgrade_ok = 0;     // an upgrade after the round succeeded
  long all_succeeded = 0;       // rounds in which every attempt succeeded (dropper was last)
  long all_failed = 0;          // rounds in which every attempt failed (dropper was first)
  [[nodiscard]] long mixed() const noexcept { return rounds - all_succeeded - all_failed; }
};

// `make` makes an ump or ump::ng channel; `send` sends one message (a request, or an ng
// post) through an upgraded client and reports whether it was accepted. Runs `rounds`
// rounds, then more (up to 50 times as many) until a round has been mixed.
template <class Make, class Send>
round_totals run_rounds(int rounds, Make make, Send send) {
  using pair_type = decltype(make());
  using client_type = typename pair_type::second_type;
  using weak_type = decltype(std::declval<client_type&>().weak());

  std::optional<client_type> strong;  // handed to the dropper
  std::optional<weak_type> weak;      // handed to the upgrader
  std::vector<signed char> results;   // one per attempt this round
  std::atomic<bool> server_saw_end{false};
  std::atomic<int> arrived{0};  // the start gate (meet)
  long send_failures = 0;
  bool stop = false;
  std::barrier sync(3);
  std::uint64_t drop_jitter = 0x5eedULL;
  std::uint64_t upgrade_jitter = 0xfeedULL;

  std::thread dropper([&] {
    for (;;) {
      sync.arrive_and_wait();  // round start
      if (stop) return;
      meet(arrived);
      spin_for(next_random(drop_jitter) % 1024);
      strong.reset();
      sync.arrive_and_wait();  // round end
    }
  });
  std::thread upgrader([&] {
    for (;;) {
      sync.arrive_and_wait();
      if (stop) return;
      meet(arrived);
      int after_failure = -1;
      results.clear();
      for (int a = 0; a < max_attempts && after_failure < attempts_after_failure; ++a) {
        spin_for(next_random(upgrade_jitter) % 256);  // spread the attempts around the drop
        // ORDERING: acquire, pairs with the server's release store after it saw
        // clients_disappeared: if this load sees true, that observation happens-before the
        // upgrade below, which must then fail.
        const bool end_seen = server_saw_end.load(std::memory_order_acquire);
        auto c = weak->upgrade();
        results.push_back(static_cast<signed char>(!c ? 0 : end_seen ? 2 : 1));
        if (c && !send(*c)) ++send_failures;
        if (!c || after_failure >= 0) ++after_failure;
      }
      sync.arrive_and_wait();
    }
  });

  round_totals t;
  for (int r = 0; r < rounds || (t.mixed() == 0 && r < 50 * rounds); ++r) {
    auto [srv, cli] = make();
    weak.emplace(cli.weak());
    strong.emplace(std::move(cli));
    // ORDERING: relaxed; the barrier orders it before the upgrader's loads.
    server_saw_end.store(false, std::memory_order_relaxed);
    // ORDERING: relaxed; the barrier orders it before the racing threads' gate.
    arrived.store(0, std::memory_order_relaxed);
    sync.arrive_and_wait();
    long received = 0;
    for (;;) {
      auto m = srv.wait();
      if (!m) {
        if (m.error().code() != ump::errc::clients_disappeared) ++t.wrong_end;
        break;
      }
      ++received;
    }
    // ORDERING: release, pairs with the upgrader's acquire load.
    server_saw_end.store(true, std::memory_order_release);
    sync.arrive_and_wait();

    int successes = 0;
    bool failed_before = false;
    for (signed char res : results) {
      if (res == 2) ++t.upgrade_after_gone;
      if (res != 0) {
        ++successes;
        if (failed_before) ++t.non_monotonic;
      } else {
        failed_before = true;
      }
    }
    if (successes != received) ++t.count_mismatch;
    if (!failed_before) ++t.all_succeeded;
    if (successes == 0) ++t.all_failed;
    if (weak->upgrade()) ++t.late_upgrade_ok;
    weak.reset();
    ++t.rounds;
  }
  stop = true;
  sync.arrive_and_wait();
  dropper.join();
  upgrader.join();
  CHECK(send_failures == 0);
  return t;
}

void check_totals(const round_totals& t, int rounds) {
  CHECK(t.rounds >= rounds);
  CHECK(t.non_monotonic == 0);
  CHECK(t.count_mismatch == 0);
  CHECK(t.upgrade_after_gone == 0);
  CHECK(t.wrong_end == 0);
  CHECK(t.late_upgrade_ok == 0);
  // How often each side won. Not an assertion about the library, but about the test: a
  // mixed round is one where the drop fell between two upgrades, the race itself.
  MESSAGE("rounds " << t.rounds << ": upgrader always won " << t.all_succeeded << ", always lost " << t.all_failed
                    << ", mixed " << t.mixed());
  CHECK_MESSAGE(t.mixed() > 0, "the drop never fell between two upgrade attempts");
}

}  // namespace

TEST_CASE("weak_upgrade_racing_last_strong_drop") {
  const int rounds = ump_test::scaled(100000);
  auto t = run_rounds(
      rounds, [] { return ump::channel<int, int>(); },
      [](ump::client<int, int>& c) {
        auto wr = c.req_async(1);  // abandoned at once; the server still receives it
        return wr.valid();
      });
  check_totals(t, rounds);
}

TEST_CASE("ng_weak_upgrade_racing_last_strong_drop") {
  const int rounds = ump_test::scaled(10000);
  auto t = run_rounds(
      rounds, [] { return ump::ng::channel<int, int, int>(); },
      [](ump::ng::client<int, int, int>& c) { return c.post(1).has_value(); });
  check_totals(t, rounds);
}
