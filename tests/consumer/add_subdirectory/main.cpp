// Consumer of ump as a subproject (add_subdirectory): one round trip, a blocking requester
// against a server thread. Exits 0 on success, 1 with a message on a wrong outcome.
#include <cstdio>
#include <thread>

#include "ump/ump.hpp"

int main() {
  auto [srv, cli] = ump::channel<int, int>();
  std::thread server([s = std::move(srv)]() mutable {
    while (auto r = s.wait()) r->ctx.reply(r->msg + 1);
  });
  auto r = cli.req(41);
  { auto gone = std::move(cli); }
  server.join();
  if (!r || *r != 42) {
    std::fprintf(stderr, "add_subdirectory consumer: reply did not round-trip\n");
    return 1;
  }
  std::puts("add_subdirectory consumer: ok");
  return 0;
}
