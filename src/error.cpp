// Error messages, assertion reporting and test hooks.
#include "ump/detail/config.hpp"  // first: in model-checking builds it brings in Relacy

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "ump/result.hpp"

namespace ump {

const char* to_string(errc c) noexcept {
  switch (c) {
    case errc::server_disappeared:
      return "server disappeared";
    case errc::clients_disappeared:
      return "clients disappeared";
    case errc::no_reply:
      return "no reply";
    case errc::origin_disappeared:
      return "origin disappeared";
    case errc::app_error:
      return "application error";
    case errc::timed_out:
      return "timed out";
  }
  return "unknown ump error";
}

namespace detail {

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

void throw_bad_result_access(errc c) {
#if UMP_HAS_EXCEPTIONS
  throw bad_result_access(c);
#else
  std::fprintf(stderr, "ump: result::value() called on an error: %s\n", to_string(c));
  std::fflush(stderr);
  std::abort();
#endif
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

}  // namespace detail
}  // namespace ump
