// ump/detail/pending_reply.hpp — pending_reply: one request whose reply is still to collect.
//
// Internal. The one way to wait for, collect and give up on a reply, shared by wait_reply,
// the reply awaiter (coroutines) and the Asio adapter.
#pragma once

#include <utility>

#include "ump/detail/cell.hpp"
#include "ump/detail/config.hpp"
#include "ump/detail/park.hpp"
#include "ump/detail/reply_protocol.hpp"
#include "ump/detail/state.hpp"
#include "ump/result.hpp"

namespace ump::detail {

// Owns one pending request: its cell, whose node holds the reference that keeps the channel
// alive (state.hpp), or the outcome of a request that was never sent (early_). Shared by
// wait_reply and the reply awaiter: one way to wait, consume and abandon, for threads and
// coroutines.
template <class R, class E>
class pending_reply {
 public:
  pending_reply() noexcept = default;
  pending_reply(state_base* st, reply_cell<R, E>* cell) noexcept : st_(st), cell_(cell) {}
  // A request that was never sent: collecting it reports `early`.
  explicit pending_reply(errc early) noexcept : early_(early) {}
  pending_reply(pending_reply&& o) noexcept
      : st_(std::exchange(o.st_, nullptr)),
        cell_(std::exchange(o.cell_, nullptr)),
        early_(std::exchange(o.early_, errc{})) {}
  pending_reply& operator=(pending_reply&& o) noexcept {
    if (this != &o) {
      reset();
      st_ = std::exchange(o.st_, nullptr);
      cell_ = std::exchange(o.cell_, nullptr);
      early_ = std::exchange(o.early_, errc{});
    }
    return *this;
  }
  ~pending_reply() { reset(); }

  // True until the outcome is collected (or the request abandoned, or this moved from).
  [[nodiscard]] bool valid() const noexcept { return cell_ != nullptr || early_ != errc{}; }
  // True once collecting will not wait.
  [[nodiscard]] bool ready() const noexcept { return early_ != errc{} || (cell_ != nullptr && cell_->is_ready()); }
  // True while a reply is still to come from the server (the awaiter may register for it).
  [[nodiscard]] bool awaiting_reply() const noexcept { return cell_ != nullptr && !cell_->is_ready(); }
  reply_cell<R, E>* cell() const noexcept { return cell_; }

  // Blocks until the outcome or the deadline. On time-out the request is abandoned.
  result<R, E> wait(deadline dl) {
    if (early_ != errc{}) return error<E>(std::exchange(early_, errc{}));
    UMP_CHECK(cell_ != nullptr, "a wait_reply is collected once (used after wait, co_await or move)");
    if (!cell_->wait_ready(st_->wait_opts(), dl)) {
      cell_ = nullptr;  // abandoned: the replier recycles it
      st_ = nullptr;
      return error<E>(errc::timed_out);
    }
    return take();
  }

  // Precondition: ready. Moves the outcome out and gives the cell back.
  result<R, E> take() {
    if (early_ != errc{}) return error<E>(std::exchange(early_, errc{}));
    auto* c = std::exchange(cell_, nullptr);
    return consume(*std::exchange(st_, nullptr), *c);  // recycles the node: last use of st_
  }

  void reset() noexcept {
    if (cell_ != nullptr) abandon(*st_, *std::exchange(cell_, nullptr));
    st_ = nullptr;
  }

  // After register_async_waiter succeeded: abandons the request unless its outcome already
  // arrived. Returns true if abandoned (the waiter will never be called; this is now empty),
  // false if the waiter has been or is being called (take() the outcome as usual).
  // On success, take() then reports errc::origin_disappeared.
  bool withdraw_async() noexcept {
    if (cell_ == nullptr || !cell_->withdraw_async_waiter()) return false;
    cell_ = nullptr;  // abandoned: the replier recycles it
    st_ = nullptr;
    early_ = errc::origin_disappeared;
    return true;
  }

 private:
  state_base* st_ = nullptr;
  reply_cell<R, E>* cell_ = nullptr;
  errc early_{};  // nonzero: the outcome of a request that never got (or stopped) waiting
};

}  // namespace ump::detail
