#include "framework/cuda/caching_allocator.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "framework/error.h"

namespace neurn::cuda {

namespace {
std::string mib(size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(n) / (1024.0 * 1024.0));
  return buf;
}
}  // namespace

size_t CachingAllocator::round_size(size_t n) {
  return std::max(kMinBlock, (n + kMinBlock - 1) / kMinBlock * kMinBlock);
}

size_t CachingAllocator::segment_size(size_t rounded) {
  if (rounded <= kSmallRequest) return kSmallSegment;
  if (rounded <= kMidRequest) return kMidSegment;
  return (rounded + kLargeRounding - 1) / kLargeRounding * kLargeRounding;
}

CachingAllocator::~CachingAllocator() noexcept {
  // Every block is in a pool or in live_ (except one whose pool insertion
  // failed, counted in release_errors): free the bookkeeping only.
  for (Block* b : small_pool_) delete b;
  for (Block* b : large_pool_) delete b;
  for (auto& [p, b] : live_) delete b;
}

void CachingAllocator::note_allocated_locked(size_t size) {
  stats_.allocated += size;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
}

void* CachingAllocator::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const size_t size = round_size(nbytes);
  const bool small = size <= kSmallRequest;
  auto fresh = std::make_unique<Block>();
  auto rest = std::make_unique<Block>();
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.requests;
  Pool& pool = pool_of(small);
  Block key;
  key.size = size;
  auto it = pool.lower_bound(&key);  // the smallest block >= size, lowest address first
  Block* b = nullptr;
  if (it != pool.end()) {
    b = *it;
    live_.emplace(b->ptr, b);  // before the block leaves the pool: if this throws, nothing changed
    pool.erase(it);
    ++stats_.cache_hits;
  } else {
    const size_t seg = segment_size(size);
    void* p = backend_.alloc(seg);
    if (!p && stats_.reserved > stats_.allocated) {  // out of memory: return the free segments, try once more
      ++stats_.retries;
      release_free_segments_locked();
      p = backend_.alloc(seg);
    }
    if (!p) {
      size_t free_bytes = 0, total_bytes = 0;
      if (backend_.mem_info) backend_.mem_info(&free_bytes, &total_bytes);
      NEURN_FAIL(backend_.name, " out of memory: tried to allocate ", nbytes, " bytes (", mib(nbytes), ", segment ",
                 seg, " bytes); ", free_bytes, " bytes (", mib(free_bytes), ") free of ", total_bytes, " (",
                 mib(total_bytes), "); neurn holds ", stats_.allocated, " bytes allocated, ", stats_.reserved,
                 " reserved after releasing its free segments");
    }
    try {
      live_.emplace(p, fresh.get());
    } catch (...) {
      backend_.release(p);
      throw;
    }
    b = fresh.release();
    b->ptr = static_cast<char*>(p);
    b->size = seg;
    b->small = small;
    ++stats_.backend_allocs;
    ++stats_.segments;
    stats_.reserved += seg;
    stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  }
  // From here on nothing throws.
  const size_t remaining = b->size - size;
  if (small ? remaining >= kMinBlock : remaining > kSmallRequest) {
    Block* r = rest.release();
    r->ptr = b->ptr + size;
    r->size = remaining;
    r->small = small;
    r->prev = b;
    r->next = b->next;
    if (b->next) b->next->prev = r;
    b->next = r;
    b->size = size;
    ++stats_.splits;
    try {
      pool.insert(r);
    } catch (...) {
      // No memory for the pool's node: the rest stays linked and free, and
      // merges back when its neighbour is freed; until then it is not reused.
      ++stats_.release_errors;
    }
  }
  b->in_use = true;
  note_allocated_locked(b->size);
  return b->ptr;
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
  Block* b = it->second;
  live_.erase(it);
  stats_.allocated -= b->size;
  b->in_use = false;
  Pool& pool = pool_of(b->small);
  // Merge with the free neighbours (erased from the pool before their size
  // changes: the pool is ordered by size).
  if (Block* p = b->prev; p && !p->in_use) {
    pool.erase(p);
    p->size += b->size;
    p->next = b->next;
    if (b->next) b->next->prev = p;
    delete b;
    b = p;
  }
  if (Block* n = b->next; n && !n->in_use) {
    pool.erase(n);
    b->size += n->size;
    b->next = n->next;
    if (n->next) n->next->prev = b;
    delete n;
  }
  try {
    pool.insert(b);
  } catch (...) {
    // No memory for the pool's node: the block stays linked and free, so
    // freeing a neighbour merges it back; until then it is not reused.
    ++stats_.release_errors;
    std::fprintf(stderr, "neurn: %s allocator: no memory to cache a freed block of %zu bytes; not reused\n",
                 backend_.name.c_str(), b->size);
  }
}

void CachingAllocator::release_free_segments_locked() {
  for (Pool* pool : {&small_pool_, &large_pool_}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (b->prev || b->next) {  // part of a segment with a block in use
        ++it;
        continue;
      }
      backend_.release(b->ptr);  // may throw: the block stays cached and counted
      stats_.reserved -= b->size;
      --stats_.segments;
      it = pool->erase(it);
      delete b;
    }
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_free_segments_locked();
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
