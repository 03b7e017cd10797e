// ump/detail/cell.hpp — the reply cell: one request's rendezvous between requester and replier.
//
// Internal. Words used throughout ump's internals, one meaning each:
//   node        the pooled object a message travels in (channel_state.hpp): a reply cell
//               followed by the message. Nodes are allocated, pooled (node_pool) and recycled.
//   reply cell  the front of a node: the state word below plus room for the reply's outcome
//               (cell_base, reply_cell<R, E>). The reply protocol works on this part only.
//   envelope    what the queue carries: a pointer to a node, or an inline post's bytes.
// The cell is an explicit state machine on one 32-bit atomic word (diagram in README "How it
// works"):
//
//            register_thread_waiter            publish (wake by futex)
//   empty ───────────────────────► waiting_thread ─────────────────────► ready
//     │  register_async_waiter                    publish (run waiter)     ▲
//     ├───────────────────────► waiting_async ─────────────────────────────┤
//     │                          publish (requester still spinning)        │
//     ├────────────────────────────────────────────────────────────────────┘
//     │  abandon (from empty / waiting_*)          publish → origin_disappeared
//     └───────────────────────► abandoned ─────────────────────► (replier recycles)
//
// A second word, claim_, decides whether the server ever sees the request at all:
//
//            claim (server takes it)
//   queued ─────────────────────────► taken          (delivered; the state word above runs)
//     │  begin_withdraw (cancel)           finish_withdraw
//     └─────────────────────────► withdrawing ─────────────────► withdrawn
//                                   │ claim finds it: skip, leave the node
//                                   └─► taken: finish_withdraw recycles instead
// A withdrawn request is never delivered and never published. The canceller destroys the
// message between begin_withdraw and finish_withdraw; whichever of the canceller's finish
// and the server's claim comes second recycles the node. A stop request to a parked
// requester thread sets `interrupt` in the state word (interrupt()), which wakes it; the
// requester then withdraws or abandons the request itself.
//
// Who owns the node: the requester until it abandons; after publish, the requester consumes
// the outcome and recycles the node; after abandon, the replier (or the server's drain) finds
// `abandoned` when it publishes, destroys the outcome and recycles the node. If abandon finds
// `ready`, the requester destroys the outcome and recycles. Exactly one side recycles.
//
// Waking never touches freed memory: nodes are only returned to the channel's pool, which
// lives until the last reference to the channel's shared state is gone. Every node outside
// the shared pool holds one client-group reference (see state.hpp), so neither side of a
// request needs one of its own. The one moment a replier touches a node it no longer owns is
// the futex wake after publishing to a parked requester; so a requester pins the state
// (pin_owner) before it parks, and the replier unpins it after the wake. A futex wake landing
// on a node already reused is a spurious wake-up that the sleeper's loop absorbs. An async
// waiter cannot be consumed before the replier has read it: the coroutine only resumes
// through that waiter, and the replier touches nothing after calling it.
#pragma once

#include <atomic>  // std::memory_order
#include <cstdint>
#include <new>
#include <utility>

#include "ump/detail/atomic.hpp"
#include "ump/detail/config.hpp"
#include "ump/detail/park.hpp"
#include "ump/result.hpp"

namespace ump::detail {

class state_base;
// One extra client-group reference on a cell's channel, held by a parked requester on the
// replier's behalf (see above). Out of line (src/state.cpp).
void pin_owner(state_base* st) noexcept;
void unpin_owner(state_base* st) noexcept;

enum class cell_state : std::uint32_t {
  empty = 0,           // in flight: no outcome, requester not registered (maybe spinning)
  waiting_thread = 1,  // requester thread is parked on the state word
  waiting_async = 2,   // requester registered an async_waiter (a suspended coroutine)
  ready = 3,           // outcome stored; the requester owns the node again
  abandoned = 4,       // requester gave up; whoever publishes must recycle the node
};
// A stop request for a requester thread waiting in wait_ready() (see interrupt()). Only that
// requester clears it, by leaving the state (publish() replaces the whole word).
inline constexpr std::uint32_t cell_interrupt = 8;
inline constexpr std::uint32_t cell_state_mask = 7;

// The claim word: whether the server has taken the request, or its requester withdrew it.
enum class claim_state : std::uint8_t {
  queued = 0,       // sent, not taken yet
  taken = 1,        // the server took it (or, for a withdrawn one, passed over it)
  withdrawing = 2,  // its requester is withdrawing it: it will never be delivered
  withdrawn = 3,    // withdrawn, and its message destroyed
};
// What the server's claim found.
enum class claim_result : std::uint8_t { deliver, skip, skip_and_recycle };
// How a requester thread's wait_ready() ended.
enum class wait_end : std::uint8_t {
  ready,      // the outcome is there: consume it
  timed_out,  // the deadline passed: the request is abandoned (the replier recycles)
  withdrawn,  // interrupted before the server took it: begin_withdraw() succeeded; the caller
              // destroys the message and calls finish_withdraw()
  abandoned,  // interrupted after the server took it: abandoned (the replier recycles)
};

// A type-erased way to wake a suspended coroutine: one function pointer, no vtable.
struct async_waiter {
  void (*fn)(void* ctx) noexcept = nullptr;
  void* ctx = nullptr;
  void operator()() const noexcept { fn(ctx); }
};

// What publish() found, so the replier knows whether its outcome was delivered.
enum class publish_result : std::uint8_t { delivered, origin_gone };

class cell_base {
 public:
  // --- sender ---------------------------------------------------------------------------
  // Effect: makes a recycled cell ready to carry a new request.
  void reset() noexcept {
    // ORDERING: relaxed; published to the server by the queue's enqueue (release) and seen by
    // it after dequeue (acquire).
    state_.store(static_cast<std::uint32_t>(cell_state::empty), std::memory_order_relaxed);
    // ORDERING: relaxed; published with the node, as state_ above.
    claim_.store(static_cast<std::uint8_t>(claim_state::queued), std::memory_order_relaxed);
  }

  // --- server (transition: claim) ------------------------------------------------------------
  // Called once per request, when the server takes it from the queue (or drains it at close).
  // deliver: the request is the server's. skip: its requester is withdrawing it and will
  // recycle the node. skip_and_recycle: withdrawn; the caller recycles the node.
  claim_result claim() noexcept {
    // ORDERING: acq_rel, ordered with begin_withdraw()'s CAS and finish_withdraw()'s exchange;
    // acquire makes the canceller's destruction of the message happen before the recycle.
    const auto prev = static_cast<claim_state>(
        claim_.exchange(static_cast<std::uint8_t>(claim_state::taken), std::memory_order_acq_rel));
    if (prev == claim_state::queued) return claim_result::deliver;
    return prev == claim_state::withdrawn ? claim_result::skip_and_recycle : claim_result::skip;
  }

  // --- replier (transition: publish) -------------------------------------------------------
  // Precondition: the outcome has just been constructed. Moves the cell to `ready` and wakes
  // the requester if it registered. Returns origin_gone if the requester had abandoned:
  // the caller must then destroy the outcome and recycle the node.
  publish_result publish() noexcept {
    UMP_TEST_DELAY(reply_before_publish);
    // ORDERING: acq_rel. Release publishes the outcome to the requester's acquire load or
    // RMW that sees `ready`; acquire makes the requester's async_waiter (written before its
    // release CAS to waiting_async) visible here.
    auto prev = static_cast<cell_state>(
        state_.exchange(static_cast<std::uint32_t>(cell_state::ready), std::memory_order_acq_rel) & cell_state_mask);
    switch (prev) {
      case cell_state::empty:
        return publish_result::delivered;
      case cell_state::waiting_thread: {
        state_base* const owner = owner_;  // read before the requester can run and reuse us
        UMP_TEST_DELAY(wake_before_notify);
        unpark_all(state_);
        // The requester pinned the channel before parking: it is alive until this unpin.
        if (owner != nullptr) unpin_owner(owner);
        return publish_result::delivered;
      }
      case cell_state::waiting_async: {
        const async_waiter w = waiter_;  // read before the coroutine can run and reuse us
        UMP_TEST_DELAY(wake_before_notify);
        w();
        return publish_result::delivered;
      }
      case cell_state::abandoned:
        return publish_result::origin_gone;
      case cell_state::ready:
        break;
    }
    UMP_ASSERT(false, "a request is answered exactly once (reply cell published twice)");
    return publish_result::origin_gone;
  }

  // Racy probe for reply_context::requester_waiting(): false once the requester abandoned.
  [[nodiscard]] bool abandoned() const noexcept {
    // ORDERING: relaxed; advisory only, the publish exchange decides.
    return (state_.load(std::memory_order_relaxed) & cell_state_mask) ==
           static_cast<std::uint32_t>(cell_state::abandoned);
  }

  // --- requester ---------------------------------------------------------------------------
  // Non-blocking check that the outcome is there.
  [[nodiscard]] bool is_ready() const noexcept {
    // ORDERING: acquire, pairs with publish()'s exchange; the outcome is then readable.
    return (state_.load(std::memory_order_acquire) & cell_state_mask) == static_cast<std::uint32_t>(cell_state::ready);
  }

  // Transition queued → withdrawing (cancel before the server took the request). Returns
  // false if the server has taken it. On success the request will never be delivered: the
  // caller destroys the message, then calls finish_withdraw().
  bool begin_withdraw() noexcept {
    auto expected = static_cast<std::uint8_t>(claim_state::queued);
    // ORDERING: acq_rel, ordered with claim()'s exchange: exactly one of the two wins.
    return claim_.compare_exchange_strong(expected, static_cast<std::uint8_t>(claim_state::withdrawing),
                                          std::memory_order_acq_rel, std::memory_order_relaxed);
  }
  // Transition withdrawing → withdrawn. Returns true if the server has passed over the
  // request meanwhile: the caller then recycles the node (else the server's claim will).
  bool finish_withdraw() noexcept {
    // ORDERING: acq_rel; release hands the destroyed message over to claim()'s acquire,
    // acquire pairs with claim()'s exchange when it came first.
    return claim_.exchange(static_cast<std::uint8_t>(claim_state::withdrawn), std::memory_order_acq_rel) ==
           static_cast<std::uint8_t>(claim_state::taken);
  }

  // A stop request for the requester thread waiting in wait_ready(): sets `interrupt` and
  // wakes the thread if it is parked. Any thread, while the requester is inside wait_ready()
  // (the caller guarantees that: std::stop_callback's destructor waits for a running
  // callback). Harmless after the outcome arrived.
  void interrupt() noexcept {
    // ORDERING: acq_rel; the RMW is ordered with the requester's CAS to waiting_thread: if
    // the CAS comes later it fails and sees the flag, else this sees waiting_thread.
    const std::uint32_t prev = state_.fetch_or(cell_interrupt, std::memory_order_acq_rel);
    if ((prev & cell_state_mask) == static_cast<std::uint32_t>(cell_state::waiting_thread)) unpark_all(state_);
  }

  // Transition empty → waiting_async. Returns false if the outcome is already ready (the
  // caller must not suspend). The waiter must stay callable until it has been called.
  bool register_async_waiter(async_waiter w) noexcept {
    waiter_ = w;
    auto expected = static_cast<std::uint32_t>(cell_state::empty);
    // ORDERING: release on success publishes waiter_ to publish()'s acquire exchange;
    // acquire on failure makes the outcome visible (the failure means `ready`).
    return state_.compare_exchange_strong(expected, static_cast<std::uint32_t>(cell_state::waiting_async),
                                          std::memory_order_acq_rel, std::memory_order_acquire);
  }

  // Transition empty / waiting_async → abandoned, for a coroutine's stop request (any
  // thread). Returns the state it left: empty (no waiter registered yet: a registration
  // that follows fails) or waiting_async (the waiter will never be called); or ready: too
  // late, nothing changed.
  cell_state cancel_async() noexcept {
    // ORDERING: acquire; a `ready` read here makes the outcome visible.
    std::uint32_t now = state_.load(std::memory_order_acquire);
    for (;;) {
      const auto s = static_cast<cell_state>(now & cell_state_mask);
      if (s == cell_state::ready) return s;
      UMP_ASSERT(s == cell_state::empty || s == cell_state::waiting_async, "a coroutine's request is cancelled once");
      // ORDERING: acq_rel, ordered with publish()'s exchange and register_async_waiter()'s CAS.
      if (state_.compare_exchange_weak(now, static_cast<std::uint32_t>(cell_state::abandoned),
                                       std::memory_order_acq_rel, std::memory_order_acquire))
        return s;
    }
  }

  // Transition waiting_async → abandoned: withdraws a registered async waiter (an adapter
  // cancelling its wait, see ump/asio.hpp). Returns false if the outcome is already ready:
  // the waiter has been or is being called, and the outcome must still be consumed.
  bool withdraw_async_waiter() noexcept {
    auto expected = static_cast<std::uint32_t>(cell_state::waiting_async);
    // ORDERING: acq_rel on success, so that publish()'s exchange sees `abandoned` and
    // recycles the node; acquire on failure (the failure means `ready`).
    return state_.compare_exchange_strong(expected, static_cast<std::uint32_t>(cell_state::abandoned),
                                          std::memory_order_acq_rel, std::memory_order_acquire);
  }

  // Blocks the calling thread until `ready` (spin, then park), the deadline `dl`, or an
  // interrupt() (see wait_end for what each leaves to the caller). Out of line (src/cell.cpp).
  wait_end wait_ready(const wait_options& opts, deadline dl) noexcept;

  // Transition empty/waiting_* → abandoned. Returns true if the outcome was already ready:
  // the caller then owns the node and must destroy the outcome and recycle it.
  bool abandon() noexcept {
    // ORDERING: acq_rel; acquire so that a `ready` outcome is visible to the destroying
    // requester, release so the replier's publish exchange sees the abandonment.
    auto prev = state_.exchange(static_cast<std::uint32_t>(cell_state::abandoned), std::memory_order_acq_rel);
    return (prev & cell_state_mask) == static_cast<std::uint32_t>(cell_state::ready);
  }

  // Pool link (only meaningful while the cell is in the pool).
  atomic<cell_base*> next_{nullptr};
  // The channel whose pool this cell belongs to (nullptr for a free-standing cell).
  state_base* owner_ = nullptr;
  // True for an ng post: no reply is expected and no requester waits on this cell.
  bool is_post_ = false;

 private:
  // Leaves waiting_thread / empty after interrupt(): withdraws the request, or abandons it
  // once taken (unless the outcome won). `parked`: the pin was passed on (see wait_ready).
  wait_end end_interrupted(bool parked) noexcept;

  // One byte, next to is_post_: a node with a small message and reply stays one cache line.
  atomic<std::uint8_t> claim_{static_cast<std::uint8_t>(claim_state::queued)};
  atomic<std::uint32_t> state_{static_cast<std::uint32_t>(cell_state::empty)};
  async_waiter waiter_{};

#if !defined(UMP_MODEL_CHECK)
  // The state word is a futex word (park.hpp) and neither word may hide a lock: a replier
  // publishes and wakes from any thread, a coroutine's waiter runs inside publish().
  static_assert(decltype(state_)::is_always_lock_free && decltype(claim_)::is_always_lock_free &&
                    decltype(next_)::is_always_lock_free,
                "the reply cell's state word and pool link are lock-free atomics");
#endif
};

// Raw storage for one T whose lifetime the protocol manages by hand.
template <class T>
class manual_storage {
 public:
  template <class... A>
  T& emplace(A&&... a) {
    return *::new (static_cast<void*>(buf_)) T(std::forward<A>(a)...);
  }
  T& get() noexcept { return *std::launder(reinterpret_cast<T*>(buf_)); }
  void destroy() noexcept { get().~T(); }

 private:
  alignas(T) unsigned char buf_[sizeof(T)];
};

// A cell with room for the reply outcome: what reply_context and wait_reply see.
template <class R, class E>
class reply_cell : public cell_base {
 public:
  using outcome_type = result<R, E>;
  manual_storage<outcome_type> outcome_;
};

// A lock-free LIFO free list of cells (Treiber stack). ABA is prevented by a 16-bit tag in
// the head word's top bits; cells are never freed while the pool lives, so a stale read of
// `next_` is harmless (its CAS fails on the tag).
class node_pool {
 public:
  cell_base* try_pop() noexcept {
    // ORDERING: acquire, pairs with push()'s release CAS: `next_` of the head cell is read
    // as its pusher left it.
    std::uint64_t h = head_.load(std::memory_order_acquire);
    for (;;) {
      cell_base* c = ptr(h);
      if (c == nullptr) return nullptr;
      // ORDERING: relaxed; the acquire that produced `h` (the load above or the failed CAS
      // below) pairs with the release CAS that pushed `c`, after its store to next_. A stale
      // value (c popped and pushed again since) is harmless: the CAS fails on the tag.
      cell_base* next = c->next_.load(std::memory_order_relaxed);
      // ORDERING: acquire on success pairs with push()'s release CAS: the popper sees the
      // cell as the pusher left it; acquire on failure, for the retry's read of next_.
      if (head_.compare_exchange_weak(h, pack(next, tag(h) + 1), std::memory_order_acquire, std::memory_order_acquire))
        return c;
    }
  }
  void push(cell_base* c) noexcept {
    // ORDERING: relaxed; only a guess of the head, which the CAS below checks.
    std::uint64_t h = head_.load(std::memory_order_relaxed);
    do {
      // ORDERING: relaxed; published by the release CAS below (pairs with try_pop()).
      c->next_.store(ptr(h), std::memory_order_relaxed);
      // ORDERING: release on success, pairs with try_pop()'s acquire load and CAS; relaxed on
      // failure, which only retries with the head it read.
    } while (
        !head_.compare_exchange_weak(h, pack(c, tag(h) + 1), std::memory_order_release, std::memory_order_relaxed));
  }

 private:
  static_assert(sizeof(void*) == 8, "node_pool packs a tag into 64-bit pointers");
  static constexpr int tag_shift = 48;
  static constexpr std::uint64_t ptr_mask = (std::uint64_t{1} << tag_shift) - 1;
  static cell_base* ptr(std::uint64_t h) noexcept { return reinterpret_cast<cell_base*>(h & ptr_mask); }
  static std::uint64_t tag(std::uint64_t h) noexcept { return h >> tag_shift; }
  static std::uint64_t pack(cell_base* c, std::uint64_t t) noexcept {
    const auto p = reinterpret_cast<std::uint64_t>(c);
    UMP_ASSERT((p & ~ptr_mask) == 0, "cell addresses fit in 48 bits");
    return p | (t << tag_shift);
  }
  atomic<std::uint64_t> head_{0};  // its line is chosen by the owner (state.hpp)
#if !defined(UMP_MODEL_CHECK)
  static_assert(decltype(head_)::is_always_lock_free, "the pool head is a lock-free 64-bit word (pointer and tag)");
#endif
};

}  // namespace ump::detail
