#pragma once
// The caching policy of the CUDA allocators, in plain C++ so that CPU tests
// can drive it with a fake backend. Requests are rounded up to a size bucket;
// a freed block goes to its bucket's free list and the next request of that
// bucket reuses it, so a training loop that repeats the same shapes stops
// calling the backend (cudaMalloc / cudaHostAlloc) after its first step.
// When the backend fails, the cache is released and the request retried once;
// a second failure throws an Error stating the requested and free bytes.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace neurn::cuda {

struct MemoryStats {
  size_t allocated = 0;        // bytes in blocks handed out (bucket sizes)
  size_t reserved = 0;         // bytes obtained from the backend (handed out + cached)
  size_t peak_allocated = 0;
  size_t peak_reserved = 0;
  uint64_t requests = 0;       // allocate() calls
  uint64_t backend_allocs = 0; // calls that reached the backend
  uint64_t cache_hits = 0;     // requests served from the cache
  uint64_t retries = 0;        // backend failures answered by emptying the cache
  uint64_t invalid_frees = 0;  // deallocate() of a pointer it did not hand out (reported on stderr, ignored)
  uint64_t release_errors = 0; // backend releases that failed inside deallocate() (reported, the block is dropped)
};

struct AllocatorBackend {
  std::string name;  // "CUDA", "pinned host": for messages
  // Returns nullptr when out of memory (other failures throw).
  std::function<void*(size_t)> alloc;
  std::function<void(void*)> release;
  // Free and total bytes of the underlying memory, for the error message.
  std::function<void(size_t* free_bytes, size_t* total_bytes)> mem_info;
};

class CachingAllocator {
 public:
  explicit CachingAllocator(AllocatorBackend backend) : backend_(std::move(backend)) {}
  // Does not release the cached blocks: the allocators of the CUDA backend
  // live until the process ends, when the driver reclaims device memory, and
  // a destructor that called the backend could throw.
  ~CachingAllocator() = default;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // nbytes == 0 gives nullptr.
  void* allocate(size_t nbytes);
  // Runs in tensor storage destructors, so it never throws (a throw there is
  // std::terminate): a pointer it did not allocate, or freed twice, is
  // reported on stderr and counted in stats().invalid_frees; when caching the
  // block fails it is returned to the backend, and a failing backend release
  // is reported and counted in release_errors.
  void deallocate(void* ptr) noexcept;
  // Returns every cached (free) block to the backend.
  void empty_cache();
  MemoryStats stats() const;
  void reset_peak_stats();

  // The bucket a request of n bytes is rounded up to: multiples of 512 bytes
  // up to 1 MiB, then four buckets per power of two (at most 25% slack).
  static size_t bucket_size(size_t n);

 private:
  void release_cached_locked();

  AllocatorBackend backend_;
  mutable std::mutex mu_;
  std::unordered_map<void*, size_t> live_;           // handed-out block -> bucket size
  std::map<size_t, std::vector<void*>> free_;        // bucket size -> cached blocks
  MemoryStats stats_;
};

}  // namespace neurn::cuda
