#pragma once
// The kernels of the reductions (framework/dispatch.h). The front functions in
// reduce.cpp check the axes and allocate every output with its keepdim shape
// (the input's rank, 1 on each reduced axis); the CPU kernels sit beside them,
// the CUDA ones in framework/cuda/reduce.cu.
#include "framework/dispatch.h"
#include "framework/ops/elementwise_functors.h"
#include "framework/tensor.h"

namespace neurn {

// out (keepdim shape) = sum of x over the axes where out has size 1. The order
// of the additions is fixed by the shape (reduce.cpp, "sums"): the same bits on
// any number of threads. CPU: float32 in 64 lanes of at most 16 values, those
// partial sums added in double; float64 in double. CUDA: in double.
NEURN_DECLARE_KERNEL(sum_kernel, void(const Tensor& x, const Tensor& out));

namespace cpu {
// The CPU sum kernel, planned and split as if the pool had `threads` threads
// (the kernel itself uses cpu::num_threads()): the tests call it with several
// counts to check that no result depends on the count. x and out contiguous.
void sum_with_threads(const Tensor& x, const Tensor& out, int threads);
}  // namespace cpu
// out: the maxima; arg (int64, out's shape): the flat input index of each,
// the first on ties, NaN counting as the largest.
NEURN_DECLARE_KERNEL(max_kernel, void(const Tensor& x, const Tensor& out, const Tensor& arg));
// arg (int64, keepdim shape of a reduction over `axis`): the index along `axis`
// of each maximum (first on ties, NaN the largest).
NEURN_DECLARE_KERNEL(argmax_kernel, void(const Tensor& x, int64_t axis, const Tensor& arg));
// The backward of max: dx (the input's shape) is overwritten with
// g[o] at arg[o] and 0 elsewhere. `idx` walks the input (operand 0) and maps
// each input position to its output (operand 1): reduce_math.h's
// max_backward_at, which the deterministic CUDA path uses.
NEURN_DECLARE_KERNEL(max_backward_kernel, void(const Tensor& g, const Tensor& arg, const Tensor& dx,
                                               const BroadcastIndex& idx));

}  // namespace neurn
