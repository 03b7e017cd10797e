// demo: a worker thread that answers questions, with ump and with ump::ng.
//
// Each worker is a handler object served on its own thread by ump::spawn_thread
// (ump/worker.hpp): req() answers a request, post() takes an ng post, term() runs when the
// loop ends and its result is what join() returns. The worker ends when its last client is
// gone. The README's first examples write the same loop by hand with srv.wait().
#include <cstdio>
#include <optional>
#include <string>

#include "ump/ng.hpp"
#include "ump/ump.hpp"
#include "ump/worker.hpp"

enum class calc_error { divide_by_zero };

struct division {
  int num;
  int den;
};

// Answers divisions, or fails them with calc_error. Never breaks the loop (req always returns
// std::nullopt); term reports how many requests it answered.
struct calculator {
  int answered = 0;
  std::optional<int> req(division d, ump::reply_context<int, calc_error> ctx) {
    ++answered;
    if (d.den == 0) {
      ctx.fail(calc_error::divide_by_zero);
    } else {
      ctx.reply(d.num / d.den);
    }
    return std::nullopt;
  }
  int term(std::optional<int>) { return answered; }
};

// Prints posted lines; a request asks how many lines it has written so far.
struct logger {
  std::size_t lines = 0;
  std::optional<std::size_t> post(std::string line) {
    std::printf("log: %s\n", line.c_str());
    ++lines;
    return std::nullopt;
  }
  std::optional<std::size_t> req(int, ump::reply_context<std::size_t> ctx) {
    ctx.reply(lines);  // "how many lines so far?"
    return std::nullopt;
  }
  std::size_t term(std::optional<std::size_t>) { return lines; }
};

int main() {
  // --- ump: requests and replies, with an application error type -------------------------
  auto [cli, worker] = ump::spawn_thread<division, int, calc_error>([] { return calculator{}; });

  if (auto r = cli.req({84, 2})) std::printf("84 / 2 = %d\n", *r);
  auto r = cli.req({1, 0});
  if (!r && r.error().is_app_error() && r.error().app() == calc_error::divide_by_zero)
    std::printf("1 / 0 = error: %s (divide_by_zero)\n", r.error().what());

  // Several requests in flight at once, collected later.
  auto a = cli.req_async({100, 10});
  auto b = cli.req_async({9, 3});
  std::printf("100 / 10 = %d, 9 / 3 = %d\n", *a.wait(), *b.wait());

  { auto gone = std::move(cli); }  // last client gone: the worker's loop ends
  const int answered = worker.join();
  std::printf("the calculator answered %d requests\n", answered);

  // --- ump::ng: one-way posts next to requests --------------------------------------------
  auto [log_cli, log_worker] = ump::ng::spawn_thread<std::string, int, std::size_t>([] { return logger{}; });
  (void)log_cli.post("starting");
  (void)log_cli.post("working");
  std::printf("logger has written %zu lines\n", *log_cli.req(0));  // posts before it are done
  { auto gone = std::move(log_cli); }
  const std::size_t lines = log_worker.join();
  return (answered == 4 && lines == 2) ? 0 : 1;
}
