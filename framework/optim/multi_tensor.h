#pragma once
// Multi-tensor apply: the parameters of one device and dtype are updated by
// one loop (one threaded loop on the CPU, one kernel launch on CUDA) over
// chunks of at most `chunk` elements, each chunk inside one tensor. The chunk
// list is plain host code, shared by both backends, so the CPU tests check
// the split the GPU launch uses (one CUDA block per chunk).
#include <cstdint>
#include <vector>

namespace neurn {

struct TensorChunk {
  int32_t tensor = 0;  // index into the list of tensors
  int64_t begin = 0;   // element range [begin, end) of that tensor
  int64_t end = 0;
};

// Elements per chunk: large enough that a chunk amortises its scheduling,
// small enough that a large tensor spreads over every thread (CPU) or
// multiprocessor (CUDA: 256 threads per block, 256 elements each).
inline constexpr int64_t kMultiTensorChunk = int64_t{1} << 16;

// Splits tensors of `numels` elements into consecutive chunks of at most
// `chunk` elements, in tensor order; empty tensors get no chunk. Throws when
// chunk < 1, a size is negative or there are more than 2^31 - 1 tensors.
std::vector<TensorChunk> chunk_tensors(const std::vector<int64_t>& numels, int64_t chunk = kMultiTensorChunk);

}  // namespace neurn
