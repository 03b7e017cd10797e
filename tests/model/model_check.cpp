// Model checking of ump's wait/wake and lifecycle protocol with Relacy (tests/model/README.md).
//
// Every scenario drives the real library code (compiled with UMP_MODEL_CHECK, so that its
// detail::atomic words are Relacy atomics and parking is the futex model in park_model.cpp)
// from two or three modelled threads, and checks the outcomes with RL_ASSERT. Relacy also
// fails an execution on a deadlock (a lost wake leaves a thread parked forever), a livelock,
// or a broken ump rule (UMP_CHECK / UMP_ASSERT fail the execution in this build).
//
// Usage: model_check [--list] [--negative] [--quick] [--iterations N]
//                    [--scheduler random|bound|full] [--bound N] [scenario...]
//   With no scenario names, runs every positive scenario. --negative runs the deliberately
//   broken scenarios instead, which pass when Relacy finds the failure they contain.
//   --quick runs only the random searches, each for at most quick_iterations executions:
//   a smoke check of a second compiler's build (the clang preset), not the full search.
#include "model_support.hpp"  // first: Relacy

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ump/channel.hpp"
#include "ump/ng.hpp"

namespace {

using ump::errc;
using ump::detail::model::parking;
using ump::detail::model::scenario;
using server_t = ump::server<int, int>;
using client_t = ump::client<int, int>;
using weak_t = ump::weak_client<int, int>;

// How often each kind of interleaving outcome was seen, to show what the runs covered.
struct tally {
  const char* what;
  unsigned long long n = 0;
};

// The setup most scenarios share: a parking channel<int, int>, its server, two clients.
void open_with_two_clients(std::optional<server_t>& srv, std::optional<client_t> (&cli)[2]) {
  auto [s, c] = ump::channel<int, int>(parking());
  srv.emplace(std::move(s));
  cli[1].emplace(c);
  cli[0].emplace(std::move(c));
}

// The server thread of several scenarios: answers every request with ten times its value,
// calling seen(value) first, until the clients are gone.
template <class F>
void serve_times_ten(server_t& srv, F&& seen) {
  for (;;) {
    auto m = srv.wait();
    if (!m) {
      RL_ASSERT(m.error() == errc::clients_disappeared);
      return;
    }
    auto [msg, ctx] = std::move(*m);
    seen(msg);
    RL_ASSERT(ctx.reply(msg * 10));
  }
}

// Gives clients their lanes before the threads start, in scenarios that are about something
// else: a first send takes a lane (acquire_lane), which multiplies the interleavings of
// every scenario whose clients send for the first time inside the threads. Taking lanes is
// what handoff_across_lanes and first_sends_share_a_client check.
template <class... C>
void take_lanes(C&... c) {
  (static_cast<void>(ump::detail::access::core(c).own_lane()), ...);
}

// --- 1. senders against a parking thread server --------------------------------------------
// Two clients send one request each and wait (parked) for the reply, then drop their client;
// the server thread waits (parks at once) for requests until clients_disappeared. Covers the
// announce / parked_thread handshake, wake_server, the reply cell's park and publish, and
// drop_strong's no_clients against the server's park.
struct senders_vs_parking_server : scenario<senders_vs_parking_server, 3> {
  std::optional<server_t> srv;
  std::optional<client_t> cli[2];
  int seen[3] = {0, 0, 0};

  void setup() { open_with_two_clients(srv, cli); }
  void thread(unsigned i) {
    if (i < 2) {
      const int v = static_cast<int>(i) + 1;
      auto r = cli[i]->req(v);
      RL_ASSERT(r && *r == v * 10);
      cli[i].reset();
      return;
    }
    serve_times_ten(*srv, [this](int msg) {
      RL_ASSERT(msg == 1 || msg == 2);
      ++seen[msg];
    });
    RL_ASSERT(seen[1] == 1 && seen[2] == 1);
  }
  void finish() { srv.reset(); }
};

// --- 2. close (server destroyed) racing sends ------------------------------------------------
// Two clients send one request each while the server thread answers whatever is already
// queued (try_wait, never blocking) and then destroys the server. Each request gets exactly
// one outcome: the reply, or server_disappeared (refused at send, or failed by the drain).
tally close_replied{"close_vs_send: requests answered before the close"};
tally close_failed{"close_vs_send: requests failed with server_disappeared"};
struct close_vs_send : scenario<close_vs_send, 3> {
  std::optional<server_t> srv;
  std::optional<client_t> cli[2];
  int replied = 0;
  int outcomes = 0;

  void setup() {
    open_with_two_clients(srv, cli);
    take_lanes(*cli[0], *cli[1]);
  }
  void thread(unsigned i) {
    if (i < 2) {
      const int v = static_cast<int>(i) + 1;
      auto r = cli[i]->req(v);  // returns exactly once (a lost outcome is a deadlock)
      ++outcomes;
      if (r) {
        RL_ASSERT(*r == v * 10);
        ++close_replied.n;
      } else {
        RL_ASSERT(r.error() == errc::server_disappeared);
        ++close_failed.n;
      }
      cli[i].reset();
      return;
    }
    auto m = srv->try_wait();
    RL_ASSERT(m.has_value());  // clients are alive until their request has its outcome
    if (*m) {
      auto [msg, ctx] = std::move(**m);
      RL_ASSERT(ctx.reply(msg * 10));
      ++replied;
    }
    srv.reset();  // close: fails every request queued or announced by now
  }
  void finish() { RL_ASSERT(outcomes == 2 && replied <= 1); }
};

// --- 3. last-client drop racing sends and the server's park ----------------------------------
// Two clients each send a request (req_async), drop their client at once and then wait for
// the reply. The server must see both requests, and only then clients_disappeared.
struct last_drop_vs_park : scenario<last_drop_vs_park, 3> {
  std::optional<server_t> srv;
  std::optional<client_t> cli[2];
  int seen[3] = {0, 0, 0};

  void setup() {
    open_with_two_clients(srv, cli);
    take_lanes(*cli[0], *cli[1]);
  }
  void thread(unsigned i) {
    if (i < 2) {
      const int v = static_cast<int>(i) + 1;
      auto w = cli[i]->req_async(v);
      RL_ASSERT(w.valid());
      cli[i].reset();  // the last drop may race the other sender's announce and the park
      auto r = w.wait();
      RL_ASSERT(r && *r == v * 10);
      return;
    }
    for (;;) {
      auto m = srv->wait();
      if (!m) {
        RL_ASSERT(m.error() == errc::clients_disappeared);
        RL_ASSERT(seen[1] == 1 && seen[2] == 1);  // nothing lost before the end
        break;
      }
      auto [msg, ctx] = std::move(*m);
      RL_ASSERT(msg == 1 || msg == 2);
      ++seen[msg];
      RL_ASSERT(ctx.reply(msg * 10));
    }
  }
  void finish() {
    RL_ASSERT(seen[1] == 1 && seen[2] == 1);
    srv.reset();
  }
};

// --- 4. weak upgrade racing the last drop ----------------------------------------------------
// Thread 0 holds the only strong client: it sends one request and drops it. Thread 1 tries
// to upgrade a weak client twice; an upgraded client sends one request. The server counts
// requests until clients_disappeared, then tries an upgrade itself. Upgrades are monotonic:
// once one fails, every later one fails; none succeeds after clients_disappeared; and the
// server sees exactly the requests of the clients that existed.
tally upgrade_won{"weak_upgrade_vs_last_drop: upgrades that won"};
tally upgrade_lost{"weak_upgrade_vs_last_drop: upgrades that lost"};
struct weak_upgrade_vs_last_drop : scenario<weak_upgrade_vs_last_drop, 3> {
  std::optional<server_t> srv;
  std::optional<client_t> cli;
  std::optional<weak_t> weak[2];
  int upgraded = 0;
  int received = 0;

  void setup() {
    auto [s, c] = ump::channel<int, int>(parking());
    srv.emplace(std::move(s));
    weak[0].emplace(c.weak());
    weak[1].emplace(c.weak());
    cli.emplace(std::move(c));
  }
  void thread(unsigned i) {
    if (i == 0) {
      auto r = cli->req(1);
      RL_ASSERT(r && *r == 10);
      cli.reset();
      return;
    }
    if (i == 1) {
      bool failed = false;
      for (int attempt = 0; attempt < 2; ++attempt) {
        std::optional<client_t> up = weak[0]->upgrade();
        if (!up) {
          failed = true;
          ++upgrade_lost.n;
          continue;
        }
        RL_ASSERT(!failed);  // monotonic: no success after a failure
        ++upgrade_won.n;
        ++upgraded;
        auto r = up->req(2);
        RL_ASSERT(r && *r == 20);
      }
      weak[0].reset();
      return;
    }
    for (;;) {
      auto m = srv->wait();
      if (!m) {
        RL_ASSERT(m.error() == errc::clients_disappeared);
        break;
      }
      auto [msg, ctx] = std::move(*m);
      ++received;
      RL_ASSERT(ctx.reply(msg * 10));
    }
    RL_ASSERT(!weak[1]->upgrade().has_value());  // zero strong clients is final
    weak[1].reset();
  }
  void finish() {
    RL_ASSERT(received == 1 + upgraded);
    srv.reset();
  }
};

// --- 5. reply racing abandon -----------------------------------------------------------------
// Two requests are sent and received before the threads start. Thread 0 replies to both.
// Thread 1 destroys the wait_reply of the first (abandon) and waits for the second with a
// deadline, which the futex model may let expire at any moment. Exactly one side recycles
// each node (the state's destructor counts them all back), and the replier's view agrees
// with the requester's: origin_disappeared exactly when the requester timed out.
tally abandon_first{"reply_vs_abandon: abandoned before the reply"};
tally reply_first{"reply_vs_abandon: replied before the abandon"};
tally timed_out{"reply_vs_abandon: timed-out waits"};
struct reply_vs_abandon : scenario<reply_vs_abandon, 2> {
  std::optional<server_t> srv;
  std::optional<ump::wait_reply<int>> w[2];
  std::optional<ump::reply_context<int>> ctx[2];
  bool delivered[2] = {false, false};
  bool got_value = false;
  bool got_timeout = false;

  void setup() {
    auto [s, c] = ump::channel<int, int>(parking());
    srv.emplace(std::move(s));
    for (int k = 0; k < 2; ++k) {
      auto r = c.req_async(k);
      RL_ASSERT(r.valid());
      w[k].emplace(std::move(r));
    }
    for (int k = 0; k < 2; ++k) {
      auto m = srv->try_wait();
      RL_ASSERT(m && *m);
      RL_ASSERT((*m)->msg == k);
      ctx[k].emplace(std::move((*m)->ctx));
    }
  }
  void thread(unsigned i) {
    if (i == 0) {
      for (int k = 0; k < 2; ++k) {
        auto r = ctx[k]->reply(k + 100);
        RL_ASSERT(r || r.error() == errc::origin_disappeared);
        delivered[k] = static_cast<bool>(r);
        ctx[k].reset();
      }
      return;
    }
    w[0].reset();  // abandon
    auto r = w[1]->wait_for(std::chrono::hours(1));
    if (r) {
      RL_ASSERT(*r == 101);
      got_value = true;
    } else {
      RL_ASSERT(r.error() == errc::timed_out);
      got_timeout = true;
      ++timed_out.n;
    }
    w[1].reset();
  }
  void finish() {
    RL_ASSERT(got_value != got_timeout);
    RL_ASSERT(delivered[1] == got_value);
    ++(delivered[0] ? reply_first : abandon_first).n;
    srv.reset();
  }
};

// --- 6. the async server waiter and the stale wake ------------------------------------------
// A coroutine server (co_await async_wait(), inline scheduler: it resumes on the waking
// thread) against two senders. Each sender sends a request, waits for the reply and drops
// its client; the last drop wakes the coroutine with clients_disappeared. A wake that
// arrives after its message was already taken must not resume the coroutine with nothing
// (server_awaiter::await_resume checks that with UMP_CHECK, which fails the execution
// here); every request is received exactly once, and the coroutine ends.
// A coroutine that starts at once and keeps its frame until destroyed.
struct eager {
  struct promise_type {
    eager get_return_object() noexcept { return eager{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
};

struct async_server_stale_wake : scenario<async_server_stale_wake, 2> {
  std::optional<server_t> srv;
  std::optional<client_t> cli[2];
  std::coroutine_handle<> coro;
  int seen[3] = {0, 0, 0};
  int resumes = 0;
  bool ended = false;

  static eager serve(async_server_stale_wake* t) {
    for (;;) {
      auto m = co_await t->srv->async_wait();
      ++t->resumes;
      if (!m) {
        RL_ASSERT(m.error() == errc::clients_disappeared);
        t->ended = true;
        co_return;
      }
      auto [msg, ctx] = std::move(*m);
      RL_ASSERT(msg == 1 || msg == 2);
      ++t->seen[msg];
      RL_ASSERT(ctx.reply(msg * 10));
    }
  }

  void setup() {
    open_with_two_clients(srv, cli);
    take_lanes(*cli[0], *cli[1]);
    coro = serve(this).h;  // runs until its first suspension: registered, parked_async set
  }
  void thread(unsigned i) {
    const int v = static_cast<int>(i) + 1;
    auto& core = ump::detail::access::core(*cli[i]);
    // send() split in two, so that the wake a sender owes comes after its lock is released
    // and possibly after the other sender's wake already delivered both messages.
    auto s = core.send_unwoken(ump::detail::message_kind::request, v);
    RL_ASSERT(s.node != nullptr);
    if (s.wake) core.state()->wake_server();
    ump::detail::pending_reply<int, void> p(core.state(), s.node);
    auto r = p.wait({});
    RL_ASSERT(r && *r == v * 10);
    cli[i].reset();
  }
  void finish() {
    RL_ASSERT(ended);
    RL_ASSERT(seen[1] == 1 && seen[2] == 1);
    RL_ASSERT(resumes == 3);  // two requests and the end: nothing else came out of a wait
    coro.destroy();
    srv.reset();
  }
};

// --- 6b. withdrawing the async server waiter against wakes ---------------------------------
// An adapter (ump/asio.hpp) drives the server awaiter by hand and may withdraw it on
// cancellation while two senders announce and wake. Exactly one of: withdrawn before any
// claim (the scheduler is never called), or one delivery (a message, or errc::cancelled
// if the claim found nothing). Either way no message is lost: what the delivery did not
// bring is still queued, and both requests get their replies. The 'withdrawing' flag is
// clear afterwards.
struct counting_sched {
  int* scheduled;
  void schedule(std::coroutine_handle<>) const noexcept { ++*scheduled; }
};

struct withdraw_vs_wake : scenario<withdraw_vs_wake, 3> {
  using awaiter_t = ump::detail::server_awaiter<server_t, counting_sched>;
  std::optional<server_t> srv;
  std::optional<client_t> cli[2];
  std::optional<awaiter_t> aw;
  std::optional<ump::detail::pending_reply<int, void>> pending[2];
  int scheduled = 0;
  bool withdrawn = false;

  void setup() {
    open_with_two_clients(srv, cli);
    take_lanes(*cli[0], *cli[1]);
    aw.emplace(*srv, counting_sched{&scheduled});
    RL_ASSERT(!aw->await_ready());
    RL_ASSERT(aw->await_suspend(std::noop_coroutine()));  // registered
  }
  void thread(unsigned i) {
    if (i == 2) {
      withdrawn = aw->withdraw();
      return;
    }
    auto& core = ump::detail::access::core(*cli[i]);
    auto s = core.send_unwoken(ump::detail::message_kind::request, static_cast<int>(i) + 1);
    RL_ASSERT(s.node != nullptr);
    if (s.wake) core.state()->wake_server();
    pending[i].emplace(core.state(), s.node);
  }
  void finish() {
    RL_ASSERT(scheduled == (withdrawn ? 0 : 1));
    int served = 0;
    const auto serve = [&](ump::request<int, int>& rq) {
      RL_ASSERT(rq.msg == 1 || rq.msg == 2);
      RL_ASSERT(rq.ctx.reply(rq.msg * 10));
      ++served;
    };
    if (!withdrawn) {
      auto r = aw->await_resume();
      if (r) {
        serve(*r);
      } else {
        RL_ASSERT(r.error() == errc::cancelled);
      }
    }
    aw.reset();
    auto* st = ump::detail::access::core(*cli[0]).state();
    RL_ASSERT((st->load_ctl() & ump::detail::state_base::withdrawing) == 0);
    while (auto m = srv->try_wait()) {
      if (!m->has_value()) break;
      serve(**m);
    }
    RL_ASSERT(served == 2);
    for (int i = 0; i < 2; ++i) {
      auto r = pending[i]->wait({});
      RL_ASSERT(r && *r == (i + 1) * 10);
      pending[i].reset();
      cli[i].reset();
    }
    srv.reset();
  }
};

// --- 6c. withdrawal racing a stale claim -----------------------------------------------------
// The adapter thread waits for its first async_wait to be delivered, serves what is queued,
// starts a second wait (registering again) and withdraws it at once. A sender that
// announced against the first registration may pay its wake only now: a stale claim of the
// second registration, with nothing to take. If the withdrawal lands between that claim
// and the waker's attempt to register the waiter again, the waker must deliver (the
// withdrawal was told a delivery is coming), not leave the waiter registered.
struct flag_sched {
  ump::detail::atomic<int>* delivered;
  void schedule(std::coroutine_handle<>) const noexcept {
    // ORDERING: release, pairs with the adapter thread's acquire load.
    delivered->fetch_add(1, std::memory_order_release);
  }
};

struct withdraw_vs_stale_wake : scenario<withdraw_vs_stale_wake, 3> {
  using awaiter_t = ump::detail::server_awaiter<server_t, flag_sched>;
  std::optional<server_t> srv;
  std::optional<client_t> cli[2];
  std::optional<awaiter_t> first, second;
  std::optional<ump::detail::pending_reply<int, void>> pending[2];
  ump::detail::atomic<int> delivered1{0}, delivered2{0};
  bool second_suspended = false;
  bool withdrawn = false;
  int served = 0;

  void serve(ump::request<int, int>& rq) {
    RL_ASSERT(rq.msg == 1 || rq.msg == 2);
    RL_ASSERT(rq.ctx.reply(rq.msg * 10));
    ++served;
  }
  void drain() {
    while (auto m = srv->try_wait()) {
      if (!m->has_value()) break;
      serve(**m);
    }
  }
  void setup() {
    open_with_two_clients(srv, cli);
    take_lanes(*cli[0], *cli[1]);
    first.emplace(*srv, flag_sched{&delivered1});
    RL_ASSERT(!first->await_ready());
    RL_ASSERT(first->await_suspend(std::noop_coroutine()));
  }
  void thread(unsigned i) {
    if (i < 2) {
      auto& core = ump::detail::access::core(*cli[i]);
      auto s = core.send_unwoken(ump::detail::message_kind::request, static_cast<int>(i) + 1);
      RL_ASSERT(s.node != nullptr);
      if (s.wake) core.state()->wake_server();
      pending[i].emplace(core.state(), s.node);
      return;
    }
    // ORDERING: acquire, pairs with flag_sched's release.
    while (delivered1.load(std::memory_order_acquire) == 0) ump::detail::cpu_relax();
    auto r = first->await_resume();
    RL_ASSERT(r.has_value());
    serve(*r);
    drain();
    second.emplace(*srv, flag_sched{&delivered2});
    if (second->await_ready() || !second->await_suspend(std::noop_coroutine())) {
      auto r2 = second->await_resume();
      RL_ASSERT(r2.has_value());
      serve(*r2);
      return;
    }
    second_suspended = true;
    withdrawn = second->withdraw();
  }
  void finish() {
    // ORDERING: relaxed; the threads have finished.
    RL_ASSERT(delivered1.load(std::memory_order_relaxed) == 1);
    if (second_suspended) {
      RL_ASSERT(delivered2.load(std::memory_order_relaxed) == (withdrawn ? 0 : 1));
      if (!withdrawn) {
        auto r = second->await_resume();
        if (r) {
          serve(*r);
        } else {
          RL_ASSERT(r.error() == errc::cancelled);
        }
      }
    }
    first.reset();
    second.reset();
    auto* st = ump::detail::access::core(*cli[0]).state();
    RL_ASSERT((st->load_ctl() & ump::detail::state_base::withdrawing) == 0);
    drain();
    RL_ASSERT(served == 2);
    for (int i = 0; i < 2; ++i) {
      auto r = pending[i]->wait({});
      RL_ASSERT(r && *r == (i + 1) * 10);
      pending[i].reset();
      cli[i].reset();
    }
    srv.reset();
  }
};

// --- 7. the cell pool (Treiber stack with a tag) --------------------------------------------
// Three threads pop and push back two cells, twice each. No cell is ever held by two
// threads at once, and both cells are in the pool at the end.
struct node_pool_push_pop : scenario<node_pool_push_pop, 3> {
  std::optional<ump::detail::node_pool> pool;
  ump::detail::cell_base* cells = nullptr;
  int holder[2] = {-1, -1};

  void setup() {
    pool.emplace();
    cells = new ump::detail::cell_base[2];
    pool->push(&cells[0]);
    pool->push(&cells[1]);
  }
  void thread(unsigned i) {
    for (int round = 0; round < 2; ++round) {
      ump::detail::cell_base* c = pool->try_pop();
      if (c == nullptr) continue;
      const auto k = c - cells;
      RL_ASSERT(k == 0 || k == 1);
      RL_ASSERT(holder[k] == -1);  // nobody else holds it
      holder[k] = static_cast<int>(i);
      rl::yield(1, RL_INFO);  // let the others run while we hold it
      RL_ASSERT(holder[k] == static_cast<int>(i));
      holder[k] = -1;
      pool->push(c);
    }
  }
  void finish() {
    ump::detail::cell_base* a = pool->try_pop();
    ump::detail::cell_base* b = pool->try_pop();
    RL_ASSERT(a != nullptr && b != nullptr && a != b);
    RL_ASSERT(pool->try_pop() == nullptr);
    pool.reset();
    delete[] cells;
  }
};

// --- negative: a sender that never delivers the wake it owes ---------------------------------
// The sender uses send_unwoken and drops the wake_server() it owes when the server was
// parked. In the executions where the server parked before the announce, the server then
// sleeps forever: Relacy must report a deadlock (expected result of this scenario).
struct negative_lost_wake : scenario<negative_lost_wake, 2, rl::test_result_deadlock> {
  std::optional<server_t> srv;
  std::optional<client_t> cli;

  void setup() {
    auto [s, c] = ump::channel<int, int>(parking());
    srv.emplace(std::move(s));
    cli.emplace(std::move(c));
  }
  void thread(unsigned i) {
    if (i == 0) {
      auto& core = ump::detail::access::core(*cli);
      auto s = core.send_unwoken(ump::detail::message_kind::request, 1);
      RL_ASSERT(s.node != nullptr);
      // BROKEN ON PURPOSE: `if (s.wake) core.state()->wake_server();` left out.
      ump::detail::pending_reply<int, void> p(core.state(), s.node);
      auto r = p.wait({});
      RL_ASSERT(r && *r == 10);
      return;
    }
    auto m = srv->wait();
    RL_ASSERT(m.has_value());
    auto [msg, ctx] = std::move(*m);
    RL_ASSERT(ctx.reply(msg * 10));
  }
  void finish() {
    cli.reset();
    srv.reset();
  }
};

// --- stop against a parking server ---------------------------------------------------------
// The server thread blocks in take() watching a stop flag (what server::wait(stop_token)
// does), with a client alive and nothing sent; the other thread requests stop: it sets the
// flag, then calls interrupt_server_thread() (what the stop_callback does). The take must
// return stopped. A stop slept through leaves the server parked forever, which Relacy
// reports as a deadlock; the negative twin leaves the interrupt out to show that it would.
template <bool Interrupt>
struct stop_vs_park_base {
  std::optional<server_t> srv;
  std::optional<client_t> cli;
  ump::detail::atomic<bool> stop{false};

  void setup() {
    auto [s, c] = ump::channel<int, int>(parking());
    srv.emplace(std::move(s));
    cli.emplace(std::move(c));
    // ORDERING: relaxed; before the modelled threads start.
    stop.store(false, std::memory_order_relaxed);
  }
  void thread(unsigned i) {
    auto* st = ump::detail::access::core(*srv).state();
    if (i == 0) {
      // ORDERING: release, as std::stop_source::request_stop; pairs with the check's acquire.
      stop.store(true, std::memory_order_release);
      if (Interrupt) st->interrupt_server_thread();
      return;
    }
    const ump::detail::stop_check check{
        [](const void* f) noexcept {
          // ORDERING: acquire, as std::stop_token::stop_requested.
          return static_cast<const ump::detail::atomic<bool>*>(f)->load(std::memory_order_acquire);
        },
        &stop};
    ump::detail::envelope e{};
    RL_ASSERT(st->take(e, {}, &check) == ump::detail::poll_status::stopped);
  }
  void finish() {
    cli.reset();
    srv.reset();
  }
};
struct stop_vs_park : scenario<stop_vs_park, 2>, stop_vs_park_base<true> {};
struct negative_stop_without_interrupt : scenario<negative_stop_without_interrupt, 2, rl::test_result_deadlock>,
                                         stop_vs_park_base<false> {};

// --- cancel against take ----------------------------------------------------------------------
// A request is queued; the requester cancels it (wait_reply::cancel) while the server thread
// takes what is queued and replies. Exactly one of: the server received it and cancel()
// returned false (its reply refused with origin_disappeared, or, if it came before the
// cancel, destroyed by it), or the server never saw it and cancel() returned true. The message is destroyed exactly
// once either way, and the node goes back to its pool once (the state's destructor counts them).
tally cancel_withdrew{"cancel_vs_take: withdrawn before the server took it"};
tally cancel_too_late{"cancel_vs_take: taken first, then abandoned"};
int live_payloads = 0;  // counted payloads alive (plain int: Relacy serialises the threads)
struct payload {
  int v;
  explicit payload(int x) : v(x) { ++live_payloads; }
  payload(payload&& o) noexcept : v(o.v) { ++live_payloads; }
  payload(const payload&) = delete;
  ~payload() { --live_payloads; }
};
struct cancel_vs_take : scenario<cancel_vs_take, 2> {
  std::optional<ump::server<payload, int>> srv;
  std::optional<ump::client<payload, int>> cli;  // alive throughout: no clients_disappeared
  std::optional<ump::wait_reply<int>> w;
  bool cancelled = false;
  bool received = false;
  bool delivered = false;

  void setup() {
    live_payloads = 0;
    auto [s, c] = ump::channel<payload, int>(parking());
    srv.emplace(std::move(s));
    cli.emplace(std::move(c));
    auto r = cli->req_async(payload(7));
    RL_ASSERT(r.valid());
    w.emplace(std::move(r));
  }
  void thread(unsigned i) {
    if (i == 0) {
      cancelled = w->cancel();
      RL_ASSERT(!w->valid());
      w.reset();
      return;
    }
    auto m = srv->try_wait();
    RL_ASSERT(m.has_value());  // the client is alive: never clients_disappeared here
    if (*m) {
      received = true;
      RL_ASSERT((*m)->msg.v == 7);
      delivered = static_cast<bool>((*m)->ctx.reply(70));
    }
  }
  void finish() {
    RL_ASSERT(cancelled != received);
    RL_ASSERT(!cancelled || !delivered);  // a withdrawn request is never answered
    ++(cancelled ? cancel_withdrew : cancel_too_late).n;
    cli.reset();
    srv.reset();
    RL_ASSERT(live_payloads == 0);
  }
};

// --- a stop request against the reply ----------------------------------------------------------
// A requester thread waits (parked) for its reply; a second thread interrupts the wait (what
// req(s, stop_token)'s stop callback does: cell_base::interrupt); the server thread takes the
// request and replies. The requester ends exactly once: with the reply (the server saw it
// delivered), withdrawn (the server never saw the request), or abandoned after the take (the
// server's reply was refused). A stop slept through leaves it parked: a deadlock.
tally stop_got_reply{"stop_vs_reply: the reply won"};
tally stop_withdrew{"stop_vs_reply: withdrawn before the take"};
tally stop_abandoned{"stop_vs_reply: abandoned after the take"};
struct stop_vs_reply : scenario<stop_vs_reply, 3> {
  std::optional<server_t> srv;
  std::optional<client_t> cli;
  ump::detail::state_base* st = nullptr;
  ump::detail::reply_cell<int, void>* cell = nullptr;
  ump::detail::wait_end end{};
  bool received = false;
  bool delivered = false;

  void setup() {
    auto [s, c] = ump::channel<int, int>(parking());
    srv.emplace(std::move(s));
    cli.emplace(std::move(c));
    auto& core = ump::detail::access::core(*cli);
    st = core.state();
    const auto sent = core.send_unwoken(ump::detail::message_kind::request, 5);
    RL_ASSERT(sent.node != nullptr);
    cell = sent.node;
  }
  void thread(unsigned i) {
    if (i == 0) {
      end = cell->wait_ready(st->wait_opts(), {});
      switch (end) {
        case ump::detail::wait_end::ready: {
          int v = ump::detail::consume(*st, *cell).value();
          RL_ASSERT(v == 50);
          break;
        }
        case ump::detail::wait_end::withdrawn:
          ump::detail::withdraw_message(*st, *cell);
          break;
        case ump::detail::wait_end::abandoned:
          break;
        case ump::detail::wait_end::timed_out:
          RL_ASSERT(false);
      }
      return;
    }
    if (i == 1) {
      cell->interrupt();
      return;
    }
    auto m = srv->try_wait();
    RL_ASSERT(m.has_value());
    if (*m) {
      received = true;
      delivered = static_cast<bool>((*m)->ctx.reply(50));
    }
  }
  void finish() {
    using ump::detail::wait_end;
    RL_ASSERT((end == wait_end::ready) == delivered);
    RL_ASSERT((end == wait_end::withdrawn) == !received);
    ++(end == wait_end::ready ? stop_got_reply : end == wait_end::withdrawn ? stop_withdrew : stop_abandoned).n;
    cli.reset();
    srv.reset();
  }
};

// --- a sender waiting for room against the server's take and close ---------------------------
// A bounded channel (capacity 1) holds one post. The sender thread posts again: it finds the
// channel full, links itself in the room list and parks. The server thread takes the first
// post (which frees room and must grant it) and then the second, or (Close) is destroyed
// instead. A grant slept through leaves the sender parked: a deadlock. With Close, the
// sender must come back with server_disappeared.
template <bool Close>
struct room_base {
  std::optional<ump::ng::server<int, int, int>> srv;
  std::optional<ump::ng::client<int, int, int>> cli;
  std::optional<ump::result<void>> posted;

  void setup() {
    ump::channel_options o = parking();
    o.capacity = 1;
    auto [s, c] = ump::ng::channel<int, int, int>(o);
    srv.emplace(std::move(s));
    cli.emplace(std::move(c));
    RL_ASSERT(cli->post(1));
  }
  void thread(unsigned i) {
    if (i == 0) {
      posted.emplace(cli->post(2));
      return;
    }
    if (Close) {
      srv.reset();
      return;
    }
    for (int want = 1; want <= 2; ++want) {
      auto m = srv->wait();
      RL_ASSERT(m.has_value());
      RL_ASSERT(m->is_post() && m->post() == want);
    }
  }
  void finish() {
    RL_ASSERT(posted.has_value());
    if (Close) {
      RL_ASSERT(!*posted && posted->error() == errc::server_disappeared);
    } else {
      RL_ASSERT(posted->has_value());
    }
    cli.reset();
    srv.reset();
  }
};
struct room_wait_vs_take : scenario<room_wait_vs_take, 2>, room_base<false> {};
struct room_wait_vs_close : scenario<room_wait_vs_close, 2>, room_base<true> {};

// --- a sender let in a chunk at a time ------------------------------------------------------
// Capacity 8 lets waiting senders in two slots at a time (a quarter of the capacity). The
// channel holds 8 posts; the sender thread posts 2 more, each finding the channel full and
// waiting for its grant; the server thread takes all 10, in order. A waiter stranded by the
// chunk rule (room free, but less than a chunk, and the server idle) would be a deadlock.
struct room_chunk_vs_take : scenario<room_chunk_vs_take, 2> {
  std::optional<ump::ng::server<int, int, int>> srv;
  std::optional<ump::ng::client<int, int, int>> cli;
  int posted = 0;

  void setup() {
    ump::channel_options o = parking();
    o.capacity = 8;
    auto [s, c] = ump::ng::channel<int, int, int>(o);
    srv.emplace(std::move(s));
    cli.emplace(std::move(c));
    for (int k = 1; k <= 8; ++k) RL_ASSERT(cli->post(k));
  }
  void thread(unsigned i) {
    if (i == 0) {
      for (int k = 9; k <= 10; ++k) posted += cli->post(k) ? 1 : 0;
      return;
    }
    for (int want = 1; want <= 10; ++want) {
      auto m = srv->wait();
      RL_ASSERT(m.has_value());
      RL_ASSERT(m->is_post() && m->post() == want);
    }
  }
  void finish() {
    RL_ASSERT(posted == 2);
    cli.reset();
    srv.reset();
  }
};

// --- one FIFO across lanes ---------------------------------------------------------------------
// Two client objects (so two lanes, each taken at its first send). Thread 0 sends 1 (not
// waiting for it) and then raises a flag; thread 1 sends 2 if it saw the flag (its send then
// happens after the first), else 3. The server must never take 2 before 1: tickets, not
// lanes, decide the order.
tally handoff_ordered{"handoff_across_lanes: second send made after the hand-off"};
struct handoff_across_lanes : scenario<handoff_across_lanes, 3> {
  std::optional<server_t> srv;
  std::optional<client_t> cli[2];
  ump::detail::atomic<int> flag{0};
  int order[2] = {0, 0};
  int taken = 0;

  void setup() {
    open_with_two_clients(srv, cli);
    // ORDERING: relaxed; before the modelled threads start.
    flag.store(0, std::memory_order_relaxed);
  }
  void thread(unsigned i) {
    if (i == 0) {
      auto w = cli[0]->req_async(1);
      // ORDERING: release, pairs with thread 1's acquire load: the hand-off.
      flag.store(1, std::memory_order_release);
      auto r = std::move(w).wait();
      RL_ASSERT(r && *r == 10);
      cli[0].reset();
    } else if (i == 1) {
      // ORDERING: acquire, pairs with thread 0's release store.
      const int v = flag.load(std::memory_order_acquire) != 0 ? 2 : 3;
      auto r = cli[1]->req(v);
      RL_ASSERT(r && *r == v * 10);
      cli[1].reset();
    } else {
      serve_times_ten(*srv, [this](int msg) {
        RL_ASSERT(taken < 2);
        order[taken++] = msg;
      });
      RL_ASSERT(taken == 2);
      if (order[0] == 2 || order[1] == 2) {
        RL_ASSERT(order[0] == 1 && order[1] == 2);
        ++handoff_ordered.n;
      }
    }
  }
  void finish() { srv.reset(); }
};

// --- first sends through one client object, and a lane handed on -----------------------------
// Threads 0 and 1 make the first sends through one shared client object at once: both take
// a lane (acquire_lane) and race to set it as the object's (own_lane); the loser lets its
// lane go. Thread 0 then sends again through a new copy, which takes a free lane if there is
// one (the loser's), and destroys it. The server thread answers everything; each request
// gets its reply exactly once, thread 0's two requests arrive in the order it made them,
// and every lane's stock comes back (the state's destructor checks the nodes).
struct first_sends_share_a_client : scenario<first_sends_share_a_client, 3> {
  std::optional<server_t> srv;
  std::optional<client_t> shared;
  int seen[4] = {0, 0, 0, 0};
  int taken = 0;

  void setup() {
    auto [s, c] = ump::channel<int, int>(parking());
    srv.emplace(std::move(s));
    shared.emplace(std::move(c));
  }
  void thread(unsigned i) {
    if (i < 2) {
      const int v = static_cast<int>(i) + 1;
      auto r = shared->req(v);
      RL_ASSERT(r && *r == v * 10);
      if (i == 0) {
        client_t again = *shared;
        auto r2 = again.req(3);
        RL_ASSERT(r2 && *r2 == 30);
      }
      return;
    }
    for (;;) {
      auto m = srv->wait();
      if (!m) break;
      auto [msg, ctx] = std::move(*m);
      RL_ASSERT(msg >= 1 && msg <= 3 && seen[msg] == 0);
      seen[msg] = ++taken;
      RL_ASSERT(ctx.reply(msg * 10));
      if (taken == 3) break;
    }
    RL_ASSERT(taken == 3 && seen[1] < seen[3]);
  }
  void finish() {
    shared.reset();
    srv.reset();
  }
};

// --- driver ---------------------------------------------------------------------------------
struct entry {
  const char* name;
  bool negative;
  rl::scheduler_type_e sched;
  unsigned long long iterations;
  bool (*run)(rl::test_params&);
  unsigned context_bound = 1;  // preemptions the bounded search allows beyond forced switches
};

template <class T>
bool run_one(rl::test_params& p) {
  return rl::simulate<T>(p);
}

// Each scenario runs twice: with the context-bound scheduler (every execution with at most
// one or two preemptions beyond the forced switches, searched exhaustively; iterations = 0 means
// "until the search is complete"), then with the random scheduler for a fixed number of
// executions (its seed is the execution number: every run explores the same ones). The
// weak-upgrade scenario's bounded search is too large and runs random only. The whole
// positive run stays well under a minute in the RelWithDebInfo build.
constexpr rl::scheduler_type_e bounded = rl::fair_context_bound_scheduler_type;
constexpr rl::scheduler_type_e randomised = rl::random_scheduler_type;
const entry scenarios[] = {
    {"senders_vs_parking_server", false, bounded, 0, &run_one<senders_vs_parking_server>},
    {"senders_vs_parking_server", false, randomised, 300000, &run_one<senders_vs_parking_server>},
    {"close_vs_send", false, bounded, 0, &run_one<close_vs_send>, 2},
    {"close_vs_send", false, randomised, 300000, &run_one<close_vs_send>},
    {"last_drop_vs_park", false, bounded, 0, &run_one<last_drop_vs_park>},
    {"last_drop_vs_park", false, randomised, 300000, &run_one<last_drop_vs_park>},
    {"weak_upgrade_vs_last_drop", false, randomised, 1000000, &run_one<weak_upgrade_vs_last_drop>},
    {"reply_vs_abandon", false, bounded, 0, &run_one<reply_vs_abandon>, 2},
    {"reply_vs_abandon", false, randomised, 300000, &run_one<reply_vs_abandon>},
    {"async_server_stale_wake", false, bounded, 0, &run_one<async_server_stale_wake>, 2},
    {"async_server_stale_wake", false, randomised, 500000, &run_one<async_server_stale_wake>},
    {"withdraw_vs_wake", false, bounded, 0, &run_one<withdraw_vs_wake>, 2},
    {"withdraw_vs_wake", false, randomised, 300000, &run_one<withdraw_vs_wake>},
    // The withdrawal must land between a stale claim and the waker's re-registration:
    // two preemptions reach the stale claim; the full window needs three (--bound 3: 13.6
    // million executions, about a minute, run by hand; see tests/model/README.md).
    {"withdraw_vs_stale_wake", false, bounded, 0, &run_one<withdraw_vs_stale_wake>, 2},
    {"withdraw_vs_stale_wake", false, randomised, 300000, &run_one<withdraw_vs_stale_wake>},
    {"node_pool_push_pop", false, bounded, 0, &run_one<node_pool_push_pop>},
    {"node_pool_push_pop", false, randomised, 300000, &run_one<node_pool_push_pop>},
    {"stop_vs_park", false, bounded, 0, &run_one<stop_vs_park>, 2},
    {"stop_vs_park", false, randomised, 300000, &run_one<stop_vs_park>},
    {"cancel_vs_take", false, bounded, 0, &run_one<cancel_vs_take>, 2},
    {"cancel_vs_take", false, randomised, 300000, &run_one<cancel_vs_take>},
    {"stop_vs_reply", false, bounded, 0, &run_one<stop_vs_reply>, 2},
    {"stop_vs_reply", false, randomised, 300000, &run_one<stop_vs_reply>},
    {"room_wait_vs_take", false, bounded, 0, &run_one<room_wait_vs_take>, 2},
    {"room_wait_vs_take", false, randomised, 300000, &run_one<room_wait_vs_take>},
    {"room_wait_vs_close", false, bounded, 0, &run_one<room_wait_vs_close>, 2},
    {"room_wait_vs_close", false, randomised, 300000, &run_one<room_wait_vs_close>},
    {"room_chunk_vs_take", false, bounded, 0, &run_one<room_chunk_vs_take>},
    {"room_chunk_vs_take", false, randomised, 100000, &run_one<room_chunk_vs_take>},
    {"handoff_across_lanes", false, bounded, 0, &run_one<handoff_across_lanes>},
    {"handoff_across_lanes", false, randomised, 300000, &run_one<handoff_across_lanes>},
    // Its bounded search (millions of executions at one preemption) is run by hand.
    {"first_sends_share_a_client", false, randomised, 500000, &run_one<first_sends_share_a_client>},
    {"negative_lost_wake", true, randomised, 10000, &run_one<negative_lost_wake>},
    {"negative_stop_without_interrupt", true, randomised, 10000, &run_one<negative_stop_without_interrupt>},
};

const tally* const tallies[] = {&close_replied, &close_failed,   &upgrade_won,     &upgrade_lost,    &abandon_first,
                                &reply_first,   &timed_out,      &cancel_withdrew, &cancel_too_late, &stop_got_reply,
                                &stop_withdrew, &stop_abandoned, &handoff_ordered};

}  // namespace

// --quick: executions per random search (the bounded searches are skipped).
constexpr rl::iteration_t quick_iterations = 50000;

int main(int argc, char** argv) {
  bool negative = false;
  bool quick = false;
  unsigned long long iterations = 0;  // 0: each scenario's own count
  int sched = -1;                     // -1: each scenario's own scheduler
  unsigned bound = 0;                 // 0: each scenario's own context bound
  std::vector<std::string> only;
  for (int a = 1; a < argc; ++a) {
    if (std::strcmp(argv[a], "--negative") == 0) {
      negative = true;
    } else if (std::strcmp(argv[a], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[a], "--iterations") == 0 && a + 1 < argc) {
      iterations = std::strtoull(argv[++a], nullptr, 10);
    } else if (std::strcmp(argv[a], "--scheduler") == 0 && a + 1 < argc) {
      const char* k = argv[++a];
      sched = std::strcmp(k, "full") == 0    ? rl::fair_full_search_scheduler_type
              : std::strcmp(k, "bound") == 0 ? rl::fair_context_bound_scheduler_type
                                             : rl::random_scheduler_type;
    } else if (std::strcmp(argv[a], "--bound") == 0 && a + 1 < argc) {
      bound = static_cast<unsigned>(std::strtoul(argv[++a], nullptr, 10));
    } else if (std::strcmp(argv[a], "--list") == 0) {
      for (const entry& e : scenarios)
        std::printf("%s (%s)%s\n", e.name, rl::format(e.sched), e.negative ? " (negative)" : "");
      return 0;
    } else {
      only.emplace_back(argv[a]);
    }
  }
  int failures = 0;
  int ran = 0;
  for (const entry& e : scenarios) {
    if (only.empty() ? e.negative != negative : std::find(only.begin(), only.end(), e.name) == only.end()) continue;
    if (quick && e.sched != randomised) continue;
    rl::test_params p;
    p.search_type = sched >= 0 ? static_cast<rl::scheduler_type_e>(sched) : e.sched;
    p.iteration_count = iterations != 0 ? iterations : e.iterations != 0 ? e.iterations : 1000000000;
    if (quick) p.iteration_count = std::min(p.iteration_count, quick_iterations);
    p.context_bound = bound != 0 ? bound : e.context_bound;
    const auto t0 = std::chrono::steady_clock::now();
    const bool ok = e.run(p);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("== %s (%s): %s, %llu executions, %.2f s%s\n", e.name, rl::format(p.search_type), ok ? "ok" : "FAILED",
                static_cast<unsigned long long>(p.stop_iteration), s,
                e.negative ? " (negative: passes when Relacy finds the planted bug)" : "");
    std::fflush(stdout);
    ++ran;
    if (!ok) ++failures;
  }
  for (const tally* t : tallies)
    if (t->n != 0) std::printf("   %s: %llu\n", t->what, t->n);
  if (ran == 0) {
    std::fprintf(stderr, "model_check: no scenario matched\n");
    return 2;
  }
  return failures == 0 ? 0 : 1;
}
