#pragma once
// The CUDA launcher of AutoFormer's SliceAdam (framework/cuda/optim.cu, with
// the element functions of framework/optim/update_functors.h). SGD and Adam
// reach their CUDA kernels through kernel tables instead
// (framework/optim/optim_kernels.h). Pointers are device pointers to
// contiguous values of `dtype` (Float32 or Float64).
#include <cstdint>

#include "framework/dtype.h"
#include "framework/optim/update_functors.h"

namespace neurn::cuda {

// Adam on the box [0, extent[0]) x ... x [0, extent[rank-1]) of a
// contiguous tensor of `shape` (rank <= 8), the rest untouched (AutoFormer's
// SliceAdam, nas/autoformer/slice_adam.h): per element of the box,
// step_count += 1, then adam_update_element with that element's bias
// corrections (1 - beta1^count, sqrt(1 - beta2^count)). One thread per box
// element; a.step is unused. step_count holds the counts as `dtype` values.
void slice_adam_update(DType dtype, int rank, const int64_t* shape, const int64_t* extent, void* param,
                       const void* grad, void* exp_avg, void* exp_avg_sq, void* step_count, const AdamStep& a);

}  // namespace neurn::cuda
