#pragma once
// The kernels of pooling and upsampling (framework/dispatch.h). The front
// functions in pool.cpp check, shape and allocate; the CPU kernels sit beside
// them, the CUDA ones in framework/cuda/pool.cu. Window and tap arithmetic is
// shared by both (framework/ops/pool_math.h, upsample_math.h). Backward
// kernels overwrite dx (no accumulation).
#include "framework/dispatch.h"
#include "framework/ops/pool.h"
#include "framework/ops/pool_math.h"
#include "framework/tensor.h"

namespace neurn {

// x (N, C, H, W) -> y (N, C, Ho, Wo); idx (N, C, Ho, Wo) int64, when defined,
// gets each output's argmax as a flat index into its input plane (the first
// maximum in row-major order; a NaN wins).
NEURN_DECLARE_KERNEL(max_pool2d_kernel, void(const PoolGeometry& g, const Tensor& x, const Tensor& y, const Tensor& idx));
// dy, idx (N, C, Ho, Wo) -> dx (N, C, H, W).
NEURN_DECLARE_KERNEL(max_pool2d_backward_kernel,
                     void(const PoolGeometry& g, const Tensor& dy, const Tensor& idx, const Tensor& dx));
NEURN_DECLARE_KERNEL(avg_pool2d_kernel,
                     void(const PoolGeometry& g, bool count_include_pad, const Tensor& x, const Tensor& y));
NEURN_DECLARE_KERNEL(avg_pool2d_backward_kernel,
                     void(const PoolGeometry& g, bool count_include_pad, const Tensor& dy, const Tensor& dx));
// Sizes from the tensors: x (N, C, H, W) -> y (N, C, Ho, Wo).
NEURN_DECLARE_KERNEL(adaptive_avg_pool2d_kernel, void(const Tensor& x, const Tensor& y));
NEURN_DECLARE_KERNEL(adaptive_avg_pool2d_backward_kernel, void(const Tensor& dy, const Tensor& dx));
NEURN_DECLARE_KERNEL(upsample_kernel, void(UpsampleMode mode, bool align_corners, const Tensor& x, const Tensor& y));
NEURN_DECLARE_KERNEL(upsample_backward_kernel,
                     void(UpsampleMode mode, bool align_corners, const Tensor& dy, const Tensor& dx));

}  // namespace neurn
