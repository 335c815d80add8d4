#pragma once
// A strided copy: the one primitive behind copy_, contiguous(), concat and
// zero padding (permute, transpose and slice are views and copy nothing).
// Element o of the copied block, at multi-index (i_0, ..., i_{n-1}) of
// `shape`, moves from src[src_offset + sum i_d src_strides[d]] to
// dst[dst_offset + sum i_d dst_strides[d]]. The same plan drives the CPU loop
// and the CUDA grid.
#include <cstddef>
#include <cstdint>

#include "framework/dispatch.h"
#include "framework/tensor.h"

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

// dst = src element by element (same shape and dtype, one device), each
// read and written through its own strides and offset. A strided table: the
// kernels take views as they are (framework/dispatch.h). Defined in
// shape_ops.cpp (CPU) and framework/cuda/shape.cu (CUDA).
NEURN_DECLARE_KERNEL(strided_copy_kernel, void(const Tensor& src, const Tensor& dst));
// The plan of strided_copy_kernel, its axes merged where both tensors allow
// (offsets 0: the kernels start from strided_raw_data()).
StridedCopyPlan copy_plan(const Tensor& src, const Tensor& dst);

namespace cpu {
// elem_size: bytes per element (any dtype: values are moved, not converted).
void strided_copy(const void* src, void* dst, size_t elem_size, const StridedCopyPlan& plan);
}  // namespace cpu

}  // namespace neurn
