// Shared pieces of the model-checking scenarios (tests/model/): Relacy through ump's own
// headers, the per-execution setup of the modelled futex, and a scenario base.
#pragma once

#include "ump/detail/config.hpp"  // first: brings in Relacy (UMP_MODEL_CHECK is defined)

#if !defined(UMP_MODEL_CHECK)
#error "tests/model/ is compiled with UMP_MODEL_CHECK"
#endif

#include <chrono>

#include "ump/detail/channel_state.hpp"
#include "ump/options.hpp"

namespace ump::detail::model {

// Creates / destroys the modelled futex (park_model.cpp). Relacy objects live in one
// execution, so every execution makes its own.
void begin_execution();
void end_execution();

// A channel whose waits park at once: no spin phase, nothing adaptive.
inline channel_options parking() {
  channel_options o;
  o.waiting.spin = std::chrono::nanoseconds(0);
  o.waiting.spin_before_yield = std::chrono::nanoseconds(0);
  o.waiting.adaptive = false;
  return o;
}

// Base of every scenario. The derived class provides setup() (runs before the threads,
// builds the channel), thread(i), and finish() (runs after them, checks and tears down
// everything it built). After finish(), no channel state may be left: every reference was
// dropped exactly once and the state was deleted (its destructor checks, with
// UMP_ENABLE_ASSERTS, that every node it allocated came back to its pool).
template <class Derived, rl::thread_id_t Threads, rl::test_result_e Expected = rl::test_result_success>
struct scenario : rl::test_suite<Derived, Threads, Expected> {
  void before() {
    model_live_states = 0;  // a failed execution of an earlier scenario may have left some
    begin_execution();
    self().setup();
  }
  void after() {
    self().finish();
    RL_ASSERT(model_live_states == 0);
    end_execution();
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

}  // namespace ump::detail::model
