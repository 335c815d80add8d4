#pragma once
// CUDA launchers of the fused optimizer updates (framework/optim/*.cpp call
// them when the parameters are on a cuda device; a .cu file of the CUDA
// backend implements them with the element functions of
// framework/optim/update_functors.h, one thread per element). All pointers
// are device pointers to n contiguous values of `dtype` (Float32 or Float64).
#include <cstdint>

#include "framework/dtype.h"
#include "framework/optim/update_functors.h"

namespace neurn::cuda {

// sgd_update_element on every element: param and momentum_buf are updated in
// place; momentum_buf may be null when s.momentum == 0.
void sgd_update(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buf, const SgdStep& s);

// adam_update_element on every element, with bc1 = 1 - beta1^step and
// sqrt_bc2 = sqrt(1 - beta2^step) computed on the host.
void adam_update(DType dtype, int64_t n, void* param, const void* grad, void* exp_avg, void* exp_avg_sq,
                 const AdamStep& a, double bc1, double sqrt_bc2);

// Adam on the box [0, extent[0]) x ... x [0, extent[rank-1]) of a
// contiguous tensor of `shape` (rank <= 8), the rest untouched (AutoFormer's
// SliceAdam, nas/autoformer/slice_adam.h): per element of the box,
// step_count += 1, then adam_update_element with that element's bias
// corrections (1 - beta1^count, sqrt(1 - beta2^count)). One thread per box
// element; a.step is unused. step_count holds the counts as `dtype` values.
void slice_adam_update(DType dtype, int rank, const int64_t* shape, const int64_t* extent, void* param,
                       const void* grad, void* exp_avg, void* exp_avg_sq, void* step_count, const AdamStep& a);

}  // namespace neurn::cuda
