// Shared-state slow paths: the server's blocking take, close/drain, waking (see state.hpp).
#include "ump/detail/state.hpp"

#include <new>
#include <thread>
#include <utility>

namespace ump::detail {

state_base::state_base(const channel_options& o)
    : server_capacity_(o.capacity), opts_(o.waiting), capacity_(o.capacity) {
  UMP_CHECK(o.capacity < (1u << 27), "channel_options::capacity is at most 2^27 - 1");
  if (opts_.spin_before_yield > opts_.spin) opts_.spin_before_yield = opts_.spin;
  if (capacity_ != 0) channel_lane_ = &acquire_lane();
#if defined(UMP_MODEL_CHECK)
  ++model_live_states;
#endif
}

state_base::~state_base() {
  // Before queue_ goes: each lane's token hands its producer back to the queue.
  // ORDERING: relaxed; the last reference's acq_rel release (release_group) ordered every
  // other thread's use of the lanes before this.
  lane* l = lanes_.load(std::memory_order_relaxed);
  while (l != nullptr) {
    UMP_ASSERT(l->stock == nullptr, "every lane's stock returns to the pool before the channel dies");
    delete std::exchange(l, l->next);
  }
#if defined(UMP_MODEL_CHECK)
  --model_live_states;
#endif
}

lane& state_base::acquire_lane() noexcept {
  for (;;) {
    // A free lane, if there is one.
    // ORDERING: acquire, pairs with the release CAS below: a listed lane is complete.
    lane* const head = lanes_.load(std::memory_order_acquire);
    std::uint32_t listed = 0;
    for (lane* l = head; l != nullptr; l = l->next, ++listed) {
      std::uint32_t none = 0;
      // ORDERING: relaxed look, then an acquire CAS, pairing with release_lane()'s release
      // RMW: the new user sees the last user's writes to the lane.
      if (l->users.load(std::memory_order_relaxed) == 0 &&
          l->users.compare_exchange_strong(none, 1, std::memory_order_acquire, std::memory_order_relaxed))
        return *l;
    }
    // A new lane, while there are fewer than max_lanes.
    // ORDERING: relaxed; a count that only caps how many lanes are made.
    std::uint32_t made = lanes_made_.load(std::memory_order_relaxed);
    while (made < max_lanes) {
      // ORDERING: relaxed, as above.
      if (lanes_made_.compare_exchange_weak(made, made + 1, std::memory_order_relaxed, std::memory_order_relaxed)) {
        auto* l = new (std::nothrow) lane(queue_);
        // A producer token without a producer: moodycamel could not allocate one.
        if (l == nullptr || !l->token.valid()) fatal("ump: out of memory while adding a sender to a channel");
        // ORDERING: relaxed; a first guess of the head, which the CAS below checks.
        l->next = lanes_.load(std::memory_order_relaxed);
        // ORDERING: release on success, pairs with the acquire loads of lanes_ (server,
        // senders): they see the lane complete. Relaxed on failure: the retry only relinks.
        while (!lanes_.compare_exchange_weak(l->next, l, std::memory_order_release, std::memory_order_relaxed)) {
        }
        return *l;
      }
    }
    // Every lane is made and in use: share one, taking them in turn. (A lane being made by
    // another thread may not be listed yet; with none listed, look again.)
    if (listed != 0) {
      // ORDERING: relaxed; only spreads sharers over the lanes.
      std::uint32_t k = next_shared_.fetch_add(1, std::memory_order_relaxed) % listed;
      lane* l = head;
      while (k-- != 0) l = l->next;
      // ORDERING: relaxed; the lane's lock orders the sharers' use of it.
      l->users.fetch_add(1, std::memory_order_relaxed);
      return *l;
    }
    std::this_thread::yield();
  }
}

void state_base::release_group() noexcept {
  // ORDERING: acq_rel; the second group to finish sees everything the first one did.
  if (groups_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void state_base::wait_for_announced() noexcept {
#if defined(UMP_MODEL_CHECK)
  // Model checking: each wait is one scheduling point. (The per-thread counter below would
  // make Relacy's executions depend on earlier ones.)
  cpu_relax();
#else
  // A sender has counted its message but not enqueued it yet: a window of a few dozen
  // instructions, unless that thread was preempted inside it. Pause first, then yield so a
  // preempted sender on our core can finish.
  static thread_local unsigned spins = 0;
  if (++spins < 128) {
    cpu_relax();
  } else {
    spins = 0;
    std::this_thread::yield();
  }
#endif
}

void state_base::wake_server() noexcept {
  // Claim the wake: exactly one waker sees a parked flag it clears.
  // ORDERING: acq_rel; acquire reads server_waiter_ (published by register_server_waiter's
  // release CAS, carried through the RMW chain on ctl_).
  const std::uint32_t prev = ctl_.fetch_and(~parked_any, std::memory_order_acq_rel);
  UMP_TEST_DELAY(wake_before_notify);
  if (prev & parked_thread) {
    // ORDERING: relaxed; a hint for the server's wait_history only.
    woke_at_.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    unpark_all(ctl_);
  } else if (prev & parked_async) {
    const async_waiter w = server_waiter_;
    w();
  }
}

bool state_base::poll_for_server(void* self) noexcept {
  auto* st = static_cast<state_base*>(self);
  if (st->any_ready()) return true;
  // Look at ctl_ only now and then: reading it steals its line from the senders.
  static thread_local unsigned polls = 0;
  if ((++polls & 255) != 0) return false;
  // ORDERING: relaxed; a hint to stop spinning, take() re-reads with acquire.
  return (st->ctl_.load(std::memory_order_relaxed) & no_clients) != 0;
}

void state_base::pause_for_stream() noexcept {
#if !defined(UMP_MODEL_CHECK)  // a delay only: the model checker has no clock to wait on
  const clock::time_point until = clock::now() + stream_pause;
  do {
    for (int i = 0; i < 8; ++i) cpu_relax();
  } while (clock::now() < until);
#endif
}

poll_status state_base::try_take_slow(envelope& out, bool look_at_ctl) noexcept {
  for (;;) {
    if (server_capacity_ != 0 && (cur_ == nullptr || cur_->pos == cur_->len)) room_check(false);
    if (!pick(out, !look_at_ctl)) {
      // The lanes-only look ends here only if every lane is empty: a message buffered out of
      // turn means the next ticket was announced, and is waited for below.
      if (!look_at_ctl && !any_buffered()) return poll_status::empty;
      // ORDERING: acquire, pairs with send_on()'s fetch_add and drop_strong()'s fetch_or.
      const std::uint32_t c = ctl_.load(std::memory_order_acquire);
      if (backlog(c) == 0) {
        if (server_capacity_ != 0) room_check(true);
        return (c & no_clients) ? poll_status::no_clients : poll_status::empty;
      }
      // Announced and not found: its sender is between announce and enqueue, or its lane is
      // too new for the list read above.
      while (!pick(out, true)) wait_for_announced();
    }
    const bool deliver = hand_out(out);
    if (server_capacity_ != 0) note_freed();
    if (deliver) return poll_status::got;
    // A withdrawn request: passed over, never delivered; on to the next message.
  }
}

poll_status state_base::take_slow(envelope& out, deadline dl, const stop_check* stop) noexcept {
  // The first look, in an unbounded channel, is at the lanes only: a server that keeps up
  // with its senders finds its lanes empty at almost every message, and a read of ctl_ each
  // time would pull the line every send writes away from the senders. Nothing there: spin
  // on the lanes (poll_for_server); every later look (after the spin, or before parking)
  // is try_take()'s full one, which tells an announced message from none and sees
  // no_clients. A bounded channel always looks in full: its empty look grants room.
  for (bool first = true;; first = false) {
    if (stop != nullptr && (*stop)()) return poll_status::stopped;
    const bool lanes = first && server_capacity_ == 0;
    const poll_status s = lanes ? try_take_slow(out, false) : try_take(out);
    if (s != poll_status::empty) return s;
    if (dl.passed()) {
      if (lanes) continue;  // "timed out" only after a full look (it sees no_clients)
      return poll_status::empty;
    }
    if (first && std::exchange(posts_in_a_row_, 0) >= 2) {
      // Posts are streaming in and the server has caught up: let a batch gather before the
      // next look (see stream_pause).
      pause_for_stream();
      continue;
    }
    // Nothing yet: spin on the queue itself (the hot path never reads ctl_), unless the last
    // waits outlasted the budget (see wait_history).
    const clock::time_point waiting_from = clock::now();
    const bool at_once = waits_.park_at_once(opts_);
    if (!at_once && spin_until(&poll_for_server, this, opts_, dl, &waits_))
      continue;  // a batch, or the no_clients hint
    // ORDERING: acquire, pairs with send_on()'s fetch_add and drop_strong()'s fetch_or.
    const std::uint32_t c = ctl_.load(std::memory_order_acquire);
    if (backlog(c) > 0 || (c & no_clients) != 0) continue;
    UMP_TEST_DELAY(server_before_park);
    std::uint32_t expected = c;
    // ORDERING: acq_rel; a sender's fetch_add that follows sees parked_thread and wakes us.
    if (!ctl_.compare_exchange_strong(expected, c | parked_thread, std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      continue;
    // A stop request and this park: interrupt_server_thread()'s RMW on ctl_ is ordered with
    // the CAS above. If it came first, the CAS read from it (or from a later RMW), so the
    // stop requested before it is visible here; if it comes after, it sees parked_thread and
    // wakes us. Either way no stop is slept through.
    if (stop != nullptr && (*stop)()) {
      // ORDERING: acq_rel, as the unpark below (a sender may have claimed the flag already).
      ctl_.fetch_and(~parked_thread, std::memory_order_acq_rel);
      continue;
    }
    const bool in_time = park_while_equal(ctl_, c | parked_thread, dl);
    if (in_time) {
      // How long the wait was, as far as the waker saw it: its stamp excludes the time the
      // wake-up took to reach us, which on a VM can exceed the wait itself.
      // ORDERING: relaxed; a stamp from an earlier wake is older than waiting_from.
      const clock::time_point woke = clock::time_point(clock::duration(woke_at_.load(std::memory_order_relaxed)));
      waits_.record((woke > waiting_from ? woke : clock::now()) - waiting_from, opts_);
    }
    // Unpark ourselves: a waker may or may not have cleared the flag already; a second
    // futex wake from a late waker is harmless.
    // ORDERING: acq_rel, ordered with wake_server()'s claim.
    ctl_.fetch_and(~parked_thread, std::memory_order_acq_rel);
    if (!in_time) {
      // One last look, so a message that raced the deadline is not left waiting.
      const poll_status last = try_take(out);
      return last;
    }
  }
}

void state_base::interrupt_server_thread() noexcept {
  // ORDERING: acq_rel; an RMW that changes nothing, so that it is ordered with the server's
  // parking CAS in take() (see there): release carries the stop request to that CAS when
  // it comes first, acquire reads parked_thread when it comes after.
  const std::uint32_t prev = ctl_.fetch_or(0, std::memory_order_acq_rel);
  if ((prev & parked_thread) != 0) wake_server();
}

bool state_base::add_room_waiter_locked(room_waiter& w) noexcept {
  // ORDERING: relaxed; close() sets `closed` before it takes the send lock to settle the
  // room list, and we hold that lock: either it is visible here, or close() will find `w`.
  if ((ctl_.load(std::memory_order_relaxed) & closed) != 0) {
    // ORDERING: relaxed; `w` is still the caller's alone.
    w.status.store(room_waiter::closed, std::memory_order_relaxed);
    return true;
  }
  if (room_head_ == nullptr) {
    // The first waiter: raise room_flag_, then read the server's latest count.
    // ORDERING: acq_rel, ordered with room_check()'s RMW (see state.hpp, "capacity").
    room_flag_.exchange(1, std::memory_order_acq_rel);
    refresh_freed();
    if (room_left(chunk_of(capacity_))) {
      // The server freed room meanwhile: granted at once, nothing linked.
      // ORDERING: relaxed; the list is empty, the server needs no wake-up.
      room_flag_.store(0, std::memory_order_relaxed);
      ++reserved_;
      // ORDERING: relaxed; `w` is still the caller's alone.
      w.status.store(room_waiter::granted, std::memory_order_relaxed);
      return true;
    }
  }
  w.next = nullptr;
  w.linked = true;
  if (room_tail_ != nullptr) {
    room_tail_->next = &w;
  } else {
    room_head_ = &w;
  }
  room_tail_ = &w;
  return false;
}

void state_base::unlink_room_waiter(room_waiter& w) noexcept {
  room_waiter* prev = nullptr;
  for (room_waiter* p = room_head_; p != &w; p = p->next) prev = p;
  (prev != nullptr ? prev->next : room_head_) = w.next;
  if (room_tail_ == &w) room_tail_ = prev;
  w.linked = false;
  if (room_head_ == nullptr) {
    // ORDERING: relaxed; the list is empty again: the server needs no wake-up (a stale 1
    // read by it only costs a grant that finds nobody).
    room_flag_.store(0, std::memory_order_relaxed);
  }
}

// Settles a linked waiter (send lock held, `w` already unlinked): stores `to`, and wakes
// its thread if it sleeps. The waiter takes the lock once before it returns, so `w` lives
// until we let go.
static void settle(room_waiter& w, std::uint32_t to) noexcept {
  // ORDERING: acq_rel; release pairs with await_room()'s acquire loads; the exchange is
  // ordered with its CAS to `parked`, so a sleeping waiter is always woken.
  if (w.status.exchange(to, std::memory_order_acq_rel) == room_waiter::parked) unpark_all(w.status);
}

std::size_t state_base::settle_heads_locked(std::uint32_t to, async_waiter* out, std::size_t max) noexcept {
  std::size_t n = 0;
  while (room_head_ != nullptr && n < max) {
    if (to == room_waiter::granted) {
      if (!room_left()) {
        refresh_freed();
        if (!room_left()) break;
      }
      ++reserved_;
    }
    room_waiter& w = *room_head_;
    unlink_room_waiter(w);
    const async_waiter resume = w.on_grant;  // read before settling: a thread may then leave
    settle(w, to);
    if (resume.fn != nullptr) out[n++] = resume;  // called once the lock is released
  }
  return n;
}

bool state_base::settle_room_waiters(std::uint32_t to, bool if_free) noexcept {
  constexpr std::size_t chunk = 8;
  async_waiter ready[chunk];
  for (;;) {
    if (if_free) {
      if (!send_lock_.try_lock()) return false;
      if_free = false;  // a second round (more than `chunk` coroutines) waits for the lock
    } else {
      send_lock_.lock();
    }
    const std::size_t n = settle_heads_locked(to, ready, chunk);
    send_lock_.unlock();
    for (std::size_t i = 0; i < n; ++i) ready[i]();
    if (n < chunk) return true;
  }
}

std::uint32_t state_base::await_room(room_waiter& w, deadline dl) noexcept {
  // A room wait lasts while the server drains a grant's worth of messages: the waiter yields
  // its core while it spins, so that on a crowded machine the server it waits for can run.
  wait_options spin = opts_;
  spin.spin_before_yield = std::chrono::nanoseconds(0);
  std::uint32_t s = spin_while_equal(w.status, room_waiter::waiting, spin, dl);
  if (s == room_waiter::waiting) {
    // Transition waiting → parked, so that a settler knows to wake us.
    // ORDERING: acq_rel, ordered with settle()'s exchange; acquire on failure (settled).
    if (w.status.compare_exchange_strong(s, room_waiter::parked, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
      s = room_waiter::parked;
      for (;;) {
        const bool in_time = park_while_equal(w.status, room_waiter::parked, dl);
        // ORDERING: acquire, pairs with settle()'s exchange.
        s = w.status.load(std::memory_order_acquire);
        if (s != room_waiter::parked || !in_time || dl.passed()) break;
      }
    }
  }
  if (s == room_waiter::waiting || s == room_waiter::parked) {
    // The deadline passed: leave the list, unless a settler got there first.
    send_lock_.lock();
    // ORDERING: relaxed; under the lock, where every settling exchange is made.
    s = w.status.load(std::memory_order_relaxed);
    if (s == room_waiter::waiting || s == room_waiter::parked) {
      unlink_room_waiter(w);
      s = room_waiter::timed_out;
    }
    send_lock_.unlock();
    return s;
  }
  // Whoever settled `w` did so holding the send lock, and may still be waking us: wait for
  // it to let go before `w` can go away.
  send_lock_.lock();
  send_lock_.unlock();
  return s;
}

bool state_base::cancel_room_waiter(room_waiter& w) noexcept {
  send_lock_.lock();
  const bool was_waiting = w.linked;
  if (was_waiting) {
    unlink_room_waiter(w);
    settle(w, room_waiter::cancelled);
  }
  send_lock_.unlock();
  return was_waiting;
}

void state_base::close() noexcept {
  // ORDERING: acq_rel; totally ordered with every send_on()'s fetch_add (see state.hpp).
  ctl_.fetch_or(closed, std::memory_order_acq_rel);
  // Senders waiting for room learn that the server is gone (after `closed`: none can link
  // itself after this).
  if (capacity_ != 0) (void)settle_room_waiters(room_waiter::closed, false);
  // Every announced message, buffered or still queued, in any order: all of them fail.
  for (;;) {
    // ORDERING: acquire, pairs with send_on()'s fetch_add.
    const std::uint32_t c = ctl_.load(std::memory_order_acquire);
    if (backlog(c) == 0) break;
    envelope e;
    if (take_any(e)) {
      note_taken();
      unstamp(e);
      if (e.node != nullptr) fail_queued(e.node);  // inline posts are trivially destructible
    } else {
      // Announced but not enqueued yet, or a rejected sender about to undo its count.
      wait_for_announced();
    }
  }
}

}  // namespace ump::detail
