// ump/detail/pending_reply.hpp — pending_reply: one request whose reply is still to collect.
//
// Internal. The one way to wait for, collect and give up on a reply, shared by wait_reply,
// the reply awaiter (coroutines) and the Asio adapter.
#pragma once

#include <stop_token>
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
  // The outcome of a request that was never sent (errc{} otherwise).
  [[nodiscard]] errc early() const noexcept { return early_; }

  // Blocks until the outcome or the deadline. On time-out the request is abandoned. With a
  // stop token, a stop request withdraws the request (or abandons it once the server took
  // it) and reports errc::cancelled.
  result<R, E> wait(deadline dl, const std::stop_token* stop = nullptr) {
    if (early_ != errc{}) return error<E>(std::exchange(early_, errc{}));
    UMP_CHECK(cell_ != nullptr, "a wait_reply is collected once (used after wait, co_await or move)");
    wait_end end;
    if (stop == nullptr || !stop->stop_possible()) {
      end = cell_->wait_ready(st_->wait_opts(), dl);
    } else {
      reply_cell<R, E>* const c = cell_;
      // Runs on the thread that requests stop (or here, if it already was); its destructor
      // waits for a run in progress, so the cell outlives it.
      std::stop_callback interrupt(*stop, [c]() noexcept { c->interrupt(); });
      end = c->wait_ready(st_->wait_opts(), dl);
    }
    switch (end) {
      case wait_end::ready:
        return take();
      case wait_end::withdrawn:
        withdraw_message(*st_, *cell_);
        forget();
        return error<E>(errc::cancelled);
      case wait_end::abandoned:
        forget();  // the replier recycles it
        return error<E>(errc::cancelled);
      case wait_end::timed_out:
        break;
    }
    forget();  // abandoned: the replier recycles it
    return error<E>(errc::timed_out);
  }

  // Gives up on the request without waiting (wait_reply::cancel). Returns true if the server
  // will never see it: withdrawn before the server took it (its message is destroyed here),
  // or never sent. Otherwise abandons it (the reply is destroyed when it comes, or now if it
  // is already there) and returns false. Either way this is empty afterwards.
  bool cancel() noexcept {
    if (early_ != errc{}) {
      early_ = errc{};
      return true;  // never sent
    }
    UMP_CHECK(cell_ != nullptr, "a wait_reply is collected once (used after wait, co_await or move)");
    reply_cell<R, E>* const c = std::exchange(cell_, nullptr);
    state_base* const st = std::exchange(st_, nullptr);
    if (c->begin_withdraw()) {
      withdraw_message(*st, *c);
      return true;
    }
    abandon(*st, *c);
    return false;
  }

  // Drops the cell without touching it: someone else now owns the node.
  void forget() noexcept {
    cell_ = nullptr;
    st_ = nullptr;
  }
  state_base* state() const noexcept { return st_; }

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

  // After register_async_waiter succeeded (an adapter cancelling, ump/asio.hpp): withdraws
  // the request if the server has not taken it (its message is destroyed here), else
  // abandons it unless its outcome already arrived. Returns true if it did either (the
  // waiter will never be called; take() then reports errc::cancelled), false if the waiter
  // has been or is being called (take() the outcome as usual).
  bool withdraw_async() noexcept {
    if (cell_ == nullptr) return false;
    if (cell_->begin_withdraw()) {
      withdraw_message(*st_, *cell_);  // no publish will come: the waiter is never called
    } else if (!cell_->withdraw_async_waiter()) {
      return false;
    }
    forget();
    early_ = errc::cancelled;
    return true;
  }

 private:
  state_base* st_ = nullptr;
  reply_cell<R, E>* cell_ = nullptr;
  errc early_{};  // nonzero: the outcome of a request that never got (or stopped) waiting
};

}  // namespace ump::detail
