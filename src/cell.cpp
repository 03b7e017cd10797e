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

bool cell_base::wait_ready(const wait_options& opts, deadline dl) noexcept {
  constexpr auto empty = static_cast<std::uint32_t>(cell_state::empty);
  constexpr auto waiting = static_cast<std::uint32_t>(cell_state::waiting_thread);
  constexpr auto ready = static_cast<std::uint32_t>(cell_state::ready);

  // Phase 1: spin, unless this thread's last reply waits outlasted the budget (see
  // wait_history). Any change from `empty` can only be `ready` (only we abandon).
  wait_history& hist = t_reply_waits;
  const bool at_once = hist.park_at_once(opts);
  if (!at_once && spin_while_equal(state_, empty, opts, dl, &hist) == ready) return true;
  UMP_TEST_DELAY(wait_before_park);

  // Pin the channel for the replier's futex wake (see cell.hpp): the pin passes to the
  // replier with the transition below, and comes back to us if that transition fails or we
  // abandon from waiting_thread. Our node's own reference keeps the channel alive meanwhile.
  state_base* const owner = owner_;  // set once when the node was made; never changes
  if (owner != nullptr) pin_owner(owner);

  // Transition empty → waiting_thread.
  std::uint32_t expected = empty;
  // ORDERING: acq_rel on success (the replier's exchange reads it and knows to wake us);
  // acquire on failure: the failure means `ready`, whose outcome we are about to read.
  if (!state_.compare_exchange_strong(expected, waiting, std::memory_order_acq_rel, std::memory_order_acquire)) {
    UMP_ASSERT(expected == ready, "only the requester abandons its own request");
    if (owner != nullptr) unpin_owner(owner);
    if (at_once) hist.record_short();  // it came before we could even park
    return true;
  }
  // Phase 2: park until the replier's exchange moves us off waiting_thread.
  const clock::time_point parked_at = clock::now();
  const clock::duration spun = at_once ? clock::duration{} : opts.spin;
  for (;;) {
    const bool in_time = park_while_equal(state_, waiting, dl);
    // ORDERING: acquire, pairs with publish()'s exchange.
    if (state_.load(std::memory_order_acquire) == ready) {
      hist.record(clock::now() - parked_at + spun, opts);
      return true;
    }
    if (!in_time || dl.passed()) {
      // Transition waiting_thread → abandoned, unless the outcome just arrived.
      expected = waiting;
      // ORDERING: acq_rel; on failure (ready) acquire makes the outcome visible.
      if (state_.compare_exchange_strong(expected, static_cast<std::uint32_t>(cell_state::abandoned),
                                         std::memory_order_acq_rel, std::memory_order_acquire)) {
        // The replier will see `abandoned` and never wake us: the pin is ours to drop.
        if (owner != nullptr) unpin_owner(owner);
        return false;
      }
      return true;  // ready: the replier wakes (or woke) us and drops the pin
    }
  }
}

}  // namespace ump::detail
