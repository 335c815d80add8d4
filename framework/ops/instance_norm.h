#pragma once
// Instance normalisation (Ulyanov et al. 2016), as torch.nn.functional.instance_norm:
// each (image, channel) plane is normalised by its own mean and biased
// variance over the spatial axes.
#include "framework/tensor.h"

namespace neurn {

// x (N, C, *spatial) with at least one spatial axis; weight, bias (C) or
// undefined (no affine). running_mean, running_var (C) or undefined.
// use_input_stats (training, or no running statistics tracked): normalise
// with each plane's statistics and, when the running ones are defined, update
// them in place as r = (1 - momentum) r + momentum * s, s the batch mean of
// the planes' means and unbiased variances (what PyTorch computes). Else
// (eval with running statistics): normalise every plane of channel c with
// running_mean[c], running_var[c].
Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                     const Tensor& running_var, bool use_input_stats = true, double momentum = 0.1, double eps = 1e-5);

}  // namespace neurn
