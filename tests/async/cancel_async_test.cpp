// Cancellation of coroutine ends by a stop token, for ump and ump::ng: client::areq(s, token)
// and server::async_wait(token). A stop while a requester coroutine is suspended cancels the
// request as wait_reply::cancel() does (withdrawn before the take, abandoned after) and
// resumes it, through its scheduler, on the stopping thread, with errc::cancelled; a reply
// that came first wins. A stopped server wait takes nothing: the next wait gets the message.
#include <doctest/doctest.h>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "async/helpers.hpp"
#include "support/lifetime.hpp"
#include "support/stop_race.hpp"
#include "support/support.hpp"
#include "ump/ng.hpp"
#include "ump/task.hpp"
#include "ump/ump.hpp"

namespace {

using ump::errc;
using ump_async_test::own;
using ump_test::failure;
using ump_test::jitter;
using ump_test::lifetime_check;
using ump_test::pause_for;
using ump_test::scaled;
using ump_test::tracked;

// The two flavours, for TEST_CASE_TEMPLATE. Requests carry tracked(k) and are answered with
// tracked(k); ng posts carry tracked(k) too.
struct ump_flavour {
  using server = ump::server<tracked, tracked>;
  using client = ump::client<tracked, tracked>;
  static std::pair<server, client> make() { return ump::channel<tracked, tracked>(); }
  // The request inside what the server received.
  static ump::request<tracked, tracked>& req(ump::request<tracked, tracked>& m) { return m; }
  static bool is_post(const ump::request<tracked, tracked>&) { return false; }
  static std::uint64_t post_value(ump::request<tracked, tracked>&) { return 0; }
};
struct ng_flavour {
  using server = ump::ng::server<tracked, tracked, tracked>;
  using client = ump::ng::client<tracked, tracked, tracked>;
  static std::pair<server, client> make() { return ump::ng::channel<tracked, tracked, tracked>(); }
  using message = ump::ng::message<tracked, tracked, tracked>;
  static ump::request<tracked, tracked>& req(message& m) { return m.req(); }
  static bool is_post(const message& m) { return m.is_post(); }
  static std::uint64_t post_value(message& m) { return m.post().value(); }
};
#define UMP_FLAVOURS ump_flavour, ng_flavour

// What a requester coroutine saw.
struct outcome {
  std::optional<ump::result<tracked>> r;
  std::thread::id resumed_on;
};

template <class Client, class Sched = ump::inline_scheduler>
ump::task<void> stoppable_request(Client cli, std::uint64_t v, std::stop_token stop, outcome* out, Sched sched = {}) {
  // Two statements, so that no moved-from temporary lives in the frame across the suspension:
  // while suspended, the only tracked object of this request is its message in the node.
  auto aw = cli.areq(tracked(v), std::move(stop), sched);
  auto r = co_await std::move(aw);
  out->resumed_on = std::this_thread::get_id();
  out->r.emplace(std::move(r));
}

// Requests stop on `stop` from a new thread, joins it, and returns that thread's id: a
// coroutine the stop resumes inline is resumed there.
std::thread::id stop_on_another_thread(std::stop_source& stop) {
  std::thread stopper([&] { stop.request_stop(); });
  const auto id = stopper.get_id();
  stopper.join();
  return id;
}

// The server takes nothing: try_wait finds no message (a withdrawn one is passed over).
template <class Server>
bool nothing_delivered(Server& srv) {
  auto r = srv.try_wait();
  return r && !r->has_value();
}

// --- areq(s, stop_token) --------------------------------------------------------------------

TEST_CASE_TEMPLATE("areq_stop_while_suspended_before_take_withdraws_and_resumes_on_the_stopping_thread", F,
                   UMP_FLAVOURS) {
  lifetime_check guard;
  const long live_at_start = tracked::live();
  auto [srv, cli] = F::make();
  std::stop_source stop;
  outcome out;
  auto o = own(stoppable_request(cli, 1, stop.get_token(), &out));
  REQUIRE_FALSE(o.done());  // suspended in areq
  CHECK(srv.queued() == 1);
  CHECK(tracked::live() == live_at_start + 1);           // the message, in its node
  const auto stopper_id = stop_on_another_thread(stop);  // resumes the coroutine inline, there
  CHECK(o.done());
  CHECK(tracked::live() == live_at_start);  // withdrawn: the message is destroyed
  REQUIRE(out.r.has_value());
  CHECK(failure(*out.r) == errc::cancelled);
  CHECK(out.resumed_on == stopper_id);
  o.reset();                                // its frame held a client copy
  CHECK(tracked::live() == live_at_start);  // withdrawn: the message is destroyed
  CHECK(nothing_delivered(srv));
}

TEST_CASE_TEMPLATE("areq_stop_while_suspended_after_take_resumes_cancelled_and_the_reply_is_refused", F, UMP_FLAVOURS) {
  lifetime_check guard;
  auto [srv, cli] = F::make();
  std::stop_source stop;
  outcome out;
  auto o = own(stoppable_request(cli, 1, stop.get_token(), &out));
  REQUIRE_FALSE(o.done());
  auto m = srv.wait();
  REQUIRE(m);
  auto& rq = F::req(*m);
  CHECK(rq.msg.value() == 1);
  CHECK(rq.ctx.requester_waiting());
  REQUIRE_FALSE(o.done());  // taking the request does not resume it
  const auto stopper_id = stop_on_another_thread(stop);
  CHECK(o.done());
  REQUIRE(out.r.has_value());
  CHECK(failure(*out.r) == errc::cancelled);
  CHECK(out.resumed_on == stopper_id);
  CHECK_FALSE(rq.ctx.requester_waiting());
  const long live_before = tracked::live();
  auto st = rq.ctx.reply(tracked(2));
  REQUIRE_FALSE(st);
  CHECK(st.error() == errc::origin_disappeared);
  CHECK(tracked::live() == live_before);  // the refused reply is destroyed
}

TEST_CASE_TEMPLATE("areq_stop_already_requested_cancels_at_co_await_without_suspending", F, UMP_FLAVOURS) {
  lifetime_check guard;
  const long live_at_start = tracked::live();
  auto [srv, cli] = F::make();
  std::stop_source stop;
  stop.request_stop();
  outcome out;
  auto o = own(stoppable_request(cli, 1, stop.get_token(), &out));
  CHECK(o.done());  // never suspended
  REQUIRE(out.r.has_value());
  CHECK(failure(*out.r) == errc::cancelled);
  CHECK(out.resumed_on == std::this_thread::get_id());
  o.reset();
  CHECK(tracked::live() == live_at_start);
  CHECK(nothing_delivered(srv));
}

TEST_CASE_TEMPLATE("areq_reply_delivered_before_the_stop_wins", F, UMP_FLAVOURS) {
  lifetime_check guard;
  auto [srv, cli] = F::make();
  std::stop_source stop;
  outcome out;
  auto o = own(stoppable_request(cli, 1, stop.get_token(), &out));
  REQUIRE_FALSE(o.done());
  {
    auto m = srv.wait();
    REQUIRE(m);
    CHECK(F::req(*m).ctx.reply(tracked(2)));  // delivered: resumes the coroutine inline, here
  }
  CHECK(o.done());
  stop.request_stop();  // too late: no effect
  REQUIRE(out.r.has_value());
  REQUIRE(*out.r);
  CHECK((*out.r)->value() == 2);
}

TEST_CASE_TEMPLATE("areq_reply_arrived_before_co_await_wins_over_a_stop_already_requested", F, UMP_FLAVOURS) {
  // The awaitable is made (the request sent), the reply delivered and the stop requested,
  // all before the co_await: the reply is returned.
  lifetime_check guard;
  auto [srv, cli] = F::make();
  std::stop_source stop;
  auto aw = cli.areq(tracked(1), stop.get_token());
  {
    auto m = srv.wait();
    REQUIRE(m);
    CHECK(F::req(*m).ctx.reply(tracked(2)));
  }
  stop.request_stop();
  std::optional<ump::result<tracked>> got;
  auto body = [](decltype(aw) a, std::optional<ump::result<tracked>>* out) -> ump::task<void> {
    out->emplace(co_await std::move(a));
  };
  auto o = own(body(std::move(aw), &got));
  CHECK(o.done());
  REQUIRE(got.has_value());
  REQUIRE(*got);
  CHECK((*got)->value() == 2);
}

TEST_CASE_TEMPLATE("areq_with_a_stop_already_requested_after_the_server_is_gone_gives_server_disappeared", F,
                   UMP_FLAVOURS) {
  // Never sent: the early outcome is already there, and it is what co_await returns.
  lifetime_check guard;
  auto [srv, cli] = F::make();
  { auto gone = std::move(srv); }
  std::stop_source stop;
  stop.request_stop();
  outcome out;
  auto o = own(stoppable_request(cli, 1, stop.get_token(), &out));
  CHECK(o.done());
  REQUIRE(out.r.has_value());
  CHECK(failure(*out.r) == errc::server_disappeared);
}

// handoff, handoff_scheduler, drive: tests/async/helpers.hpp.
using ump_async_test::drive;
using ump_async_test::handoff;
using ump_async_test::handoff_scheduler;

TEST_CASE_TEMPLATE("coroutine_destroyed_after_a_stop_scheduled_its_resumption_before_take", F, UMP_FLAVOURS) {
  // The stop withdraws the request and schedules the coroutine; its owner destroys it
  // instead of resuming it. The message is destroyed once (by the withdrawal), never again.
  lifetime_check guard;
  const long live_at_start = tracked::live();
  auto [srv, cli] = F::make();
  std::stop_source stop;
  handoff h;
  outcome out;
  auto o = own(stoppable_request(cli, 1, stop.get_token(), &out, handoff_scheduler{&h}));
  REQUIRE_FALSE(o.done());
  CHECK(tracked::live() == live_at_start + 1);
  stop.request_stop();
  CHECK(h.scheduled.load() == 1);
  CHECK(tracked::live() == live_at_start);  // withdrawn inside request_stop()
  o.reset();                                // destroyed where it was suspended
  CHECK_FALSE(out.r.has_value());
  CHECK(tracked::live() == live_at_start);
  CHECK(nothing_delivered(srv));
}

TEST_CASE_TEMPLATE("coroutine_destroyed_after_a_stop_scheduled_its_resumption_after_take", F, UMP_FLAVOURS) {
  lifetime_check guard;
  auto [srv, cli] = F::make();
  std::stop_source stop;
  handoff h;
  outcome out;
  auto o = own(stoppable_request(cli, 1, stop.get_token(), &out, handoff_scheduler{&h}));
  REQUIRE_FALSE(o.done());
  auto m = srv.wait();
  REQUIRE(m);
  stop.request_stop();
  CHECK(h.scheduled.load() == 1);
  o.reset();
  CHECK_FALSE(out.r.has_value());
  auto& rq = F::req(*m);
  CHECK_FALSE(rq.ctx.requester_waiting());
  auto st = rq.ctx.reply(tracked(2));
  REQUIRE_FALSE(st);
  CHECK(st.error() == errc::origin_disappeared);
}

TEST_CASE_TEMPLATE("coroutine_destroyed_while_suspended_then_stop_has_no_effect", F, UMP_FLAVOURS) {
  // Destroyed first: the request is abandoned (still delivered: the server's reply is
  // refused), and the stop callback is gone with the frame.
  lifetime_check guard;
  auto [srv, cli] = F::make();
  std::stop_source stop;
  handoff h;
  outcome out;
  auto o = own(stoppable_request(cli, 1, stop.get_token(), &out, handoff_scheduler{&h}));
  REQUIRE_FALSE(o.done());
  o.reset();
  stop.request_stop();
  CHECK(h.scheduled.load() == 0);
  auto m = srv.wait();
  REQUIRE(m);
  auto& rq = F::req(*m);
  CHECK(rq.msg.value() == 1);
  auto st = rq.ctx.reply(tracked(2));
  REQUIRE_FALSE(st);
  CHECK(st.error() == errc::origin_disappeared);
}

TEST_CASE_TEMPLATE("areq_stop_racing_the_reply_client_and_server_agree", F, UMP_FLAVOURS) {
  // The race of ump_test::stop_racing_the_reply (tests/support/stop_race.hpp), with each
  // round's request made by a coroutine (stoppable_request, areq(s, token)) resumed on this
  // thread through the handoff scheduler. The coroutine must get its value ⇔ the server's
  // reply was delivered, and cancelled ⇔ the reply was refused or the server never saw the
  // request. Each side must win at least once.
  lifetime_check guard;
  handoff h;
  ump_test::stop_racing_the_reply(F::make(), [&h](typename F::client& cli, long round, std::stop_token stop) {
    outcome out;
    auto o =
        own(stoppable_request(cli, static_cast<std::uint64_t>(round), std::move(stop), &out, handoff_scheduler{&h}));
    drive(o, h);
    REQUIRE(out.r.has_value());
    return std::move(*out.r);
  });
}

// --- server async_wait(stop_token) ------------------------------------------------------------

// What a server coroutine's one wait saw: the message's value, or the error.
struct received {
  std::optional<std::uint64_t> value;
  std::optional<errc> error;
  std::thread::id resumed_on;
};

// One async_wait; answers a request with tracked(k) (a post needs no answer).
template <class F, class Sched = ump::inline_scheduler>
ump::task<void> one_wait(typename F::server& srv, std::stop_token stop, received* out, Sched sched = {}) {
  auto m = co_await srv.async_wait(std::move(stop), sched);
  out->resumed_on = std::this_thread::get_id();
  if (!m) {
    out->error = m.error().code();
    co_return;
  }
  if (F::is_post(*m)) {
    out->value = F::post_value(*m);
  } else {
    auto& rq = F::req(*m);
    out->value = rq.msg.value();
    (void)rq.ctx.reply(tracked(rq.msg.value()));
  }
}

// The server takes the next message, a request that must carry k, and answers tracked(k).
template <class F>
void answer_next(typename F::server& srv, std::uint64_t k) {
  auto m = srv.wait();
  REQUIRE(m);
  CHECK(F::req(*m).msg.value() == k);
  CHECK(F::req(*m).ctx.reply(tracked(k)));
}

TEST_CASE_TEMPLATE("async_wait_stop_while_suspended_resumes_cancelled_then_the_next_waits_get_the_messages", F,
                   UMP_FLAVOURS) {
  lifetime_check guard;
  auto [srv, cli] = F::make();
  std::stop_source stop;
  received first;
  auto o = own(one_wait<F>(srv, stop.get_token(), &first));
  REQUIRE_FALSE(o.done());  // nothing queued: suspended
  const auto stopper_id = stop_on_another_thread(stop);
  CHECK(o.done());
  CHECK(first.error == errc::cancelled);
  CHECK_FALSE(first.value.has_value());
  CHECK(first.resumed_on == stopper_id);
  // Nothing was lost: the next async_wait gets the next message, then a blocking wait.
  auto w1 = cli.req_async(tracked(1));
  auto w2 = cli.req_async(tracked(2));
  received second;
  auto o2 = own(one_wait<F>(srv, std::stop_token{}, &second));
  CHECK(o2.done());
  CHECK(second.value == 1);
  answer_next<F>(srv, 2);
  CHECK(w1.wait()->value() == 1);
  CHECK(w2.wait()->value() == 2);
}

TEST_CASE_TEMPLATE("async_wait_stop_after_a_send_woke_it_gets_the_message", F, UMP_FLAVOURS) {
  // The send resumes the suspended server (inline, on this thread) before the stop comes:
  // the message is delivered, and the later stop has no effect.
  lifetime_check guard;
  auto [srv, cli] = F::make();
  std::stop_source stop;
  received first;
  auto o = own(one_wait<F>(srv, stop.get_token(), &first));
  REQUIRE_FALSE(o.done());
  auto w = cli.req_async(tracked(1));
  CHECK(o.done());
  stop.request_stop();
  CHECK(first.value == 1);
  CHECK_FALSE(first.error.has_value());
  CHECK(w.wait()->value() == 1);
}

TEST_CASE_TEMPLATE("async_wait_stop_already_requested_with_a_message_queued_cancels_and_leaves_it_queued", F,
                   UMP_FLAVOURS) {
  lifetime_check guard;
  auto [srv, cli] = F::make();
  auto w = cli.req_async(tracked(1));
  std::stop_source stop;
  stop.request_stop();
  received first;
  auto o = own(one_wait<F>(srv, stop.get_token(), &first));
  CHECK(o.done());
  CHECK(first.error == errc::cancelled);
  CHECK_FALSE(first.value.has_value());
  CHECK(srv.queued() == 1);  // not taken
  answer_next<F>(srv, 1);
  CHECK(w.wait()->value() == 1);
}

TEST_CASE_TEMPLATE("server_coroutine_destroyed_after_a_stop_scheduled_it_loses_nothing", F, UMP_FLAVOURS) {
  // The stop resumes the suspended server through a scheduler that holds the handle; the
  // owner destroys the coroutine instead. The next wait still gets the next message.
  lifetime_check guard;
  auto [srv, cli] = F::make();
  std::stop_source stop;
  handoff h;
  received first;
  auto o = own(one_wait<F>(srv, stop.get_token(), &first, handoff_scheduler{&h}));
  REQUIRE_FALSE(o.done());
  stop.request_stop();
  CHECK(h.scheduled.load() == 1);
  o.reset();
  auto w = cli.req_async(tracked(1));
  received second;
  auto o2 = own(one_wait<F>(srv, std::stop_token{}, &second));
  CHECK(o2.done());
  CHECK(second.value == 1);
  CHECK(w.wait()->value() == 1);
}

TEST_CASE_TEMPLATE("server_coroutine_destroyed_while_suspended_then_stop_has_no_effect", F, UMP_FLAVOURS) {
  lifetime_check guard;
  auto [srv, cli] = F::make();
  std::stop_source stop;
  handoff h;
  received first;
  auto o = own(one_wait<F>(srv, stop.get_token(), &first, handoff_scheduler{&h}));
  REQUIRE_FALSE(o.done());
  o.reset();  // unregisters the waiter and the stop callback
  stop.request_stop();
  auto w = cli.req_async(tracked(1));  // wakes nobody
  CHECK(h.scheduled.load() == 0);
  answer_next<F>(srv, 1);
  CHECK(w.wait()->value() == 1);
}

TEST_CASE_TEMPLATE("async_wait_stop_racing_sends_receives_every_message_exactly_once", F, UMP_FLAVOURS) {
  // A sender thread sends 0..n-1 (ng: posts and requests alternately) while this thread runs
  // one async_wait per round with a fresh stop source, which a stopper thread takes, says so
  // (armed = k), and stops after a busy pause that sweeps 0..8191 steps (jitter, not
  // synchronisation). The sender is let go to send the next message, and the source handed
  // over, by round: before the wait starts; once the wait has suspended (or completed at
  // once, the sender being ready at its gate): then the send and the stop race for a
  // suspended wait; or before, with the wait
  // started only once the stopper is armed. Each wait gets either cancelled or the next message in FIFO order;
  // every message is received exactly once, none lost, and every request answered.
  lifetime_check guard;
  const int n = scaled(20000);
  auto ends = F::make();
  auto& srv = ends.first;
  // The sender sends k only once this thread lets it (send_gate > k), so that a wait can be
  // suspended on an empty queue when the send and the stop are let go together.
  std::atomic<long> send_gate{0};
  std::atomic<long> sender_at{-1};  // the message the sender is ready to send
  std::thread sender([&send_gate, &sender_at, c = std::move(ends.second)]() mutable {
    long wrong = 0;
    for (int k = 0; k < n; ++k) {
      // ORDERING: release, pairs with this thread's acquire spin.
      sender_at.store(k, std::memory_order_release);
      // ORDERING: acquire, pairs with the release stores of send_gate below.
      while (send_gate.load(std::memory_order_acquire) <= k) std::this_thread::yield();
      if constexpr (std::is_same_v<F, ng_flavour>) {
        if (k % 2 == 0) {
          if (!c.post(tracked(k))) ++wrong;
          continue;
        }
      }
      auto r = c.req(tracked(k));
      if (!r || r->value() != static_cast<std::uint64_t>(k)) ++wrong;
    }
    CHECK(wrong == 0);
  });
  ump_test::stopper_thread stopper([](long k) { jitter(pause_for(k)); });
  handoff h;
  std::uint64_t next = 0;
  long cancelled = 0;
  long out_of_order = 0;
  long other = 0;
  long stopped_while_suspended = 0;  // suspended, then the stop won over the send
  long woken_while_suspended = 0;    // suspended, then the send won over the stop
  for (long round = 0; next < static_cast<std::uint64_t>(n); ++round) {
    std::stop_source src;
    received got;
    const int mode = static_cast<int>(round % 3);
    const auto let_go = [&] {
      // Which of the two is let go first alternates every third round.
      const bool stop_first = (round / 3) % 2 == 0;
      if (stop_first) stopper.hand(src);
      // ORDERING: release, pairs with the sender's acquire spin.
      send_gate.store(static_cast<long>(next) + 1, std::memory_order_release);
      if (!stop_first) stopper.hand(src);
    };
    if (mode != 1) let_go();
    if (mode == 2) stopper.await_armed(round);
    // ORDERING: acquire, pairs with the sender's release store: both racers are running.
    if (mode == 1)
      while (sender_at.load(std::memory_order_acquire) < static_cast<long>(next)) std::this_thread::yield();
    auto o = own(one_wait<F>(srv, src.get_token(), &got, handoff_scheduler{&h}));
    const bool suspended = !o.done();
    if (mode == 1) let_go();
    drive(o, h);
    if (mode == 1 && suspended) ++(got.error == errc::cancelled ? stopped_while_suspended : woken_while_suspended);
    if (got.value.has_value()) {
      if (*got.value != next) ++out_of_order;
      next = *got.value + 1;
    } else if (got.error == errc::cancelled) {
      ++cancelled;
    } else {
      ++other;
    }
    stopper.await_stopped(round);  // the stopper is done with src
    if (other != 0) break;
  }
  stopper.finish();
  sender.join();
  CHECK(out_of_order == 0);
  CHECK(other == 0);
  CHECK(next == static_cast<std::uint64_t>(n));
  auto last = srv.wait();  // the sender is gone: nothing left
  CHECK(failure(last) == errc::clients_disappeared);
  MESSAGE("stop won " << cancelled << " waits; " << n << " messages received; of the waits suspended before the race, "
                      << stopped_while_suspended << " were stopped and " << woken_while_suspended
                      << " woken by a send");
  CHECK_MESSAGE(cancelled > 0, "the stop never won the race");
}

}  // namespace

// --- a coroutine server woken for requests that are then withdrawn ----------------------------

TEST_CASE_TEMPLATE("server_woken_for_a_request_takes_it_before_a_cancel_can_withdraw_it", F, UMP_FLAVOURS) {
  // The send wakes the suspended server coroutine, whose resumption is deferred. The message
  // is taken on the waking thread, so a cancel() that comes before the coroutine runs finds
  // it taken (false): the coroutine still resumes with it, never with nothing.
  lifetime_check guard;
  auto [srv, cli] = F::make();
  handoff h;
  std::optional<std::uint64_t> got;
  auto co = [](typename F::server& s, handoff* h, std::optional<std::uint64_t>* got) -> ump_test::eager_coroutine {
    auto r = co_await s.async_wait(handoff_scheduler{h});
    REQUIRE(r);
    auto& req = F::req(*r);
    got->emplace(req.msg.value());
    CHECK(req.ctx.reply(tracked(9)).error() == errc::origin_disappeared);
  }(srv, &h, &got);
  auto w = cli.req_async(tracked(4));
  // ORDERING: acquire, pairs with handoff_scheduler's release store.
  void* a = h.slot.exchange(nullptr, std::memory_order_acquire);
  REQUIRE(a != nullptr);    // woken and handed to the scheduler
  CHECK_FALSE(w.cancel());  // already taken for the coroutine: abandoned, not withdrawn
  std::coroutine_handle<>::from_address(a).resume();
  CHECK(co.done());
  REQUIRE(got.has_value());
  CHECK(*got == 4);
}

TEST_CASE_TEMPLATE("server_coroutine_destroyed_after_its_wake_releases_the_message_taken_for_it", F, UMP_FLAVOURS) {
  // Woken (the request taken for it) and handed to a scheduler that never runs it: the
  // coroutine is destroyed instead. The request is answered no_reply; nothing leaks.
  lifetime_check guard;
  auto [srv, cli] = F::make();
  handoff h;
  std::optional<ump::result<tracked>> seen;
  {
    auto co = [](typename F::server& s, handoff* h) -> ump_test::eager_coroutine {
      auto r = co_await s.async_wait(handoff_scheduler{h});
      FAIL("the coroutine is never resumed");
      (void)r;
    }(srv, &h);
    auto w = cli.req_async(tracked(6));
    // ORDERING: acquire, pairs with handoff_scheduler's release store.
    REQUIRE(h.slot.exchange(nullptr, std::memory_order_acquire) != nullptr);
    co.reset();  // destroyed while its resumption sits with the scheduler
    seen.emplace(w.wait());
  }
  REQUIRE(seen.has_value());
  CHECK(failure(*seen) == errc::no_reply);
  CHECK(nothing_delivered(srv));
}
