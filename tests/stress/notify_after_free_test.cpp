// The notify-after-free race (testing.md, "Reply context"): the replier stores the outcome
// and wakes the requester while the requester finishes spinning, consumes the outcome and
// frees or reuses the reply cell (and, at the end, the whole channel) at once. A replier
// that touched the cell or the shared state after the requester could have released it
// shows up as a use-after-free under ASan, a race under TSan, or a wrong reply anywhere.
//
// Both phases run with three wait budgets: spin 0 (the requester always parks, so the
// replier always takes the futex-wake path), a spin about as long as a round trip (the
// reply lands right as the requester gives up spinning and registers), and the default.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "support/lifetime.hpp"
#include "ump/channel.hpp"

namespace {

ump::channel_options budget(std::chrono::nanoseconds spin) {
  ump::channel_options o;
  o.waiting.spin = spin;
  o.waiting.spin_before_yield = std::chrono::nanoseconds(0);
  return o;
}

const ump::channel_options budgets[] = {
    budget(std::chrono::nanoseconds(0)),
    budget(std::chrono::microseconds(2)),
    ump::channel_options{},
};

}  // namespace

TEST_CASE("reply_races_waiter_that_reuses_the_cell_at_once") {
  // One channel per budget; the requester sends its next request the moment it has the
  // previous reply, so the pool hands it the cell the replier has just published into.
  // Every eighth request is abandoned right after sending: then the replier recycles the
  // cell itself, racing the requester's next send for it.
  const int total = ump_test::scaled(1000000);
  const int per_budget = total / 3;
  long wrong = 0;
  long sent = 0;
  for (const auto& opts : budgets) {
    long served = 0;
    long abandoned = 0;
    auto [srv, cli] = ump::channel<std::uint64_t, std::uint64_t>(opts);
    std::atomic<long> server_served{0};
    std::atomic<long> origin_gone{0};
    std::thread server([&, s = std::move(srv)]() mutable {
      for (;;) {
        auto rq = s.wait();
        if (!rq) break;  // clients_disappeared
        const std::uint64_t v = rq->msg;
        auto sent = rq->ctx.reply(v * 2 + 1);
        // ORDERING: relaxed; read by the main thread after join().
        (sent ? server_served : origin_gone).fetch_add(1, std::memory_order_relaxed);
      }
    });
    for (int i = 0; i < per_budget; ++i) {
      const auto v = static_cast<std::uint64_t>(i);
      if (i % 8 == 7) {
        { auto dropped = cli.req_async(v); }  // abandoned at once; the server still gets it
        ++abandoned;
        continue;
      }
      bool ok = false;
      if (i % 2 == 0) {
        auto r = cli.req(v);
        ok = r && *r == v * 2 + 1;
      } else {
        auto r = cli.req_async(v).wait();
        ok = r && *r == v * 2 + 1;
      }
      if (!ok) ++wrong;
      ++served;
    }
    { auto last = std::move(cli); }  // the server now drains and sees clients_disappeared
    server.join();
    // Every request reached the server; abandoned ones may or may not have been answered
    // in time, but each request got exactly one of the two reply outcomes.
    CHECK(server_served.load() + origin_gone.load() == per_budget);
    CHECK(server_served.load() >= served);
    sent += served + abandoned;
  }
  CHECK(wrong == 0);
  CHECK(sent == per_budget * 3);
}

TEST_CASE("reply_races_waiter_that_frees_the_whole_channel_at_once") {
  // A fresh channel per round. The server is destroyed right after taking the request (or,
  // in odd rounds, right after the reply arrived); its context goes to a long-lived replier
  // thread. The requester drops its client the moment it has the reply, so the channel's
  // shared state, its pool and the cell are freed by whichever side lets go last, while
  // the replier may still be inside reply().
  ump_test::lifetime_check guard;
  using ctx_type = ump::reply_context<ump_test::tracked>;
  const int rounds = ump_test::scaled(100000);
  std::atomic<ctx_type*> mailbox{nullptr};
  std::atomic<bool> done{false};
  std::thread replier([&] {
    for (;;) {
      // ORDERING: acquire, pairs with the release store that handed the context over.
      ctx_type* ctx = mailbox.exchange(nullptr, std::memory_order_acquire);
      if (ctx == nullptr) {
        // ORDERING: acquire; `done` is set after the last context was handed over and taken.
        if (done.load(std::memory_order_acquire)) return;
        std::this_thread::yield();
        continue;
      }
      const std::uint64_t answer = 7;
      ctx->reply(ump_test::tracked(answer));
      delete ctx;
    }
  });
  long wrong = 0;
  for (int i = 0; i < rounds; ++i) {
    auto [srv, cli] = ump::channel<ump_test::tracked, ump_test::tracked>(budgets[i % 3]);
    auto wr = cli.req_async(ump_test::tracked(static_cast<std::uint64_t>(i)));
    if (!wr.valid()) {
      ++wrong;
      continue;
    }
    std::optional<ump::server<ump_test::tracked, ump_test::tracked>> server(std::move(srv));
    auto rq = server->wait();
    if (!rq || rq->msg.value() != static_cast<std::uint64_t>(i)) {
      ++wrong;
      continue;
    }
    if (i % 2 == 0) server.reset();
    // ORDERING: relaxed; only waits for the slot to be empty (the replier's exchange took
    // the previous context, and nothing else is read through the slot here).
    while (mailbox.load(std::memory_order_relaxed) != nullptr) std::this_thread::yield();
    // ORDERING: release, publishes the moved-into context to the replier's acquire exchange.
    mailbox.store(new ctx_type(std::move(rq->ctx)), std::memory_order_release);
    auto r = wr.wait();
    if (!r || r->value() != 7) ++wrong;
    // Everything of this round goes now: the request, the reply, the client (and the server
    // if it is still here), while the replier may still be finishing reply().
  }
  // ORDERING: relaxed, as above.
  while (mailbox.load(std::memory_order_relaxed) != nullptr) std::this_thread::yield();
  // ORDERING: release, pairs with the replier's acquire load of `done`.
  done.store(true, std::memory_order_release);
  replier.join();
  CHECK(wrong == 0);
}
