// Coroutine workloads: client and server coroutines on one thread (the inline path: no
// thread switch at all), and a coroutine client talking to a server thread, resumed either
// inline on the server's thread or on its own run_loop thread.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <thread>

#include "workloads.hpp"
#include "ump/run_loop.hpp"
#include "ump/task.hpp"
#include "ump/ump.hpp"

namespace ump_bench {
namespace {

using chan_server = ump::server<std::uint64_t, std::uint64_t>;
using chan_client = ump::client<std::uint64_t, std::uint64_t>;

ump::task<void> serve(chan_server srv) {
  for (;;) {
    auto r = co_await srv.async_wait();
    if (!r) co_return;  // clients_disappeared
    r->ctx.reply(r->msg + 1);
  }
}

ump::task<std::uint64_t> ask_loop(benchmark::State& state, chan_client cli) {
  std::uint64_t x = 1, wrong = 0;
  for (auto _ : state) {
    auto r = co_await cli.areq(x);
    wrong += *r != x + 1;
    ++x;
  }
  co_return wrong;
}

// Both ends on the benchmark thread: the client's send resumes the parked server coroutine
// inline, which replies before the client even suspends.
void run_coro_same_thread(benchmark::State& state) {
  ump::run_loop loop;
  auto [srv, cli] = ump::channel<std::uint64_t, std::uint64_t>();
  loop.spawn(serve(std::move(srv)));
  auto t = ask_loop(state, std::move(cli));
  const std::uint64_t wrong = loop.run(std::move(t));
  loop.run();  // lets the server see clients_disappeared and finish
  if (wrong) state.SkipWithError("wrong reply");
}

// A server thread; the client coroutine resumes through `Sched`.
template <bool OnLoop>
void run_coro_client_thread_server(benchmark::State& state) {
  auto [srv, cli] = ump::channel<std::uint64_t, std::uint64_t>();
  std::thread server([srv = std::move(srv)]() mutable {
    while (auto r = srv.wait()) r->ctx.reply(r->msg + 1);
  });
  {
    ump::run_loop loop;
    auto body = [&](chan_client c) -> ump::task<std::uint64_t> {
      std::uint64_t x = 1, wrong = 0;
      for (auto _ : state) {
        if constexpr (OnLoop) {
          auto r = co_await c.areq(x, loop.scheduler());
          wrong += *r != x + 1;
        } else {
          auto r = co_await c.areq(x);
          wrong += *r != x + 1;
        }
        ++x;
      }
      co_return wrong;
    };
    auto t = body(std::move(cli));
    if (loop.run(std::move(t)) != 0) state.SkipWithError("wrong reply");
  }
  server.join();
}

const bool registered = [] {
  benchmark::RegisterBenchmark("coro_same_thread/ump", run_coro_same_thread)->UseRealTime()->ReportAggregatesOnly(true);
  benchmark::RegisterBenchmark("coro_client_thread_server/ump_inline", run_coro_client_thread_server<false>)
      ->UseRealTime()
      ->ReportAggregatesOnly(true);
  benchmark::RegisterBenchmark("coro_client_thread_server/ump_run_loop", run_coro_client_thread_server<true>)
      ->UseRealTime()
      ->ReportAggregatesOnly(true);
  return true;
}();

}  // namespace
}  // namespace ump_bench
