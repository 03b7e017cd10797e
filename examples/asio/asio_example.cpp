// asio_example: ump requests as Asio asynchronous operations (ump/asio.hpp).
//   1. A server and a client, both Asio coroutines (use_awaitable) on one io_context.
//   2. A callback request against a server thread; the callback runs on the io_context.
//   3. A request raced against a timer: the loser is cancelled, and the server's reply()
//      learns that its requester gave up (errc::origin_disappeared).
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <optional>

#include "ump/asio.hpp"
#include "ump/ump.hpp"
#include "ump/worker.hpp"

using namespace asio::experimental::awaitable_operators;

asio::awaitable<void> doubler(ump::server<int, int>& srv) {
  while (auto req = co_await ump::asio::async_wait(srv, asio::use_awaitable)) {
    auto& [msg, ctx] = *req;
    ctx.reply(msg * 2);
  }
}

asio::awaitable<void> asker(ump::client<int, int> cli, int* ok) {
  for (int i = 1; i <= 3; ++i) {
    auto r = co_await ump::asio::async_req(cli, i, asio::use_awaitable);
    std::printf("2 * %d = %d\n", i, *r);
    if (*r == 2 * i) ++*ok;
  }
}

int main() {
  int ok = 0;

  // --- 1. both ends as Asio coroutines ----------------------------------------------------
  {
    asio::io_context ioc;
    auto [srv, cli] = ump::channel<int, int>();
    asio::co_spawn(ioc, doubler(srv), asio::detached);
    asio::co_spawn(ioc, asker(std::move(cli), &ok), asio::detached);
    ioc.run();  // the asker's client goes with it; then the server's wait fails and it ends
  }

  // --- 2. a callback against a server thread (ump/worker.hpp) ------------------------------
  {
    struct incrementer {
      std::optional<int> req(int msg, ump::reply_context<int> ctx) {
        ctx.reply(msg + 1);
        return std::nullopt;
      }
    };
    auto [cli, worker] = ump::spawn_thread<int, int>([] { return incrementer{}; });
    asio::io_context ioc;
    ump::asio::async_req(cli, 41, asio::bind_executor(ioc, [&ok](ump::result<int> r) {
                           std::printf("41 + 1 = %d (on the io_context's thread)\n", *r);
                           if (r && *r == 42) ++ok;
                         }));
    ioc.run();  // returns once the callback has run
    { auto gone = std::move(cli); }
    (void)worker.join();
  }

  // --- 3. a request that loses against a timer --------------------------------------------
  {
    auto ends = ump::channel<int, int>();  // not a structured binding: lambdas capture these (clang 14)
    auto& srv = ends.first;
    auto& cli = ends.second;
    asio::io_context ioc;
    asio::co_spawn(
        ioc,
        [&cli, &ok]() -> asio::awaitable<void> {
          asio::steady_timer timeout(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
          // Nobody serves this request yet: the timer wins and the request is cancelled.
          auto outcome =
              co_await (ump::asio::async_req(cli, 7, asio::use_awaitable) || timeout.async_wait(asio::use_awaitable));
          if (outcome.index() == 1) {
            std::printf("request timed out and was abandoned\n");
            ++ok;
          }
        },
        asio::detached);
    ioc.run();
    auto late = srv.try_wait();  // the server still receives it...
    if (late && *late) {
      auto r = (*late)->ctx.reply(14);  // ...but nobody is waiting any more
      std::printf("late reply: %s\n", r ? "delivered" : r.error().what());
      if (!r && r.error() == ump::errc::origin_disappeared) ++ok;
    }
  }

  return ok == 6 ? 0 : 1;
}
