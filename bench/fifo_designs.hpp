// bench/fifo_designs.hpp - two ways to give every sender of a channel one FIFO over
// moodycamel ConcurrentQueue, built as bare post transports so that they can be compared
// with each other, with moodycamel used at its best (no FIFO across producers) and with
// ump's own post path, in the same binary and workload (`post/<name>/producers:N`).
//
// Both carry a uint64_t, both have one consumer thread that drains in bulk and parks on the
// same protocol, so the only difference between them is how producers are put in one order:
//
//   fifo_lock    (design B: what ump ships) one moodycamel producer behind a spin lock
//                (ump::detail::spin_lock, the channel send lock).
//                Sender: lock, count the message (fetch_add on the control word), enqueue
//                through the shared producer, unlock. Order = lock order. Producers
//                serialise on the lock for the whole enqueue.
//   fifo_ticket  (design C) a producer per sender and a shared ticket. Sender: t =
//                ticket.fetch_add(1), enqueue {t, x} through its own producer. Order =
//                ticket order. The consumer merges the producers by ticket: it keeps a
//                small buffer per producer and hands out ticket `next` from whichever buffer
//                has it at its head. A sender between its fetch_add and its enqueue holds
//                up every later ticket until it enqueues (the consumer spins, then yields).
//
// In both, a send that happens-before another is received first: its lock hold (B) or its
// fetch_add (C) comes first in the lock's or the ticket's modification order. The consumer
// checks the order it receives: each producer's values increase (both designs), and (C)
// tickets come out consecutive. A violation aborts the benchmark.
//
// Parking (both): the consumer counts what it took; when the control word's count equals
// it, nothing is in flight, so it raises `sleeping_` and waits on a 32-bit bell. A sender
// that sees `sleeping_` after its enqueue rings the bell. seq_cst on the sender's count
// RMW and load of `sleeping_` and on the consumer's store of `sleeping_` and re-read of the
// count: one of the two sides sees the other.
#pragma once

#include <benchmark/benchmark.h>
#include <concurrentqueue/concurrentqueue.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "ump/detail/spin_lock.hpp"
#include "workloads.hpp"

namespace ump_bench {

namespace fifo_detail {

[[noreturn]] inline void order_broken(const char* what) {
  std::fprintf(stderr, "fifo_designs: %s\n", what);
  std::abort();
}

// The consumer side shared by both designs: counting, the order check, parking, stop.
class consumer_base {
 protected:
  // Called by the consumer for every value it receives, in the order it receives them.
  void deliver(std::uint64_t x, std::uint64_t& checksum) {
    const std::size_t lane = static_cast<std::size_t>(x >> 40);
    if (lane >= last_.size()) order_broken("value from an unknown producer");
    if (x <= last_[lane] && last_[lane] != 0) order_broken("a producer's values arrived out of order");
    last_[lane] = x;
    checksum += x;
  }
  // Sender, after its enqueue: rings the bell if the consumer may be asleep.
  void after_send() noexcept {
    // ORDERING: seq_cst; pairs with the consumer's seq_cst store of sleeping_ and re-read of
    // count_ in park(): either it sees this send counted or this load sees it sleeping.
    if (sleeping_.load(std::memory_order_seq_cst)) {
      // ORDERING: release; the consumer's acquire wait on bell_ (the data travels through
      // the queue, which orders itself).
      bell_.fetch_add(1, std::memory_order_release);
      bell_.notify_one();
    }
  }
  // Consumer: blocks until count_ moves past `taken` (a message was counted).
  void park(std::uint64_t taken) noexcept {
    for (int i = 0; i < 4096; ++i) {
      // ORDERING: relaxed look; the queue's dequeue acquires what it returns.
      if (count_.load(std::memory_order_relaxed) != taken) return;
      cpu_relax();
    }
    // ORDERING: acquire; pairs with the senders' release bell RMW.
    const std::uint32_t bell = bell_.load(std::memory_order_acquire);
    // ORDERING: seq_cst; pairs with after_send()'s seq_cst load (Dekker).
    sleeping_.store(true, std::memory_order_seq_cst);
    // ORDERING: seq_cst; the other half of the Dekker pair with the senders' count RMW.
    if (count_.load(std::memory_order_seq_cst) == taken) {
      // ORDERING: acquire; pairs with the senders' release bell RMW.
      bell_.wait(bell, std::memory_order_acquire);
    }
    // ORDERING: relaxed; a stale true only costs a sender a needless bell.
    sleeping_.store(false, std::memory_order_relaxed);
  }
  void publish(std::uint64_t consumed) noexcept {
    // ORDERING: release; pairs with the acquire load in consumed().
    consumed_.store(consumed, std::memory_order_release);
  }

 public:
  // ORDERING: acquire; pairs with the release store in publish().
  std::uint64_t consumed() const noexcept { return consumed_.load(std::memory_order_acquire); }

 protected:
  static constexpr std::size_t max_lanes = 64;
  std::array<std::uint64_t, max_lanes> last_{};                   // consumer only
  alignas(cache_line_size) std::atomic<std::uint64_t> count_{0};  // messages counted (B) / tickets taken (C)
  alignas(cache_line_size) std::atomic<bool> sleeping_{false};
  alignas(cache_line_size) std::atomic<std::uint32_t> bell_{0};
  alignas(cache_line_size) std::atomic<std::uint64_t> consumed_{0};
};

}  // namespace fifo_detail

// Design B: one producer behind a spin lock (ump's transport, reduced to a u64 post).
class fifo_lock_post : public fifo_detail::consumer_base {
 public:
  fifo_lock_post() : consumer_{[this] { consume(); }} {}
  ~fifo_lock_post() {
    send(post_stop_value);
    consumer_.join();
  }
  fifo_lock_post(const fifo_lock_post&) = delete;
  fifo_lock_post& operator=(const fifo_lock_post&) = delete;

  class producer {
   public:
    explicit producer(fifo_lock_post& impl) : impl_{&impl} {}
    void post(std::uint64_t x) { impl_->send(x); }

   private:
    fifo_lock_post* impl_;
  };
  producer make_producer() { return producer{*this}; }

 private:
  void send(std::uint64_t x) {
    lock_.lock();
    // ORDERING: seq_cst; the count half of the Dekker pair in park()/after_send().
    count_.fetch_add(1, std::memory_order_seq_cst);
    queue_.enqueue(ptok_, x);
    lock_.unlock();
    after_send();
  }
  void consume() {
    std::array<std::uint64_t, 256> batch;
    std::uint64_t taken = 0;
    std::uint64_t checksum = 0;
    for (;;) {
      const std::size_t n = queue_.try_dequeue_bulk_from_producer(ptok_, batch.begin(), batch.size());
      if (n == 0) {
        park(taken);
        continue;
      }
      taken += n;
      for (std::size_t i = 0; i < n; ++i) {
        if (batch[i] == post_stop_value) {
          benchmark::DoNotOptimize(checksum);
          return;
        }
        deliver(batch[i], checksum);
      }
      publish(taken);
    }
  }

  moodycamel::ConcurrentQueue<std::uint64_t> queue_;
  moodycamel::ProducerToken ptok_{queue_};
  alignas(cache_line_size) ump::detail::spin_lock lock_;  // the channel send lock's very type
  std::thread consumer_;                                  // last: started after every other member exists
};

// Design C: a producer per sender, merged by a shared ticket on the consumer.
class fifo_ticket_post : public fifo_detail::consumer_base {
  struct ticketed {
    std::uint64_t ticket;
    std::uint64_t value;
  };
  // One sender's producer. Lanes live as long as the transport, so the consumer may read a
  // lane whose sender is gone.
  struct lane {
    explicit lane(moodycamel::ConcurrentQueue<ticketed>& q) : token{q} {}
    moodycamel::ProducerToken token;
  };

 public:
  fifo_ticket_post() {
    control_ = add_lane();  // the destructor's stop message travels on lane 0
    consumer_ = std::thread{[this] { consume(); }};
  }
  ~fifo_ticket_post() {
    send(*control_, post_stop_value);
    consumer_.join();
  }
  fifo_ticket_post(const fifo_ticket_post&) = delete;
  fifo_ticket_post& operator=(const fifo_ticket_post&) = delete;

  class producer {
   public:
    explicit producer(fifo_ticket_post& impl) : impl_{&impl}, lane_{impl.add_lane()} {}
    void post(std::uint64_t x) { impl_->send(*lane_, x); }

   private:
    fifo_ticket_post* impl_;
    lane* lane_;
  };
  producer make_producer() { return producer{*this}; }

 private:
  lane* add_lane() {
    const std::lock_guard<std::mutex> hold{lanes_mutex_};
    // ORDERING: relaxed; lane_count_ is written only under lanes_mutex_.
    const std::size_t i = lane_count_.load(std::memory_order_relaxed);
    if (i == max_lanes) fifo_detail::order_broken("too many producers");
    lanes_[i] = std::make_unique<lane>(queue_);
    // ORDERING: release; pairs with the consumer's acquire load: a lane is complete before
    // it is counted.
    lane_count_.store(i + 1, std::memory_order_release);
    return lanes_[i].get();
  }
  void send(lane& l, std::uint64_t x) {
    // ORDERING: seq_cst; puts this send in the one order, and is the count half of the
    // Dekker pair in park()/after_send().
    const std::uint64_t t = count_.fetch_add(1, std::memory_order_seq_cst);
    queue_.enqueue(l.token, ticketed{t, x});
    after_send();
  }
  void consume() {
    struct buffer {
      std::array<ticketed, 128> items;
      std::size_t head = 0, size = 0;
    };
    std::vector<buffer> buffers(max_lanes);
    std::uint64_t next = 0;  // the next ticket to hand out
    std::uint64_t checksum = 0;
    int stalls = 0;
    for (;;) {
      // ORDERING: acquire; pairs with add_lane()'s release store.
      const std::size_t lanes = lane_count_.load(std::memory_order_acquire);
      bool progressed = false;
      for (std::size_t i = 0; i < lanes; ++i) {
        buffer& b = buffers[i];
        if (b.head == b.size) {
          b.head = 0;
          b.size = queue_.try_dequeue_bulk_from_producer(lanes_[i]->token, b.items.begin(), b.items.size());
        }
        while (b.head < b.size && b.items[b.head].ticket == next) {
          const std::uint64_t x = b.items[b.head++].value;
          ++next;
          progressed = true;
          if (x == post_stop_value) {
            benchmark::DoNotOptimize(checksum);
            return;
          }
          deliver(x, checksum);
        }
        if (b.head < b.size && b.items[b.head].ticket < next) fifo_detail::order_broken("ticket handed out twice");
      }
      if (progressed) {
        publish(next);
        stalls = 0;
        continue;
      }
      // ORDERING: relaxed look; the dequeue acquires what it returns.
      if (count_.load(std::memory_order_relaxed) == next) {
        park(next);  // nothing in flight
      } else if (++stalls < 64) {
        cpu_relax();  // ticket `next` is taken and not enqueued yet
      } else {
        std::this_thread::yield();
      }
    }
  }

  moodycamel::ConcurrentQueue<ticketed> queue_;
  std::mutex lanes_mutex_;
  std::array<std::unique_ptr<lane>, max_lanes> lanes_;
  alignas(cache_line_size) std::atomic<std::size_t> lane_count_{0};
  lane* control_ = nullptr;
  std::thread consumer_;
};

}  // namespace ump_bench
