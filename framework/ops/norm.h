#pragma once
#include "framework/tensor.h"

namespace neurn {

// x (N, C, ...) normalised per channel. weight, bias (C) may be undefined.
// training: batch statistics (biased variance to normalise); running_mean and
// running_var (C), when defined, are updated in place as
// r = (1 - momentum) r + momentum * stat, with the unbiased variance.
// eval: running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

// Normalises over the last `normalized_dims` axes; weight, bias have the shape
// of those axes (or are undefined).
Tensor layer_norm(const Tensor& x, int64_t normalized_dims, const Tensor& weight, const Tensor& bias,
                  double eps = 1e-5);

}  // namespace neurn
