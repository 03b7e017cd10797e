// ump/reply_context.hpp — the server's obligation to answer one request.
//
// A reply_context comes with every request the server receives. It must be consumed exactly
// once: ctx.reply(r) delivers r, ctx.fail(e) delivers errc::app_error with e (on an lvalue or
// an rvalue alike: either form consumes the context). Destroying it unconsumed delivers
// errc::no_reply. Consuming it twice, or using a moved-from context, aborts with a message
// naming the rule, in every build. It is move-only, may be moved to
// any thread, and stays valid after the server (and every client) is gone: it keeps the
// channel's shared state alive until it is consumed or destroyed.
//
// Memory ordering: everything the replying thread wrote before reply()/fail() is visible to
// the requester once its wait returns the outcome.
#pragma once

#include <type_traits>
#include <utility>

#include "ump/detail/access.hpp"
#include "ump/detail/cell.hpp"
#include "ump/detail/reply_protocol.hpp"
#include "ump/detail/state.hpp"
#include "ump/result.hpp"

namespace ump {

template <class R, class E = void>
class reply_context {
 public:
  reply_context(reply_context&& o) noexcept
      : st_(std::exchange(o.st_, nullptr)), cell_(std::exchange(o.cell_, nullptr)) {}
  reply_context& operator=(reply_context&& o) noexcept {
    if (this != &o) {
      finish_unreplied();
      st_ = std::exchange(o.st_, nullptr);
      cell_ = std::exchange(o.cell_, nullptr);
    }
    return *this;
  }
  reply_context(const reply_context&) = delete;
  reply_context& operator=(const reply_context&) = delete;

  // Effect: delivers `r` to the requester and wakes it, consuming this context (lvalue or
  // rvalue). Never blocks. Returns a reply_status that may be ignored: errc::origin_disappeared
  // if the requester stopped waiting (r is destroyed), success otherwise.
  // If moving r into the cell throws, nothing is delivered, the exception propagates and this
  // context stays live (destroying it then delivers no_reply).
  // Aborts (every build): this context was already consumed or moved from.
  reply_status<E> reply(R r) { return deliver(std::move(r)); }

  // Effect: delivers errc::app_error carrying `e`. Same consumption, blocking, status,
  // exception behaviour and abort as reply(). Only for channels whose E is not void.
  template <class E2 = E>
  requires(!std::is_void_v<E>) reply_status<E> fail(E2 e) { return deliver(error<E>(std::in_place, std::move(e))); }

  // Racy probe: false once the requester has stopped waiting (wait_reply destroyed, timed out,
  // coroutine destroyed). A false answer is final; a true answer may be stale at once.
  [[nodiscard]] bool requester_waiting() const noexcept {
    UMP_CHECK(cell_ != nullptr, "reply_context used after reply, fail or move");
    return !cell_->abandoned();
  }

  // True while this context still owes an answer.
  [[nodiscard]] bool pending() const noexcept { return cell_ != nullptr; }

  ~reply_context() { finish_unreplied(); }

 private:
  friend struct detail::access;
  using cell_type = detail::reply_cell<R, E>;

  // No reference of its own: the request's node holds one until it is recycled.
  reply_context(detail::state_base* st, cell_type* cell) noexcept : st_(st), cell_(cell) {}

  template <class A>
  reply_status<E> deliver(A&& a) {
    UMP_CHECK(cell_ != nullptr, "a reply_context is consumed once: reply or fail after reply, fail or move");
    const auto r = detail::complete(*st_, *cell_, std::forward<A>(a));
    // Once published, the requester may recycle the node and the state may be gone.
    cell_ = nullptr;
    st_ = nullptr;
    if (r == detail::publish_result::origin_gone) return reply_status<E>(error<E>(errc::origin_disappeared));
    return reply_status<E>();
  }

  void finish_unreplied() noexcept {
    if (cell_ != nullptr) {
      (void)detail::complete(*st_, *cell_, error<E>(errc::no_reply));
      cell_ = nullptr;
    }
    st_ = nullptr;
  }

  detail::state_base* st_;
  cell_type* cell_;
};

}  // namespace ump
