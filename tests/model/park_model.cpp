// The wait primitive under the model checker: replaces src/park.cpp in tests/model/.
//
// A futex compares the word and goes to sleep atomically with respect to a wake on the same
// word (both run under the kernel's hash-bucket lock), may wake spuriously, and a wake with
// no sleeper is lost. Here one Relacy mutex plays the bucket lock for every word and one
// Relacy condition variable the sleepers: park_while_equal checks the word under the mutex
// and waits on the condition variable; unpark_all takes the mutex and wakes every sleeper.
// Sleepers woken for another word re-check their condition, as after a spurious futex wake.
// Relacy's condition variable may also wake spuriously on its own. A wait with a deadline
// may time out at any point (Relacy chooses); the real clock is not modelled.
//
// Spinning: with a spin budget of 0 (what the scenarios use) spin_until returns at once, as
// in src/park.cpp. A non-zero budget is modelled as a few polls, each followed by a yield.
#include "ump/detail/park.hpp"

#include "model_support.hpp"

namespace ump::detail {
namespace {

struct futex_model {
  rl::mutex m;
  rl::condition_variable sleepers;
};
futex_model* g_futex = nullptr;

futex_model& futex() noexcept {
  RL_ASSERT(g_futex != nullptr);
  return *g_futex;
}

constexpr int model_spin_polls = 3;

struct word_watch {
  const atomic<std::uint32_t>* word;
  std::uint32_t value;
  std::uint32_t seen;
};
bool word_changed(void* ctx) noexcept {
  auto* w = static_cast<word_watch*>(ctx);
  // ORDERING: acquire, as in src/park.cpp.
  w->seen = w->word->load(std::memory_order_acquire);
  return w->seen != w->value;
}

}  // namespace

bool spin_until(bool (*poll)(void* ctx) noexcept, void* ctx, const wait_options& opts, deadline,
                wait_history* hist) noexcept {
  if (opts.spin.count() <= 0) return false;
  for (int i = 0; i < model_spin_polls; ++i) {
    if (poll(ctx)) {
      if (hist != nullptr) hist->record_short();
      return true;
    }
    cpu_relax();
  }
  return false;
}

std::uint32_t spin_while_equal(const atomic<std::uint32_t>& word, std::uint32_t value, const wait_options& opts,
                               deadline dl, wait_history* hist) noexcept {
  word_watch w{&word, value, value};
  return spin_until(&word_changed, &w, opts, dl, hist) ? w.seen : value;
}

bool park_while_equal(const atomic<std::uint32_t>& word, std::uint32_t value, deadline dl) noexcept {
  futex_model& f = futex();
  bool in_time = true;
  f.m.lock(RL_INFO);
  // ORDERING: relaxed, like the kernel's read of the futex word; the mutex orders it after
  // any unpark_all that ran before (and so after the waker's RMW on the word).
  if (word.load(std::memory_order_relaxed) == value) {
    if (dl.none()) {
      f.sleepers.wait(f.m, RL_INFO);
    } else {
      in_time = f.sleepers.wait_for(f.m, 0, RL_INFO);
    }
  }
  f.m.unlock(RL_INFO);
  return in_time;
}

void unpark_all(const atomic<std::uint32_t>&) noexcept {
  futex_model& f = futex();
  f.m.lock(RL_INFO);
  f.sleepers.notify_all(RL_INFO);
  f.m.unlock(RL_INFO);
}

namespace model {
void begin_execution() {
  // A failed execution is abandoned where it stood (Relacy stops there): its futex, if
  // any, is left alone.
  g_futex = new futex_model;
}
void end_execution() {
  delete g_futex;
  g_futex = nullptr;
}
}  // namespace model

}  // namespace ump::detail
