// Reply-cell slow path: a requester thread waits for its outcome (see ump/detail/cell.hpp).
#include "ump/detail/cell.hpp"

#include "ump/detail/state.hpp"  // pin_owner: a parked requester's reference on its channel

namespace ump::detail {

void pin_owner(state_base* st) noexcept { st->add_ref(state_base::client_group); }
void unpin_owner(state_base* st) noexcept { st->release(state_base::client_group); }
namespace {
// The calling thread's recent reply waits, across channels (see wait_history).
thread_local wait_history t_reply_waits;
}  // namespace

wait_end cell_base::wait_ready(const wait_options& opts, deadline dl) noexcept {
  constexpr auto empty = static_cast<std::uint32_t>(cell_state::empty);
  constexpr auto waiting = static_cast<std::uint32_t>(cell_state::waiting_thread);
  constexpr auto ready = static_cast<std::uint32_t>(cell_state::ready);

  // Phase 1: spin, unless this thread's last reply waits outlasted the budget (see
  // wait_history). Any change from `empty` is `ready` or an interrupt (only we abandon).
  wait_history& hist = t_reply_waits;
  const bool at_once = hist.park_at_once(opts);
  if (!at_once) {
    const std::uint32_t seen = spin_while_equal(state_, empty, opts, dl, &hist);
    if (seen == ready) return wait_end::ready;
    if ((seen & cell_interrupt) != 0) return end_interrupted(false);
  }
  UMP_TEST_DELAY(wait_before_park);

  // Pin the channel for the replier's futex wake (see cell.hpp): the pin passes to the
  // replier with the transition below, and comes back to us if that transition fails or we
  // leave waiting_thread ourselves. Our node's own reference keeps the channel alive meanwhile.
  state_base* const owner = owner_;  // set once when the node was made; never changes
  if (owner != nullptr) pin_owner(owner);

  // Transition empty → waiting_thread.
  std::uint32_t expected = empty;
  // ORDERING: acq_rel on success (the replier's exchange reads it and knows to wake us);
  // acquire on failure: the failure means `ready` (whose outcome we are about to read) or an
  // interrupt.
  if (!state_.compare_exchange_strong(expected, waiting, std::memory_order_acq_rel, std::memory_order_acquire)) {
    if (owner != nullptr) unpin_owner(owner);
    if (expected != ready) {
      UMP_ASSERT((expected & cell_interrupt) != 0, "only the requester abandons its own request");
      return end_interrupted(false);
    }
    if (at_once) hist.record_short();  // it came before we could even park
    return wait_end::ready;
  }
  // Phase 2: park until the replier's exchange (or an interrupt) moves us off waiting_thread.
  const clock::time_point parked_at = clock::now();
  const clock::duration spun = at_once ? clock::duration{} : opts.spin;
  for (;;) {
    const bool in_time = park_while_equal(state_, waiting, dl);
    // ORDERING: acquire, pairs with publish()'s exchange and interrupt()'s fetch_or.
    const std::uint32_t now = state_.load(std::memory_order_acquire);
    if (now == ready) {
      hist.record(clock::now() - parked_at + spun, opts);
      return wait_end::ready;
    }
    if ((now & cell_interrupt) != 0) return end_interrupted(true);
    if (!in_time || dl.passed()) {
      // Transition waiting_thread → abandoned, unless the outcome (or an interrupt) just came.
      expected = waiting;
      // ORDERING: acq_rel; on failure (ready) acquire makes the outcome visible.
      if (state_.compare_exchange_strong(expected, static_cast<std::uint32_t>(cell_state::abandoned),
                                         std::memory_order_acq_rel, std::memory_order_acquire)) {
        // The replier will see `abandoned` and never wake us: the pin is ours to drop.
        if (owner != nullptr) unpin_owner(owner);
        return wait_end::timed_out;
      }
      if (expected == ready) return wait_end::ready;  // the replier wakes (or woke) us and drops the pin
      return end_interrupted(true);
    }
  }
}

wait_end cell_base::end_interrupted(bool parked) noexcept {
  state_base* const owner = owner_;
  if (begin_withdraw()) {
    // The server will never see the request, so no replier will wake us or drop the pin.
    if (parked && owner != nullptr) unpin_owner(owner);
    return wait_end::withdrawn;
  }
  // Taken: abandon, unless the outcome won the race.
  // ORDERING: acquire; a `ready` read here makes the outcome visible.
  std::uint32_t now = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((now & cell_state_mask) == static_cast<std::uint32_t>(cell_state::ready)) return wait_end::ready;
    // ORDERING: acq_rel; publish()'s exchange then sees `abandoned` and recycles the node.
    if (state_.compare_exchange_weak(now, static_cast<std::uint32_t>(cell_state::abandoned), std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      if (parked && owner != nullptr) unpin_owner(owner);  // no replier will wake us now
      return wait_end::abandoned;
    }
  }
}

}  // namespace ump::detail
