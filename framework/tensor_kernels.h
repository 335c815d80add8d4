#pragma once
// The kernels behind Tensor::to(dtype) and fill_ (framework/dispatch.h),
// defined in tensor.cpp with their CPU kernels, the CUDA ones in
// framework/cuda/shape.cu. Both take contiguous tensors (fill_ of a view
// fills a block and copies it through strided_copy_kernel,
// framework/ops/strided_copy.h, which also backs copy_).
#include "framework/dispatch.h"
#include "framework/tensor.h"

namespace neurn {

// dst = src converted to dst's dtype (same shape, one device).
NEURN_DECLARE_KERNEL(convert_kernel, void(const Tensor& src, const Tensor& dst));
// Every element of t = value (cast to t's dtype).
NEURN_DECLARE_KERNEL(fill_kernel, void(const Tensor& t, double value));

}  // namespace neurn
