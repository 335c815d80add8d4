#pragma once
// A strided copy between two contiguous buffers: the one primitive behind
// permute, transpose, slice, concat, split and zero padding. Element o of the
// copied block, at multi-index (i_0, ..., i_{n-1}) of `shape`, moves from
// src[src_offset + sum i_d src_strides[d]] to dst[dst_offset + sum i_d
// dst_strides[d]]. The same plan drives the CPU loop and the CUDA grid.
#include <cstddef>
#include <cstdint>

namespace neurn {

struct StridedCopyPlan {
  static constexpr int kMaxDims = 8;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t src_strides[kMaxDims] = {};
  int64_t dst_strides[kMaxDims] = {};
  int64_t src_offset = 0;  // in elements
  int64_t dst_offset = 0;
  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }
};

namespace cpu {
// elem_size: bytes per element (any dtype: values are moved, not converted).
void strided_copy(const void* src, void* dst, size_t elem_size, const StridedCopyPlan& plan);
}  // namespace cpu

}  // namespace neurn
