// bench/baselines.hpp - request/reply and post baselines built the way people usually build them.
//
// Request/reply servers (mutex+condvar+promise, moodycamel+promise, moodycamel+atomic reply
// slot) and post (fire-and-forget) servers, all with one uint64_t payload and the reply
// request + 1. They implement the concepts of workloads.hpp, whose drivers run them (and ump,
// and the floors of floors.hpp) under the same workload names. More baselines built on other
// MPSC queues (oneTBB, Boost.Lockfree, Asio) live in mpsc_baselines.hpp.
//
// Every server thread is started in the implementation's constructor, which the drivers run
// before the timed loop, and joined in its destructor, after it.
#pragma once

#include <concurrentqueue/blockingconcurrentqueue.h>
#include <concurrentqueue/concurrentqueue.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "workloads.hpp"

namespace ump_bench {

// ===========================================================================
// Request/reply baselines.
// ===========================================================================

// (1) The textbook design: std::deque behind a mutex, a condition variable for
// the server, and a std::promise per request for the reply (one heap allocation
// for the shared state, a mutex+condvar or futex inside the future). The server
// swaps the whole queue out under the lock and answers outside it, so it takes
// the lock once per burst rather than once per request: the common, fair way to
// write it, not a straw man.
class mutex_condvar_promise {
  struct request {
    std::uint64_t value;
    std::promise<std::uint64_t>* reply;
  };

 public:
  mutex_condvar_promise() : server_{[this] { serve(); }} {}
  ~mutex_condvar_promise() {
    {
      std::lock_guard lock{mutex_};
      stop_ = true;
    }
    ready_.notify_one();
    server_.join();
  }
  mutex_condvar_promise(const mutex_condvar_promise&) = delete;
  mutex_condvar_promise& operator=(const mutex_condvar_promise&) = delete;

  class client {
   public:
    struct handle {
      std::promise<std::uint64_t> promise;
      std::future<std::uint64_t> future;
    };

    explicit client(mutex_condvar_promise& impl) noexcept : impl_{&impl} {}

    std::uint64_t call(std::uint64_t x) {
      std::promise<std::uint64_t> promise;
      auto future = promise.get_future();
      impl_->push({x, &promise});
      return future.get();
    }
    void send(handle& h, std::uint64_t x) {
      h.promise = std::promise<std::uint64_t>{};
      h.future = h.promise.get_future();
      impl_->push({x, &h.promise});
    }
    std::uint64_t wait(handle& h) { return h.future.get(); }

   private:
    mutex_condvar_promise* impl_;
  };
  client make_client() noexcept { return client{*this}; }

 private:
  void push(request r) {
    {
      std::lock_guard lock{mutex_};
      queue_.push_back(r);
    }
    ready_.notify_one();  // cheap in glibc when nobody waits
  }

  void serve() {
    std::deque<request> batch;
    for (;;) {
      {
        std::unique_lock lock{mutex_};
        ready_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop requested and nothing left to answer
        batch.swap(queue_);
      }
      for (const request& r : batch) r.reply->set_value(r.value + 1);
      batch.clear();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<request> queue_;
  bool stop_ = false;
  std::thread server_;
};

// (2) Swap the queue for moodycamel's lock-free BlockingConcurrentQueue (its
// semaphore spins ~10k times before it parks), keep std::promise for the reply:
// what "use a faster queue" gets you when the reply path stays generic. Clients
// hold a ProducerToken and the server a ConsumerToken and dequeues in bulk, as
// moodycamel recommends for speed.
class moodycamel_promise {
  struct request {
    std::uint64_t value;
    std::promise<std::uint64_t>* reply;  // nullptr: stop sentinel
  };

 public:
  moodycamel_promise() : server_{[this] { serve(); }} {}
  ~moodycamel_promise() {
    // Every client has its reply by now, so the sentinel is the last item even
    // though moodycamel does not order items from different producers.
    queue_.enqueue(request{0, nullptr});
    server_.join();
  }
  moodycamel_promise(const moodycamel_promise&) = delete;
  moodycamel_promise& operator=(const moodycamel_promise&) = delete;

  class client {
   public:
    struct handle {
      std::promise<std::uint64_t> promise;
      std::future<std::uint64_t> future;
    };

    explicit client(moodycamel_promise& impl) : impl_{&impl}, token_{impl.queue_} {}

    std::uint64_t call(std::uint64_t x) {
      std::promise<std::uint64_t> promise;
      auto future = promise.get_future();
      impl_->queue_.enqueue(token_, request{x, &promise});
      return future.get();
    }
    void send(handle& h, std::uint64_t x) {
      h.promise = std::promise<std::uint64_t>{};
      h.future = h.promise.get_future();
      impl_->queue_.enqueue(token_, request{x, &h.promise});
    }
    std::uint64_t wait(handle& h) { return h.future.get(); }

   private:
    moodycamel_promise* impl_;
    moodycamel::ProducerToken token_;
  };
  client make_client() { return client{*this}; }

 private:
  void serve() {
    moodycamel::ConsumerToken token{queue_};
    std::array<request, 64> batch;
    for (;;) {
      const std::size_t n = queue_.wait_dequeue_bulk(token, batch.begin(), batch.size());
      bool stop = false;
      for (std::size_t i = 0; i < n; ++i) {
        if (batch[i].reply == nullptr) {
          stop = true;
        } else {
          batch[i].reply->set_value(batch[i].value + 1);
        }
      }
      if (stop) return;
    }
  }

  moodycamel::BlockingConcurrentQueue<request> queue_;
  std::thread server_;
};

// (3) The fastest thing a careful engineer writes by hand on top of moodycamel:
// the non-blocking ConcurrentQueue carries a pointer to a per-request, cache-line
// sized reply slot that the client owns, the server writes the reply there and
// flips a flag, the client spins (then yields) on the flag. No allocation, no
// syscall on the reply path. Clients never park: the slot has no wake mechanism,
// which is exactly the corner this design cuts.
//
// The plain ConcurrentQueue cannot block, so the server polls: it spins for
// server_spin, yields until server_idle, then parks on an atomic flag that
// clients check after each enqueue (Dekker-style, a seq_cst fence on both sides).
// The budgets are below the 50 us gap of the gap sweep on purpose, so gaps from 50 us on show
// the parked-server path; a server that never parks would burn one of the two
// vCPUs for good. The client's spin is short (2 us, about 10 unloaded round trips)
// because on 2 vCPUs the scheduler may put the woken server on the client's CPU:
// a long spin then delays the very reply it waits for by the whole spin (seen
// here: 20-30 us round trips with a 20 us spin while another process loaded the
// machine; on a quiet machine 2 us and 20 us measure the same).
class moodycamel_atomic_slot {
 public:
  static constexpr auto server_spin = std::chrono::microseconds{10};
  static constexpr auto server_idle = std::chrono::microseconds{25};
  static constexpr auto client_spin = std::chrono::microseconds{2};

  struct alignas(cache_line_size) slot {
    std::atomic<std::uint32_t> ready{0};
    std::uint64_t value = 0;
    std::uint64_t reply = 0;
  };
  static_assert(sizeof(slot) == cache_line_size);

  moodycamel_atomic_slot() : server_{[this] { serve(); }} {}
  ~moodycamel_atomic_slot() {
    // ORDERING: relaxed; the seq_cst fence in wake_server() orders it before the
    // load of sleeping_, and the server's fence before its load of stop_.
    stop_.store(true, std::memory_order_relaxed);
    wake_server();
    server_.join();
  }
  moodycamel_atomic_slot(const moodycamel_atomic_slot&) = delete;
  moodycamel_atomic_slot& operator=(const moodycamel_atomic_slot&) = delete;

  class client {
   public:
    using handle = slot;

    explicit client(moodycamel_atomic_slot& impl) : impl_{&impl}, token_{impl.queue_} {}

    std::uint64_t call(std::uint64_t x) {
      send(slot_, x);
      return wait(slot_);
    }
    void send(handle& h, std::uint64_t x) {
      h.value = x;
      // ORDERING: relaxed; published to the server by the enqueue (release inside
      // moodycamel), which the server's dequeue acquires.
      h.ready.store(0, std::memory_order_relaxed);
      impl_->queue_.enqueue(token_, &h);
      impl_->wake_server();
    }
    std::uint64_t wait(handle& h) {
      // ORDERING (all loads): acquire; pairs with the server's release store of
      // ready in serve(), making h.reply visible. The clock is read only once
      // the first short spin has failed, to keep it off the fast path.
      auto spin_end = bench_clock::time_point::min();
      for (;;) {
        for (int i = 0; i < 16; ++i) {
          if (h.ready.load(std::memory_order_acquire) != 0) return h.reply;
          cpu_relax();
        }
        const auto now = bench_clock::now();
        if (spin_end == bench_clock::time_point::min()) {
          spin_end = now + client_spin;
        } else if (now >= spin_end) {
          break;
        }
      }
      while (h.ready.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      return h.reply;
    }

   private:
    moodycamel_atomic_slot* impl_;
    moodycamel::ProducerToken token_;
    slot slot_;
  };
  client make_client() { return client{*this}; }

 private:
  void wake_server() {
    // ORDERING: seq_cst fence; partner is the fence in serve() between the store
    // of sleeping_ and the re-poll of the queue. Either the server's re-poll sees
    // our enqueue (or stop_), or this load sees sleeping_ == 1.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // ORDERING: relaxed; the fence above does the ordering.
    if (sleeping_.load(std::memory_order_relaxed) != 0 &&
        // ORDERING: relaxed; only one waker needs to notify; the wait() partner
        // re-polls the queue, which carries the data.
        sleeping_.exchange(0, std::memory_order_relaxed) != 0) {
      sleeping_.notify_one();  // partner: sleeping_.wait(1) in serve()
    }
  }

  std::size_t answer(moodycamel::ConsumerToken& token, std::array<slot*, 64>& batch) {
    const std::size_t n = queue_.try_dequeue_bulk(token, batch.begin(), batch.size());
    for (std::size_t i = 0; i < n; ++i) {
      slot* s = batch[i];
      s->reply = s->value + 1;
      // ORDERING: release; pairs with the client's acquire load in wait().
      s->ready.store(1, std::memory_order_release);
    }
    return n;
  }

  void serve() {
    moodycamel::ConsumerToken token{queue_};
    std::array<slot*, 64> batch;
    for (;;) {
      if (answer(token, batch) != 0) continue;
      // Idle: spin, then yield, then park.
      const auto idle_start = bench_clock::now();
      bool got_work = false;
      for (auto now = idle_start; !got_work && now - idle_start < server_idle; now = bench_clock::now()) {
        for (int i = 0; i < 16 && !got_work; ++i) {
          got_work = answer(token, batch) != 0;
          if (now - idle_start < server_spin) {
            cpu_relax();
          } else {
            std::this_thread::yield();
          }
        }
        // ORDERING: relaxed; stop_ is only a hint here, the park path below
        // re-checks it after the fence.
        if (stop_.load(std::memory_order_relaxed)) break;
      }
      if (got_work) continue;
      // ORDERING: relaxed; ordered before the re-poll by the fence below.
      sleeping_.store(1, std::memory_order_relaxed);
      // ORDERING: seq_cst fence; partner is the fence in wake_server().
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (answer(token, batch) != 0) {
        // ORDERING: relaxed; nobody needs to see it, it only saves wakers a syscall.
        sleeping_.store(0, std::memory_order_relaxed);
        continue;
      }
      // ORDERING: relaxed; after the fence, see wake_server().
      if (stop_.load(std::memory_order_relaxed)) return;  // clients are gone, queue empty
      // ORDERING: relaxed is enough: the queue, re-polled at the top, carries the data.
      sleeping_.wait(1, std::memory_order_relaxed);  // partner: notify_one in wake_server()
    }
  }

  moodycamel::ConcurrentQueue<slot*> queue_;
  alignas(cache_line_size) std::atomic<std::uint32_t> sleeping_{0};
  alignas(cache_line_size) std::atomic<bool> stop_{false};
  std::thread server_;
};

// ===========================================================================
// Post (fire-and-forget) baselines: N producers, one consumer that blocks when
// the queue is empty. The value post_stop_value is reserved as the stop sentinel.
// ===========================================================================

// moodycamel BlockingConcurrentQueue, a ProducerToken per producer, bulk
// wait_dequeue on the consumer: the queue used at its best.
class moodycamel_post {
 public:
  moodycamel_post() : consumer_{[this] { consume(); }} {}
  ~moodycamel_post() {
    queue_.enqueue(post_stop_value);  // producers are done: nothing follows it
    consumer_.join();
  }
  moodycamel_post(const moodycamel_post&) = delete;
  moodycamel_post& operator=(const moodycamel_post&) = delete;

  class producer {
   public:
    explicit producer(moodycamel_post& impl) : impl_{&impl}, token_{impl.queue_} {}
    void post(std::uint64_t x) { impl_->queue_.enqueue(token_, x); }

   private:
    moodycamel_post* impl_;
    moodycamel::ProducerToken token_;
  };
  producer make_producer() { return producer{*this}; }

  // ORDERING: acquire; pairs with the release store in consume().
  std::uint64_t consumed() const noexcept { return consumed_.load(std::memory_order_acquire); }

 private:
  void consume() {
    moodycamel::ConsumerToken token{queue_};
    std::array<std::uint64_t, 256> batch;
    std::uint64_t count = 0;
    std::uint64_t checksum = 0;
    for (bool stop = false; !stop;) {
      const std::size_t n = queue_.wait_dequeue_bulk(token, batch.begin(), batch.size());
      for (std::size_t i = 0; i < n; ++i) {
        if (batch[i] == post_stop_value) {
          stop = true;
        } else {
          checksum += batch[i];
          ++count;
        }
      }
      // ORDERING: release; pairs with the acquire load in consumed().
      consumed_.store(count, std::memory_order_release);
    }
    benchmark::DoNotOptimize(checksum);
  }

  moodycamel::BlockingConcurrentQueue<std::uint64_t> queue_;
  alignas(cache_line_size) std::atomic<std::uint64_t> consumed_{0};
  std::thread consumer_;
};

// The same with a mutex, a condvar and a std::deque; the consumer swaps the
// whole queue out per wake-up.
class mutex_condvar_post {
 public:
  mutex_condvar_post() : consumer_{[this] { consume(); }} {}
  ~mutex_condvar_post() {
    {
      std::lock_guard lock{mutex_};
      stop_ = true;
    }
    ready_.notify_one();
    consumer_.join();
  }
  mutex_condvar_post(const mutex_condvar_post&) = delete;
  mutex_condvar_post& operator=(const mutex_condvar_post&) = delete;

  class producer {
   public:
    explicit producer(mutex_condvar_post& impl) noexcept : impl_{&impl} {}
    void post(std::uint64_t x) {
      {
        std::lock_guard lock{impl_->mutex_};
        impl_->queue_.push_back(x);
      }
      impl_->ready_.notify_one();
    }

   private:
    mutex_condvar_post* impl_;
  };
  producer make_producer() noexcept { return producer{*this}; }

  // ORDERING: acquire; pairs with the release store in consume().
  std::uint64_t consumed() const noexcept { return consumed_.load(std::memory_order_acquire); }

 private:
  void consume() {
    std::deque<std::uint64_t> batch;
    std::uint64_t count = 0;
    std::uint64_t checksum = 0;
    for (;;) {
      {
        std::unique_lock lock{mutex_};
        ready_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) break;
        batch.swap(queue_);
      }
      for (std::uint64_t v : batch) checksum += v;
      count += batch.size();
      batch.clear();
      // ORDERING: release; pairs with the acquire load in consumed().
      consumed_.store(count, std::memory_order_release);
    }
    benchmark::DoNotOptimize(checksum);
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::uint64_t> queue_;
  bool stop_ = false;
  alignas(cache_line_size) std::atomic<std::uint64_t> consumed_{0};
  std::thread consumer_;
};

}  // namespace ump_bench
