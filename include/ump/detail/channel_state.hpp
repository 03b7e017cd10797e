// ump/detail/channel_state.hpp — the typed shared state of one channel, and its nodes.
//
// Internal. state_base (state.hpp) holds everything that does not depend on the message and
// reply types. channel_state<M, R, E> adds what does: the node type (a reply cell followed by
// the message), so it can allocate nodes, delete them when the channel dies, and fail the
// requests still queued when the server goes.
#pragma once

#include <cstdint>

#include "ump/detail/cell.hpp"
#include "ump/detail/config.hpp"
#include "ump/detail/reply_protocol.hpp"
#include "ump/detail/state.hpp"
#include "ump/result.hpp"

namespace ump::detail {

// A pooled node: the reply cell, then the message (M = S for ump, a variant for ng). Aligned
// to a cache line, so that a request with small message and reply moves exactly one line
// to the server and one line back (a 64-byte node at malloc's 16-byte alignment straddles
// two lines three times in four).
template <class M, class R, class E>
class alignas(cache_line_size) node final : public reply_cell<R, E> {
 public:
  manual_storage<M> msg_;
};
#if !defined(UMP_MODEL_CHECK)
static_assert(sizeof(node<std::uint64_t, std::uint64_t, void>) == cache_line_size &&
                  alignof(node<std::uint64_t, std::uint64_t, void>) == cache_line_size,
              "a request with a small message and reply travels in exactly one cache line");
#endif

// The typed state: knows the node type, so it can allocate, delete and fail nodes.
template <class M, class R, class E>
class channel_state final : public state_base {
 public:
  using node_type = node<M, R, E>;
  using state_base::state_base;

  // A node from the pool, or a new one. May throw std::bad_alloc (allocation only).
  node_type* acquire_node() {
    if (cell_base* c = pop_free()) return static_cast<node_type*>(c);
    return allocate_node();
  }
  // The same through lane `l`'s stock (its lock held; bounded: the send lock).
  node_type* acquire_node(lane& l) {
    if (cell_base* c = pop_stock(l)) return static_cast<node_type*>(c);
    return allocate_node();
  }

 private:
  node_type* allocate_node() {
    auto* n = new node_type;
    n->owner_ = this;
    count_allocation();
    add_ref(client_group);
    return n;
  }

  void discard_message(cell_base* c) noexcept override { static_cast<node_type*>(c)->msg_.destroy(); }

  // Every node is back in the pool by now: each holder of one also held a reference.
  ~channel_state() override {
    std::size_t freed = 0;
    while (cell_base* c = pop_free()) {
      delete static_cast<node_type*>(c);
      ++freed;
    }
    UMP_ASSERT(freed == allocated(), "every reply cell returns to its pool before the channel dies");
  }
  void fail_queued(cell_base* c) noexcept override {
    auto* n = static_cast<node_type*>(c);
    if (!c->is_post_ && !claim_request(c)) return;  // withdrawn: its requester destroyed the message
    n->msg_.destroy();
    if (c->is_post_) {
      recycle(c);
      return;
    }
    // error<E>(errc) cannot throw.
    (void)complete(*this, *n, error<E>(errc::server_disappeared));
  }
};

}  // namespace ump::detail
