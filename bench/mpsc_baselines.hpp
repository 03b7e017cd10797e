// bench/mpsc_baselines.hpp - request/reply and post baselines on three more MPSC queues.
//
// The same two reply paths as the moodycamel baselines in baselines.hpp, over other
// queues people reach for:
//   * oneTBB tbb::concurrent_bounded_queue: pop() blocks (its monitor spins briefly, then
//     sleeps), so the server simply pops.
//   * Boost.Lockfree boost::lockfree::queue: cannot block, so the server polls with the
//     same spin / yield / park policy (and budgets) as moodycamel_atomic_slot.
//   * Asio asio::experimental::concurrent_channel: the server thread runs an io_context
//     with one async_receive outstanding; clients try_send() from their own threads (the
//     channel completes the waiting receive by posting its handler to the io_context,
//     which wakes the server thread). The channel is buffered (channel_capacity); a
//     producer that finds it full yields and retries.
//
// Each queue is wrapped in an adapter with push(T) (any thread) and consume(f) (the
// server thread; calls f(item) until f returns false), and the adapters plug into:
//   queue_promise<Q>      request {x, std::promise*}, reply through the promise
//   queue_atomic_slot<Q>  request = pointer to the client's reply slot, which the client
//                         spins (2 µs) then yields on, as moodycamel_atomic_slot does
//   queue_post<Q>         fire-and-forget uint64_t to one consumer
// All three satisfy the concepts of workloads.hpp and register under
// <workload>/<queue>_{promise,atomic_slot} and post/<queue>.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <future>
#include <thread>

#if UMP_BENCH_HAVE_ASIO_CHANNEL
#include <asio/error_code.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/io_context.hpp>
#endif
#if UMP_BENCH_HAVE_BOOST_LOCKFREE
#include <boost/lockfree/queue.hpp>
#endif
#if UMP_BENCH_HAVE_TBB
#include <tbb/concurrent_queue.h>
#endif

#include "baselines.hpp"  // moodycamel_atomic_slot
#include "workloads.hpp"

namespace ump_bench {

// ---------------------------------------------------------------------------
// Queue adapters.
// ---------------------------------------------------------------------------

#if UMP_BENCH_HAVE_TBB
template <class T>
class tbb_queue {
 public:
  void push(const T& v) { queue_.push(v); }

  template <class F>
  void consume(F f) {
    T v;
    do {
      queue_.pop(v);  // blocks while empty
    } while (f(v));
  }

 private:
  tbb::concurrent_bounded_queue<T> queue_;
};
#endif

// Spin, then yield, then park on a flag that producers check after each push (the
// Dekker pattern of moodycamel_atomic_slot, with its budgets).
class polling_parker {
 public:
  void notify() noexcept {
    // ORDERING: seq_cst fence; partner is the fence in consume_polling() between the store
    // of sleeping_ and the last poll. Either that poll sees our push, or this load sees 1.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // ORDERING: relaxed (both); the fence orders them, the queue carries the data.
    if (sleeping_.load(std::memory_order_relaxed) != 0 && sleeping_.exchange(0, std::memory_order_relaxed) != 0) {
      sleeping_.notify_one();  // partner: sleeping_.wait(1) in consume_polling()
    }
  }

  // poll(stop) handles what it finds, sets stop on the stop item, returns the count.
  template <class Poll>
  void consume_polling(Poll poll) {
    bool stop = false;
    for (;;) {
      if (poll(stop) != 0) {
        if (stop) return;
        continue;
      }
      const auto idle_start = bench_clock::now();
      bool got_work = false;
      for (auto now = idle_start; !got_work && now - idle_start < moodycamel_atomic_slot::server_idle;
           now = bench_clock::now()) {
        for (int i = 0; i < 16 && !got_work; ++i) {
          got_work = poll(stop) != 0;
          if (now - idle_start < moodycamel_atomic_slot::server_spin) {
            cpu_relax();
          } else {
            std::this_thread::yield();
          }
        }
      }
      if (stop) return;
      if (got_work) continue;
      // ORDERING: relaxed; ordered before the last poll by the fence below.
      sleeping_.store(1, std::memory_order_relaxed);
      // ORDERING: seq_cst fence; partner is the fence in notify().
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (poll(stop) != 0) {
        // ORDERING: relaxed; it only saves producers a syscall.
        sleeping_.store(0, std::memory_order_relaxed);
        if (stop) return;
        continue;
      }
      // ORDERING: relaxed; the queue, polled again at the top, carries the data.
      sleeping_.wait(1, std::memory_order_relaxed);  // partner: notify_one() in notify()
    }
  }

 private:
  alignas(cache_line_size) std::atomic<std::uint32_t> sleeping_{0};
};

#if UMP_BENCH_HAVE_BOOST_LOCKFREE
template <class T>
class boost_lockfree_queue {
 public:
  void push(const T& v) {
    while (!queue_.push(v)) std::this_thread::yield();  // fails only if a node cannot be allocated
    parker_.notify();
  }

  template <class F>
  void consume(F f) {
    parker_.consume_polling([&](bool& stop) {
      std::size_t n = 0;
      T v;
      while (n < 64 && !stop && queue_.pop(v)) {
        ++n;
        stop = !f(v);
      }
      return n;
    });
  }

 private:
  boost::lockfree::queue<T> queue_{1024};  // nodes preallocated; push allocates beyond them
  polling_parker parker_;
};
#endif

#if UMP_BENCH_HAVE_ASIO_CHANNEL
template <class T>
class asio_channel_queue {
 public:
  static constexpr std::size_t channel_capacity = 1024;

  void push(const T& v) {
    while (!channel_.try_send(asio::error_code{}, v)) std::this_thread::yield();  // full
  }

  template <class F>
  void consume(F f) {
    struct receiver {
      asio_channel_queue* q;
      F* f;
      void operator()(asio::error_code ec, T v) const {
        if (!ec && (*f)(v)) q->channel_.async_receive(*this);  // re-arm; else run() ends
      }
    };
    channel_.async_receive(receiver{this, &f});
    io_.run();  // returns once no receive is outstanding
  }

 private:
  asio::io_context io_{1};  // concurrency hint: one thread runs it
  asio::experimental::concurrent_channel<void(asio::error_code, T)> channel_{io_, channel_capacity};
};
#endif

// ---------------------------------------------------------------------------
// Request/reply and post on top of an adapter.
// ---------------------------------------------------------------------------

template <template <class> class Queue>
class queue_promise {
  struct request {
    std::uint64_t value;
    std::promise<std::uint64_t>* reply;  // nullptr: stop
  };

 public:
  queue_promise() : server_{[this] { serve(); }} {}
  ~queue_promise() {
    queue_.push(request{0, nullptr});  // every client has its reply: nothing follows it
    server_.join();
  }
  queue_promise(const queue_promise&) = delete;
  queue_promise& operator=(const queue_promise&) = delete;

  class client {
   public:
    struct handle {
      std::promise<std::uint64_t> promise;
      std::future<std::uint64_t> future;
    };

    explicit client(queue_promise& impl) noexcept : impl_{&impl} {}

    std::uint64_t call(std::uint64_t x) {
      std::promise<std::uint64_t> promise;
      auto future = promise.get_future();
      impl_->queue_.push(request{x, &promise});
      return future.get();
    }
    void send(handle& h, std::uint64_t x) {
      h.promise = std::promise<std::uint64_t>{};
      h.future = h.promise.get_future();
      impl_->queue_.push(request{x, &h.promise});
    }
    std::uint64_t wait(handle& h) { return h.future.get(); }

   private:
    queue_promise* impl_;
  };
  client make_client() noexcept { return client{*this}; }

 private:
  void serve() {
    queue_.consume([](const request& r) {
      if (r.reply == nullptr) return false;
      r.reply->set_value(r.value + 1);
      return true;
    });
  }

  Queue<request> queue_;
  std::thread server_;
};

template <template <class> class Queue>
class queue_atomic_slot {
 public:
  using slot = moodycamel_atomic_slot::slot;

  queue_atomic_slot() : server_{[this] { serve(); }} {}
  ~queue_atomic_slot() {
    queue_.push(nullptr);
    server_.join();
  }
  queue_atomic_slot(const queue_atomic_slot&) = delete;
  queue_atomic_slot& operator=(const queue_atomic_slot&) = delete;

  class client {
   public:
    using handle = slot;

    explicit client(queue_atomic_slot& impl) noexcept : impl_{&impl} {}

    std::uint64_t call(std::uint64_t x) {
      send(slot_, x);
      return wait(slot_);
    }
    void send(handle& h, std::uint64_t x) {
      h.value = x;
      // ORDERING: relaxed; published to the server by the push (release inside the queue).
      h.ready.store(0, std::memory_order_relaxed);
      impl_->queue_.push(&h);
    }
    // Spin client_spin, then yield: the same wait as moodycamel_atomic_slot's client.
    std::uint64_t wait(handle& h) {
      // ORDERING (all loads): acquire; pairs with the release store of ready in serve().
      auto spin_end = bench_clock::time_point::min();
      for (;;) {
        for (int i = 0; i < 16; ++i) {
          if (h.ready.load(std::memory_order_acquire) != 0) return h.reply;
          cpu_relax();
        }
        const auto now = bench_clock::now();
        if (spin_end == bench_clock::time_point::min()) {
          spin_end = now + moodycamel_atomic_slot::client_spin;
        } else if (now >= spin_end) {
          break;
        }
      }
      while (h.ready.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      return h.reply;
    }

   private:
    queue_atomic_slot* impl_;
    slot slot_;
  };
  client make_client() noexcept { return client{*this}; }

 private:
  void serve() {
    queue_.consume([](slot* s) {
      if (s == nullptr) return false;
      s->reply = s->value + 1;
      // ORDERING: release; pairs with the client's acquire load in wait().
      s->ready.store(1, std::memory_order_release);
      return true;
    });
  }

  Queue<slot*> queue_;
  std::thread server_;
};

template <template <class> class Queue>
class queue_post {
 public:
  queue_post() : consumer_{[this] { consume(); }} {}
  ~queue_post() {
    queue_.push(post_stop_value);  // producers are done: nothing follows it
    consumer_.join();
  }
  queue_post(const queue_post&) = delete;
  queue_post& operator=(const queue_post&) = delete;

  class producer {
   public:
    explicit producer(queue_post& impl) noexcept : impl_{&impl} {}
    void post(std::uint64_t x) { impl_->queue_.push(x); }

   private:
    queue_post* impl_;
  };
  producer make_producer() noexcept { return producer{*this}; }

  // ORDERING: acquire; pairs with the release store in consume().
  std::uint64_t consumed() const noexcept { return consumed_.load(std::memory_order_acquire); }

 private:
  void consume() {
    std::uint64_t count = 0;
    std::uint64_t checksum = 0;
    queue_.consume([&](std::uint64_t v) {
      if (v == post_stop_value) return false;
      checksum += v;
      // ORDERING: release; pairs with the acquire load in consumed().
      consumed_.store(++count, std::memory_order_release);
      return true;
    });
    benchmark::DoNotOptimize(checksum);
  }

  Queue<std::uint64_t> queue_;
  alignas(cache_line_size) std::atomic<std::uint64_t> consumed_{0};
  std::thread consumer_;
};

// <workload>/<name>_promise, <workload>/<name>_atomic_slot (rtt, contended, pipelined) and
// post/<name>.
template <template <class> class Queue>
void register_mpsc_baseline(const std::string& name) {
  const request_reply_workloads w{.rtt = true, .gap = false, .rtt_loaded = false, .contended = true, .pipelined = true};
  register_request_reply<queue_promise<Queue>>(name + "_promise", w);
  register_request_reply<queue_atomic_slot<Queue>>(name + "_atomic_slot", w);
  register_post<queue_post<Queue>>(name);
}

}  // namespace ump_bench
