// What ump/detail/config.hpp declares out of line: reporting a broken usage rule or a fatal
// condition, and the test-only delay hooks.
#include "ump/detail/config.hpp"  // first: in model-checking builds it brings in Relacy

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace ump::detail {

void assert_fail(const char* rule, const char* file, int line) noexcept {
#if defined(UMP_MODEL_CHECK)
  // Under the model checker (tests/model/) a broken rule fails the current execution, and
  // Relacy prints the interleaving that led to it. fail_test does not come back.
  rl::ctx().fail_test(rule, rl::test_result_user_assert_failed, rl::debug_info("", file, static_cast<unsigned>(line)));
#endif
  std::fprintf(stderr, "ump: usage rule broken: %s (%s:%d)\n", rule, file, line);
  std::fflush(stderr);
  std::abort();
}

void fatal(const char* what) noexcept {
  std::fprintf(stderr, "%s\n", what);
  std::fflush(stderr);
  std::abort();
}

#if defined(UMP_TEST_HOOKS)
namespace {
std::atomic<delay_hook> g_hook{nullptr};
}
// ORDERING: release, pairs with run_delay_hook's acquire load: a thread that calls the hook
// sees what the test set up before installing it.
void set_delay_hook(delay_hook hook) noexcept { g_hook.store(hook, std::memory_order_release); }
void run_delay_hook(delay_point p) noexcept {
  // ORDERING: acquire, pairs with set_delay_hook's release store.
  if (delay_hook h = g_hook.load(std::memory_order_acquire)) h(p);
}
#endif

}  // namespace ump::detail
