// ump/detail/reply_protocol.hpp — the three ends of a reply cell's life: complete, consume,
// abandon.
//
// Internal. A request's reply cell (cell.hpp) is answered once by the replier (complete:
// reply_context's reply, fail and destructor, or the server's destruction), and on the other
// side either collected (consume: wait_reply, the reply awaiter, a blocking req) or given up
// (abandon). Whichever of the two sides comes last recycles the node into the channel's pool
// (state.hpp); the cell's state machine decides which one that is.
#pragma once

#include <utility>

#include "ump/detail/cell.hpp"
#include "ump/detail/scope_exit.hpp"
#include "ump/detail/state.hpp"
#include "ump/result.hpp"

namespace ump::detail {

// Builds the outcome in `cell` and publishes it. If the requester had abandoned, the outcome
// is destroyed and the node recycled here. If building the outcome throws, nothing was
// published and the caller still owns the cell.
template <class R, class E, class... A>
publish_result complete(state_base& st, reply_cell<R, E>& cell, A&&... a) {
  cell.outcome_.emplace(std::forward<A>(a)...);
  if (cell.publish() == publish_result::delivered) return publish_result::delivered;
  cell.outcome_.destroy();
  st.recycle(&cell);
  return publish_result::origin_gone;
}

// Requester side: moves the ready outcome out, destroys it and recycles the node, even if
// the move throws.
template <class R, class E>
result<R, E> consume(state_base& st, reply_cell<R, E>& cell) {
  scope_exit done([&]() noexcept {
    cell.outcome_.destroy();
    st.recycle(&cell);
  });
  return std::move(cell.outcome_.get());
}

// Requester side: gives up on a request. Cleans up if the outcome had already arrived.
template <class R, class E>
void abandon(state_base& st, reply_cell<R, E>& cell) noexcept {
  if (cell.abandon()) {
    cell.outcome_.destroy();
    st.recycle(&cell);
  }
}

// Requester side, after cell.begin_withdraw() succeeded: destroys the message (the server will
// never see it) and finishes the withdrawal, recycling the node if the server has already
// passed over it.
inline void withdraw_message(state_base& st, cell_base& cell) noexcept {
  st.discard_message(&cell);
  if (cell.finish_withdraw()) st.recycle(&cell);
}

}  // namespace ump::detail
