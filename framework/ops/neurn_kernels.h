#pragma once
// The kernels of the NeuRN op (framework/dispatch.h); the contract is in
// framework/ops/neurn.h. The front function (neurn.cpp) checks and allocates
// every output; the CPU kernels are in neurn.cpp (float32 and float64), the
// CUDA ones in framework/cuda/neurn.cu (float32; the window sums are the
// NEURN_HD code of framework/cuda/neurn_sums.h, which the CPU tests run).
#include <cstdint>

#include "framework/dispatch.h"
#include "framework/ops/neurn.h"
#include "framework/tensor.h"

namespace neurn {

// The shape of one call: x (N, C, H, W), the window radius r = k / 2, and the
// groups of planes that share one maximum (the scope).
struct NeuRNGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t r = 1;                 // k / 2
  int padding = 0;               // 0 valid, 1 zero, 2 reflect (NeuRNPadding order)
  int64_t planes_per_group = 1;  // C (image scope), 1 (channel), N * C (batch)
  int64_t groups = 1;            // N * C / planes_per_group
  double eps = 1e-6;
};

// x, out: (N, C, H, W). mean (N, C, H, W), when defined: the patch means (of
// the shifted plane) the backward needs. shift (N C) float64: each plane's
// mean, subtracted before summing. group_max (groups) float64: the scope
// maximum of sigma; group_arg (groups) int64: the flat index of its first
// occurrence.
NEURN_DECLARE_KERNEL(neurn_kernel, void(const NeuRNGeometry& g, const Tensor& x, const Tensor& out, const Tensor& mean,
                                        const Tensor& shift, const Tensor& group_max, const Tensor& group_arg));
// dx (N, C, H, W) = dL/dx given grad_out = dL/dout and what the forward saved.
NEURN_DECLARE_KERNEL(neurn_backward_kernel,
                     void(const NeuRNGeometry& g, const Tensor& x, const Tensor& out, const Tensor& mean,
                          const Tensor& shift, const Tensor& group_max, const Tensor& group_arg,
                          const Tensor& grad_out, const Tensor& dx));

}  // namespace neurn
