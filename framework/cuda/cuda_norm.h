#pragma once
// CUDA launchers of batch_norm (over cuDNN) and layer_norm (implemented by the
// CUDA backend in framework/cuda/*.cu). The front functions in
// framework/ops/norm.cpp validate the arguments and allocate every output on
// the device; the launchers overwrite them. weight and bias may be undefined
// (meaning 1 and 0); so may the running statistics in training (then they are
// not updated).
#include "framework/tensor.h"

namespace neurn::cuda {

// x (N, C, ...). Normalises with the batch statistics (biased variance) and
// updates running_mean/running_var (C) in place: r = (1 - momentum) r +
// momentum * stat, with the unbiased variance (cuDNN's exponential average).
// Writes y (like x), save_mean and save_invstd (C) = 1 / sqrt(var + eps).
void batch_norm_forward_training(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                                 const Tensor& running_var, double momentum, double eps, const Tensor& y,
                                 const Tensor& save_mean, const Tensor& save_invstd);
// y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
void batch_norm_forward_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                                  const Tensor& running_var, double eps, const Tensor& y);
// Backward of the training forward, from the saved statistics: writes dx
// (like x), dweight and dbias (C); all three are defined. eps is the
// forward's: cuDNN asks for the value the forward used, saved statistics or not.
void batch_norm_backward_training(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& save_mean,
                                  const Tensor& save_invstd, double eps, const Tensor& dx, const Tensor& dweight,
                                  const Tensor& dbias);

// x viewed as (R, D) with D = `inner` (the product of the normalised axes);
// weight, bias (D) or undefined. Writes y (like x), save_mean and save_invstd
// (R), invstd = 1 / sqrt(biased var + eps).
void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t inner, double eps,
                        const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd);
// Writes each of dx (like x), dweight and dbias (D) that is defined.
void layer_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& save_mean,
                         const Tensor& save_invstd, int64_t inner, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias);

}  // namespace neurn::cuda
