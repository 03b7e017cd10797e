// Seeded random stress (testing.md, "Stress"): N client threads × M operations each against
// one server thread and a helper replier thread, with every lifecycle event drawn from a
// seeded generator: the server is destroyed at a random point (or never), contexts are
// dropped unanswered, failed, answered later out of order or handed to the helper thread,
// clients drop their copy and upgrade a weak one again, requests are abandoned right away
// or after a short timed wait, and the requester waits by blocking, by wait_reply or by a
// coroutine. Runs for ump and for ump::ng (which adds posts), with more threads (8) than
// the machine has cores, so preemption lands inside the protocol.
//
// Checked after every round:
//   * each of the N·M operations has exactly one client-side outcome, and the per-outcome
//     counters add up to N·M;
//   * each outcome agrees with what the server did with that very operation (a reply
//     carries its own request's value, app_error its own fail value, no_reply means the
//     context was dropped, server_disappeared means the server never received it,
//     origin_disappeared at the server means the client had given up, ...);
//   * if the server was never destroyed, nothing was lost: every request and post reached it;
//   * every payload, reply and error object was destroyed (lifetime_check).
//
// Seed: random per run, printed to stderr at start (ctest shows it with the output of a
// failing test) and attached to every failed check. Replay with
//   ./stress_seeded_stress_test --seed=N     or     UMP_SEED=N ./stress_seeded_stress_test
// A replay repeats every random decision; thread scheduling still differs from run to run.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/lifetime.hpp"
#include "ump/channel.hpp"
#include "ump/ng.hpp"

namespace {

using ump_test::tracked;

// --- seed -------------------------------------------------------------------------------

// --seed=N from the command line (doctest owns argv and ignores options it does not know,
// so it is read from /proc/self/cmdline), else the UMP_SEED environment variable, else a
// fresh random seed.
std::optional<std::uint64_t> parse_seed(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 0);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<std::uint64_t>(v);
}

std::uint64_t choose_seed() {
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  const std::string flag = "--seed=";
  for (std::size_t pos = 0; pos < all.size();) {
    const std::size_t end = all.find('\0', pos);
    const std::string arg = all.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (arg.rfind(flag, 0) == 0) {
      if (auto v = parse_seed(arg.substr(flag.size()))) return *v;
    }
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  if (const char* env = std::getenv("UMP_SEED")) {
    if (auto v = parse_seed(env)) return *v;
  }
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

std::uint64_t run_seed() {
  static const std::uint64_t seed = [] {
    const std::uint64_t s = choose_seed();
    std::fprintf(stderr, "seeded_stress: seed %llu (replay: --seed=%llu or UMP_SEED=%llu)\n",
                 static_cast<unsigned long long>(s), static_cast<unsigned long long>(s),
                 static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

// splitmix64: each thread and round draws from its own stream, derived from the seed.
class rng {
 public:
  rng(std::uint64_t seed, std::uint64_t stream) : s_(seed ^ (stream * 0xd1b54a32d192ed03ULL)) { (void)next(); }
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  std::uint64_t below(std::uint64_t n) { return next() % n; }

 private:
  std::uint64_t s_;
};

// --- outcomes -----------------------------------------------------------------------------

// What the client saw, one per operation.
enum class seen : std::uint8_t {
  unset,
  replied,    // the reply, with this request's value
  app_error,  // errc::app_error, with this request's fail value
  no_reply,
  server_gone,       // errc::server_disappeared
  abandoned,         // wait_reply dropped right after sending
  timed_out,         // wait_for gave up (the request is abandoned)
  not_sent,          // the client copy was dropped and no strong client was left to upgrade
  posted,            // ng post accepted
  post_server_gone,  // ng post refused: errc::server_disappeared
  wrong,             // anything else: a mismatched value or an unexpected error
  count_
};

// What the server side did, one per operation (set by the server or the helper thread).
enum class did : std::uint8_t {
  nothing,  // never received
  replied_delivered,
  replied_origin_gone,
  failed_delivered,
  failed_origin_gone,
  dropped,  // reply_context destroyed unanswered
  post_received,
};

constexpr std::uint64_t reply_value(std::uint64_t id) { return id * 7 + 1; }
constexpr std::uint64_t fail_value(std::uint64_t id) { return id * 11 + 3; }

template <class R>
seen classify(const R& r, std::uint64_t id) {
  if (r) return r->value() == reply_value(id) ? seen::replied : seen::wrong;
  switch (r.error().code()) {
    case ump::errc::app_error:
      return r.error().app().value() == fail_value(id) ? seen::app_error : seen::wrong;
    case ump::errc::no_reply:
      return seen::no_reply;
    case ump::errc::server_disappeared:
      return seen::server_gone;
    case ump::errc::timed_out:
      return seen::timed_out;
    default:
      return seen::wrong;
  }
}

// --- a coroutine requester -------------------------------------------------------------

// Starts at once and frees its frame when it finishes (on whichever thread resumed it).
struct detached {
  struct promise_type {
    detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

// Per client thread: where its coroutine leaves the outcome. It outlives the round's
// threads: a coroutine may still be finishing (on the replier's thread, inside
// notify_one) when its client thread has read the outcome and moved on or ended.
struct async_slot {
  std::atomic<std::uint32_t> done{0};
  seen outcome = seen::unset;
};

template <class Client>
detached request_by_coroutine(Client& c, tracked msg, std::uint64_t id, async_slot& slot, std::uint32_t ticket) {
  auto awaiter = c.areq(std::move(msg));  // sent now; resumed by the replier (inline)
  auto r = co_await std::move(awaiter);
  slot.outcome = classify(r, id);
  // ORDERING: release, publishes slot.outcome to the client thread's acquire load.
  slot.done.store(ticket, std::memory_order_release);
  slot.done.notify_one();
}

// --- the helper replier -----------------------------------------------------------------

template <class Ctx>
class helper_queue {
 public:
  void push(Ctx ctx, std::uint64_t id) {
    {
      std::lock_guard<std::mutex> lk(m_);
      q_.emplace_back(std::move(ctx), id);
    }
    cv_.notify_one();
  }
  void finish() {
    {
      std::lock_guard<std::mutex> lk(m_);
      finished_ = true;
    }
    cv_.notify_one();
  }
  // The next context, or nullopt once finish() was called and everything was taken.
  std::optional<std::pair<Ctx, std::uint64_t>> pop() {
    std::unique_lock<std::mutex> lk(m_);
    cv_.wait(lk, [&] { return !q_.empty() || finished_; });
    if (q_.empty()) return std::nullopt;
    auto item = std::move(q_.front());
    q_.pop_front();
    return item;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::pair<Ctx, std::uint64_t>> q_;
  bool finished_ = false;
};

template <class Ctx>
void answer(Ctx ctx, std::uint64_t id, std::uint64_t choice, std::vector<did>& actions) {
  auto& a = actions[static_cast<std::size_t>(id)];
  if (choice < 60) {
    a = ctx.reply(tracked(reply_value(id))) ? did::replied_delivered : did::replied_origin_gone;
  } else if (choice < 80) {
    a = ctx.fail(tracked(fail_value(id))) ? did::failed_delivered : did::failed_origin_gone;
  } else {
    a = did::dropped;
    Ctx gone = std::move(ctx);  // destroyed unanswered at the end of this scope
  }
}

// --- one round ------------------------------------------------------------------------------

constexpr int client_threads = 6;  // + server + helper = 8 threads on 2 cores
constexpr std::size_t outcome_kinds = static_cast<std::size_t>(seen::count_);

struct round_report {
  std::vector<long> counts = std::vector<long>(outcome_kinds, 0);
  long unset = 0;
  long wrong = 0;
  long inconsistent = 0;  // client outcome and server action disagree
  long lost = 0;          // server never destroyed, yet an operation never reached it
  long server_errors = 0;
  bool server_dropped = false;
};

template <class Client, class Weak>
void client_thread(Client first, Weak weak, int t, int ops, std::uint64_t seed, std::vector<seen>& outcomes,
                   async_slot& slot) {
  rng r(seed, 1000 + static_cast<std::uint64_t>(t));
  std::optional<Client> c(std::move(first));
  std::uint32_t ticket = 0;
  for (int i = 0; i < ops; ++i) {
    const auto id = static_cast<std::uint64_t>(t) * static_cast<std::uint64_t>(ops) + static_cast<std::uint64_t>(i);
    seen& out = outcomes[static_cast<std::size_t>(id)];
    if (r.below(100) < 3) c.reset();  // random client drop
    if (!c) {
      if (auto up = weak.upgrade()) {
        c.emplace(std::move(*up));
      } else {
        out = seen::not_sent;
        continue;
      }
    }
    const std::uint64_t op = r.below(100);
    if constexpr (requires { c->post(tracked(id)); }) {
      if (op < 15) {
        auto p = c->post(tracked(id));
        out = p ? seen::posted
                : (p.error().code() == ump::errc::server_disappeared ? seen::post_server_gone : seen::wrong);
        continue;
      }
    }
    if (op < 40) {
      out = classify(c->req(tracked(id)), id);
    } else if (op < 65) {
      out = classify(c->req_async(tracked(id)).wait(), id);
    } else if (op < 75) {
      // Abandoned at once, unless the outcome is already there (server gone, or answered).
      auto wr = c->req_async(tracked(id));
      out = wr.ready() ? classify(wr.wait(), id) : seen::abandoned;
    } else if (op < 85) {
      out = classify(c->req_async(tracked(id)).wait_for(std::chrono::microseconds(r.below(200))), id);
    } else {
      ++ticket;
      request_by_coroutine(*c, tracked(id), id, slot, ticket);
      // ORDERING: acquire, pairs with the coroutine's release store of the ticket.
      for (std::uint32_t d; (d = slot.done.load(std::memory_order_acquire)) != ticket;) slot.done.wait(d);
      out = slot.outcome;
    }
  }
}

template <class Server>
void server_thread(Server srv, std::uint64_t seed, std::uint64_t round, long drop_at, std::vector<did>& actions,
                   long& server_errors) {
  using ctx_type = ump::reply_context<tracked, tracked>;
  rng r(seed, 2000 + round);
  helper_queue<ctx_type> helper_q;
  std::thread helper([&] {
    rng hr(seed, 3000 + round);
    while (auto item = helper_q.pop()) answer(std::move(item->first), item->second, hr.below(100), actions);
  });
  std::vector<std::pair<ctx_type, std::uint64_t>> held;  // answered later, in random order
  auto flush = [&] {
    while (!held.empty()) {
      const auto k = static_cast<std::size_t>(r.below(held.size()));
      std::swap(held[k], held.back());
      answer(std::move(held.back().first), held.back().second, r.below(100), actions);
      held.pop_back();
    }
  };
  auto handle_request = [&](tracked& msg, ctx_type& ctx) {
    const std::uint64_t id = msg.value();
    const std::uint64_t how = r.below(100);
    if (how < 70) {
      answer(std::move(ctx), id, r.below(100), actions);
    } else if (how < 85) {
      helper_q.push(std::move(ctx), id);
    } else {
      held.emplace_back(std::move(ctx), id);
      if (held.size() > 8) flush();
    }
  };

  std::optional<Server> s(std::move(srv));
  using message_result = decltype(s->wait());
  long received = 0;
  for (;;) {
    if (drop_at >= 0 && received >= drop_at) break;  // random server drop
    const std::uint64_t how = r.below(100);
    std::optional<message_result> m;
    if (!held.empty() || how < 10) {
      // Poll while answers are held back: when nothing is queued, answer them first, so no
      // client waits on a context that the server sits on while blocked.
      auto p = s->try_wait();
      if (!p) {
        m.emplace(std::move(p).error());
      } else if (!p->has_value()) {
        flush();
        continue;
      } else {
        m.emplace(std::move(**p));
      }
    } else if (how < 20) {
      auto w = s->wait_for(std::chrono::microseconds(r.below(100)));
      if (!w && w.error().code() == ump::errc::timed_out) continue;
      m.emplace(std::move(w));
    } else {
      m.emplace(s->wait());
    }
    if (!*m) {
      if ((*m).error().code() != ump::errc::clients_disappeared) ++server_errors;
      break;
    }
    ++received;
    auto& msg = **m;
    if constexpr (requires { msg.is_post(); }) {
      if (msg.is_post()) {
        actions[static_cast<std::size_t>(msg.post().value())] = did::post_received;
        continue;
      }
      handle_request(msg.req().msg, msg.req().ctx);
    } else {
      handle_request(msg.msg, msg.ctx);
    }
  }
  s.reset();  // the server is destroyed here, maybe with requests still queued
  flush();    // contexts taken before still work
  helper_q.finish();
  helper.join();
}

bool consistent(seen s, did d, bool server_dropped) {
  switch (s) {
    case seen::replied:
      return d == did::replied_delivered;
    case seen::app_error:
      return d == did::failed_delivered;
    case seen::no_reply:
      return d == did::dropped;
    case seen::server_gone:
    case seen::not_sent:
    case seen::post_server_gone:
      return d == did::nothing;
    case seen::abandoned:  // given up at once: the server may have done anything, or nothing
      return d != did::post_received;
    case seen::timed_out:  // gave up before the outcome arrived: nothing was delivered
      return d == did::nothing || d == did::replied_origin_gone || d == did::failed_origin_gone || d == did::dropped;
    case seen::posted:
      return d == did::post_received || (server_dropped && d == did::nothing);
    default:
      return false;
  }
}

template <class Make>
round_report run_round(Make make, std::uint64_t seed, std::uint64_t round, int ops) {
  rng r(seed, round);
  const long total = static_cast<long>(client_threads) * ops;
  round_report rep;
  const long drop_at = r.below(2) != 0 ? static_cast<long>(r.below(static_cast<std::uint64_t>(total))) : -1;
  rep.server_dropped = drop_at >= 0;
  ump::channel_options opts;
  if (r.below(2) != 0) opts.waiting.spin = std::chrono::nanoseconds(0);  // every waiter parks

  std::vector<seen> outcomes(static_cast<std::size_t>(total), seen::unset);
  std::vector<did> actions(static_cast<std::size_t>(total), did::nothing);
  std::vector<async_slot> slots(client_threads);
  auto [srv, cli] = make(opts);
  std::thread server([&, s = std::move(srv)]() mutable {
    server_thread(std::move(s), seed, round, drop_at, actions, rep.server_errors);
  });
  std::vector<std::thread> clients;
  for (int t = 0; t < client_threads; ++t) {
    clients.emplace_back([&, t, c = cli, w = cli.weak()]() mutable {
      client_thread(std::move(c), std::move(w), t, ops, seed ^ round, outcomes, slots[static_cast<std::size_t>(t)]);
    });
  }
  { auto root = std::move(cli); }  // the client threads hold the only strong clients now
  for (auto& t : clients) t.join();
  server.join();

  for (std::size_t id = 0; id < outcomes.size(); ++id) {
    const seen s = outcomes[id];
    const did d = actions[id];
    if (s == seen::unset) {
      ++rep.unset;
      continue;
    }
    ++rep.counts[static_cast<std::size_t>(s)];
    if (s == seen::wrong) ++rep.wrong;
    if (!consistent(s, d, rep.server_dropped)) ++rep.inconsistent;
    if (!rep.server_dropped && d == did::nothing && s != seen::not_sent) ++rep.lost;
  }
  return rep;
}

const char* const outcome_names[] = {"unset",       "replied",          "app_error", "no_reply",
                                     "server_gone", "abandoned",        "timed_out", "not_sent",
                                     "posted",      "post_server_gone", "wrong"};
static_assert(std::size(outcome_names) == outcome_kinds);

template <class Make>
void run_seeded(Make make, std::uint64_t flavour) {
  const std::uint64_t seed = run_seed();
  INFO("seed " << seed << " (replay: --seed=" << seed << " or UMP_SEED=" << seed << ")");
  constexpr int rounds = 4;
  const int ops = ump_test::scaled(2500);
  const long total = static_cast<long>(client_threads) * ops;
  for (int round = 0; round < rounds; ++round) {
    CAPTURE(round);
    ump_test::lifetime_check guard;
    const auto rep = run_round(make, seed, flavour * 100 + static_cast<std::uint64_t>(round), ops);
    long sum = 0;
    std::string breakdown;
    for (std::size_t k = 0; k < outcome_kinds; ++k) {
      sum += rep.counts[k];
      if (rep.counts[k] != 0) breakdown += std::string(outcome_names[k]) + "=" + std::to_string(rep.counts[k]) + " ";
    }
    CAPTURE(breakdown);
    CAPTURE(rep.server_dropped);
    CHECK(rep.unset == 0);
    CHECK(sum == total);
    CHECK(rep.wrong == 0);
    CHECK(rep.inconsistent == 0);
    CHECK(rep.lost == 0);
    CHECK(rep.server_errors == 0);
  }
}

}  // namespace

TEST_CASE("seeded_stress_random_lifecycle_events") {
  run_seeded([](const ump::channel_options& o) { return ump::channel<tracked, tracked, tracked>(o); }, 1);
}

TEST_CASE("ng_seeded_stress_random_lifecycle_events_with_posts") {
  run_seeded([](const ump::channel_options& o) { return ump::ng::channel<tracked, tracked, tracked, tracked>(o); }, 2);
}
