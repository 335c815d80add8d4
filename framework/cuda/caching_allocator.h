#pragma once
// The caching allocator of the CUDA backend (one per device, and one for
// pinned host buffers), in plain C++ so that CPU tests drive it with a fake
// backend ("raw allocate" / "raw release" functions).
//
// Policy (the sizes are those of PyTorch's CUDA caching allocator, described
// in its documentation and c10/cuda/CUDACachingAllocator.cpp; the code here
// is neurn's own):
// - a request is rounded up to a multiple of 512 bytes;
// - memory comes from the backend in segments: requests of at most 1 MiB
//   share 2 MiB segments (the small pool), requests up to 10 MiB share 20 MiB
//   segments, larger ones get a segment of their own rounded up to 2 MiB (the
//   large pool);
// - a request takes the smallest free block of its pool that fits (best fit,
//   lowest address on ties) and splits it when the rest is worth keeping (at
//   least 512 bytes in the small pool, more than 1 MiB in the large pool), so
//   blocks are reused across sizes, not only for the size they were made for;
// - a freed block merges with its free neighbours of the same segment, so a
//   segment whose blocks are all free is one block again;
// - when the backend is out of memory, every wholly free segment is returned
//   and the request retried once; a second failure throws an Error stating the
//   requested, free and held bytes.
// Blocks are never moved between segments or devices. Reuse without
// synchronisation is safe because all work of a device is ordered on its one
// stream (framework/cuda/cuda_check.h).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace neurn::cuda {

struct MemoryStats {
  size_t allocated = 0;        // bytes in blocks handed out (rounded sizes)
  size_t reserved = 0;         // bytes of the segments obtained from the backend (in use + cached)
  size_t peak_allocated = 0;
  size_t peak_reserved = 0;
  uint64_t segments = 0;       // segments held now
  uint64_t requests = 0;       // allocate() calls
  uint64_t backend_allocs = 0; // calls that reached the backend (one per segment)
  uint64_t cache_hits = 0;     // requests served from a cached block
  uint64_t splits = 0;         // blocks split to serve a smaller request
  uint64_t retries = 0;        // backend failures answered by returning free segments
  uint64_t invalid_frees = 0;  // deallocate() of a pointer it did not hand out (reported on stderr, ignored)
  uint64_t release_errors = 0; // failures inside deallocate() (reported; the block is not reused)
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
  static constexpr size_t kMinBlock = 512;                // rounding of every request
  static constexpr size_t kSmallRequest = size_t{1} << 20;  // <= this: the small pool
  static constexpr size_t kSmallSegment = size_t{2} << 20;
  static constexpr size_t kMidRequest = size_t{10} << 20;   // <= this: a shared 20 MiB segment
  static constexpr size_t kMidSegment = size_t{20} << 20;
  static constexpr size_t kLargeRounding = size_t{2} << 20;

  explicit CachingAllocator(AllocatorBackend backend) : backend_(std::move(backend)) {}
  // Releases nothing and cannot throw: the allocators of the CUDA backend live
  // until the process ends, when the driver reclaims device memory, and
  // calling the backend here could throw (or race the driver's shutdown). The
  // block bookkeeping is freed.
  ~CachingAllocator() noexcept;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // nbytes == 0 gives nullptr.
  void* allocate(size_t nbytes);
  // Runs in tensor storage destructors, so it never throws (a throw there is
  // std::terminate): a pointer it did not allocate, or freed twice, is
  // reported on stderr and counted in stats().invalid_frees.
  void deallocate(void* ptr) noexcept;
  // Returns every wholly free segment to the backend (blocks in use, and the
  // segments they are part of, stay).
  void empty_cache();
  MemoryStats stats() const;
  void reset_peak_stats();

  // The size a request of n bytes is rounded up to (a multiple of kMinBlock).
  static size_t round_size(size_t n);
  // The segment asked from the backend for a (rounded) request that no cached
  // block can serve.
  static size_t segment_size(size_t rounded);

 private:
  // A piece of a segment: free or handed out, linked to its neighbours in
  // the segment (address order) so that frees can merge them.
  struct Block {
    char* ptr = nullptr;
    size_t size = 0;
    bool small = false;  // which pool it belongs to
    bool in_use = false;
    Block* prev = nullptr;
    Block* next = nullptr;
  };
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
    }
  };
  using Pool = std::set<Block*, BySizeThenAddress>;

  Pool& pool_of(bool small) { return small ? small_pool_ : large_pool_; }
  void release_free_segments_locked();
  void note_allocated_locked(size_t size);

  AllocatorBackend backend_;
  mutable std::mutex mu_;
  Pool small_pool_, large_pool_;               // free blocks
  std::unordered_map<void*, Block*> live_;     // handed-out block start -> block
  MemoryStats stats_;
};

}  // namespace neurn::cuda
