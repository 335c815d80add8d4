#pragma once
// CUDA launchers of the shape ops (framework/ops/shape_ops.cpp calls them for
// tensors on a cuda device; a .cu file of the CUDA backend implements them).
// All pointers are device pointers to contiguous buffers.
#include <cstddef>
#include <cstdint>

#include "framework/dtype.h"
#include "framework/ops/strided_copy.h"

namespace neurn::cuda {

// dst[plan.dst_offset + sum_d i_d dst_strides[d]] = src[plan.src_offset + sum_d i_d src_strides[d]]
// for every multi-index i of plan.shape; elem_size is 1, 2, 4 or 8 bytes (values
// are moved bit for bit). Elements of dst outside the block are left as they are.
void strided_copy(const void* src, void* dst, size_t elem_size, const StridedCopyPlan& plan);

// Reflect padding of the last two axes of x viewed as (outer, h, w):
// y (outer, h + top + bottom, w + left + right), where output (r, c) reads
// x(reflect(r - top, h), reflect(c - left, w)) and reflect(i, n) is -i for
// i < 0, 2 (n - 1) - i for i >= n, i otherwise. Requires each pad < its size.
// The 1-D form is h = 1, top = bottom = 0.
void pad_reflect(const void* x, void* y, DType dtype, int64_t outer, int64_t h, int64_t w, int64_t top,
                 int64_t bottom, int64_t left, int64_t right);
// Its backward: dx (outer, h, w) is overwritten with, for each input element,
// the sum of g (outer, h + top + bottom, w + left + right) over every output
// position that reads it.
void pad_reflect_backward(const void* g, void* dx, DType dtype, int64_t outer, int64_t h, int64_t w, int64_t top,
                          int64_t bottom, int64_t left, int64_t right);

}  // namespace neurn::cuda
