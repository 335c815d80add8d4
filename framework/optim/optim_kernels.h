#pragma once
// The kernels of the optimizer updates (framework/dispatch.h): each call
// updates a whole list of parameters of one device and dtype in place (multi-
// tensor apply, framework/optim/multi_tensor.h). The CPU kernels live in
// sgd.cpp and adam.cpp, the CUDA ones in framework/cuda/optim.cu; both run the
// element functions of update_functors.h.
#include <vector>

#include "framework/dispatch.h"
#include "framework/optim/update_functors.h"
#include "framework/tensor.h"

namespace neurn {

// One parameter of an SGD update. momentum_buffer is undefined without
// momentum; with momentum every slot of a call has one. All slots of a call
// share device, dtype, momentum (zero or not) and nesterov.
struct SgdSlot {
  Tensor param, grad, momentum_buffer;
  SgdStep step;  // per slot: lr and weight decay of its group, first_step of its buffer
};

// One parameter of an Adam/AdamW update; bc1 = 1 - beta1^step and
// sqrt_bc2 = sqrt(1 - beta2^step) of this parameter's own step count.
struct AdamSlot {
  Tensor param, grad, exp_avg, exp_avg_sq;
  AdamStep step;
  double bc1 = 1.0, sqrt_bc2 = 1.0;
};

NEURN_DECLARE_KERNEL(sgd_update_kernel, void(const std::vector<SgdSlot>& slots));
// Gradient clipping over a list of contiguous tensors of one device and
// dtype, each call one pass (one launch on CUDA) over the list's chunks
// (multi_tensor.h). The sum of squares accumulates in double: each chunk in
// eight lanes, the chunk sums in chunk order, so the result depends on the
// tensors alone, not on the threads. It is returned to the host (on CUDA the
// call's one synchronisation). The scale multiplies in place.
NEURN_DECLARE_KERNEL(grad_sq_sum_kernel, double(const std::vector<Tensor>& grads));
NEURN_DECLARE_KERNEL(grad_scale_kernel, void(const std::vector<Tensor>& grads, double coef));
NEURN_DECLARE_KERNEL(adam_update_kernel, void(const std::vector<AdamSlot>& slots));

}  // namespace neurn
