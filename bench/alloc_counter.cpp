// bench/alloc_counter.cpp - the one translation unit that replaces the global
// allocation functions for ump_bench, counting every allocation and release so a
// benchmark can report heap allocations per request (ump's target: 0).
//
// All replaceable forms are provided (plain, array, nothrow, aligned, sized) so no
// call escapes the count through a form left to the library. The counters are
// relaxed atomics: they are statistics, read only after the measured threads
// have been joined or have handed over their results through other atomics.
#include "bench_util.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace {

std::atomic<std::uint64_t> g_allocs{0};
std::atomic<std::uint64_t> g_frees{0};

void* counted_alloc(std::size_t size) noexcept {
  // ORDERING: relaxed; a statistic, no data is published through it.
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}

void* counted_aligned_alloc(std::size_t size, std::align_val_t align) noexcept {
  // ORDERING: relaxed; a statistic.
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  auto a = static_cast<std::size_t>(align);
  if (a < sizeof(void*)) a = sizeof(void*);
  void* p = nullptr;
  if (::posix_memalign(&p, a, size == 0 ? 1 : size) != 0) return nullptr;
  return p;
}

void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  // ORDERING: relaxed; a statistic.
  g_frees.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}

void* throwing(void* p) {
  if (p == nullptr) throw std::bad_alloc{};
  return p;
}

}  // namespace

namespace ump_bench {

// ORDERING: relaxed (both); statistics, see the file comment.
std::uint64_t alloc_count() noexcept { return g_allocs.load(std::memory_order_relaxed); }
std::uint64_t free_count() noexcept { return g_frees.load(std::memory_order_relaxed); }

}  // namespace ump_bench

void* operator new(std::size_t size) { return throwing(counted_alloc(size)); }
void* operator new[](std::size_t size) { return throwing(counted_alloc(size)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_alloc(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return counted_alloc(size); }
void* operator new(std::size_t size, std::align_val_t align) { return throwing(counted_aligned_alloc(size, align)); }
void* operator new[](std::size_t size, std::align_val_t align) { return throwing(counted_aligned_alloc(size, align)); }
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(size, align);
}

void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
