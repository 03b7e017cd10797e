// Tests for the adaptive spin budget in ump/detail/park.hpp. The governor's rules are driven
// directly through plan_spin()/record_spin(), so no outcome depends on timing; one test runs
// spin_until() end to end with a poll that sleeps (the thread is then off its core for most
// of the spin, as a preempted thread would be). Each test runs on a fresh thread, so it
// starts from a full budget and an empty history.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <thread>

#include "ump/detail/park.hpp"

namespace d = ump::detail;

namespace {

ump::wait_options budget_of(std::chrono::nanoseconds spin, bool adaptive = true) {
  ump::wait_options o;
  o.spin = spin;
  o.spin_before_yield = std::chrono::nanoseconds(0);
  o.adaptive = adaptive;
  return o;
}
const ump::wait_options adaptive_64us = budget_of(std::chrono::microseconds(64));

// One spin of the calling thread that ended `how`, starved of its core or not.
void spin_once(const ump::wait_options& o, d::spin_end how, std::optional<bool> starved) {
  d::record_spin(d::plan_spin(o), how, starved);
}

template <class F>
void on_fresh_thread(F f) {
  std::thread t(f);
  t.join();
}

}  // namespace

TEST_CASE("repeated_starved_spins_that_run_out_shrink_the_budget_down_to_the_floor") {
  on_fresh_thread([] {
    // The starved share moves 1/8 of the way per long spin; above 1/4 the thread counts as
    // oversubscribed: the third starved spin in a row gets there.
    spin_once(adaptive_64us, d::spin_end::ran_out, true);
    spin_once(adaptive_64us, d::spin_end::ran_out, true);
    CHECK(d::spin_budget_shift() == 0);
    spin_once(adaptive_64us, d::spin_end::ran_out, true);
    CHECK(d::spin_budget_shift() == 1);
    CHECK(d::plan_spin(adaptive_64us).budget == std::chrono::microseconds(32));
    for (int i = 0; i < 10; ++i) spin_once(adaptive_64us, d::spin_end::ran_out, true);
    CHECK(d::spin_budget_shift() == 6);
  });
}

TEST_CASE("spins_that_run_out_with_the_core_kept_keep_the_budget") {
  on_fresh_thread([] {
    for (int i = 0; i < 20; ++i) spin_once(adaptive_64us, d::spin_end::ran_out, false);
    for (int i = 0; i < 20; ++i) spin_once(adaptive_64us, d::spin_end::ran_out, std::nullopt);
    CHECK(d::spin_budget_shift() == 0);
  });
}

TEST_CASE("an_isolated_starved_spin_changes_nothing") {
  on_fresh_thread([] {
    spin_once(adaptive_64us, d::spin_end::ran_out, true);  // an interrupt, a hypervisor hiccup
    for (int i = 0; i < 20; ++i) spin_once(adaptive_64us, d::spin_end::ran_out, false);
    CHECK(d::spin_budget_shift() == 0);
  });
}

TEST_CASE("successful_spin_grows_the_budget_back_one_step") {
  on_fresh_thread([] {
    for (int i = 0; i < 5; ++i) spin_once(adaptive_64us, d::spin_end::ran_out, true);
    CHECK(d::spin_budget_shift() == 3);
    spin_once(adaptive_64us, d::spin_end::succeeded, std::nullopt);
    CHECK(d::spin_budget_shift() == 2);
  });
}

TEST_CASE("successful_probe_restores_the_full_budget") {
  on_fresh_thread([] {
    for (int i = 0; i < 3; ++i) spin_once(adaptive_64us, d::spin_end::ran_out, true);
    REQUIRE(d::spin_budget_shift() == 1);
    // Waits count towards a probe from the first shrink; the 16th plan is a probe.
    for (int i = 0; i < 15; ++i) {
      const d::spin_plan p = d::plan_spin(adaptive_64us);
      CHECK_FALSE(p.probe);
      d::record_spin(p, d::spin_end::ran_out, true);
    }
    CHECK(d::spin_budget_shift() == 6);
    const d::spin_plan probe = d::plan_spin(adaptive_64us);
    CHECK(probe.probe);
    CHECK(probe.budget == std::chrono::microseconds(64));
    d::record_spin(probe, d::spin_end::succeeded, std::nullopt);
    CHECK(d::spin_budget_shift() == 0);
  });
}

TEST_CASE("fixed_budget_never_adapts") {
  on_fresh_thread([] {
    const auto fixed = budget_of(std::chrono::microseconds(64), false);
    for (int i = 0; i < 10; ++i) spin_once(fixed, d::spin_end::ran_out, true);
    CHECK(d::spin_budget_shift() == 0);
    CHECK(d::plan_spin(fixed).budget == std::chrono::microseconds(64));
  });
}

TEST_CASE("spin_cut_by_the_callers_deadline_teaches_nothing") {
  on_fresh_thread([] {
    for (int i = 0; i < 10; ++i) spin_once(adaptive_64us, d::spin_end::deadline, true);
    CHECK(d::spin_budget_shift() == 0);
    // ... although the starvation it saw still counts: one spin that runs out now shrinks.
    spin_once(adaptive_64us, d::spin_end::ran_out, std::nullopt);
    CHECK(d::spin_budget_shift() == 1);
  });
}

namespace {
// Fails, and keeps the thread off its core (asleep) for 20 µs per call.
bool never_and_asleep(void*) noexcept {
  std::this_thread::sleep_for(std::chrono::microseconds(20));
  return false;
}
}  // namespace

TEST_CASE("spin_until_sees_a_thread_kept_off_its_core") {
  on_fresh_thread([] {
    // Long budgets, so each spin surely reaches the point where it starts measuring (its
    // first clock read) well before it runs out; sleep_for never returns early.
    const auto o = budget_of(std::chrono::milliseconds(100));
    for (int i = 0; i < 3; ++i) CHECK_FALSE(d::spin_until(&never_and_asleep, nullptr, o, {}));
    // Starvation alone shrinks by one here; a crowded machine (spin_until also looks at the
    // run queue) may have shrunk it sooner.
    CHECK(d::spin_budget_shift() >= 1);
  });
}

TEST_CASE("a_crowded_machine_makes_spins_that_run_out_shrink_the_budget") {
  on_fresh_thread([] {
    d::note_crowded(true);
    spin_once(adaptive_64us, d::spin_end::ran_out, std::nullopt);
    CHECK(d::spin_budget_shift() == 1);
    d::note_crowded(false);
    spin_once(adaptive_64us, d::spin_end::ran_out, std::nullopt);
    CHECK(d::spin_budget_shift() == 1);
  });
}

TEST_CASE("zero_budget_never_spins_and_never_adapts") {
  on_fresh_thread([] {
    bool polled = false;
    auto poll = [](void* p) noexcept {
      *static_cast<bool*>(p) = true;
      return true;
    };
    CHECK_FALSE(d::spin_until(poll, &polled, budget_of(std::chrono::nanoseconds(0)), {}));
    CHECK_FALSE(polled);
    CHECK(d::spin_budget_shift() == 0);
  });
}

// wait_history: the per-site rule that switches between spinning and parking at once.
TEST_CASE("wait_history_parks_at_once_after_two_waits_over_twice_the_budget") {
  ump::wait_options o;
  o.spin = std::chrono::microseconds(50);
  d::wait_history h;
  CHECK_FALSE(h.park_at_once(o));
  h.record(std::chrono::microseconds(120), o);
  CHECK_FALSE(h.park_at_once(o));  // one long wait is not a pattern
  h.record(std::chrono::microseconds(500), o);
  CHECK(h.park_at_once(o));
  o.adaptive = false;
  CHECK_FALSE(h.park_at_once(o));  // only adaptive waiters change strategy
}

TEST_CASE("wait_history_waits_near_the_budget_stretch_the_spin_and_cast_no_vote") {
  ump::wait_options o;
  o.spin = std::chrono::microseconds(50);
  d::wait_history h;
  CHECK(h.spin_budget(o.spin, o) == o.spin);
  h.record(std::chrono::microseconds(60), o);
  CHECK(h.spin_budget(o.spin, o) == 2 * o.spin);  // the event came just after the spin gave up: spin twice as long
  h.record(std::chrono::microseconds(90), o);
  CHECK_FALSE(h.park_at_once(o));  // between one and two budgets: no vote on parking
  h.record_short();                // a stretched spin that succeeded keeps the stretch
  CHECK(h.spin_budget(o.spin, o) == 2 * o.spin);
  h.record(std::chrono::microseconds(200), o);
  CHECK(h.spin_budget(o.spin, o) == o.spin);  // longer than the stretched budget: back to the plain budget
  h.record(std::chrono::microseconds(200), o);
  REQUIRE(h.park_at_once(o));
  h.record(std::chrono::microseconds(80), o);
  CHECK(h.park_at_once(o));  // still parking: 80 µs is no evidence that spinning would pay
}

// A stretched site spins up to twice the budget it would otherwise spin; only adaptive
// waiters stretch.
TEST_CASE("wait_history_stretched_site_spins_twice_the_budget") {
  ump::wait_options o;
  o.spin = std::chrono::microseconds(50);
  const d::clock::duration planned = std::chrono::microseconds(50);
  d::wait_history h;
  CHECK(h.spin_budget(planned, o) == planned);
  h.record(std::chrono::microseconds(70), o);
  CHECK(h.spin_budget(planned, o) == 2 * planned);
  CHECK(h.spin_budget(planned / 4, o) == planned / 2);  // a budget shrunk for a busy machine
  o.adaptive = false;
  CHECK(h.spin_budget(planned, o) == planned);
}

TEST_CASE("wait_history_a_short_wait_turns_spinning_back_on") {
  ump::wait_options o;
  o.spin = std::chrono::microseconds(50);
  d::wait_history h;
  h.record(std::chrono::microseconds(500), o);
  h.record(std::chrono::microseconds(500), o);
  REQUIRE(h.park_at_once(o));
  h.record(std::chrono::microseconds(20), o);  // a sleep that ended within the budget
  CHECK_FALSE(h.park_at_once(o));
  h.record(std::chrono::microseconds(500), o);
  h.record(std::chrono::microseconds(500), o);
  REQUIRE(h.park_at_once(o));
  h.record_short();  // a spin that succeeded
  CHECK_FALSE(h.park_at_once(o));
}
