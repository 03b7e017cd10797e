// ump/detail/state.hpp — the shared state behind one channel: queue, counters, cell pool.
//
// Internal. One heap object per channel(), shared by the server, every client, weak client,
// reply_context and wait_reply. It holds:
//   * ctl_: the server's word. Flags (closed, parked_thread, parked_async, no_clients) and a
//     wrapping count of announced messages. Every event the server may wait for changes ctl_
//     with one RMW, so the server parks on it with a futex and no wake is lost. The server
//     never writes the count: it keeps its own count of taken messages (next_, on its own
//     cache line), and the backlog is announced − taken. So per message ctl_ sees one RMW (the
//     sender's) and the server only reads it.
//   * strong_: number of strong clients. upgrade() is increment-if-not-zero; the drop to
//     zero sets no_clients in ctl_ (permanently: zero is never left again).
//   * two reference groups: the server (server group); every client and weak client, and
//     every node outside the shared pool (client group). A node's reference is what keeps
//     the state alive for the wait_reply and the reply_context of its request, so neither
//     takes one of its own: nodes are taken from the pool into a lane's send stock sixteen
//     at a time with one fetch_add, and the one that recycles a node drops its reference.
//     The stocks go back to the pool when the last strong client goes (no send can start
//     after that). A parked requester adds a pin for its replier's futex wake (cell.hpp).
//     The state is deleted when both groups have reached zero; each does so exactly once.
//   * the lanes (below), the cell pool and the moodycamel queue;
//   * for bounded channels, the send lock and under it the capacity accounting and the room
//     list (see "capacity" below).
//
// Lanes. A lane is one moodycamel producer with its own lock, node stock and, on the
// server's side, a small buffer of envelopes dequeued from it in bulk. A client object takes
// a lane on its first send (a free one, left by destroyed client objects; else a new one,
// up to max_lanes; else one shared with other client objects) and sends through it alone;
// the lock orders the sends through one lane. Lanes live as long as the channel, in a list
// that only grows, to max_lanes at most. A bounded channel has one lane,
// the channel's, which every send uses under the send lock (instead of the lane's lock).
//
// One FIFO. moodycamel orders each producer on its own, so the order across lanes comes from
// the announce: every send's fetch_add on ctl_ returns the count before it, its ticket,
// which travels with the message. The server hands messages out in ticket order: the next
// one is the message whose ticket equals its own count of taken messages, found at the head
// of one lane's buffer (each lane's tickets ascend). If one send happens-before another, its
// fetch_add comes first in ctl_'s modification order, so its ticket is smaller and the server
// takes it first, whatever client object, post_client or thread made either. A ticket that is
// announced and not enqueued yet (its sender is between the two) holds the server back until
// it shows up, as the announced-but-missing message always did.
//
// Send protocol (any client thread):       Receive protocol (server thread):
//   lock the lane                            next = the lane head whose ticket == next_ →
//   prev = ctl_.fetch_add(one)                 next_++ (refilling empty lane buffers first)
//   prev & closed → undo, fail               none, and backlog(ctl_) > 0 → spin until it shows
//   enqueue {message, ticket = prev}         backlog 0 and no_clients → clients_disappeared
//   unlock the lane                          else spin, then CAS parked flag in, futex wait
//   prev & parked → wake_server()
// Close (server destroyed): fetch_or(closed), then take and fail every announced message, in
// any order, until the backlog is empty. A sender whose fetch_add precedes closed is counted,
// so the drain waits for its message; a later sender sees closed. Either way the request gets
// exactly one outcome.
#pragma once

#include <atomic>  // std::memory_order
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "ump/detail/atomic.hpp"
#include "ump/detail/cell.hpp"
#include "ump/detail/config.hpp"
#include "ump/detail/park.hpp"
#include "ump/detail/queue.hpp"
#include "ump/detail/spin_lock.hpp"
#include "ump/options.hpp"

namespace ump::detail {

enum class poll_status : std::uint8_t { got, empty, no_clients, stopped };

// A stop request that a blocking take() watches (a std::stop_token, behind a function
// pointer so that this layer needs no <stop_token>). requested() must be an acquire read of
// a flag that the stopping side sets before it calls interrupt_server_thread().
struct stop_check {
  bool (*requested)(const void* ctx) noexcept;
  const void* ctx;
  [[nodiscard]] bool operator()() const noexcept { return requested(ctx); }
};

// A sender waiting for room in a full channel (channel_options::capacity). Lives in the
// waiting thread's frame or in a coroutine's awaiter; linked into the channel's room list
// under the send lock. Waiters get room in the order they were linked (FIFO): the granter
// pops them from the head. Whoever changes `status` does so under the send lock, and a
// waiting thread takes that lock once after it saw the change and before it returns, so
// `w` outlives the granter's wake.
struct room_waiter {
  enum : std::uint32_t {
    waiting = 0,    // linked, no room yet
    granted = 1,    // unlinked; one message's room is reserved for it (state_base::reserved_)
    closed = 2,     // unlinked: the server is gone
    cancelled = 3,  // unlinked by cancel_room_waiter() (a stop request, an adapter's cancel)
    timed_out = 4,  // unlinked by the waiting thread itself at its deadline
    parked = 5,     // linked, and its thread sleeps on `status` (settlers then wake it)
  };
  room_waiter* next = nullptr;
  bool linked = false;                    // in the room list (send lock)
  atomic<std::uint32_t> status{waiting};  // the futex word of a waiting thread
  async_waiter on_grant{};                // a coroutine's: called, lock released, instead of a wake
};

// One sender's way into the queue: a moodycamel producer, the lock that orders the sends
// through it, the node stock they draw from, and the server's buffer of what it dequeued
// from it and has not handed out yet. Used by one client object at a time while the channel
// has fewer than state_base::max_lanes lanes, shared by several beyond that (or, in a
// bounded channel, by the channel); kept in the channel's lane list until the channel dies.
struct lane {
  explicit lane(node_queue& q) : token(q) {}
  lane(const lane&) = delete;
  lane& operator=(const lane&) = delete;

  // Envelopes the server dequeues from one lane at a time.
  static constexpr std::uint8_t batch_size = 14;

  // What senders write. The lock is held for a whole send through a client object's lane;
  // in ThreadSanitizer builds the server's dequeues from the lane take it too (see
  // state_base::dequeue_bulk). A bounded channel's sends and dequeues take the channel's
  // send lock instead.
  alignas(cache_line_size) spin_lock lock;
  // Client objects that send through this lane (or 1 for a bounded channel's); 0: free.
  atomic<std::uint32_t> users{1};
  cell_base* stock = nullptr;  // free nodes, each with its reference; a list through next_ (lock)
  // Written once, before the lane is published, then read by senders and the server: on a
  // line of their own, so that the server's dequeues do not pull the line that every send
  // writes (the lock) away from the sender.
  alignas(cache_line_size) producer_token token;
  lane* next = nullptr;  // the channel's lane list
  // The server's: envelopes dequeued from this lane, not handed out yet, in ticket order.
  alignas(cache_line_size) std::uint8_t pos = 0;
  std::uint8_t len = 0;
  envelope buf[batch_size];
};

template <class M, class R, class E>
class server_core;
template <class M, class R, class E>
class client_core;

#if defined(UMP_MODEL_CHECK)
// Model-checking builds only (tests/model/): shared states alive right now, so that a
// scenario can check that the last reference really deleted its channel.
inline int model_live_states = 0;
#endif

class state_base {
 public:
  // ctl_ layout.
  static constexpr std::uint32_t closed = 1;
  static constexpr std::uint32_t parked_thread = 2;
  static constexpr std::uint32_t parked_async = 4;
  static constexpr std::uint32_t no_clients = 8;
  // An adapter withdrew the async waiter after a waker had claimed it (see
  // withdraw_server_waiter); cleared by whoever delivers to that waiter.
  static constexpr std::uint32_t withdrawing = 16;
  static constexpr std::uint32_t parked_any = parked_thread | parked_async;
  static constexpr std::uint32_t flag_mask = 31;
  static constexpr std::uint32_t one = 32;  // the announced count lives above the flags

  // Messages announced in `c` and not yet taken by the server. Server side (the server
  // thread, or a waker holding the async waiter's claim). Wrapping arithmetic: the backlog
  // is at most 2^27 - 1.
  [[nodiscard]] std::uint32_t backlog(std::uint32_t c) const noexcept { return backlog(c, next_); }
  // Messages announced in `c` and not among the `taken` (both counts in steps of `one`).
  [[nodiscard]] static std::uint32_t backlog(std::uint32_t c, std::uint32_t taken) noexcept {
    return ((c & ~flag_mask) - taken) / one;
  }

  explicit state_base(const channel_options& o);
  state_base(const state_base&) = delete;
  state_base& operator=(const state_base&) = delete;

  // --- reference groups ------------------------------------------------------------------
  enum group : std::uint8_t { client_group = 0, server_group = 1 };
  void add_ref(group g, std::uint32_t n = 1) noexcept {
    // ORDERING: relaxed; the caller already holds a reference in that group (or the state
    // is brand new), so the count cannot be zero concurrently.
    refs(g).fetch_add(n, std::memory_order_relaxed);
  }
  void release(group g, std::uint32_t n = 1) noexcept {
    // ORDERING: acq_rel; release publishes this holder's last writes, acquire (on the last
    // decrement) makes every other holder's writes visible before teardown. Pairs with the
    // other releases of the same group and with groups_'s decrement below.
    if (refs(g).fetch_sub(n, std::memory_order_acq_rel) == n) release_group();
  }

  // --- strong clients ----------------------------------------------------------------------
  void add_strong() noexcept {
    // ORDERING: relaxed; the caller holds a strong client, so strong_ > 0 already.
    strong_.fetch_add(1, std::memory_order_relaxed);
  }
  // increment-if-not-zero, for weak_client::upgrade().
  bool try_add_strong() noexcept {
    // ORDERING: relaxed; a first guess for the CAS below, which re-reads on failure.
    std::uint32_t s = strong_.load(std::memory_order_relaxed);
    do {
      if (s == 0) return false;
      // ORDERING: acquire on success pairs with drop_strong()'s release: not needed for data,
      // kept so an upgraded client sees what the previous holders published.
    } while (!strong_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed));
    return true;
  }
  void drop_strong() noexcept {
    // ORDERING: acq_rel; the last drop's release is paired with the server's acquire load of
    // ctl_ through the fetch_or below (the RMW carries this thread's earlier sends with it).
    if (strong_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      flush_stock();  // no send can start any more: the stock's nodes go back to the pool
      // ORDERING: acq_rel, pairs with the server's acquire load / park CAS of ctl_.
      const std::uint32_t prev = ctl_.fetch_or(no_clients, std::memory_order_acq_rel);
      if (prev & parked_any) wake_server();
    }
  }

  // --- sending (client side) ---------------------------------------------------------------
  // True for a channel with a capacity: its sends go through the channel's lane, under the
  // send lock, which also guards the capacity accounting and the room list.
  [[nodiscard]] bool bounded() const noexcept { return capacity_ != 0; }
  // The send lock (bounded channels): held by a sender from its room check to its enqueue.
  void lock_send() noexcept { send_lock_.lock(); }
  void unlock_send() noexcept { send_lock_.unlock(); }
  // The lane every send of a bounded channel uses (made with the channel).
  [[nodiscard]] lane& channel_lane() const noexcept {
    UMP_ASSERT(channel_lane_ != nullptr, "only a bounded channel has a channel lane");
    return *channel_lane_;
  }

  // A lane for a client object's sends: a free one (let go by destroyed client objects), else
  // a new one (published in the lane list before it is returned) while the channel has
  // fewer than max_lanes, else one shared with other client objects (taken in turn). Any
  // thread. Aborts naming the cause if memory runs out (a send's noexcept paths rely on it).
  lane& acquire_lane() noexcept;
  // The most lanes a channel makes. The server looks for the next ticket across the lanes,
  // so their number bounds the work per message; beyond it, client objects share lanes
  // (their sends then take turns on the lane's lock).
  static constexpr std::uint32_t max_lanes = 8;
  // How many lanes the channel has made (a probe, for tests: lanes are reused and shared, so
  // this is at most max_lanes).
  [[nodiscard]] std::size_t lane_count() const noexcept {
    std::size_t n = 0;
    // ORDERING: acquire, pairs with acquire_lane()'s release CAS.
    for (const lane* l = lanes_.load(std::memory_order_acquire); l != nullptr; l = l->next) ++n;
    return n;
  }
  // A client object that used `l` is done with it (its sends have all returned).
  void release_lane(lane& l) noexcept {
    // ORDERING: release, pairs with acquire_lane()'s acquire CAS: the next user of a freed
    // lane sees the last user's writes to it (its stock; the lane's lock orders them too).
    l.users.fetch_sub(1, std::memory_order_release);
  }

  enum class send_status : std::uint8_t { rejected, sent, sent_wake };
  // Effect: hands `c` to the server through lane `l`. The caller holds the lane's lock, or,
  // for a bounded channel (whose one lane it is), the send lock. Returns rejected if the server is gone (`c` was
  // not queued and still belongs to the caller), and sent_wake if the server was parked: the
  // caller must call wake_server() after unlocking. Never blocks.
  send_status send_on(lane& l, envelope c) noexcept {
    // No look at ctl_ before the fetch_add: with several senders its line is contended, and
    // a load first would cost a second transfer of the line. A send after close undoes.
    // ORDERING: acq_rel. Totally ordered with close()'s fetch_or(closed): either the drain
    // counts this message, or this sender sees `closed`. Acquire reads server_waiter_ if
    // parked_async is set (paired with register_server_waiter's release CAS).
    const std::uint32_t prev = ctl_.fetch_add(one, std::memory_order_acq_rel);
    if (prev & closed) {
      // ORDERING: relaxed; the drain only needs the count to come back down eventually.
      ctl_.fetch_sub(one, std::memory_order_relaxed);
      return send_status::rejected;
    }
    // The 2^27 - 1 backlog limit cannot be asserted here: taken_ read on this thread may
    // lag behind the server, so backlog(prev) may overstate.
    UMP_TEST_DELAY(send_after_announce);
    stamp(c, prev & ~flag_mask);
    // moodycamel's enqueue releases the element to the dequeuing consumer.
    if (!queue_.enqueue(l.token, c)) fatal("ump: out of memory while enqueueing a message");
    if (capacity_ != 0) sent_ += freed_one;  // the send lock is held in a bounded channel
    return (prev & parked_any) ? send_status::sent_wake : send_status::sent;
  }
  // The ticket a message travels with: for a node, in the envelope's spare bytes; for an
  // inline post, in the node word, tagged with its low bit (tickets are multiples of `one`,
  // nodes are cache-line aligned). The server strips the tag again (unstamp).
  static void stamp(envelope& e, std::uint32_t ticket) noexcept {
    if (e.node == nullptr) {
      e.node = reinterpret_cast<cell_base*>(static_cast<std::uintptr_t>(ticket) | 1u);
    } else {
      std::memcpy(e.bytes, &ticket, sizeof ticket);
    }
  }
  static std::uint32_t ticket_of(const envelope& e) noexcept {
    const auto word = reinterpret_cast<std::uintptr_t>(e.node);
    if ((word & 1u) != 0) return static_cast<std::uint32_t>(word & ~std::uintptr_t{1});
    std::uint32_t t;
    std::memcpy(&t, e.bytes, sizeof t);
    return t;
  }
  static void unstamp(envelope& e) noexcept {
    if ((reinterpret_cast<std::uintptr_t>(e.node) & 1u) != 0) e.node = nullptr;
  }
  void wake_server() noexcept;

  // --- capacity (channel_options::capacity; all of it is skipped when it is 0) --------------
  // Accounting, all under the send lock except the server's two words: sent_ counts the
  // messages announced, freed_ those that left the queue's count (handed to the server's
  // user, passed over because withdrawn, or failed at close), both in steps of freed_one.
  // The server stores freed_ after every message it hands out: a plain store on its own
  // line; senders read it only when their cached copy (known_freed_) says full. reserved_
  // counts room granted to waiters that have not sent yet.
  //
  // Waking the room list. room_flag_ is 1 while senders wait. The server reads it (relaxed)
  // after each store of freed_, and re-checks it with an RMW at each batch refill and
  // whenever it finds the queue empty (room_check); a sender that links the first waiter
  // raises it with an RMW and then reads freed_. The two RMWs on room_flag_ are ordered: if
  // the server's comes second it sees the flag; if first, the sender's read of freed_ sees
  // every count stored before it. So a waiter is never left waiting while the server idles.
  // To spare a lock and a wake-up per message when a fast sender keeps the channel full, the
  // server grants room once grant_chunk() messages have left since the last grant, or when
  // it finds the queue empty: a waiting sender is let in with that much room (FIFO order is
  // kept: newcomers queue behind it).
  static constexpr std::uint32_t freed_one = 2;

  // Send lock held: true if a sender may send now: nobody waiting ahead, and room left. A
  // sender that may wait (`exact` false) and finds the channel full by its cached count
  // goes ahead only if a whole grant's worth of room is free (grant_chunk), else it waits
  // to be let in with that much: a channel kept full then costs each sender one wait per
  // chunk instead of one fresh read of the server's count per message. try_ sends (`exact`)
  // take any room there is.
  [[nodiscard]] bool has_room_locked(bool exact = false) noexcept {
    if (capacity_ == 0) return true;
    if (room_head_ != nullptr) return false;
    if (room_left()) return true;
    refresh_freed();
    return exact ? room_left() : room_left(chunk_of(capacity_));
  }
  // Send lock held: the caller was granted room (room_waiter::granted) and now uses it.
  void take_reservation_locked() noexcept { --reserved_; }
  // Send lock held, has_room_locked() false: links `w` at the tail of the room list. Returns
  // true if `w` is settled at once: granted (room appeared meanwhile; it is reserved) or
  // closed (the server is gone). Else `w` waits: a thread in await_room(), a coroutine until
  // its on_grant is called.
  bool add_room_waiter_locked(room_waiter& w) noexcept;
  // Any thread, lock not held: waits (spin, then park) until `w` is settled, or `dl`.
  // Returns its final status (timed_out: unlinked here at the deadline).
  std::uint32_t await_room(room_waiter& w, deadline dl) noexcept;
  // Any thread, lock not held: unlinks `w` if it is still waiting (status cancelled; a
  // waiting thread is woken). Returns true if it did, false if `w` was settled already.
  bool cancel_room_waiter(room_waiter& w) noexcept;
  // Any thread: how many senders wait for room right now (a probe, for tests and stats).
  [[nodiscard]] std::size_t waiting_senders() noexcept {
    send_lock_.lock();
    std::size_t n = 0;
    for (const room_waiter* w = room_head_; w != nullptr; w = w->next) ++n;
    send_lock_.unlock();
    return n;
  }
  // Any thread, lock not held: hands the room that is free to the waiters at the head of the
  // room list, waking threads and calling coroutines' on_grant. With `if_free`, gives up
  // (returns false) if the send lock is held by someone else right now.
  bool grant_room(bool if_free = false) noexcept { return settle_room_waiters(room_waiter::granted, if_free); }

  // --- receiving (server side) ---------------------------------------------------------------
  // Non-blocking: a node if one was announced, else empty or no_clients. Server thread.
  // The queue is polled first: on the hot path the server never touches ctl_, so the
  // sender's fetch_add stays on a cache line the sender already owns. The common case (the
  // next message waits at the head of the lane the last one came from, in an unbounded
  // channel) is inline; the rest is try_take_slow(), out of line.
  poll_status try_take(envelope& out) noexcept {
    if (take_from_current_lane(out)) return poll_status::got;
    return try_take_slow(out);
  }
  // As try_take(), for a batch receive that stops at the first empty look: in an unbounded
  // channel that look is at the lanes only (a message still between its announce and its
  // enqueue is left for the next receive), so that draining a batch does not end with a
  // read of ctl_, the line every send writes.
  poll_status try_take_queued(envelope& out) noexcept {
    if (take_from_current_lane(out)) return poll_status::got;
    return try_take_slow(out, server_capacity_ != 0);
  }
  // Blocking (spin, then park). Returns empty only when `dl` passed, stopped only when
  // `stop` is given and says so (checked before each attempt, so a message is not taken
  // once stop was requested). The common case inline, as in try_take().
  poll_status take(envelope& out, deadline dl, const stop_check* stop = nullptr) noexcept {
    if (stop == nullptr && take_from_current_lane(out)) return poll_status::got;
    return take_slow(out, dl, stop);
  }
  // Called by whoever requests the stop that a blocked take() watches, after setting it:
  // wakes the server thread if it is parked. Any thread; never blocks.
  void interrupt_server_thread() noexcept;

  // For the async server: registers `w` and sets parked_async if ctl_ still equals `idle`
  // (no message, no flag). Returns false if ctl_ changed: re-check with try_take.
  bool register_server_waiter(async_waiter w, std::uint32_t idle) noexcept {
    server_waiter_ = w;
    // ORDERING: release on success publishes server_waiter_ to the waker's acquire RMW.
    return ctl_.compare_exchange_strong(idle, idle | parked_async, std::memory_order_acq_rel,
                                        std::memory_order_acquire);
  }
  // For a destroyed async server waiter: clears parked_async. Returns false if a waker has
  // already claimed the wake (it will call the waiter).
  bool unregister_server_waiter() noexcept {
    // ORDERING: acq_rel, ordered against the waker's claim in wake_server().
    return (ctl_.fetch_and(~parked_async, std::memory_order_acq_rel) & parked_async) != 0;
  }
  // For an adapter cancelling a registered async server waiter. Returns true if the waiter
  // was still registered: it is withdrawn, nothing will call it. Returns false if a waker
  // has claimed it: the flag `withdrawing` is set instead, in the same RMW, so that a waker
  // about to register the waiter again (a stale claim, see server_awaiter) fails its CAS,
  // sees the flag and delivers the waiter at once rather than leaving it registered.
  bool withdraw_server_waiter() noexcept {
    // ORDERING: relaxed; the CAS below decides.
    std::uint32_t c = ctl_.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint32_t next = (c & parked_async) ? (c & ~parked_async) : (c | withdrawing);
      // ORDERING: acq_rel, ordered against the waker's claim (wake_server) and its
      // registering CAS (register_server_waiter).
      if (ctl_.compare_exchange_weak(c, next, std::memory_order_acq_rel, std::memory_order_relaxed))
        return (c & parked_async) != 0;
    }
  }
  // Clears `withdrawing` (the delivery it asked for has been made). Server side.
  void clear_withdrawing() noexcept {
    // ORDERING: relaxed; only the server side sets or clears it while it owns the waiter, and
    // the CAS in withdraw_server_waiter() re-reads the word.
    ctl_.fetch_and(~withdrawing, std::memory_order_relaxed);
  }
  // Server side (the server thread, or a waker holding the async waiter's claim): true if
  // the server has something to take in `c` (a loaded ctl_: the backlog counts what sits in
  // the lanes' buffers too), or if the clients are gone.
  [[nodiscard]] bool has_news(std::uint32_t c) const noexcept { return backlog(c) > 0 || (c & no_clients) != 0; }
  [[nodiscard]] std::uint32_t load_ctl() const noexcept {
    // ORDERING: acquire, as in try_take().
    return ctl_.load(std::memory_order_acquire);
  }

  // A requester withdrew the request in `c` (cell.hpp, begin_withdraw): destroys its message.
  // Called by the withdrawing side only, once.
  virtual void discard_message(cell_base* c) noexcept = 0;

  // Marks the server gone and fails every queued message. Called once, by the server.
  void close() noexcept;

  // Server thread: true when no message is announced and not taken yet.
  [[nodiscard]] bool empty() const noexcept { return queued() == 0; }
  [[nodiscard]] std::uint32_t queued() const noexcept {
    // ORDERING: relaxed (both); a count, not a hand-over: the server takes a message only
    // after an acquire load of ctl_ (try_take, take) or the dequeue's own acquire. taken_
    // is the server's count as a probe from any thread may read it.
    return backlog(ctl_.load(std::memory_order_relaxed), taken_.load(std::memory_order_relaxed));
  }

  // --- pool ------------------------------------------------------------------------------
  // Returns a node to the shared pool and drops the reference it held. Last use of the
  // state by the caller: that reference may have been the last one.
  void recycle(cell_base* c) noexcept {
    pool_.push(c);
    release(client_group);
  }
  [[nodiscard]] const wait_options& wait_opts() const noexcept { return opts_; }

 protected:
  virtual ~state_base();
  // The server's claim on a request it takes (cell.hpp): true to deliver it; false for a
  // withdrawn one, which is passed over (and recycled here if its requester is done with it).
  bool claim_request(cell_base* c) noexcept {
    const claim_result r = c->claim();
    if (r == claim_result::deliver) return true;
    if (r == claim_result::skip_and_recycle) recycle(c);
    return false;
  }
  // Server gone: destroys the node's message and tells its requester server_disappeared.
  // (Inline posts are trivially destructible: close() just drops them.)
  virtual void fail_queued(cell_base* c) noexcept = 0;
  // A free node from the shared pool, now holding its reference; nullptr if the pool is empty.
  cell_base* pop_free() noexcept {
    cell_base* c = pool_.try_pop();
    if (c != nullptr) add_ref(client_group);
    return c;
  }
  // A free node for a sender holding lane `l`'s lock (bounded: the send lock): from the
  // lane's stock, which is refilled from the shared pool a batch at a time, so that busy
  // senders touch the pool's head once per batch. nullptr if the pool is empty too.
  cell_base* pop_stock(lane& l) noexcept {
    if (l.stock == nullptr) {
      std::uint32_t got = 0;
      for (; got < stock_batch; ++got) {
        cell_base* c = pool_.try_pop();
        if (c == nullptr) break;
        push_stock(l, c);
      }
      if (got == 0) return nullptr;
      add_ref(client_group, got);  // one reference per node, taken in one step
    }
    cell_base* c = l.stock;
    // ORDERING: relaxed; the stock is guarded by the lane's lock.
    l.stock = c->next_.load(std::memory_order_relaxed);
    return c;
  }

 public:
  // Gives a node back to lane `l`'s stock (its lock, or the send lock, held); used when a
  // send does not go ahead.
  static void push_stock(lane& l, cell_base* c) noexcept {
    // ORDERING: relaxed; the stock is guarded by the lane's lock.
    c->next_.store(l.stock, std::memory_order_relaxed);
    l.stock = c;
  }

 protected:
  // ORDERING: relaxed; a statistic, read by the destructor's leak check, which the last
  // reference's acq_rel release (release_group) orders after every allocation.
  void count_allocation() noexcept { allocated_.fetch_add(1, std::memory_order_relaxed); }
  // ORDERING: relaxed; see count_allocation().
  [[nodiscard]] std::size_t allocated() const noexcept { return allocated_.load(std::memory_order_relaxed); }

 private:
  atomic<std::uint32_t>& refs(group g) noexcept { return g == client_group ? client_refs_ : server_refs_; }
  void release_group() noexcept;
  // The fast path of try_take(), try_take_queued() and take(): true if it handed out the
  // next message in ticket order from the head of cur_'s buffer. False if that message is
  // elsewhere (nothing taken), the channel is bounded (nothing taken: try_take_slow() keeps
  // the room count), or the message was a withdrawn request (taken and passed over: the
  // caller goes on with try_take_slow()).
  bool take_from_current_lane(envelope& out) noexcept {
    lane* const h = cur_;
    if (h == nullptr || server_capacity_ != 0 || !next_at_head(*h)) return false;
    out = h->buf[h->pos++];
    return hand_out(out);
  }
  // True if lane `h`'s buffer holds the next message in ticket order at its head.
  bool next_at_head(const lane& h) const noexcept { return h.pos != h.len && ticket_of(h.buf[h.pos]) == next_; }
  // A message just taken in ticket order: counts it; true to deliver it, false for a
  // withdrawn request (passed over).
  bool hand_out(envelope& out) noexcept {
    unstamp(out);
    note_taken();
    if (out.node == nullptr || out.node->is_post_) {
      if (posts_in_a_row_ < 2) ++posts_in_a_row_;
      return true;
    }
    posts_in_a_row_ = 0;
    return claim_request(out.node);
  }
  // The rest of try_take(). With `look_at_ctl` false (take_slow's first look, a batch's
  // later ones), returns empty without reading ctl_ when every lane is empty (lanes new
  // since the last look included): no send has completed that was not taken, so "empty" is
  // a true answer; a message still between its announce and its enqueue is found by the
  // next look.
  poll_status try_take_slow(envelope& out, bool look_at_ctl = true) noexcept;
  // take()'s wait: a lanes-only look, a pause after a run of posts (below), then spin and
  // park, with full looks in between and before it reports a passed deadline.
  poll_status take_slow(envelope& out, deadline dl, const stop_check* stop) noexcept;
  // Pacing a stream of posts. A server that has just handed out two or more posts in a row
  // (no request among them) and finds its lanes empty is keeping up with senders that post
  // as fast as they can. Were it to look again at once, it would take them one at a time,
  // and each look reads the lines every send writes (the producer's indexes), stealing them
  // from the senders once per message. So it pauses for stream_pause before its next look,
  // and then takes what gathered as a batch. Only after posts: a request's sender waits for
  // the reply, and the server never delays a look after handing out a request (round trips,
  // the gap sweep and coroutine servers are untouched). Cost: a post arriving within that
  // pause is handed out up to stream_pause later. BENCHMARKS.md has the measurements.
  static constexpr std::chrono::nanoseconds stream_pause{1000};
  void pause_for_stream() noexcept;
  // The next message in ticket order, if it is in a lane already: the head of the lane the
  // last one came from, else of another lane (each lane's buffer refilled when empty). With
  // `new_lanes`, lanes added since the server last read the list are searched too (see
  // scan_lanes). Server side. Counts nothing: the caller does (hand_out).
  bool pick(envelope& out, bool new_lanes) noexcept {
    const auto take_next = [&](lane& h) noexcept {
      if (!next_at_head(h)) return false;
      cur_ = &h;
      out = h.buf[h.pos++];
      return true;
    };
    if (cur_ != nullptr && take_next(*cur_)) return true;
    return scan_lanes(new_lanes, take_next);
  }
  // Any buffered or queued message, whatever its ticket (close() drains in any order).
  bool take_any(envelope& out) noexcept {
    return scan_lanes(true, [&](lane& h) noexcept {
      out = h.buf[h.pos++];
      return true;
    });
  }
  // True if some lane the server knows holds a buffered message. Server side.
  bool any_buffered() const noexcept {
    for (const lane* l = known_lanes_; l != nullptr; l = l->next)
      if (l->pos != l->len) return true;
    return false;
  }
  // True if some lane holds a message (buffered, or dequeued now). Server side.
  bool any_ready() noexcept {
    return scan_lanes(true, [](lane&) noexcept { return true; });
  }
  // Calls `f` on each lane with a message at the head of its buffer (refilling empty buffers
  // first) until `f` returns true; returns whether it did. The lanes the server knows of come
  // first. With `new_lanes`, if none of them had what `f` wanted, the list is read again and
  // the lanes added since are searched too. try_take() reads the list only once ctl_ says a
  // message is due, so on the hot path the server reads no shared word here. Server side.
  template <class F>
  bool scan_lanes(bool new_lanes, F&& f) noexcept {
    for (lane* l = known_lanes_; l != nullptr; l = l->next)
      if ((l->pos != l->len || refill(*l)) && f(*l)) return true;
    if (!new_lanes) return false;
    // ORDERING: acquire, pairs with acquire_lane()'s release CAS: a listed lane is complete.
    lane* const head = lanes_.load(std::memory_order_acquire);
    lane* const known = std::exchange(known_lanes_, head);
    // Lanes are pushed at the head: the new ones are those before the known head.
    for (lane* l = head; l != known; l = l->next)
      if ((l->pos != l->len || refill(*l)) && f(*l)) return true;
    return false;
  }
  // Dequeues up to lane::batch_size envelopes of `l` into its buffer (empty on entry).
  bool refill(lane& l) noexcept {
    const std::size_t n = dequeue_bulk(l, l.buf, lane::batch_size);
    l.pos = 0;
    l.len = static_cast<std::uint8_t>(n);
    return n != 0;
  }
  // Server side, bounded channels: one message left the queue's count. Grants room to the
  // waiting senders once enough has gone (see "capacity" above).
  void note_freed() noexcept {
    // ORDERING: relaxed (load: only the server writes freed_); relaxed store: a count that
    // senders read as a hint, ordered with their waits by room_flag_ (see room_check).
    freed_.store(freed_.load(std::memory_order_relaxed) + freed_one, std::memory_order_relaxed);
    // ORDERING: relaxed; a hint, re-checked with an RMW in room_check(). A grant that finds
    // the send lock busy is retried at the next message (the count stays due).
    if (room_flag_.load(std::memory_order_relaxed) == 0) return;
    if (frees_since_grant_ < 255) ++frees_since_grant_;
    if (frees_since_grant_ >= grant_chunk() && grant_room(true)) frees_since_grant_ = 0;
  }
  // Server side, bounded channels: the sure check of room_flag_, at each batch refill (idle
  // false) and when the queue is found empty (idle true: grant whatever room there is).
  void room_check(bool idle) noexcept {
    // ORDERING: acq_rel, ordered with add_room_waiter_locked()'s RMW on room_flag_ (see
    // "capacity" above); release carries the freed_ stores before it.
    if (room_flag_.fetch_add(0, std::memory_order_acq_rel) == 0) return;
    if (!idle && frees_since_grant_ < grant_chunk()) return;
    // Busy senders may hold the send lock: the server does not wait for it unless it is
    // about to idle (then it must grant: nothing else will).
    if (grant_room(!idle)) frees_since_grant_ = 0;
  }
  [[nodiscard]] std::uint32_t grant_chunk() const noexcept { return chunk_of(server_capacity_); }
  // A quarter of the capacity, at least 1, at most 128 (frees_since_grant_ counts to 255).
  static std::uint32_t chunk_of(std::uint32_t capacity) noexcept {
    const std::uint32_t quarter = capacity / 4;
    return quarter == 0 ? 1 : (quarter < 128 ? quarter : 128);
  }
  // Send lock held: at least `n` messages' room is free, as far as known_freed_ tells.
  [[nodiscard]] bool room_left(std::uint32_t n = 1) const noexcept {
    return (sent_ - known_freed_) / freed_one + reserved_ + n <= capacity_;
  }
  void refresh_freed() noexcept {
    // ORDERING: relaxed; a count only (stale is conservative: less room). Messages travel
    // through the queue, and a waiter that finds no room orders itself with the server
    // through room_flag_ (see "capacity" above).
    known_freed_ = freed_.load(std::memory_order_relaxed);
  }
  // Send lock held: settles waiters at the head as `to`: granted while there is room (each
  // reserves it), or closed (all of them, at close()). Up to `max` coroutine waiters are
  // returned in `out` (their on_grant to be called once the lock is released).
  std::size_t settle_heads_locked(std::uint32_t to, async_waiter* out, std::size_t max) noexcept;
  // settle_heads_locked() in rounds, calling the coroutines' on_grant between them with the
  // lock released. With `if_free`, gives up (false) if the lock is held by someone else.
  bool settle_room_waiters(std::uint32_t to, bool if_free) noexcept;
  // Send lock held: unlinks `w` from the room list.
  void unlink_room_waiter(room_waiter& w) noexcept;
  void note_taken() noexcept {
    next_ += one;
    // ORDERING: relaxed; a copy of next_ for probes from other threads (queued()).
    taken_.store(next_, std::memory_order_relaxed);
  }
  // The server's way out of the queue: from one lane's producer.
  //
  // ThreadSanitizer does not model standalone fences, and moodycamel orders the reuse of a
  // block that the consumer emptied with fences; TSan would report that reuse as a race,
  // inside the queue, in any program built with it. So in TSan builds (UMP_TSAN: the
  // program's own -fsanitize=thread compiles ump's headers) the server dequeues holding the
  // lock its senders hold (the lane's; a bounded channel's send lock), which gives TSan the
  // edge the fences provide (an explicit producer reuses only its own blocks). Ordinary
  // builds take no lock here: the consumer side stays lock-free.
  std::size_t dequeue_bulk(lane& l, envelope* out, std::size_t max) noexcept {
#if UMP_TSAN
    spin_lock& held = bounded() ? send_lock_ : l.lock;  // what this lane's senders hold
    held.lock();
    const std::size_t n = queue_.try_dequeue_bulk_from_producer(l.token, out, max);
    held.unlock();
    return n;
#else
    return queue_.try_dequeue_bulk_from_producer(l.token, out, max);
#endif
  }
  // The last strong client is gone: every lane's stock goes back to the pool. No lane lock
  // is needed: every send was made by a strong client before its drop, and drop_strong()'s
  // acq_rel RMWs on strong_ order all of those drops before this one.
  void flush_stock() noexcept {
    std::uint32_t n = 0;
    // ORDERING: acquire, pairs with acquire_lane()'s release CAS (every lane a client object
    // made is listed: its maker's strong drop came before ours in strong_'s RMW chain).
    for (lane* l = lanes_.load(std::memory_order_acquire); l != nullptr; l = l->next) {
      while (cell_base* c = l->stock) {
        // ORDERING: relaxed; no sender is left (see above).
        l->stock = c->next_.load(std::memory_order_relaxed);
        pool_.push(c);
        ++n;
      }
    }
    if (n != 0) release(client_group, n);
  }
  void wait_for_announced() noexcept;  // a sender is between announce and enqueue
  static bool poll_for_server(void* self) noexcept;

  // The layout groups fields by who writes them, one group per cache line or run of lines,
  // and keeps an idle channel under 1 KiB (BENCHMARKS.md, "Many channels").
  // Every sender's announce and the server's park: the control word.
  alignas(cache_line_size) atomic<std::uint32_t> ctl_{0};
  async_waiter server_waiter_{};
  // The server's own: its count of taken messages (the next ticket to hand out), the lane
  // the last message came from, its wait history, and the server group's references (taken
  // and dropped by reply contexts, mostly on the server's thread).
  alignas(cache_line_size) std::uint32_t next_ = 0;  // messages taken (times `one`): the next ticket
  atomic<std::uint32_t> taken_{0};                   // next_, for probes from any thread
  lane* cur_ = nullptr;                              // the lane the last message came from
  lane* known_lanes_ = nullptr;                      // the head of the lane list when the server last read it
  wait_history waits_;                               // the server's recent waits for a message (server thread only)
  std::uint8_t frees_since_grant_ = 0;               // see "capacity" above
  std::uint8_t posts_in_a_row_ = 0;                  // posts handed out since a request or an empty look, up to 2
  atomic<std::uint32_t> freed_{0};                   // see "capacity" above
  atomic<std::uint32_t> server_refs_{1};             // the server
  // When the last waker of the parked server thread woke it (steady clock ticks); written
  // by wakers, read by the server for wait_history.
  atomic<clock::rep> woke_at_{0};
  std::uint32_t server_capacity_;       // capacity_, on the server's own line
  atomic<std::uint32_t> room_flag_{0};  // 1 while senders wait for room (see "capacity" above)
  // Client objects' references and the node pool: a recycled node is pushed to the pool
  // and drops its client-group reference in the same breath.
  alignas(cache_line_size) atomic<std::uint32_t> client_refs_{1};  // the first client
  atomic<std::uint32_t> strong_{1};
  atomic<std::uint32_t> groups_{2};
  std::atomic<std::size_t> allocated_{0};
  node_pool pool_;
  // Read-mostly after construction: the waiting options, the queue object and the lane list
  // (it grows by a lane per client object that sends, and the server reads it on every
  // lane switch), so they must not share a line that every send writes.
  alignas(cache_line_size) wait_options opts_;
  node_queue queue_{0};                             // no blocks, and no producers, until the first send
  atomic<lane*> lanes_{nullptr};                    // a push-only list, linked through lane::next
  atomic<std::uint32_t> lanes_made_{0};             // lanes made or being made (at most max_lanes)
  atomic<std::uint32_t> next_shared_{0};            // whose turn it is to take a new sharer
  lane* channel_lane_ = nullptr;                    // bounded channels: the one lane
  static constexpr std::uint32_t stock_batch = 16;  // nodes taken from the pool per refill
  // Bounded channels: the send lock, and under it the capacity accounting and the room list
  // (see "capacity" above).
  alignas(cache_line_size) spin_lock send_lock_;
  std::uint32_t capacity_;
  std::uint32_t sent_ = 0;
  std::uint32_t known_freed_ = 0;
  std::uint32_t reserved_ = 0;
  room_waiter* room_head_ = nullptr;
  room_waiter* room_tail_ = nullptr;

#if !defined(UMP_MODEL_CHECK)
  // ctl_ is the server's futex word; the counts are changed from any thread, including
  // from destructors and a coroutine's resumption: none of them may hide a lock.
  static_assert(decltype(ctl_)::is_always_lock_free && decltype(taken_)::is_always_lock_free &&
                    decltype(server_refs_)::is_always_lock_free && decltype(woke_at_)::is_always_lock_free &&
                    decltype(client_refs_)::is_always_lock_free && decltype(strong_)::is_always_lock_free &&
                    decltype(groups_)::is_always_lock_free && decltype(allocated_)::is_always_lock_free &&
                    decltype(freed_)::is_always_lock_free && decltype(room_flag_)::is_always_lock_free &&
                    decltype(lanes_)::is_always_lock_free && decltype(lanes_made_)::is_always_lock_free,
                "the shared state's control word and counts are lock-free atomics");
#endif
};

#if !defined(UMP_MODEL_CHECK)
static_assert(sizeof(state_base) <= 11 * cache_line_size,
              "an idle channel's shared state stays within eleven cache lines (under 1 KiB)");
#endif

}  // namespace ump::detail
