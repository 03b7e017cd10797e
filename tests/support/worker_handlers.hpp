// Test support for the worker helpers (ump/worker.hpp, and worker_task in ump/asio.hpp):
// handlers shared by tests/worker_test.cpp, tests/async/worker_task_test.cpp
// and tests/asio/worker.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <utility>

#include "support/lifetime.hpp"
#include "support/support.hpp"  // failure()
#include "ump/reply_context.hpp"
#include "ump/result.hpp"

namespace ump_test {

// An ng handler: adds up posts, answers a request with the sum so far; the post 0 breaks the
// loop with the sum.
struct summer {
  std::uint64_t sum = 0;
  std::optional<std::uint64_t> post(tracked p) {
    if (p.value() == 0) return sum;
    sum += p.value();
    return std::nullopt;
  }
  std::optional<std::uint64_t> req(tracked, ump::reply_context<tracked> ctx) {
    ctx.reply(tracked(sum));
    return std::nullopt;
  }
};

#if defined(__cpp_exceptions)
// Echoes every request, except 13: that one throws std::runtime_error("unlucky"). term sets
// *termed (when given) and passes the stop value on.
struct thrower {
  bool* termed = nullptr;
  std::optional<int> req(tracked msg, ump::reply_context<tracked> ctx) {
    if (msg.value() == 13) throw std::runtime_error("unlucky");
    ctx.reply(std::move(msg));
    return std::nullopt;
  }
  std::optional<int> term(std::optional<int> stop) {
    if (termed != nullptr) *termed = true;
    return stop;
  }
};
#endif

}  // namespace ump_test
