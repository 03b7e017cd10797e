// fuzz/cell_fuzzer.cpp — the reply cell's state machine (ump/detail/cell.hpp), driven directly.
//
// The harness owns a real ump::detail::channel_state (its cell pool is the one the library
// uses) and up to eight nodes taken from it. For each node it plays both sides of one request
// on the fuzzing thread, in any order the input picks:
//   requester: register_async_waiter, withdraw_async_waiter, is_ready, wait_ready with a
//              deadline that has passed or passes within a microsecond (or with no deadline
//              once the outcome is there), ump::detail::consume, ump::detail::abandon;
//   replier:   ump::detail::complete with a value, an app error or a protocol error (its
//              move may be armed to throw), and the abandoned() probe.
// wait_ready is never asked to wait for something that could only come from another thread,
// so nothing parks for longer than the deadline.
//
// A model of the diagram in cell.hpp (empty, waiting_async, ready, abandoned) predicts every
// return value, how often each async waiter runs (once if it was registered and the outcome
// was delivered, never otherwise), how many reply values are alive, and who recycles the
// node. The pool is a LIFO: each node the harness takes must be the one the model last saw
// recycled (or a new one when the model's pool is empty), so a node recycled twice, never,
// or by the wrong side shows up at the next acquire. At the end every node is finished,
// the pool is drained and checked against the model, and the state is released (its
// destructor checks that every allocated node came back).
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"
#include "ump/detail/channel_state.hpp"
#include "ump/options.hpp"
#include "ump/result.hpp"

namespace {

using ump_fuzz::counted;
using state_t = ump::detail::channel_state<counted, counted, int>;
using node_t = state_t::node_type;
using clock_t_ = ump::detail::clock;

enum class cs : std::uint8_t { empty, waiting_async, ready, abandoned };

enum class out_kind : std::uint8_t { value, app_error, no_reply, server_disappeared };
struct outcome {
  out_kind kind = out_kind::value;
  std::uint64_t v = 0;
  bool operator==(const outcome&) const = default;
};

outcome to_outcome(const ump::result<counted, int>& r) {
  if (r.has_value()) return {out_kind::value, r->value()};
  switch (r.error().code()) {
    case ump::errc::app_error:
      return {out_kind::app_error, static_cast<std::uint64_t>(r.error().app())};
    case ump::errc::no_reply:
      return {out_kind::no_reply, 0};
    case ump::errc::server_disappeared:
      return {out_kind::server_disappeared, 0};
    default:
      break;
  }
  ump_fuzz::fail("a cell held an outcome nobody published", __FILE__, __LINE__);
}

struct slot {
  node_t* n = nullptr;   // null: free
  cs state = cs::empty;  // the model's cell state
  bool requester_done = false;
  bool replier_done = false;
  bool tried_register = false;
  bool registered = false;    // register_async_waiter succeeded
  bool delivered = false;     // publish found the requester still there
  bool outcome_live = false;  // a published outcome still sits in the cell
  outcome out;
  int wakes = 0;  // calls of this slot's async waiter
};

void on_wake(void* ctx) noexcept { ++static_cast<slot*>(ctx)->wakes; }

enum op : int {
  op_acquire,
  op_register,
  op_publish_value,
  op_publish_app_error,
  op_publish_error,
  op_abandon,
  op_is_ready,
  op_wait_ready,
  op_consume,
  op_probe_abandoned,
  op_withdraw,
  op_arm_throw,
  op_count_
};

class harness {
 public:
  static constexpr int n_slots = 8;

  explicit harness(std::uint8_t opt) {
    ump::channel_options o;
    switch (opt % 3) {
      case 0:
        o.waiting.spin = std::chrono::nanoseconds(0);
        break;
      case 1:
        o.waiting.spin = std::chrono::microseconds(1);
        break;
      default:
        break;  // the default budget (bounded by the deadlines used here)
    }
    o.waiting.spin_before_yield = (opt & 4) ? std::chrono::nanoseconds(0) : o.waiting.spin;
    st_ = new state_t(o);
  }
  harness(const harness&) = delete;
  harness& operator=(const harness&) = delete;

  ~harness() {
    // Every node back in the pool: drain it in the model's order, then give all back.
    std::vector<node_t*> drained;
    while (!pool_.empty()) {
      node_t* n = st_->acquire_node();
      FUZZ_CHECK(n == pool_.back(), "the pool holds exactly the recycled nodes, last in first out");
      pool_.pop_back();
      drained.push_back(n);
    }
    node_t* fresh = st_->acquire_node();
    FUZZ_CHECK(known_.count(fresh) == 0, "no node was recycled more often than the model says");
    drained.push_back(fresh);
    for (node_t* n : drained) st_->recycle(n);
    // Both reference groups start at one; the second release deletes the state, whose
    // destructor (assertions on) checks that every node it allocated came back.
    st_->release(ump::detail::state_base::client_group);
    st_->release(ump::detail::state_base::server_group);
  }

  void run(int code, std::uint8_t a, int armed) {
    const int k = a % n_slots;
    slot& s = slots_[k];
    switch (code) {
      case op_acquire:
        acquire(s);
        break;
      case op_register:
        reg(s);
        break;
      case op_publish_value:
        publish(s, 0, a >> 3, armed);
        break;
      case op_publish_app_error:
        publish(s, 1, a >> 3, 0);
        break;
      case op_publish_error:
        publish(s, (a & 8) ? 2 : 3, 0, 0);
        break;
      case op_abandon:
        abandon(s);
        break;
      case op_is_ready:
        is_ready(s);
        break;
      case op_wait_ready:
        wait_ready(s, a >> 3);
        break;
      case op_consume:
        consume(s, armed);
        break;
      case op_probe_abandoned:
        probe(s);
        break;
      case op_withdraw:
        withdraw(s);
        break;
      default:
        break;
    }
    retire(s);
    verify();
  }

  // Brings every node to its end: the replier publishes, the requester consumes or lets go.
  void finish_all() {
    for (int k = 0; k < n_slots; ++k) {
      slot& s = slots_[k];
      if (s.n == nullptr) continue;
      if (!s.replier_done) publish(s, 0, static_cast<std::uint64_t>(k), 0);
      if (!s.requester_done) {
        FUZZ_CHECK(s.state == cs::ready, "a published cell the requester still holds is ready");
        if (k % 2 == 0) {
          consume(s, 0);
        } else {
          abandon(s);
        }
      }
      retire(s);
      verify();
      FUZZ_CHECK(s.n == nullptr, "a cell both sides are done with is free");
    }
  }

 private:
  void recycled(node_t* n) { pool_.push_back(n); }

  void acquire(slot& s) {
    if (s.n != nullptr) return;
    node_t* n = st_->acquire_node();
    if (pool_.empty()) {
      FUZZ_CHECK(known_.insert(n).second, "an empty pool hands out a new node, not one still in use");
    } else {
      FUZZ_CHECK(n == pool_.back(), "the pool hands out the node recycled last");
      pool_.pop_back();
    }
    n->is_post_ = false;
    n->reset();  // what client_core::send does before queueing
    s = slot{};
    s.n = n;
  }

  void reg(slot& s) {
    if (s.n == nullptr || s.requester_done || s.tried_register) return;
    if (s.state != cs::empty && s.state != cs::ready) return;  // abandoned: not the requester's any more
    s.tried_register = true;
    const bool ok = s.n->register_async_waiter({&on_wake, &s});
    FUZZ_CHECK(ok == (s.state == cs::empty), "register_async_waiter succeeds exactly while no outcome is there");
    if (ok) {
      s.state = cs::waiting_async;
      s.registered = true;
    }
  }

  // kind: 0 value v, 1 app error v, 2 no_reply, 3 server_disappeared.
  void publish(slot& s, int kind, std::uint64_t v, int armed) {
    if (s.n == nullptr || s.replier_done) return;
    const int wakes_before = s.wakes;
    const cs before = s.state;
    ump::detail::publish_result r{};
    outcome o;
    bool threw = false;
    switch (kind) {
      case 0: {
        const std::uint64_t val = 1000 + v + 64 * static_cast<std::uint64_t>(next_value_++);
        o = {out_kind::value, val};
#if UMP_FUZZ_EXCEPTIONS
        counted::arm_throw(armed);
        try {
          r = ump::detail::complete(*st_, *s.n, counted(val));
        } catch (const ump_fuzz::injected_failure&) {
          threw = true;
        }
        counted::disarm();
#else
        (void)armed;
        r = ump::detail::complete(*st_, *s.n, counted(val));
#endif
        break;
      }
      case 1:
        o = {out_kind::app_error, v};
        r = ump::detail::complete(*st_, *s.n, ump::error<int>(std::in_place, static_cast<int>(v)));
        break;
      case 2:
        o = {out_kind::no_reply, 0};
        r = ump::detail::complete(*st_, *s.n, ump::error<int>(ump::errc::no_reply));
        break;
      default:
        o = {out_kind::server_disappeared, 0};
        r = ump::detail::complete(*st_, *s.n, ump::error<int>(ump::errc::server_disappeared));
        break;
    }
    if (threw) {
      // Nothing was published: the cell is as it was and the replier still owns its answer.
      FUZZ_CHECK(s.wakes == wakes_before, "a failed publish wakes nobody");
      return;
    }
    s.replier_done = true;
    if (before == cs::abandoned) {
      FUZZ_CHECK(r == ump::detail::publish_result::origin_gone, "publishing to an abandoned cell reports origin_gone");
      FUZZ_CHECK(s.wakes == wakes_before, "publishing to an abandoned cell wakes nobody");
      recycled(s.n);  // complete() destroyed the outcome and recycled the node
      return;
    }
    FUZZ_CHECK(r == ump::detail::publish_result::delivered, "publishing to a live requester delivers");
    FUZZ_CHECK(s.wakes == wakes_before + (before == cs::waiting_async ? 1 : 0),
               "publish runs a registered async waiter exactly once, and no other");
    s.state = cs::ready;
    s.delivered = true;
    s.outcome_live = true;
    s.out = o;
  }

  void abandon(slot& s) {
    if (s.n == nullptr || s.requester_done) return;
    ump::detail::abandon(*st_, *s.n);
    s.requester_done = true;
    if (s.state == cs::ready) {
      s.outcome_live = false;  // the requester destroyed it and recycled the node
      recycled(s.n);
    } else {
      s.state = cs::abandoned;
    }
  }

  void is_ready(slot& s) {
    if (s.n == nullptr || s.requester_done) return;
    FUZZ_CHECK(s.n->is_ready() == (s.state == cs::ready), "is_ready() is true exactly in state ready");
  }

  // Deadlines: 0 none (only once ready), 1 the clock's minimum, 2 an hour ago, 3 now,
  // 4 in a microsecond.
  void wait_ready(slot& s, int which) {
    if (s.n == nullptr || s.requester_done || s.state == cs::waiting_async) return;
    which %= 5;
    ump::detail::deadline dl;
    switch (which) {
      case 0:
        if (s.state != cs::ready) return;  // would wait for another thread
        break;
      case 1:
        dl.at = clock_t_::time_point::min();
        break;
      case 2:
        dl.at = clock_t_::now() - std::chrono::hours(1);
        break;
      case 3:
        dl.at = clock_t_::now();
        break;
      default:
        dl.at = clock_t_::now() + std::chrono::microseconds(1);
        break;
    }
    const bool got = s.n->wait_ready(st_->wait_opts(), dl) == ump::detail::wait_end::ready;
    FUZZ_CHECK(got == (s.state == cs::ready), "wait_ready() returns true exactly when the outcome is there");
    if (!got) {
      // Timed out: the cell is abandoned and belongs to the replier.
      s.requester_done = true;
      s.state = cs::abandoned;
    }
  }

  void consume(slot& s, int armed) {
    if (s.n == nullptr || s.requester_done || s.state != cs::ready) return;
    s.requester_done = true;
    s.outcome_live = false;
    node_t* n = s.n;
#if UMP_FUZZ_EXCEPTIONS
    if (s.out.kind != out_kind::value) armed = 0;  // only a value has a move that can fail
    counted::arm_throw(armed);
    try {
      const auto r = ump::detail::consume(*st_, *n);
      counted::disarm();
      FUZZ_CHECK(to_outcome(r) == s.out, "consume() returns exactly the published outcome");
    } catch (const ump_fuzz::injected_failure&) {
      counted::disarm();  // the outcome is lost, but the node is recycled all the same
    }
#else
    (void)armed;
    const auto r = ump::detail::consume(*st_, *n);
    FUZZ_CHECK(to_outcome(r) == s.out, "consume() returns exactly the published outcome");
#endif
    recycled(n);
  }

  // An adapter cancelling its registered async wait: waiting_async → abandoned, unless the
  // outcome is already there (then the waiter has run and the outcome must be consumed).
  void withdraw(slot& s) {
    if (s.n == nullptr || s.requester_done || !s.registered) return;
    const bool ok = s.n->withdraw_async_waiter();
    FUZZ_CHECK(ok == (s.state == cs::waiting_async), "withdraw_async_waiter succeeds exactly before the outcome");
    if (ok) {
      s.requester_done = true;
      s.state = cs::abandoned;  // the replier recycles
    }
  }

  void probe(slot& s) {
    if (s.n == nullptr || s.replier_done) return;  // after publishing, the replier lets go
    FUZZ_CHECK(s.n->abandoned() == (s.state == cs::abandoned), "abandoned() is true exactly in state abandoned");
  }

  // A node both sides are done with is in the pool now; its slot is free again.
  void retire(slot& s) {
    if (s.n != nullptr && s.requester_done && s.replier_done) {
      FUZZ_CHECK(s.wakes == (s.registered && s.delivered ? 1 : 0),
                 "an async waiter runs once if its outcome was delivered, else never");
      s.n = nullptr;
    }
  }

  void verify() const {
    long live = 0;
    for (const slot& s : slots_) {
      if (s.outcome_live && s.out.kind == out_kind::value) ++live;
      if (s.n != nullptr) {
        FUZZ_CHECK(s.wakes <= 1, "an async waiter runs at most once");
        FUZZ_CHECK(s.wakes == 0 || (s.registered && s.delivered), "only a delivered outcome wakes a registered waiter");
      }
    }
    FUZZ_CHECK(counted::live() == live, "reply values live exactly while a cell holds them");
  }

  state_t* st_;
  std::array<slot, n_slots> slots_{};
  std::vector<node_t*> pool_;  // the model of the cell pool: recycled nodes, last on top
  std::set<node_t*> known_;    // every node the state ever handed out
  int next_value_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FUZZ_CHECK(counted::live() == 0, "no payload survives from an earlier input");
  {
    ump_fuzz::byte_reader in(data, size);
    harness h(in.next());
    int armed = 0;
    while (!in.done()) {
      const std::uint8_t b = in.next();
      const std::uint8_t a = in.next();
      const int code = b % op_count_;
      const int k = std::exchange(armed, 0);
      if (code == op_arm_throw) {
        armed = UMP_FUZZ_EXCEPTIONS ? 1 + a % 3 : 0;
        continue;
      }
      h.run(code, a, k);
    }
    h.finish_all();
  }
  FUZZ_CHECK(counted::live() == 0, "every reply value is destroyed once everything is done");
  return 0;
}
