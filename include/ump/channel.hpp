// ump/channel.hpp — channel(): makes a linked server and client.
#pragma once

#include <utility>

#include "ump/client.hpp"
#include "ump/options.hpp"
#include "ump/server.hpp"

namespace ump {

// Effect: allocates one shared state (queue, counters, cell pool) and returns the server and
// the first client, linked to it. Use structured bindings:
//   auto [srv, cli] = ump::channel<Request, Reply, AppError>();
// S: request type, R: reply type, E: application error type (void for none). S and R must
// be move-constructible; neither needs to be default-constructible or copyable.
// Errors: throws std::bad_alloc if allocation fails (aborts without exceptions).
template <class S, class R, class E = void>
std::pair<server<S, R, E>, client<S, R, E>> channel(channel_options opts = {}) {
  auto* st = new detail::channel_state<S, R, E>(opts);
  server<S, R, E> srv(st);  // owns the server-group reference from here on
  return {std::move(srv), client<S, R, E>(st)};
}

}  // namespace ump
