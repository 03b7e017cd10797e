// Stress with the protocol's test-only delay points (include/ump/detail/config.hpp,
// UMP_TEST_DELAY). In builds with UMP_TEST_HOOKS (the test-hooks preset) a hook installed
// here randomly yields or spins at every delay point: between a sender's announce and its
// enqueue, before a replier publishes, before a requester or the server parks, and between
// claiming a parked waiter and waking it. That stretches the protocol's race windows far
// beyond what preemption alone produces. In other builds the same workload runs without
// the hook (the delay points are compiled out), so the test always builds and runs.
//
// Workload: every waiter parks (spin budget 0, so the park/wake paths are the ones taken),
// four client threads mix blocking requests, wait_reply, abandoned requests and coroutine
// requests; the server replies, fails, drops contexts or holds them back; one run keeps
// the server to the end, one destroys it half-way; an ng run adds posts. Checked: every
// operation has exactly one outcome and the counts add up, replies carry their own
// request's value, the server saw exactly the requests that were not refused, every
// payload was destroyed, and (with hooks) every delay point was actually reached.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "ump/channel.hpp"
#include "ump/ng.hpp"

namespace {

using ump_test::tracked;

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

#if defined(UMP_TEST_HOOKS)
constexpr std::size_t point_count = static_cast<std::size_t>(ump::detail::delay_point::count_);
std::array<std::atomic<long>, point_count> hits{};

// Random delay at a delay point: nothing, a yield, a short spin, or both.
void chaos(ump::detail::delay_point p) noexcept {
  // ORDERING: relaxed; read by the main thread after every worker was joined.
  hits[static_cast<std::size_t>(p)].fetch_add(1, std::memory_order_relaxed);
  thread_local std::uint64_t state = std::hash<std::thread::id>{}(std::this_thread::get_id());
  const std::uint64_t r = splitmix(state);
  switch (r % 4) {
    case 0:
      break;
    case 1:
      std::this_thread::yield();
      break;
    case 2:
      for (std::uint64_t i = (r >> 8) % 512; i > 0; --i) ump::detail::cpu_relax();
      break;
    default:
      std::this_thread::yield();
      for (std::uint64_t i = (r >> 8) % 512; i > 0; --i) ump::detail::cpu_relax();
      break;
  }
}

// Installs the hook for one scope, removes it at the end (even if a check fails).
struct hook_scope {
  hook_scope() { ump::detail::set_delay_hook(&chaos); }
  hook_scope(const hook_scope&) = delete;
  hook_scope& operator=(const hook_scope&) = delete;
  ~hook_scope() { ump::detail::set_delay_hook(nullptr); }
};
#endif

ump::channel_options parking() {
  ump::channel_options o;
  o.waiting.spin = std::chrono::nanoseconds(0);
  o.waiting.spin_before_yield = std::chrono::nanoseconds(0);
  return o;
}

// A coroutine that starts at once and frees its frame when it finishes.
struct detached {
  struct promise_type {
    detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

struct counts {
  std::atomic<long> replied{0}, app_error{0}, no_reply{0}, gone{0}, abandoned{0}, posted{0}, wrong{0};
  long total() const {
    return replied.load() + app_error.load() + no_reply.load() + gone.load() + abandoned.load() + posted.load() +
           wrong.load();
  }
};

template <class R>
void record(counts& c, const R& r, std::uint64_t v) {
  // ORDERING (every counter here): relaxed; read after all threads were joined.
  if (r) {
    (r->value() == v + 1 ? c.replied : c.wrong).fetch_add(1, std::memory_order_relaxed);
    return;
  }
  switch (r.error().code()) {
    case ump::errc::app_error:
      (r.error().app().value() == v ? c.app_error : c.wrong).fetch_add(1, std::memory_order_relaxed);
      break;
    case ump::errc::no_reply:
      c.no_reply.fetch_add(1, std::memory_order_relaxed);
      break;
    case ump::errc::server_disappeared:
      c.gone.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      c.wrong.fetch_add(1, std::memory_order_relaxed);
  }
}

// Per client thread; outlives the round's threads (a coroutine may still be inside
// notify_one on the replier's thread when its client thread has moved on).
struct async_slot {
  std::atomic<std::uint32_t> done{0};
};

template <class Client>
detached by_coroutine(Client& c, std::uint64_t v, counts& out, async_slot& slot, std::uint32_t ticket) {
  auto awaiter = c.areq(tracked(v));
  auto r = co_await std::move(awaiter);
  record(out, r, v);
  // ORDERING: release, pairs with the client thread's acquire load (the counters
  // themselves are only read after every thread was joined).
  slot.done.store(ticket, std::memory_order_release);
  slot.done.notify_one();
}

// ORDERING (the counters in `out`): relaxed, as in record().
template <class Client>
void client_ops(Client c, int t, int ops, counts& out, async_slot& slot) {
  std::uint64_t rs = 0xc0ffee00ULL + static_cast<std::uint64_t>(t);
  std::uint32_t ticket = 0;
  for (int i = 0; i < ops; ++i) {
    const std::uint64_t v = static_cast<std::uint64_t>(t) << 32 | static_cast<std::uint64_t>(i);
    const std::uint64_t op = splitmix(rs) % 100;
    if constexpr (requires { c.post(tracked(v)); }) {
      if (op < 15) {
        auto p = c.post(tracked(v));
        (p ? out.posted : out.gone).fetch_add(1, std::memory_order_relaxed);
        continue;
      }
    }
    if (op < 40) {
      record(out, c.req(tracked(v)), v);
    } else if (op < 65) {
      record(out, c.req_async(tracked(v)).wait(), v);
    } else if (op < 75) {
      // Abandoned at once, unless the outcome is already there (the server was gone, or it
      // answered first): then it is collected.
      auto wr = c.req_async(tracked(v));
      if (wr.ready()) {
        record(out, wr.wait(), v);
      } else {
        out.abandoned.fetch_add(1, std::memory_order_relaxed);
      }
    } else {
      ++ticket;
      by_coroutine(c, v, out, slot, ticket);
      // ORDERING: acquire, pairs with the coroutine's release store.
      for (std::uint32_t d; (d = slot.done.load(std::memory_order_acquire)) != ticket;) slot.done.wait(d);
    }
  }
}

struct server_counts {
  long received = 0;  // requests and posts taken off the queue
  long posts = 0;
};

// Serves until `stop_after` messages were received (then destroys the server) or the
// clients are gone. Replies v + 1, fails with v, drops, or holds a context back.
template <class Server>
server_counts serve(Server srv, long stop_after) {
  using ctx_type = ump::reply_context<tracked, tracked>;
  server_counts sc;
  std::uint64_t rs = 0x5e7e7ULL;
  std::vector<std::pair<ctx_type, std::uint64_t>> held;
  auto flush = [&] {
    for (auto& [ctx, v] : held) ctx.reply(tracked(v + 1));
    held.clear();
  };
  auto handle = [&](tracked& msg, ctx_type& ctx) {
    const std::uint64_t v = msg.value();
    const std::uint64_t how = splitmix(rs) % 100;
    if (how < 55) {
      ctx.reply(tracked(v + 1));
    } else if (how < 70) {
      ctx.fail(tracked(v));
    } else if (how < 80) {
      ctx_type gone = std::move(ctx);  // dropped unanswered
    } else {
      held.emplace_back(std::move(ctx), v);
    }
  };
  std::optional<Server> s(std::move(srv));
  using message_result = decltype(s->wait());
  while (stop_after < 0 || sc.received < stop_after) {
    std::optional<message_result> m;
    if (held.empty()) {
      m.emplace(s->wait());
    } else {
      auto p = s->try_wait();
      if (!p) {
        m.emplace(std::move(p).error());
      } else if (!p->has_value()) {
        flush();  // nothing queued: answer what was held back before blocking again
        continue;
      } else {
        m.emplace(std::move(**p));
      }
    }
    if (!*m) break;  // clients_disappeared
    ++sc.received;
    auto& msg = **m;
    if constexpr (requires { msg.is_post(); }) {
      if (msg.is_post()) {
        ++sc.posts;
        continue;
      }
      handle(msg.req().msg, msg.req().ctx);
    } else {
      handle(msg.msg, msg.ctx);
    }
  }
  s.reset();  // destroyed here when stopping early, with requests maybe still queued
  flush();
  return sc;
}

constexpr int clients = 4;

template <class Make>
void run_workload(Make make, bool drop_server_half_way) {
  ump_test::lifetime_check guard;
  constexpr int ops = ump_test::scaled(6000);
  constexpr long total = static_cast<long>(clients) * ops;
  counts out;
  server_counts sc;
  std::vector<async_slot> slots(clients);
  {
    auto [srv, cli] = make();
    std::thread server([&sc, drop_server_half_way, s = std::move(srv)]() mutable {
      sc = serve(std::move(s), drop_server_half_way ? total / 2 : -1);
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([&out, &slots, t, c = cli]() mutable {
        client_ops(std::move(c), t, ops, out, slots[static_cast<std::size_t>(t)]);
      });
    }
    { auto root = std::move(cli); }
    for (auto& t : threads) t.join();
    server.join();
  }
  CHECK(out.wrong.load() == 0);
  CHECK(out.total() == total);
  // Each operation was either received by the server or refused (server_disappeared); an
  // abandoned request may have been either.
  CHECK(sc.received + out.gone.load() <= total);
  CHECK(sc.received + out.gone.load() + out.abandoned.load() >= total);
  CHECK(sc.posts <= out.posted.load());
  if (drop_server_half_way) {
    CHECK(sc.received == total / 2);
  } else {
    CHECK(out.gone.load() == 0);
    CHECK(sc.received == total);
    CHECK(sc.posts == out.posted.load());
  }
}

void run_all() {
  run_workload([] { return ump::channel<tracked, tracked, tracked>(parking()); }, false);
  run_workload([] { return ump::channel<tracked, tracked, tracked>(parking()); }, true);
  run_workload([] { return ump::ng::channel<tracked, tracked, tracked, tracked>(parking()); }, false);
  run_workload([] { return ump::ng::channel<tracked, tracked, tracked, tracked>(parking()); }, true);
}

}  // namespace

TEST_CASE("delay_points_stress") {
#if defined(UMP_TEST_HOOKS)
  for (auto& h : hits) h.store(0, std::memory_order_relaxed);
  {
    hook_scope hook;
    run_all();
  }
  const char* const names[] = {"send_after_announce", "reply_before_publish", "wait_before_park", "server_before_park",
                               "wake_before_notify"};
  static_assert(std::size(names) == point_count);
  for (std::size_t p = 0; p < point_count; ++p) {
    CAPTURE(names[p]);
    CHECK(hits[p].load(std::memory_order_relaxed) > 0);  // the workload reached this window
  }
#else
  MESSAGE("built without UMP_TEST_HOOKS: the workload runs without delay points");
  run_all();
#endif
}
