// fuzz/ops_fuzzer.cpp — random scripts of channel operations against a reference model.
//
// The input is read two bytes at a time: an opcode byte (bit 0 picks the channel: 0 = an
// ump::ng channel with posts, 1 = a plain ump channel; the rest picks the operation) and an
// argument byte (slot numbers, values, options). Everything runs on the fuzzing thread and
// never blocks: wait_reply::wait() is only called once ready() says the outcome is there,
// timed waits get a deadline that has passed (a zero timeout, time_point::min()) or one a
// microsecond away (nobody else can answer meanwhile, so the outcome is certain), and
// coroutines resume either inside the call that completes them (ump::inline_scheduler) or
// when the input runs a deferred scheduler's queue (as an event loop would).
//
// Beside the real objects, each channel keeps a model in plain C++ (no ump): which messages
// are queued, in one FIFO for the whole channel; who holds each request and what its outcome must
// be; how many strong clients are alive; whether the server is alive. After every operation
// the harness checks ump against the model:
//   * server.queued()/empty() equal the model's queue length;
//   * every wait_reply's ready() is true exactly when the model has decided the outcome, and
//     wait() returns exactly that outcome (value, app_error with its value, no_reply,
//     server_disappeared);
//   * a coroutine awaiting a reply has finished exactly when its outcome is decided, with it
//     (on a deferred scheduler: it is queued then, and finishes when the queue runs);
//   * try_wait() returns the head of the channel's one FIFO (posts and requests from every
//     client object interleaved in send order), nothing while the queue is empty, and clients_disappeared only when the
//     queue is empty and no strong client is left; upgrade() succeeds exactly while a strong
//     client lives;
//   * reply()/fail() return origin_disappeared exactly when the requester stopped waiting, and
//     requester_waiting() says so beforehand;
//   * the number of live payload objects equals the model's count (queued messages plus
//     delivered, uncollected reply values), and is zero once everything is dropped.
// An armed move failure (opcode "arm") makes the next send, reply, receive or collect throw
// from inside ump; the model then expects the documented exception-safety outcome.
// Any mismatch traps.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>

#include "fuzz_support.hpp"
#include "ump/ng.hpp"
#include "ump/ump.hpp"

namespace {

using ump_fuzz::counted;
using ump_fuzz::task;

// ---------------------------------------------------------------------------------------
// What a requester can observe.
enum class out_kind : std::uint8_t { none, value, app_error, no_reply, server_disappeared, timed_out };

struct outcome {
  out_kind kind = out_kind::none;
  std::uint64_t v = 0;  // the reply's value, or the app error
  bool operator==(const outcome&) const = default;
};

template <class Res>
outcome to_outcome(const Res& r) {
  if (r.has_value()) return {out_kind::value, r->value()};
  const auto& e = r.error();
  switch (e.code()) {
    case ump::errc::app_error:
      return {out_kind::app_error, static_cast<std::uint64_t>(e.app())};
    case ump::errc::no_reply:
      return {out_kind::no_reply, 0};
    case ump::errc::server_disappeared:
      return {out_kind::server_disappeared, 0};
    case ump::errc::timed_out:
      return {out_kind::timed_out, 0};
    default:
      break;
  }
  ump_fuzz::fail("a requester saw an error code no request can end with", __FILE__, __LINE__);
}

// Runs `f` with the k-th payload move armed to throw (k = 0: unarmed). Returns true if the
// injected failure came out of `f`. `f` must disarm as soon as the ump call it tests returns.
template <class F>
bool run_armed(int k, F&& f) {
#if UMP_FUZZ_EXCEPTIONS
  counted::arm_throw(k);
  try {
    f();
  } catch (const ump_fuzz::injected_failure&) {
    counted::disarm();
    return true;
  }
  counted::disarm();
  return false;
#else
  (void)k;
  f();
  return false;
#endif
}

// ---------------------------------------------------------------------------------------
// Coroutines that wait on the fuzzing thread.
struct await_rec {
  std::uint64_t id = 0;  // the request awaited (0: areq on a gone server, expect an early error)
  bool finished = false;
  outcome got;
};

template <class R, class E, class Sched>
task await_reply(ump::wait_reply<R, E> wr, Sched sched, await_rec* rec) {
  auto r = co_await std::move(wr).async_wait(sched);
  rec->got = to_outcome(r);
  rec->finished = true;
}

template <class Client, class Sched>
task areq_task(Client* cli, std::uint64_t v, Sched sched, await_rec* rec) {
  auto aw = cli->areq(counted(v), sched);  // sends now; `cli` is not touched after this line
  auto r = co_await aw;
  rec->got = to_outcome(r);
  rec->finished = true;
}

template <class Server, class Sched, class Rec>
task server_task(Server* srv, Sched sched, Rec* rec) {
  auto r = co_await srv->async_wait(sched);
  rec->res.emplace(std::move(r));
  rec->finished = true;
}

// ---------------------------------------------------------------------------------------
// The two flavours under test.
template <bool NG>
struct flavor;

template <>
struct flavor<true> {
  using server_t = ump::ng::server<counted, counted, counted, int>;
  using client_t = ump::ng::client<counted, counted, counted, int>;
  using weak_t = ump::ng::weak_client<counted, counted, counted, int>;
  using poster_t = ump::ng::post_client<counted, counted, counted, int>;
  using message_t = server_t::message_type;
  static auto make(ump::channel_options o) { return ump::ng::channel<counted, counted, counted, int>(o); }
};

template <>
struct flavor<false> {
  using server_t = ump::server<counted, counted, int>;
  using client_t = ump::client<counted, counted, int>;
  using weak_t = ump::weak_client<counted, counted, int>;
  using poster_t = client_t;  // no posts in this flavour; the slots stay empty
  using message_t = server_t::request_type;
  static auto make(ump::channel_options o) { return ump::channel<counted, counted, int>(o); }
};

// Set UMP_FUZZ_TRACE=1 to print each operation and each decided outcome (for reading a
// crash input or checking what a seed does).
bool tracing() {
  static const bool on = std::getenv("UMP_FUZZ_TRACE") != nullptr;
  return on;
}

constexpr const char* op_names[] = {"make_channel",
                                    "clone_client",
                                    "move_client",
                                    "drop_client",
                                    "downgrade",
                                    "clone_weak",
                                    "drop_weak",
                                    "upgrade",
                                    "req_async",
                                    "post",
                                    "make_poster",
                                    "drop_poster",
                                    "try_wait",
                                    "server_wait_zero",
                                    "reply",
                                    "fail",
                                    "drop_ctx",
                                    "move_ctx",
                                    "drop_wait_reply",
                                    "check_wait_reply",
                                    "wait_reply_zero",
                                    "await_wait_reply",
                                    "areq",
                                    "cancel_await",
                                    "server_async_wait",
                                    "server_async_cancel",
                                    "drop_server",
                                    "run_scheduled",
                                    "arm_throw"};
constexpr const char* kind_names[] = {"none", "value", "app_error", "no_reply", "server_disappeared", "timed_out"};

enum op : int {
  op_make_channel,  // keep in step with op_names above and fuzz/make_seeds.py
  op_clone_client,
  op_move_client,
  op_drop_client,
  op_downgrade,
  op_clone_weak,
  op_drop_weak,
  op_upgrade,
  op_req_async,
  op_post,
  op_make_poster,
  op_drop_poster,
  op_try_wait,
  op_server_wait_zero,
  op_reply,
  op_fail,
  op_drop_ctx,
  op_move_ctx,
  op_drop_wait_reply,
  op_check_wait_reply,
  op_wait_reply_zero,
  op_await_wait_reply,
  op_areq,
  op_cancel_await,
  op_server_async_wait,
  op_server_async_cancel,
  op_drop_server,
  op_run_scheduled,
  op_arm_throw,
  op_count_
};

// ---------------------------------------------------------------------------------------
// One channel, its handles, and its model.
template <bool NG>
class chan {
  using F = flavor<NG>;
  using server_t = typename F::server_t;
  using client_t = typename F::client_t;
  using weak_t = typename F::weak_t;
  using poster_t = typename F::poster_t;
  using message_t = typename F::message_t;
  using ctx_t = ump::reply_context<counted, int>;
  using wait_reply_t = ump::wait_reply<counted, int>;

  static constexpr int n_clients = 4, n_posters = 2, n_weaks = 3, n_wrs = 6, n_ctxs = 6, n_tasks = 4;

  // --- model ---
  enum class phase : std::uint8_t { queued, taken, done, gone };
  enum class who : std::uint8_t { none, wait_reply, coroutine };
  struct record {
    bool is_post = false;
    int producer = 0;
    phase ph = phase::queued;
    outcome out;
    bool abandoned = false;  // the requester stopped waiting before the outcome was decided
    bool collected = false;  // the decided outcome has left the cell (taken or destroyed)
    who requester = who::none;
    bool deferred = false;  // its coroutine resumes through the deferred scheduler's queue
  };
  struct srv_rec {
    bool finished = false;
    std::optional<ump::result<message_t, int>> res;
  };
  struct await_slot {
    await_rec rec;
    task t;  // declared last: destroyed first, while `rec` is still there
  };

 public:
  explicit chan(std::uint64_t& ids) noexcept : ids_(ids) {}
  chan(const chan&) = delete;
  chan& operator=(const chan&) = delete;
  ~chan() = default;

  void make(std::uint8_t a) {
    teardown();
    ump::channel_options o;
    if (a & 1) o.waiting.spin = std::chrono::nanoseconds(0);
    if (a & 2) o.waiting.spin_before_yield = std::chrono::nanoseconds(0);
    auto [s, c] = F::make(o);
    srv_.emplace(std::move(s));
    clients_[0].emplace(std::move(c));
    client_prod_[0] = new_producer();
    strong_ = 1;
    server_alive_ = true;
    exists_ = true;
    verify();
  }

  void run(int code, std::uint8_t a, int armed) {
    if (tracing())
      std::fprintf(stderr, "%s %s(%u)%s\n", NG ? "ng   " : "plain", op_names[code], a, armed ? " armed" : "");
    if (code == op_make_channel) {
      make(a);
      return;
    }
    if (!exists_) return;
    const int s4 = a & 3, d4 = (a >> 2) & 3;
    switch (code) {
      case op_clone_client:
        clone_client(s4, d4);
        break;
      case op_move_client:
        move_client(s4, d4);
        break;
      case op_drop_client:
        drop_client(s4);
        break;
      case op_downgrade:
        downgrade(s4, ((a >> 2) & 3) % n_weaks);
        break;
      case op_clone_weak:
        clone_weak(s4 % n_weaks, d4 % n_weaks);
        break;
      case op_drop_weak:
        drop_weak(s4 % n_weaks);
        break;
      case op_upgrade:
        upgrade(s4 % n_weaks, d4);
        break;
      case op_req_async:
        req_async(s4, (a >> 2) % n_wrs, armed);
        break;
      case op_post:
        post(a, armed);
        break;
      case op_make_poster:
        make_poster(s4, d4 % n_posters);
        break;
      case op_drop_poster:
        drop_poster(s4 % n_posters);
        break;
      case op_try_wait:
        receive_now(0, a % n_ctxs, armed);
        break;
      case op_server_wait_zero:
        receive_now((a & 128) ? 2 : (a & 64) ? 3 : 1, (a & 7) % n_ctxs, armed);
        break;
      case op_reply:
        reply(a % n_ctxs, armed);
        break;
      case op_fail:
        fail_ctx((a & 7) % n_ctxs, a >> 3);
        break;
      case op_drop_ctx:
        drop_ctx(a % n_ctxs);
        break;
      case op_move_ctx:
        move_ctx((a & 7) % n_ctxs, (a >> 3) % n_ctxs);
        break;
      case op_drop_wait_reply:
        drop_wait_reply(a % n_wrs);
        break;
      case op_check_wait_reply:
        check_wait_reply(a % n_wrs, armed);
        break;
      case op_wait_reply_zero:
        wait_reply_zero((a & 7) % n_wrs, (a & 128) ? 2 : (a & 64) ? 3 : 1);
        break;
      case op_await_wait_reply:
        await_wait_reply((a & 7) % n_wrs, (a >> 3) % n_tasks, (a & 128) != 0);
        break;
      case op_areq:
        areq(s4, (a >> 2) % n_tasks, (a & 128) != 0);
        break;
      case op_cancel_await:
        cancel_task(a % n_tasks);
        break;
      case op_server_async_wait:
        server_async_wait((a & 1) != 0);
        break;
      case op_server_async_cancel:
        server_async_cancel();
        break;
      case op_drop_server:
        drop_server();
        break;
      case op_run_scheduled:
        run_scheduled();
        break;
      default:
        break;
    }
    settle();
    verify();
  }

  // Drops everything in a fixed order, checking as it goes; the model must end empty.
  void teardown() {
    if (!exists_) return;
    for (int t = 0; t < n_tasks; ++t) cancel_task(t);
    server_async_cancel();
    for (int k = 0; k < n_wrs; ++k) drop_wait_reply(k);
    for (int k = 0; k < n_ctxs; ++k) drop_ctx(k);
    for (int p = 0; p < n_posters; ++p) drop_poster(p);
    for (int c = 0; c < n_clients; ++c) drop_client(c);
    for (int w = 0; w < n_weaks; ++w) drop_weak(w);
    drop_server();
    verify();
    FUZZ_CHECK(sched_q_.empty(), "no destroyed coroutine is left in the scheduler's queue");
    FUZZ_CHECK(expected_live() == 0, "a torn-down channel holds no payload");
    FUZZ_CHECK(strong_ == 0, "every strong client was dropped");
    msgs_.clear();
    fifo_.clear();
    exists_ = false;
  }

  // Payload objects this channel must be holding right now.
  [[nodiscard]] long expected_live() const {
    long n = 0;
    for (const auto& [id, r] : msgs_) {
      if (r.ph == phase::queued) ++n;
      if (r.ph == phase::done && r.out.kind == out_kind::value && !r.collected && !r.abandoned) ++n;
    }
    return n;
  }

 private:
  // --- model helpers ---------------------------------------------------------------------
  // Every client object sends into the channel's one FIFO: the model keeps one queue.
  int new_producer() noexcept { return 0; }
  [[nodiscard]] std::size_t model_queued() const {
    std::size_t n = 0;
    for (const auto& [p, q] : fifo_) n += q.size();
    return n;
  }
  [[nodiscard]] int nonempty_fifos() const {
    int n = 0;
    for (const auto& [p, q] : fifo_) n += q.empty() ? 0 : 1;
    return n;
  }
  record& rec(std::uint64_t id) {
    auto it = msgs_.find(id);
    FUZZ_CHECK(it != msgs_.end(), "the model knows every message id it hands out");
    return it->second;
  }
  void enqueue(std::uint64_t id, bool is_post, int producer, who requester) {
    record r;
    r.is_post = is_post;
    r.producer = producer;
    r.requester = requester;
    msgs_.emplace(id, r);
    fifo_[producer].push_back(id);
  }
  // The outcome of request `id` is decided now.
  void decide(std::uint64_t id, outcome o) {
    record& r = rec(id);
    if (tracing()) {
      std::fprintf(stderr, "        request %llu: %s %llu%s\n", static_cast<unsigned long long>(id),
                   kind_names[static_cast<int>(o.kind)], static_cast<unsigned long long>(o.v),
                   r.abandoned ? " (requester gone)" : "");
    }
    FUZZ_CHECK(!r.is_post && r.ph != phase::done, "a request is decided once");
    r.ph = phase::done;
    r.out = o;
    // An inline-scheduled coroutine resumes (and takes the outcome) inside this very call.
    if (!r.abandoned && r.requester == who::coroutine && !r.deferred) r.collected = true;
  }
  // The requester lets go of request `id` (wait_reply dropped, timed out, coroutine destroyed).
  void let_go(std::uint64_t id) {
    record& r = rec(id);
    if (r.ph == phase::done) {
      r.collected = true;  // the decided outcome is destroyed with the handle
    } else {
      r.abandoned = true;
    }
    r.requester = who::none;
  }
  void drop_strong_model() {
    FUZZ_CHECK(strong_ > 0, "the model's strong count stays non-negative");
    --strong_;
  }
  // A message left the queue for the server: it must be the head of its sender's FIFO.
  std::uint64_t take_model(std::uint64_t id, bool is_post) {
    record& r = rec(id);
    if (tracing())
      std::fprintf(stderr, "        received %s %llu\n", is_post ? "post" : "request",
                   static_cast<unsigned long long>(id));
    FUZZ_CHECK(r.ph == phase::queued, "the server receives only queued messages, each once");
    FUZZ_CHECK(r.is_post == is_post, "a post arrives as a post, a request as a request");
    auto& q = fifo_[r.producer];
    FUZZ_CHECK(!q.empty() && q.front() == id, "messages arrive in send order, whichever client object sent them");
    q.pop_front();
    r.ph = is_post ? phase::gone : phase::taken;
    return id;
  }

  // --- clients ---------------------------------------------------------------------------
  void clone_client(int s, int d) {
    if (!clients_[s]) return;
    const bool had = clients_[d].has_value();
    if (had) {
      clients_[d] = *clients_[s];  // copy-assign (s == d: self-assignment)
    } else {
      clients_[d].emplace(*clients_[s]);
    }
    ++strong_;
    if (had) drop_strong_model();
    client_prod_[d] = new_producer();
  }
  void move_client(int s, int d) {
    if (!clients_[s] || s == d) return;
    if (clients_[d]) {
      *clients_[d] = std::move(*clients_[s]);
      drop_strong_model();
    } else {
      clients_[d].emplace(std::move(*clients_[s]));
    }
    clients_[s].reset();  // a moved-from client: its destructor does nothing
    client_prod_[d] = client_prod_[s];
  }
  void drop_client(int s) {
    if (!clients_[s]) return;
    clients_[s].reset();
    drop_strong_model();
  }
  void downgrade(int c, int w) {
    if (!clients_[c]) return;
    weaks_[w] = clients_[c]->weak();
  }
  void clone_weak(int s, int d) {
    if (!weaks_[s]) return;
    if (weaks_[d]) {
      *weaks_[d] = *weaks_[s];
    } else {
      weaks_[d].emplace(*weaks_[s]);
    }
  }
  void drop_weak(int w) { weaks_[w].reset(); }
  void upgrade(int w, int c) {
    if (!weaks_[w]) return;
    auto up = weaks_[w]->upgrade();
    FUZZ_CHECK(up.has_value() == (strong_ > 0), "upgrade() succeeds exactly while a strong client lives");
    if (!up) return;
    ++strong_;
    if (clients_[c]) {
      *clients_[c] = std::move(*up);
      drop_strong_model();
    } else {
      clients_[c].emplace(std::move(*up));
    }
    client_prod_[c] = new_producer();
  }
  void make_poster(int c, int p) {
    if constexpr (NG) {
      if (!clients_[c]) return;
      const bool had = posters_[p].has_value();
      if (had) {
        *posters_[p] = clients_[c]->poster();
      } else {
        posters_[p].emplace(clients_[c]->poster());
      }
      ++strong_;
      if (had) drop_strong_model();
      poster_prod_[p] = new_producer();
    } else {
      (void)c;
      (void)p;
    }
  }
  void drop_poster(int p) {
    if (!posters_[p]) return;
    posters_[p].reset();
    drop_strong_model();
  }

  // --- sending ---------------------------------------------------------------------------
  void req_async(int c, int k, int armed) {
    if (!clients_[c]) return;
    const std::uint64_t id = ids_++;
    // A countdown still running when the send wakes the server coroutine would fire inside it.
    if (srv_task_.valid()) armed = 0;
    (void)run_armed(armed, [&] {
      auto r = clients_[c]->req_async(counted(id));
      counted::disarm();
      if (!server_alive_) {
        FUZZ_CHECK(r.ready(), "a request sent after the server is gone has its outcome at once");
        auto out = r.wait();
        FUZZ_CHECK(!out && out.error().code() == ump::errc::server_disappeared,
                   "a request sent after the server is gone fails at once with server_disappeared");
        return;
      }
      FUZZ_CHECK(r.valid(), "req_async gives a wait_reply to collect while the server lives");
      enqueue(id, false, client_prod_[c], who::wait_reply);
      if (wrs_[k]) {
        let_go(wr_id_[k]);  // the assignment below abandons the old request
        *wrs_[k] = std::move(r);
      } else {
        wrs_[k].emplace(std::move(r));
      }
      wr_id_[k] = id;
    });
    // If the injected failure came out, nothing was sent: the model is unchanged.
  }

  void post(std::uint8_t a, int armed) {
    if constexpr (NG) {
      const bool via_poster = (a & 4) != 0;
      const int slot = via_poster ? (a & 1) : (a & 3);
      if (via_poster ? !posters_[slot] : !clients_[slot]) return;
      const std::uint64_t id = ids_++;
      if (srv_task_.valid()) armed = 0;  // as in req_async
      (void)run_armed(armed, [&] {
        auto r = via_poster ? posters_[slot]->post(counted(id)) : clients_[slot]->post(counted(id));
        counted::disarm();
        if (!server_alive_) {
          FUZZ_CHECK(!r && r.error().code() == ump::errc::server_disappeared,
                     "a post after the server is gone fails with server_disappeared");
          return;
        }
        FUZZ_CHECK(r.has_value(), "post succeeds while the server lives");
        enqueue(id, true, via_poster ? poster_prod_[slot] : client_prod_[slot], who::none);
      });
    } else {
      req_async(a & 3, (a >> 2) % n_wrs, armed);
    }
  }

  // --- receiving -------------------------------------------------------------------------
  // A message the server just received (by try_wait, wait_for or the server coroutine).
  void receive(message_t&& m, int k) {
    if constexpr (NG) {
      if (m.is_post()) {
        (void)take_model(m.post().value(), true);
        return;
      }
      auto& rq = m.req();
      store_ctx(std::move(rq.ctx), k, take_model(rq.msg.value(), false));
    } else {
      store_ctx(std::move(m.ctx), k, take_model(m.msg.value(), false));
    }
  }
  void store_ctx(ctx_t&& ctx, int k, std::uint64_t id) {
    FUZZ_CHECK(ctx.pending(), "a received request comes with a live reply context");
    if (ctxs_[k]) {
      decide(ctx_id_[k], {out_kind::no_reply, 0});
      *ctxs_[k] = std::move(ctx);  // the old context is destroyed unreplied: no_reply
    } else {
      ctxs_[k].emplace(std::move(ctx));
    }
    ctx_id_[k] = id;
  }
  int free_ctx_slot() const {
    for (int k = 0; k < n_ctxs; ++k)
      if (!ctxs_[k]) return k;
    return 0;
  }
  // The move failure came out of the server's receive: the head message is lost (a request
  // among them answers no_reply through its destroyed context).
  void lose_head() {
    for (auto& [p, q] : fifo_) {
      if (q.empty()) continue;
      const std::uint64_t id = q.front();
      const bool is_post = rec(id).is_post;
      (void)take_model(id, is_post);
      if (!is_post) decide(id, {out_kind::no_reply, 0});
      return;
    }
    ump_fuzz::fail("a receive threw while nothing was queued", __FILE__, __LINE__);
  }
  void check_nothing(ump::errc code) {
    if (code == ump::errc::clients_disappeared) {
      FUZZ_CHECK(model_queued() == 0 && strong_ == 0,
                 "clients_disappeared only when the queue is empty and no strong client is left");
    } else {
      FUZZ_CHECK(code == ump::errc::timed_out,
                 "a timed server wait fails only by timing out or with clients_disappeared");
      FUZZ_CHECK(model_queued() == 0 && strong_ > 0, "a server wait times out only with nothing to report");
    }
  }
  // how: 0 try_wait; a timed wait: 1 wait_for(0), 2 wait_until(time_point::min()) (plain
  // servers only; ng falls back to 1), 3 wait_for(1us) (spins and parks for at most that).
  // Nothing can arrive from another thread, so the outcome does not depend on timing.
  void receive_now(int how, int k, int armed) {
    if (!srv_ || srv_task_.valid()) return;  // the server is busy in its coroutine
    // Which message a failed receive loses is only known when one FIFO holds them all.
    const int arm = nonempty_fifos() <= 1 ? armed : 0;
    const bool threw = run_armed(arm, [&] {
      if (how != 0) {
        auto r = [&] {
          if constexpr (!NG) {
            if (how == 2) return srv_->wait_until(std::chrono::steady_clock::time_point::min());
          }
          if (how == 3) return srv_->wait_for(std::chrono::microseconds(1));
          return srv_->wait_for(std::chrono::nanoseconds(0));
        }();
        counted::disarm();
        if (!r) {
          check_nothing(r.error().code());
          return;
        }
        FUZZ_CHECK(model_queued() > 0, "a server wait returns a message only when one is queued");
        receive(std::move(*r), k);
      } else {
        auto r = srv_->try_wait();
        counted::disarm();
        if (!r) {
          FUZZ_CHECK(r.error().code() == ump::errc::clients_disappeared,
                     "try_wait fails only with clients_disappeared");
          check_nothing(r.error().code());
          return;
        }
        if (!*r) {
          FUZZ_CHECK(model_queued() == 0 && strong_ > 0,
                     "try_wait returns nothing only while the queue is empty and clients live");
          return;
        }
        FUZZ_CHECK(model_queued() > 0, "try_wait returns a message only when one is queued");
        receive(std::move(**r), k);
      }
    });
    if (threw) lose_head();
  }

  // --- replying --------------------------------------------------------------------------
  void reply(int k, int armed) {
    if (!ctxs_[k]) return;
    const std::uint64_t id = ctx_id_[k];
    const std::uint64_t v = ids_++;
    // A countdown still running when the reply resumes an awaiting coroutine would fire there.
    if (rec(id).requester == who::coroutine) armed = 0;
    const bool threw = run_armed(armed, [&] {
      auto r = ctxs_[k]->reply(counted(v));
      counted::disarm();
      FUZZ_CHECK(!ctxs_[k]->pending(), "reply() consumes the context");
      ctxs_[k].reset();
      if (rec(id).abandoned) {
        FUZZ_CHECK(!r && r.error().code() == ump::errc::origin_disappeared,
                   "reply() to a requester that stopped waiting returns origin_disappeared");
      } else {
        FUZZ_CHECK(r.has_value(), "reply() to a waiting requester succeeds");
      }
      decide(id, {out_kind::value, v});
    });
    if (threw) FUZZ_CHECK(ctxs_[k]->pending(), "a reply whose move threw leaves the context live");
  }
  void fail_ctx(int k, int e) {
    if (!ctxs_[k]) return;
    const std::uint64_t id = ctx_id_[k];
    auto r = ctxs_[k]->fail(e);
    ctxs_[k].reset();
    if (rec(id).abandoned) {
      FUZZ_CHECK(!r && r.error().code() == ump::errc::origin_disappeared,
                 "fail() to a requester that stopped waiting returns origin_disappeared");
    } else {
      FUZZ_CHECK(r.has_value(), "fail() to a waiting requester succeeds");
    }
    decide(id, {out_kind::app_error, static_cast<std::uint64_t>(e)});
  }
  void drop_ctx(int k) {
    if (!ctxs_[k]) return;
    ctxs_[k].reset();
    decide(ctx_id_[k], {out_kind::no_reply, 0});
  }
  void move_ctx(int s, int d) {
    if (!ctxs_[s] || s == d) return;
    if (ctxs_[d]) {
      decide(ctx_id_[d], {out_kind::no_reply, 0});
      *ctxs_[d] = std::move(*ctxs_[s]);
    } else {
      ctxs_[d].emplace(std::move(*ctxs_[s]));
    }
    FUZZ_CHECK(!ctxs_[s]->pending(), "a moved-from context owes nothing");
    ctxs_[s].reset();
    ctx_id_[d] = ctx_id_[s];
  }

  // --- collecting ------------------------------------------------------------------------
  void drop_wait_reply(int k) {
    if (!wrs_[k]) return;
    wrs_[k].reset();
    let_go(wr_id_[k]);
  }
  void check_wait_reply(int k, int armed) {
    if (!wrs_[k]) return;
    record& r = rec(wr_id_[k]);
    const bool ready = wrs_[k]->ready();
    FUZZ_CHECK(ready == (r.ph == phase::done), "wait_reply::ready() is true exactly once the outcome is decided");
    if (!ready) return;
    // Only a reply value has a payload whose move can fail.
    const bool threw = run_armed(r.out.kind == out_kind::value ? armed : 0, [&] {
      auto got = wrs_[k]->wait();
      counted::disarm();
      FUZZ_CHECK(to_outcome(got) == r.out, "wait() returns exactly the decided outcome");
    });
    FUZZ_CHECK(!wrs_[k]->valid(), "a collected wait_reply (or one whose collection threw) is spent");
    (void)threw;  // either way the outcome has left the cell
    r.collected = true;
    r.requester = who::none;
    wrs_[k].reset();
  }
  // A timed wait that cannot block: 1 wait_for(0), 2 wait_until(time_point::min()),
  // 3 wait_for(1us) (spins, then parks until the deadline: nobody else can reply).
  void wait_reply_zero(int k, int how) {
    if (!wrs_[k]) return;
    const std::uint64_t id = wr_id_[k];
    record& r = rec(id);
    auto got = how == 2   ? wrs_[k]->wait_until(std::chrono::steady_clock::time_point::min())
               : how == 3 ? wrs_[k]->wait_for(std::chrono::microseconds(1))
                          : wrs_[k]->wait_for(std::chrono::nanoseconds(0));
    FUZZ_CHECK(!wrs_[k]->valid(), "a timed wait spends the wait_reply whatever it returns");
    wrs_[k].reset();
    if (r.ph == phase::done) {
      FUZZ_CHECK(to_outcome(got) == r.out, "a timed wait returns a decided outcome at once");
      r.collected = true;
      r.requester = who::none;
    } else {
      FUZZ_CHECK(to_outcome(got).kind == out_kind::timed_out,
                 "a wait past its deadline on an undecided request times out");
      let_go(id);
    }
  }
  void await_wait_reply(int k, int t, bool deferred) {
    if (!wrs_[k]) return;
    cancel_task(t);
    const std::uint64_t id = wr_id_[k];
    record& r = rec(id);
    r.requester = who::coroutine;
    r.deferred = deferred;
    if (r.ph == phase::done) r.collected = true;  // await_ready: taken at once, never suspends
    tasks_[t].rec = await_rec{id, false, {}};
    if (deferred) {
      tasks_[t].t = await_reply(std::move(*wrs_[k]), ump_fuzz::deferred_scheduler(&sched_q_), &tasks_[t].rec);
    } else {
      tasks_[t].t = await_reply(std::move(*wrs_[k]), ump::inline_scheduler{}, &tasks_[t].rec);
    }
    wrs_[k].reset();
  }
  void areq(int c, int t, bool deferred) {
    if (!clients_[c]) return;
    cancel_task(t);
    const std::uint64_t id = ids_++;
    tasks_[t].rec = await_rec{server_alive_ ? id : 0, false, {}};
    if (server_alive_) {
      enqueue(id, false, client_prod_[c], who::coroutine);
      rec(id).deferred = deferred;
    }
    if (deferred) {
      tasks_[t].t = areq_task(&*clients_[c], id, ump_fuzz::deferred_scheduler(&sched_q_), &tasks_[t].rec);
    } else {
      tasks_[t].t = areq_task(&*clients_[c], id, ump::inline_scheduler{}, &tasks_[t].rec);
    }
  }
  // Destroys an awaiting coroutine wherever it is: suspended (its request is abandoned; if
  // the outcome already arrived and the coroutine waits in the scheduler's queue, the outcome
  // is destroyed with it) or finished.
  void cancel_task(int t) {
    auto& slot = tasks_[t];
    if (!slot.t.valid()) return;
    if (!slot.t.done()) {
      ump_fuzz::deferred_scheduler::forget(sched_q_, slot.t.handle());
      let_go(slot.rec.id);
    }
    slot.t.reset();
  }
  // Resumes every coroutine the deferred scheduler holds.
  void run_scheduled() {
    ump_fuzz::deferred_scheduler::run(sched_q_);
    for (auto& slot : tasks_) {
      if (!slot.t.valid() || !slot.t.done() || slot.rec.id == 0) continue;
      record& r = rec(slot.rec.id);
      if (r.ph == phase::done && r.deferred && !r.abandoned) r.collected = true;  // took it on resuming
    }
  }

  // --- the server ------------------------------------------------------------------------
  void server_async_wait(bool deferred) {
    if (!srv_ || srv_task_.valid()) return;
    srv_rec_.finished = false;
    srv_rec_.res.reset();
    if (deferred) {
      srv_task_ = server_task(&*srv_, ump_fuzz::deferred_scheduler(&sched_q_), &srv_rec_);
    } else {
      srv_task_ = server_task(&*srv_, ump::inline_scheduler{}, &srv_rec_);
    }
  }
  // Destroys a server coroutine that has not finished: parked (its waiter is withdrawn) or
  // already woken and waiting in the scheduler's queue.
  void server_async_cancel() {
    if (!srv_task_.valid() || srv_task_.done()) return;
    // Woken but not resumed yet: the message was taken for it on the waking thread, and its
    // destruction releases it (a request answers no_reply).
    const bool woken_with_message =
        ump_fuzz::deferred_scheduler::queued(sched_q_, srv_task_.handle()) && model_queued() > 0;
    ump_fuzz::deferred_scheduler::forget(sched_q_, srv_task_.handle());
    srv_task_.reset();
    if (woken_with_message) lose_head();
  }
  // 1 while a woken server coroutine waits in the deferred scheduler holding the head
  // message (taken for it by its waker), else 0.
  [[nodiscard]] std::size_t in_hand() const {
    return srv_task_.valid() && !srv_task_.done() &&
                   ump_fuzz::deferred_scheduler::queued(sched_q_, srv_task_.handle()) && model_queued() > 0
               ? 1
               : 0;
  }
  // Hands a finished server coroutine's result to the model.
  void settle() {
    if (!srv_task_.valid() || !srv_task_.done()) return;
    FUZZ_CHECK(srv_rec_.finished && srv_rec_.res.has_value(), "a finished server coroutine left its result");
    auto& res = *srv_rec_.res;
    if (res) {
      receive(std::move(*res), free_ctx_slot());
    } else {
      FUZZ_CHECK(res.error().code() == ump::errc::clients_disappeared,
                 "async_wait fails only with clients_disappeared");
      check_nothing(res.error().code());
    }
    srv_rec_.res.reset();
    srv_task_.reset();
  }
  void drop_server() {
    if (!srv_) return;
    server_async_cancel();
    settle();
    srv_.reset();
    server_alive_ = false;
    for (auto& [p, q] : fifo_) {
      for (std::uint64_t id : q) {
        record& r = rec(id);
        if (r.is_post) {
          r.ph = phase::gone;
        } else {
          r.ph = phase::taken;  // taken by the drain
          decide(id, {out_kind::server_disappeared, 0});
        }
      }
      q.clear();
    }
  }

  // --- the check after every operation -------------------------------------------------------
  void verify() {
    if (srv_) {
      // A woken server coroutine's message is taken already (server_awaiter takes it on the
      // waking thread), though the model still holds it until the coroutine runs.
      const std::size_t queued = model_queued() - in_hand();
      FUZZ_CHECK(srv_->queued() == queued, "server.queued() counts the queued messages");
      FUZZ_CHECK(srv_->empty() == (queued == 0), "server.empty() is true exactly when nothing is queued");
    }
    if (srv_task_.valid()) {
      FUZZ_CHECK(!srv_task_.done(), "a finished server coroutine is settled after each operation");
      if (ump_fuzz::deferred_scheduler::queued(sched_q_, srv_task_.handle())) {
        FUZZ_CHECK(model_queued() > 0 || strong_ == 0, "a server coroutine is woken only when there is news");
      } else {
        FUZZ_CHECK(model_queued() == 0 && strong_ > 0, "a server coroutine wakes as soon as there is news");
      }
    }
    for (int k = 0; k < n_ctxs; ++k) {
      if (!ctxs_[k]) continue;
      const record& r = rec(ctx_id_[k]);
      FUZZ_CHECK(ctxs_[k]->pending() && r.ph == phase::taken, "a held context owes its answer");
      FUZZ_CHECK(ctxs_[k]->requester_waiting() == !r.abandoned,
                 "requester_waiting() is false exactly once the requester stopped waiting");
    }
    for (int k = 0; k < n_wrs; ++k) {
      if (!wrs_[k]) continue;
      const record& r = rec(wr_id_[k]);
      FUZZ_CHECK(wrs_[k]->valid() && !r.abandoned && r.requester == who::wait_reply, "a held wait_reply is live");
      FUZZ_CHECK(wrs_[k]->ready() == (r.ph == phase::done),
                 "wait_reply::ready() is true exactly once the outcome is decided");
    }
    for (int t = 0; t < n_tasks; ++t) {
      const auto& slot = tasks_[t];
      if (!slot.t.valid()) continue;
      if (slot.rec.id == 0) {
        FUZZ_CHECK(slot.t.done() && slot.rec.finished && (slot.rec.got == outcome{out_kind::server_disappeared, 0}),
                   "areq on a gone server finishes at once with server_disappeared");
        continue;
      }
      const record& r = rec(slot.rec.id);
      const bool queued = ump_fuzz::deferred_scheduler::queued(sched_q_, slot.t.handle());
      if (r.ph == phase::done && r.deferred && !r.collected) {
        FUZZ_CHECK(!slot.t.done() && queued, "a decided coroutine on a deferred scheduler waits in its queue");
      } else if (r.ph == phase::done) {
        FUZZ_CHECK(slot.t.done() && slot.rec.finished,
                   "an awaiting coroutine resumes as soon as its outcome is decided");
        FUZZ_CHECK(slot.rec.got == r.out, "an awaiting coroutine receives exactly the decided outcome");
      } else {
        FUZZ_CHECK(!slot.t.done() && !slot.rec.finished && !queued,
                   "an awaiting coroutine stays suspended until its outcome");
      }
    }
  }

  std::uint64_t& ids_;
  bool exists_ = false;
  bool server_alive_ = false;
  int strong_ = 0;
  std::unordered_map<std::uint64_t, record> msgs_;
  std::map<int, std::deque<std::uint64_t>> fifo_;  // per client object (producer), in send order

  std::optional<server_t> srv_;
  std::array<std::optional<client_t>, n_clients> clients_{};
  std::array<int, n_clients> client_prod_{};
  std::array<std::optional<poster_t>, n_posters> posters_{};
  std::array<int, n_posters> poster_prod_{};
  std::array<std::optional<weak_t>, n_weaks> weaks_{};
  std::array<std::optional<wait_reply_t>, n_wrs> wrs_{};
  std::array<std::uint64_t, n_wrs> wr_id_{};
  std::array<std::optional<ctx_t>, n_ctxs> ctxs_{};
  std::array<std::uint64_t, n_ctxs> ctx_id_{};
  std::array<await_slot, n_tasks> tasks_{};
  srv_rec srv_rec_{};
  task srv_task_;                                     // after srv_rec_: destroyed first
  ump_fuzz::deferred_scheduler::queue_type sched_q_;  // coroutines woken on a deferred scheduler
};

struct world {
  std::uint64_t ids = 1;
  chan<true> ng{ids};
  chan<false> plain{ids};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FUZZ_CHECK(counted::live() == 0, "no payload survives from an earlier input");
  {
    world w;
    w.ng.make(0);
    w.plain.make(0);
    ump_fuzz::byte_reader in(data, size);
    int armed = 0;
    while (!in.done()) {
      const std::uint8_t b = in.next();
      const std::uint8_t a = in.next();
      const int code = (b >> 1) % op_count_;
      const int k = std::exchange(armed, 0);
      if (code == op_arm_throw) {
        armed = UMP_FUZZ_EXCEPTIONS ? 1 + a % 3 : 0;
        continue;
      }
      if (b & 1) {
        w.plain.run(code, a, k);
      } else {
        w.ng.run(code, a, k);
      }
      FUZZ_CHECK(counted::live() == w.ng.expected_live() + w.plain.expected_live(),
                 "every payload is destroyed exactly when the model says (no leak, no double free)");
    }
    w.ng.teardown();
    w.plain.teardown();
  }
  FUZZ_CHECK(counted::live() == 0, "every payload is destroyed once everything is dropped");
  return 0;
}
