// bench/baselines.hpp - benchmark harness pieces that do not depend on ump.
//
// What is here
//   * floors (floors.hpp): two threads ping-ponging one 32-bit word by pure
//     spinning, by std::atomic::wait/notify_one, and by raw futex calls with and
//     without a spin phase. They bound what any request/reply channel can do here.
//   * baselines: request/reply servers built the way people usually build them
//     (mutex+condvar+promise, moodycamel+promise, moodycamel+atomic reply slot)
//     and post (fire-and-forget) servers, all with one uint64_t payload and the
//     reply request + 1.
//   * workload drivers (rtt, gap, rtt_loaded, contended, pipelined, post) written once
//     against small implementation concepts, so an adapter for ump registers the
//     very same workloads under the same names: `<workload>/<impl>[/param:N]`.
//   * measurement helpers (bench_util.hpp): latency percentiles, allocations per request.
//   More baselines built on other MPSC queues (oneTBB, Boost.Lockfree, Asio) live in
//   mpsc_baselines.hpp.
//
// Implementation concepts (checked by the concepts below)
//   request/reply impl `I`:
//     I()                         starts the server thread; never inside a timed region
//     ~I()                        stops and joins it; every accepted request is answered
//     I::client                   one per client thread, made by `impl.make_client()` on
//                                 the thread that uses it
//     client.call(x) -> uint64_t  one blocking round trip; must return x + 1
//   pipelining impl (additionally):
//     I::client::handle           caller-owned storage for one in-flight request; it must
//                                 not move while the request is in flight
//     client.send(handle&, x), client.wait(handle&) -> uint64_t
//   post impl `P`:
//     P::producer, impl.make_producer(), producer.post(x)   (x != post_stop_value)
//     impl.consumed() -> uint64_t  messages the consumer has finished with so far
//
// Every server thread is started in the implementation's constructor, which the
// drivers run before the timed loop, and joined in its destructor, after it.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <concurrentqueue/blockingconcurrentqueue.h>
#include <concurrentqueue/concurrentqueue.h>

#include "bench_util.hpp"
#include "floors.hpp"

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
            for (auto now = idle_start; !got_work && now - idle_start < server_idle;
                 now = bench_clock::now()) {
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
inline constexpr std::uint64_t post_stop_value = ~std::uint64_t{0};

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

// ===========================================================================
// Concepts for the drivers.
// ===========================================================================
template <class I>
concept request_reply_impl = std::default_initializable<I> && requires(I& impl) {
    { impl.make_client() };
    { impl.make_client().call(std::uint64_t{}) } -> std::convertible_to<std::uint64_t>;
};

template <class I>
concept pipelining_impl = request_reply_impl<I> && requires(I& impl) {
    typename I::client::handle;
    requires std::default_initializable<typename I::client::handle>;
    requires requires(typename I::client& c, typename I::client::handle& h) {
        c.send(h, std::uint64_t{});
        { c.wait(h) } -> std::convertible_to<std::uint64_t>;
    };
};

template <class P>
concept post_impl = std::default_initializable<P> && requires(P& impl, const P& cimpl) {
    { impl.make_producer() };
    impl.make_producer().post(std::uint64_t{});
    { cimpl.consumed() } -> std::convertible_to<std::uint64_t>;
};

// ===========================================================================
// Workload drivers. Each constructs the implementation (starting its server)
// before the timed loop and destroys it after.
// ===========================================================================
inline constexpr int rtt_sample_every = 8;            // p50/p99 pass: 1 sample per 8 timed round trips
// The gap sweep: gaps in µs and round trips per gap. Fewer round trips for long gaps keep
// one implementation's sweep near 4 s (sum of gap x round trips, plus the round trips);
// 200 round trips at 5 ms still leave 2 samples above p99.
inline constexpr std::int64_t gap_sweep[][2] = {
    {0, 4000}, {10, 4000}, {50, 4000}, {100, 4000}, {200, 3000}, {500, 1500}, {1000, 800}, {5000, 200}};
// Other ump-side measurements with a server that has parked between requests.
inline constexpr auto idle_pause = std::chrono::microseconds{50};
inline constexpr std::size_t pipeline_depth = 64;
inline constexpr std::int64_t contended_chunk = 16;   // tickets taken per fetch_sub
inline constexpr int contended_clients[] = {1, 2, 4, 8};
inline constexpr int post_producers[] = {1, 2, 4};

// rtt: one client (the benchmark thread), back-to-back round trips. The reported
// time is the mean over the timed loop, which reads no clock per round trip. After the
// loop (untimed), a pass of iterations / rtt_sample_every round trips, each timed on its
// own, gives p50/p99; those include one clock read (~25 ns here) per sample.
template <request_reply_impl I>
void run_rtt(benchmark::State& state) {
    I impl;
    auto client = impl.make_client();
    for (std::uint64_t i = 0; i < 100; ++i) (void)client.call(i);  // warm caches and thread
    std::uint64_t x = 1000;
    std::uint64_t wrong = 0;
    alloc_meter allocs;
    for (auto _ : state) {
        wrong += client.call(x) != x + 1;
        ++x;
    }
    allocs.report(state, state.iterations());
    const auto samples = static_cast<std::size_t>(state.iterations() / rtt_sample_every) + 1;
    latency_recorder latencies{samples};
    for (std::size_t i = 0; i < samples; ++i, ++x) {
        const auto t0 = bench_clock::now();
        const std::uint64_t reply = client.call(x);
        latencies.record(bench_clock::now() - t0);
        wrong += reply != x + 1;
    }
    latencies.report(state);
    if (wrong != 0) state.SkipWithError("wrong reply");
}

// rtt_loaded: rtt while one busy "hog" thread per hardware thread competes for every
// core (plain CPU loops at normal priority, started before and stopped after the timed
// loop). Client and server threads now outnumber the cores and get preempted: this is how
// a wait strategy behaves on a machine that is busy with other work.
class cpu_hogs {
public:
    cpu_hogs() {
        const unsigned n = std::max(1u, std::thread::hardware_concurrency());
        for (unsigned i = 0; i < n; ++i) {
            threads_.emplace_back([this] {
                std::uint64_t x = 0;
                // ORDERING: relaxed; only a stop request, no data.
                while (!stop_.load(std::memory_order_relaxed)) {
                    for (int k = 0; k < 1024; ++k) x = x * 6364136223846793005u + 1442695040888963407u;
                    benchmark::DoNotOptimize(x);
                }
            });
        }
    }
    ~cpu_hogs() {
        // ORDERING: relaxed; the joins below synchronise.
        stop_.store(true, std::memory_order_relaxed);
        for (auto& t : threads_) t.join();
    }
    cpu_hogs(const cpu_hogs&) = delete;
    cpu_hogs& operator=(const cpu_hogs&) = delete;

private:
    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
};

template <request_reply_impl I>
void run_rtt_loaded(benchmark::State& state) {
    I impl;
    auto client = impl.make_client();
    for (std::uint64_t i = 0; i < 100; ++i) (void)client.call(i);
    cpu_hogs hogs;
    latency_recorder latencies{static_cast<std::size_t>(state.max_iterations)};
    std::uint64_t x = 1000;
    std::uint64_t wrong = 0;
    for (auto _ : state) {
        const auto t0 = bench_clock::now();
        const std::uint64_t reply = client.call(x);
        latencies.record(bench_clock::now() - t0);
        wrong += reply != x + 1;
        ++x;
    }
    latencies.report(state);
    if (wrong != 0) state.SkipWithError("wrong reply");
}

// gap: each request is sent gap_us (state.range(0)) after the client saw the previous
// reply, so a server with a spin budget shorter than the gap has parked and pays a
// wake-up. The pause is the same in every row and at every gap, 0 included: spin_until()
// busy-waits on steady_clock with pause instructions, never sleeping, so the client keeps
// its CPU and no row's pause changes scheduling differently from another's. Manual time:
// only the round trip is timed (time = mean round trip); p50_ns/p99_ns/samples counters.
template <request_reply_impl I>
void run_gap(benchmark::State& state) {
    const auto gap = std::chrono::microseconds{state.range(0)};
    I impl;
    auto client = impl.make_client();
    for (std::uint64_t i = 0; i < 100; ++i) (void)client.call(i);
    latency_recorder latencies{static_cast<std::size_t>(state.max_iterations)};
    std::uint64_t x = 1000;
    std::uint64_t wrong = 0;
    auto next = bench_clock::now() + gap;
    for (auto _ : state) {
        spin_until(next);
        const auto t0 = bench_clock::now();
        const std::uint64_t reply = client.call(x);
        const auto t1 = bench_clock::now();
        state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
        latencies.record(t1 - t0);
        wrong += reply != x + 1;
        ++x;
        next = t1 + gap;
    }
    latencies.report(state);
    state.counters["samples"] = static_cast<double>(state.iterations());
    if (wrong != 0) state.SkipWithError("wrong reply");
}

// pipelined: pipeline_depth sends, then as many waits; time per request.
template <pipelining_impl I>
void run_pipelined(benchmark::State& state) {
    I impl;
    auto client = impl.make_client();
    std::array<typename I::client::handle, pipeline_depth> handles;
    for (std::uint64_t i = 0; i < 100; ++i) (void)client.call(i);
    std::uint64_t x = 1000;
    std::uint64_t wrong = 0;
    alloc_meter allocs;
    while (state.KeepRunningBatch(pipeline_depth)) {
        for (std::size_t i = 0; i < pipeline_depth; ++i) client.send(handles[i], x + i);
        for (std::size_t i = 0; i < pipeline_depth; ++i) wrong += client.wait(handles[i]) != x + i + 1;
        x += pipeline_depth;
    }
    allocs.report(state, state.iterations());
    state.SetItemsProcessed(state.iterations());
    if (wrong != 0) state.SkipWithError("wrong reply");
}

// Runs `body(index)` once on each of n threads created before the timed region
// and held at a gate; release() opens the gate, wait_all() blocks (parked, no
// spinning: the machine has two vCPUs) until every body has returned.
class gated_threads {
public:
    template <class Body>
    gated_threads(int n, Body body) : n_{static_cast<std::uint32_t>(n)} {
        threads_.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            threads_.emplace_back([this, body, i]() mutable {
                body.prepare(i);
                // ORDERING: acquire; pairs with the release store in release()/~gated_threads.
                gate_.wait(closed, std::memory_order_acquire);
                // ORDERING: acquire; same partner.
                if (gate_.load(std::memory_order_acquire) == open) body.run(i);
                // ORDERING: acq_rel; release publishes this body's effects to wait_all(),
                // acquire is harmless.
                if (finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) finished_.notify_one();
            });
        }
    }
    ~gated_threads() {
        // ORDERING: relaxed; only reached if release() never ran.
        if (gate_.load(std::memory_order_relaxed) == closed) {
            // ORDERING: release; pairs with the acquire wait in the thread body.
            gate_.store(cancelled, std::memory_order_release);
            gate_.notify_all();
        }
        for (auto& t : threads_) t.join();
    }
    gated_threads(const gated_threads&) = delete;
    gated_threads& operator=(const gated_threads&) = delete;

    void release() noexcept {
        // ORDERING: release; pairs with the acquire wait in the thread body.
        gate_.store(open, std::memory_order_release);
        gate_.notify_all();
    }
    void wait_all() noexcept {
        // ORDERING: acquire; pairs with the acq_rel fetch_add of the last thread.
        for (std::uint32_t f = finished_.load(std::memory_order_acquire); f != n_;
             f = finished_.load(std::memory_order_acquire)) {
            finished_.wait(f, std::memory_order_acquire);
        }
    }

private:
    static constexpr std::uint32_t closed = 0, open = 1, cancelled = 2;
    std::uint32_t n_;
    alignas(cache_line_size) std::atomic<std::uint32_t> gate_{closed};
    alignas(cache_line_size) std::atomic<std::uint32_t> finished_{0};
    std::vector<std::thread> threads_;
};

// contended: n client threads, one outstanding request each, sharing one server.
//
// Why manual client threads and not Benchmark's ->Threads(n): ->Threads gives
// every thread the same fixed iteration count, so the run lasts as long as the
// unluckiest client (on 2 vCPUs with up to 8 clients, a queue or a scheduler
// that is unfair stretches the run and understates throughput), and the server
// would have to be started by thread 0 inside the barrier dance. Here the client
// threads (and their tokens/slots) are created before the timed region, the
// iterations are a shared pool of tickets taken contended_chunk at a time, and
// the time is the wall time until the pool is drained: items/s is the aggregate
// round-trip rate, latency_ns = wall time * n / round trips is the mean round
// trip seen by one client.
template <request_reply_impl I>
void run_contended(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    I impl;
    alignas(cache_line_size) std::atomic<std::int64_t> tickets{0};
    std::atomic<std::uint64_t> wrong{0};

    struct body_t {
        I* impl;
        std::atomic<std::int64_t>* tickets;
        std::atomic<std::uint64_t>* wrong;
        std::vector<std::unique_ptr<typename I::client>>* clients;
        void prepare(int i) {
            // new-expression from a prvalue: no move needed, clients may be immovable.
            (*clients)[static_cast<std::size_t>(i)].reset(new typename I::client(impl->make_client()));
        }
        void run(int i) {
            auto& c = *(*clients)[static_cast<std::size_t>(i)];
            std::uint64_t x = std::uint64_t(i) << 40;
            std::uint64_t bad = 0;
            for (;;) {
                // ORDERING: relaxed; a pure counter, results are published by gated_threads.
                const std::int64_t left = tickets->fetch_sub(contended_chunk, std::memory_order_relaxed);
                if (left <= 0) break;
                for (std::int64_t k = std::min(left, contended_chunk); k > 0; --k, ++x) {
                    bad += c.call(x) != x + 1;
                }
            }
            // ORDERING: relaxed; read after wait_all(), which acquires.
            if (bad != 0) wrong->fetch_add(bad, std::memory_order_relaxed);
        }
    };
    // Clients are made on their own threads (tokens, thread-local state) but must be
    // destroyed before impl; the vector outlives the threads, impl outlives the vector.
    std::vector<std::unique_ptr<typename I::client>> clients(static_cast<std::size_t>(n));
    {
        gated_threads crew{n, body_t{&impl, &tickets, &wrong, &clients}};
        alloc_meter allocs;
        bench_clock::duration elapsed{};
        while (state.KeepRunningBatch(state.max_iterations)) {
            // ORDERING: relaxed; published by the release in crew.release().
            tickets.store(state.max_iterations, std::memory_order_relaxed);
            const auto t0 = bench_clock::now();
            crew.release();
            crew.wait_all();
            elapsed = bench_clock::now() - t0;
        }
        allocs.report(state, state.iterations());
        state.SetItemsProcessed(state.iterations());
        if (state.iterations() > 0) {
            state.counters["latency_ns"] =
                std::chrono::duration<double, std::nano>(elapsed).count() * n /
                static_cast<double>(state.iterations());
        }
    }
    clients.clear();
    // ORDERING: relaxed; the client threads have been joined.
    if (wrong.load(std::memory_order_relaxed) != 0) state.SkipWithError("wrong reply");
}

// post: n producer threads share the iterations equally and post as fast as they
// can; the timed region ends when the consumer has consumed every message. The
// benchmark thread parks while producers run and only polls the consumer's
// counter (sleeping between polls) for the tail.
template <post_impl P>
void run_post(benchmark::State& state) {
    const int n = static_cast<int>(state.range(0));
    P impl;
    std::int64_t quota_each = 0;
    std::int64_t quota_first = 0;

    struct body_t {
        P* impl;
        const std::int64_t* quota_each;
        const std::int64_t* quota_first;
        std::vector<std::unique_ptr<typename P::producer>>* producers;
        void prepare(int i) {
            (*producers)[static_cast<std::size_t>(i)].reset(new typename P::producer(impl->make_producer()));
        }
        void run(int i) {
            auto& p = *(*producers)[static_cast<std::size_t>(i)];
            const std::int64_t quota = i == 0 ? *quota_first : *quota_each;
            std::uint64_t x = std::uint64_t(i) << 40;
            for (std::int64_t k = 0; k < quota; ++k) p.post(x++);
        }
    };
    std::vector<std::unique_ptr<typename P::producer>> producers(static_cast<std::size_t>(n));
    {
        gated_threads crew{n, body_t{&impl, &quota_each, &quota_first, &producers}};
        alloc_meter allocs;
        while (state.KeepRunningBatch(state.max_iterations)) {
            const auto total = static_cast<std::uint64_t>(state.max_iterations);
            const std::uint64_t target = impl.consumed() + total;
            quota_each = state.max_iterations / n;  // published by crew.release()
            quota_first = state.max_iterations - quota_each * (n - 1);
            crew.release();
            crew.wait_all();
            while (impl.consumed() < target) std::this_thread::sleep_for(std::chrono::microseconds{10});
        }
        allocs.report(state, state.iterations());
        state.SetItemsProcessed(state.iterations());
    }
    producers.clear();
}

// ===========================================================================
// Registration. Names follow `<workload>/<impl>[/<param>:<n>]`; Benchmark appends
// /real_time, /manual_time or /iterations:N, which tools/bench_report.py strips.
// Repetitions come from --benchmark_repetitions; with more than one, only the
// aggregates (mean, median, stddev, cv) are reported.
// ===========================================================================

// gap/<impl>/gap_us:N for every gap of gap_sweep.
template <request_reply_impl I>
void register_gap(const std::string& impl_name) {
    for (const auto& [gap_us, iterations] : gap_sweep) {
        benchmark::RegisterBenchmark(("gap/" + impl_name).c_str(), run_gap<I>)
            ->ArgName("gap_us")
            ->Arg(gap_us)
            ->UseManualTime()
            ->Iterations(iterations)
            ->ReportAggregatesOnly(true);
    }
}

// floor/<name> (back-to-back round trip) and, with gap, gap/floor_<name>/gap_us:N.
template <request_reply_impl I>
void register_floor(const std::string& name, bool gap = false) {
    benchmark::RegisterBenchmark(("floor/" + name).c_str(), run_rtt<I>)
        ->UseRealTime()
        ->ReportAggregatesOnly(true);
    if (gap) register_gap<I>("floor_" + name);
}

struct request_reply_workloads {
    bool rtt = true;
    bool gap = true;
    bool rtt_loaded = true;
    bool contended = true;
    bool pipelined = true;
};

// rtt/<impl>, gap/<impl>/gap_us:N, rtt_loaded/<impl>, contended/<impl>/threads:N,
// pipelined/<impl>.
template <request_reply_impl I>
void register_request_reply(const std::string& impl_name, request_reply_workloads w = {}) {
    if (w.rtt) {
        benchmark::RegisterBenchmark(("rtt/" + impl_name).c_str(), run_rtt<I>)
            ->UseRealTime()
            ->ReportAggregatesOnly(true);
    }
    if (w.gap) register_gap<I>(impl_name);
    if (w.rtt_loaded) {
        benchmark::RegisterBenchmark(("rtt_loaded/" + impl_name).c_str(), run_rtt_loaded<I>)
            ->UseRealTime()
            ->ReportAggregatesOnly(true);
    }
    if (w.contended) {
        auto* b = benchmark::RegisterBenchmark(("contended/" + impl_name).c_str(), run_contended<I>);
        b->ArgName("threads")->UseRealTime()->ReportAggregatesOnly(true);
        for (int n : contended_clients) b->Arg(n);
    }
    if constexpr (pipelining_impl<I>) {
        if (w.pipelined) {
            benchmark::RegisterBenchmark(("pipelined/" + impl_name).c_str(), run_pipelined<I>)
                ->UseRealTime()
                ->ReportAggregatesOnly(true);
        }
    }
}

// post/<impl>/producers:N.
template <post_impl P>
void register_post(const std::string& impl_name) {
    auto* b = benchmark::RegisterBenchmark(("post/" + impl_name).c_str(), run_post<P>);
    b->ArgName("producers")->UseRealTime()->ReportAggregatesOnly(true);
    for (int n : post_producers) b->Arg(n);
}

}  // namespace ump_bench
