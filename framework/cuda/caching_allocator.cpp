#include "framework/cuda/caching_allocator.h"

#include <algorithm>
#include <cstdio>

#include "framework/error.h"

namespace neurn::cuda {

namespace {
constexpr size_t kSmallStep = 512;
constexpr size_t kSmallLimit = size_t{1} << 20;

std::string mib(size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(n) / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

size_t CachingAllocator::bucket_size(size_t n) {
  if (n <= kSmallLimit) return std::max<size_t>(kSmallStep, (n + kSmallStep - 1) / kSmallStep * kSmallStep);
  int top = 63 - __builtin_clzll(static_cast<unsigned long long>(n));  // 2^top <= n
  size_t step = size_t{1} << (top - 2);
  return (n + step - 1) / step * step;
}

void* CachingAllocator::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  size_t size = bucket_size(nbytes);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.requests;
  void* p = nullptr;
  auto it = free_.find(size);
  if (it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    if (it->second.empty()) free_.erase(it);
    ++stats_.cache_hits;
  } else {
    p = backend_.alloc(size);
    if (!p && !free_.empty()) {  // out of memory: give the cache back and try once more
      ++stats_.retries;
      release_cached_locked();
      p = backend_.alloc(size);
    }
    if (!p) {
      size_t free_bytes = 0, total_bytes = 0;
      if (backend_.mem_info) backend_.mem_info(&free_bytes, &total_bytes);
      NEURN_FAIL(backend_.name, " out of memory: tried to allocate ", nbytes, " bytes (", mib(nbytes), ", bucket ",
                 size, " bytes); ", free_bytes, " bytes (", mib(free_bytes), ") free of ", total_bytes, " (",
                 mib(total_bytes), "); neurn holds ", stats_.allocated, " bytes allocated, ", stats_.reserved,
                 " reserved after releasing its cache");
    }
    ++stats_.backend_allocs;
    stats_.reserved += size;
    stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  }
  live_.emplace(p, size);
  stats_.allocated += size;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  return p;
}

void CachingAllocator::deallocate(void* ptr) noexcept {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    ++stats_.invalid_frees;
    std::fprintf(stderr, "neurn: %s allocator: freeing %p, which it did not allocate (or freed twice); ignored\n",
                 backend_.name.c_str(), ptr);
    return;
  }
  size_t size = it->second;
  live_.erase(it);
  stats_.allocated -= size;
  try {
    free_[size].push_back(ptr);
  } catch (...) {  // no memory for the cache's bookkeeping: give the block back instead
    try {
      backend_.release(ptr);
      stats_.reserved -= size;
    } catch (const std::exception& e) {
      ++stats_.release_errors;
      std::fprintf(stderr, "neurn: %s allocator: releasing a block failed: %s\n", backend_.name.c_str(), e.what());
    } catch (...) {
      ++stats_.release_errors;
    }
  }
}

void CachingAllocator::release_cached_locked() {
  for (auto& [size, blocks] : free_) {
    for (void* p : blocks) {
      backend_.release(p);
      stats_.reserved -= size;
    }
  }
  free_.clear();
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cached_locked();
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated = stats_.allocated;
  stats_.peak_reserved = stats_.reserved;
}

}  // namespace neurn::cuda
