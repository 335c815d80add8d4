#pragma once
// The kernels of batch norm and layer norm (framework/dispatch.h). The front
// functions in norm.cpp check the arguments and allocate every output; the
// CPU kernels sit beside them, the CUDA ones (cuDNN for batch norm) in
// framework/cuda/norm.cu. weight and bias may be undefined (1 and 0); so may
// the running statistics in training (then they are not updated).
// The shared math is framework/ops/norm_math.h.
#include <cstdint>

#include "framework/dispatch.h"
#include "framework/tensor.h"

namespace neurn {

// x (N, C, ...): normalises with the batch statistics (biased variance),
// updates running_mean/running_var (C) in place with the unbiased variance,
// writes y (like x), mean and invstd (C) = 1 / sqrt(var + eps).
NEURN_DECLARE_KERNEL(batch_norm_train_kernel, void(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                                   const Tensor& running_mean, const Tensor& running_var,
                                                   double momentum, double eps, const Tensor& y, const Tensor& mean,
                                                   const Tensor& invstd));
// y = (x - running_mean) invstd weight + bias; mean = running_mean and
// invstd = 1 / sqrt(running_var + eps) (C) for the backward.
NEURN_DECLARE_KERNEL(batch_norm_eval_kernel, void(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                                  const Tensor& running_mean, const Tensor& running_var, double eps,
                                                  const Tensor& y, const Tensor& mean, const Tensor& invstd));
// The backward of the training forward from its saved statistics: writes each
// of dx (like x), dweight and dbias (C) that is defined. eps is the forward's.
NEURN_DECLARE_KERNEL(batch_norm_backward_kernel, void(const Tensor& x, const Tensor& dy, const Tensor& weight,
                                                      const Tensor& mean, const Tensor& invstd, double eps,
                                                      const Tensor& dx, const Tensor& dweight, const Tensor& dbias));
// x viewed as (R, D); weight, bias (D) or undefined. Writes y (like x), mean
// and invstd (R), invstd = 1 / sqrt(biased var + eps).
NEURN_DECLARE_KERNEL(layer_norm_kernel, void(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t D,
                                             double eps, const Tensor& y, const Tensor& mean, const Tensor& invstd));
// Writes each of dx (like x), dweight and dbias (D) that is defined.
NEURN_DECLARE_KERNEL(layer_norm_backward_kernel, void(const Tensor& x, const Tensor& dy, const Tensor& weight,
                                                      const Tensor& mean, const Tensor& invstd, int64_t D,
                                                      const Tensor& dx, const Tensor& dweight, const Tensor& dbias));

// The CPU batch norm's sums run an avx512f copy where the CPU has one (the
// same bits as the avx2 and default copies). allow = false turns it off, so a
// test can compare the copies on one machine; returns whether it was in use.
bool bn_cpu_use_avx512(bool allow);

}  // namespace neurn
