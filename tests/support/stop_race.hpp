// Races between a std::stop_source and the other side of a channel, shared by the cancellation
// tests from threads (tests/cancel_test.cpp) and from coroutines (tests/async/cancel_async_test.cpp).
//
//   await_value(flag, want)   spins (yielding) until an atomic holds `want`: synchronisation by
//                             state, not by time.
//   jitter(n), pause_for(k)   a busy pause of n steps, jitter that moves a race window (never
//                             synchronisation), and the pause for round k of a race.
//   stopper_thread            a thread that takes each round's stop source, says so (armed),
//                             pauses as its owner says, requests stop and says it is done.
//   stop_racing_the_reply     the stop-versus-reply race on one channel: per request, the
//                             client and the server must agree on who won. How a round's request
//                             is made and its result collected is the caller's (a callable).
#pragma once

#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "support/support.hpp"
#include "ump/ng.hpp"
#include "ump/ump.hpp"

namespace ump_test {

// Spins (yielding) until `flag` holds `want`. Synchronisation by state, not by time.
template <class T>
void await_value(const std::atomic<T>& flag, T want) {
  // ORDERING: acquire, pairs with the release store that sets `want`.
  while (flag.load(std::memory_order_acquire) != want) std::this_thread::yield();
}

// A busy pause of n steps: jitter that moves a race window, never synchronisation.
inline void jitter(int n) {
  // ORDERING: a compiler-only fence per step, so the loop is not optimised away.
  for (int s = 0; s < n; ++s) std::atomic_signal_fence(std::memory_order_seq_cst);
}

// The pause for round k of a race: sweeps 0..8191 steps in a scattered order.
inline int pause_for(long k) { return static_cast<int>((static_cast<unsigned long>(k) * 2654435761UL) % 8192); }

// A thread that requests stop on one stop source a round. Round k (from 0): the owner hands
// it the source (hand); the thread takes it, says so (armed = k), runs before_stop(k) (a
// pause, or a wait for the other side), requests stop and says it is done (stopped = k),
// after which the owner may destroy the source. finish() ends and joins the thread; like a
// plain std::thread, it must be called before the stopper_thread is destroyed.
class stopper_thread {
 public:
  template <class BeforeStop>
  explicit stopper_thread(BeforeStop before_stop) : thread_([this, before_stop]() mutable { run(before_stop); }) {}
  stopper_thread(const stopper_thread&) = delete;
  stopper_thread& operator=(const stopper_thread&) = delete;

  // Hands over the source of the next round.
  void hand(std::stop_source& src) {
    // ORDERING: release, publishes the source to the stopper's acquire exchange.
    to_stop_.store(&src, std::memory_order_release);
  }
  // Spins until the stopper has taken round k's source (and not yet requested stop, or has).
  void await_armed(long k) const { await_value(armed_, k); }
  // Spins until the stopper has requested stop for round k: it is done with the source.
  void await_stopped(long k) const { await_value(stopped_, k); }
  void finish() {
    // ORDERING: release, pairs with the stopper's acquire load of quit_.
    quit_.store(true, std::memory_order_release);
    thread_.join();
  }

 private:
  template <class BeforeStop>
  void run(BeforeStop& before_stop) {
    for (long k = 0;; ++k) {
      std::stop_source* s = nullptr;
      // ORDERING: acquire, pairs with the release store in hand().
      while ((s = to_stop_.exchange(nullptr, std::memory_order_acquire)) == nullptr) {
        // ORDERING: acquire, pairs with the release store in finish().
        if (quit_.load(std::memory_order_acquire)) return;
        std::this_thread::yield();
      }
      // ORDERING: release, pairs with the owner's acquire spin in await_armed().
      armed_.store(k, std::memory_order_release);
      before_stop(k);
      s->request_stop();
      // ORDERING: release: the source may be destroyed once this is seen (await_stopped()).
      stopped_.store(k, std::memory_order_release);
    }
  }

  std::atomic<std::stop_source*> to_stop_{nullptr};
  std::atomic<long> armed_{-1};
  std::atomic<long> stopped_{-1};
  std::atomic<bool> quit_{false};
  std::thread thread_;  // last: started once the atomics above exist
};

// The request inside what a server received: a ump::request, or an ng message's request.
template <class S, class R, class E>
ump::request<S, R, E>& request_in(ump::request<S, R, E>& m) {
  return m;
}
template <class P, class S, class R, class E>
ump::request<S, R, E>& request_in(ump::ng::message<P, S, R, E>& m) {
  return m.req();
}

// The stop-versus-reply race. `ends` is a fresh channel of requests tracked(k) answered with
// tracked(k); ask(cli, round, token) makes round's request, tracked(round), with the stop
// token, and returns the ump::result<tracked> it got.
//
// A server thread replies to every request, recording per request whether the reply was
// delivered or refused; a stopper thread takes each round's stop source, says so (armed = k),
// busy-waits a pause that sweeps 0..8191 steps (jitter, not synchronisation), and requests
// stop; this thread asks at once on odd rounds (the stopper is usually late) and once it sees
// the stopper armed on even ones (it is usually early). Every third round the stopper waits
// until the server has taken the request, and the server yields a few times before replying,
// so that some stops land after the take. Per request: the client got its value ⇔ the
// server's reply was delivered; the client got cancelled ⇔ the reply was refused or the
// server never saw it. Batches repeat, up to a bound, until each side has won at least once.
template <class Server, class Client, class Ask>
void stop_racing_the_reply(std::pair<Server, Client> ends, Ask ask) {
  const int rounds = scaled(5000);
  constexpr int max_batches = 20;
  enum : char { unseen = 0, delivered = 1, refused = 2 };
  std::vector<char> server_saw(static_cast<std::size_t>(rounds) * max_batches, unseen);
  auto& cli = ends.second;
  std::atomic<long> taken{-1};
  std::thread server([&server_saw, &taken, s = std::move(ends.first)]() mutable {
    while (auto m = s.wait()) {
      auto& rq = request_in(*m);
      const auto k = rq.msg.value();
      // ORDERING: release, pairs with the stopper's acquire spin.
      taken.store(static_cast<long>(k), std::memory_order_release);
      // A pause that yields 0..7 times: room for the stopper to run, even on this core.
      if (k % 3 == 2)
        for (std::uint64_t y = 0; y < k % 8; ++y) std::this_thread::yield();
      server_saw[k] = rq.ctx.reply(tracked(k)) ? delivered : refused;
    }
  });
  stopper_thread stopper([&taken](long k) {
    if (k % 3 == 2)
      await_value(taken, k);  // the server has it, and pauses before replying
    else
      jitter(pause_for(k));
  });
  std::vector<char> client_got(server_saw.size(), 0);  // 1 value, 2 cancelled, 3 wrong
  long values = 0;
  long cancelled = 0;
  long round = 0;
  for (int batch = 0; batch < max_batches && (values == 0 || cancelled == 0); ++batch) {
    for (int i = 0; i < rounds; ++i, ++round) {
      std::stop_source src;
      stopper.hand(src);
      if (round % 2 == 0) stopper.await_armed(round);
      const auto r = ask(cli, round, src.get_token());
      if (r && r->value() == static_cast<std::uint64_t>(round)) {
        client_got[round] = 1;
        ++values;
      } else if (failure(r) == ump::errc::cancelled) {
        client_got[round] = 2;
        ++cancelled;
      } else {
        client_got[round] = 3;
      }
      stopper.await_stopped(round);  // the stopper is done with src
    }
  }
  stopper.finish();
  { auto last = std::move(cli); }
  server.join();
  long disagree = 0;
  long never_seen = 0;
  for (long k = 0; k < round; ++k) {
    const bool ok = (client_got[k] == 1 && server_saw[k] == delivered) ||
                    (client_got[k] == 2 && (server_saw[k] == refused || server_saw[k] == unseen));
    if (!ok) ++disagree;
    if (server_saw[k] == unseen) ++never_seen;
  }
  CHECK(disagree == 0);
  CHECK(values + cancelled == round);
  MESSAGE("stop won " << cancelled << " of " << round << " rounds (" << never_seen << " withdrawn before the take, "
                      << cancelled - never_seen << " after)");
  CHECK_MESSAGE(values > 0, "the reply never won the race");
  CHECK_MESSAGE(cancelled > 0, "the stop never won the race");
}

}  // namespace ump_test
