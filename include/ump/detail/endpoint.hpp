// ump/detail/endpoint.hpp — the machinery shared by ump:: and ump::ng:: clients and servers.
//
// Internal. client_core<M, R, E> and server_core<M, R, E> implement sending, waiting,
// cloning, weak references and receiving once, for a node message type M (S for ump,
// std::variant<P, S> for ng). The public classes only say how to build and unpack M.
#pragma once

#include <coroutine>
#include <memory>
#include <optional>
#include <utility>

#include "ump/detail/state.hpp"
#include "ump/reply_context.hpp"
#include "ump/result.hpp"
#include "ump/scheduler.hpp"
#include "ump/wait_reply.hpp"

namespace ump::detail {

template <class M, class R, class E>
class client_core {
 public:
  using state_type = channel_state<M, R, E>;
  using node_type = typename state_type::node_type;

  client_core(const client_core& o) : st_(o.st_) {
    UMP_ASSERT(st_ != nullptr, "client copied after move");
    st_->add_ref(state_base::client_group);
    st_->add_strong();
    make_producer();
  }
  client_core(client_core&& o) noexcept : st_(std::exchange(o.st_, nullptr)), prod_(std::move(o.prod_)) {}
  client_core& operator=(client_core o) noexcept {
    std::swap(st_, o.st_);
    std::swap(prod_, o.prod_);
    return *this;
  }
  ~client_core() {
    if (st_ == nullptr) return;
    prod_.reset();  // the producer token must go before the queue can
    st_->drop_strong();
    st_->release(state_base::client_group);
  }

  // Adopts a strong reference the caller already counted (channel(), upgrade()).
  explicit client_core(state_type* st) : st_(st) { make_producer(); }

  state_type* state() const noexcept { return st_; }

  // Sends a request built from `a...`. Returns the node, or nullptr if the server is gone
  // (the message was destroyed). Throws only what building M (or allocation) throws, and
  // then nothing was sent.
  template <class... A>
  node_type* send(bool is_post, A&&... a) {
    UMP_ASSERT(st_ != nullptr, "client used after move");
    node_type* n = st_->acquire_node();
    {
      scope_exit give_back([&]() noexcept { st_->recycle(n); });
      n->msg_.emplace(std::forward<A>(a)...);
      give_back.dismiss();
    }
    n->is_post_ = is_post;
    n->reset();
    if (st_->send(n, producer_for())) return n;
    n->msg_.destroy();
    st_->recycle(n);
    return nullptr;
  }

  // Blocking request: send, then wait on the cell with this channel's spin budget.
  template <class... A>
  result<R, E> request(A&&... a) {
    node_type* n = send(false, std::forward<A>(a)...);
    if (n == nullptr) return error<E>(errc::server_disappeared);
    (void)n->wait_ready(st_->wait_opts(), {});  // no deadline: cannot time out
    return consume(*st_, *n);
  }

  template <class... A>
  result<wait_reply<R, E>, E> request_async(A&&... a) {
    node_type* n = send(false, std::forward<A>(a)...);
    if (n == nullptr) return error<E>(errc::server_disappeared);
    return wait_reply<R, E>(pending_reply<R, E>(st_, n));
  }

  template <class Sched, class... A>
  reply_awaiter<R, E, Sched> request_awaitable(Sched sched, A&&... a) {
    node_type* n = send(false, std::forward<A>(a)...);
    if (n == nullptr) return reply_awaiter<R, E, Sched>(errc::server_disappeared, std::move(sched));
    return {pending_reply<R, E>(st_, n), std::move(sched)};
  }

  template <class... A>
  result<void, E> post(A&&... a) {
    if (send(true, std::forward<A>(a)...) == nullptr) return error<E>(errc::server_disappeared);
    return {};
  }

 private:
  producer& producer_for() noexcept { return *prod_; }
  // Each client object gets its own explicit producer (FIFO per client object). If that
  // allocation throws, the reference this object was to own is given back.
  void make_producer() {
    scope_exit undo([this]() noexcept {
      st_->drop_strong();
      st_->release(state_base::client_group);
    });
    prod_ = std::make_unique<producer>(st_->queue());
    undo.dismiss();
  }
  state_type* st_;
  std::unique_ptr<producer> prod_;
};

// A weak reference: keeps the shared state, not the server's clients, alive.
template <class M, class R, class E>
class weak_core {
 public:
  using state_type = channel_state<M, R, E>;
  explicit weak_core(state_type* st) noexcept : st_(st) { st_->add_ref(state_base::client_group); }
  weak_core(const weak_core& o) noexcept : weak_core(o.st_) {}
  weak_core(weak_core&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  weak_core& operator=(weak_core o) noexcept {
    std::swap(st_, o.st_);
    return *this;
  }
  ~weak_core() {
    if (st_ != nullptr) st_->release(state_base::client_group);
  }
  // increment-if-not-zero on the strong count; on success the caller adopts a strong client.
  state_type* try_upgrade() const noexcept {
    UMP_ASSERT(st_ != nullptr, "weak_client used after move");
    if (!st_->try_add_strong()) return nullptr;
    st_->add_ref(state_base::client_group);
    return st_;
  }

 private:
  state_type* st_;
};

template <class M, class R, class E>
class server_core {
 public:
  using state_type = channel_state<M, R, E>;
  using node_type = typename state_type::node_type;

  explicit server_core(state_type* st) noexcept : st_(st) {}
  server_core(server_core&& o) noexcept : st_(std::exchange(o.st_, nullptr)) {}
  server_core& operator=(server_core&& o) noexcept {
    if (this != &o) {
      close();
      st_ = std::exchange(o.st_, nullptr);
    }
    return *this;
  }
  ~server_core() { close(); }

  state_type* state() const noexcept { return st_; }

  poll_status take(node_type*& out, deadline dl) noexcept {
    UMP_ASSERT(st_ != nullptr, "server used after move");
    cell_base* c = nullptr;
    const poll_status s = st_->take(c, dl);
    out = static_cast<node_type*>(c);
    return s;
  }
  poll_status try_take(node_type*& out) noexcept {
    UMP_ASSERT(st_ != nullptr, "server used after move");
    cell_base* c = nullptr;
    const poll_status s = st_->try_take(c);
    out = static_cast<node_type*>(c);
    return s;
  }

  // A reply context for a received request node (adds a server-group reference).
  reply_context<R, E> context_for(node_type* n) noexcept { return reply_context<R, E>(st_, n); }

  // Moves the message out of a received node into `f(M&&)`'s result, destroying the node's
  // copy whatever happens.
  template <class F>
  decltype(auto) unpack(node_type* n, F&& f) {
    scope_exit destroy([n]() noexcept { n->msg_.destroy(); });
    return std::forward<F>(f)(std::move(n->msg_.get()));
  }

  void recycle(node_type* n) noexcept { st_->recycle(n); }

 private:
  void close() noexcept {
    if (st_ == nullptr) return;
    st_->close();
    std::exchange(st_, nullptr)->release(state_base::server_group);
  }
  state_type* st_;
};

// The awaiter behind server::async_wait(). `Server` provides core() and convert(node*) →
// the message type, and clients_gone() → the error result.
template <class Server, class Sched>
class [[nodiscard]] server_awaiter {
 public:
  server_awaiter(Server& s, Sched sched) noexcept : s_(&s), sched_(std::move(sched)) {}
  server_awaiter(server_awaiter&&) noexcept = default;
  server_awaiter& operator=(server_awaiter&&) = delete;
  ~server_awaiter() {
    // The coroutine was destroyed while parked here: withdraw the waiter if no sender has
    // claimed it yet (if one has, its resumption is already under way).
    if (registered_) (void)s_->core().state()->unregister_server_waiter();
  }

  bool await_ready() noexcept { return (status_ = s_->core().try_take(node_)) != poll_status::empty; }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    h_ = h;
    for (;;) {
      const std::uint32_t c = s_->core().state()->load_ctl();
      if (s_->core().state()->pending(c) > 0 || (c & state_base::no_clients) != 0) {
        if ((status_ = s_->core().try_take(node_)) != poll_status::empty) return false;
        continue;
      }
      registered_ = true;
      if (s_->core().state()->register_server_waiter({&wake, this}, c)) return true;
      registered_ = false;
    }
  }
  auto await_resume() {
    if (status_ == poll_status::empty) status_ = s_->core().try_take(node_);
    UMP_ASSERT(status_ != poll_status::empty, "a server awaiter resumes only when there is news");
    using result_type = decltype(s_->convert(node_));
    if (status_ == poll_status::no_clients) return result_type(s_->clients_gone());
    return s_->convert(node_);
  }

  // For adapters that drive this awaiter without a coroutine (ump/asio.hpp cancellation).
  // Precondition: await_suspend returned true and withdraw() has not succeeded yet. Returns
  // true if the waiter was withdrawn before any sender claimed it (the scheduler will never
  // be called; nothing was taken), false if a wake-up has been or is being delivered.
  bool withdraw() noexcept {
    if (!s_->core().state()->unregister_server_waiter()) return false;
    registered_ = false;
    return true;
  }

 private:
  static void wake(void* self) noexcept {
    auto* a = static_cast<server_awaiter*>(self);
    a->registered_ = false;
    a->sched_.schedule(a->h_);  // may resume (and destroy) *a: nothing after this line
  }
  Server* s_;
  Sched sched_;
  std::coroutine_handle<> h_{};
  typename Server::node_type* node_ = nullptr;
  poll_status status_ = poll_status::empty;
  bool registered_ = false;
};

}  // namespace ump::detail
