#pragma once
// Index math of the reductions shared by the CPU and CUDA kernels (NEURN_HD),
// so the CPU tests check what the GPU runs.
#include <cstdint>

#include "framework/hd.h"
#include "framework/ops/elementwise_functors.h"

namespace neurn {

// The output offset (operand 1 of `idx`) of input position `i`, `idx` built
// over the input shape with operand 1 the keepdim output (stride 0 on reduced axes).
NEURN_HD int64_t reduce_output_of(const BroadcastIndex& idx, int64_t i) {
  int64_t o = 0;
  for (int d = idx.ndim - 1; d >= 0; --d) {
    const int64_t size = idx.shape[d];
    o += (i % size) * idx.strides[1][d];
    i /= size;
  }
  return o;
}

// The max backward as a gather: input i receives g[o] when it is the maximum
// of its output o, else 0. Every input is written once by whoever owns it, so
// the result needs neither atomics nor a zero fill and is the same bits on
// any schedule (the CUDA kernel of NEURN_DETERMINISTIC=1).
template <typename T>
NEURN_HD T max_backward_at(const BroadcastIndex& idx, const T* g, const int64_t* arg, int64_t i) {
  const int64_t o = reduce_output_of(idx, i);
  return arg[o] == i ? g[o] : T(0);
}

// A flat index of a contiguous tensor -> its coordinate along one axis
// (stride: the product of the sizes after the axis).
NEURN_HD int64_t axis_coordinate(int64_t flat, int64_t stride, int64_t size) { return (flat / stride) % size; }

}  // namespace neurn
