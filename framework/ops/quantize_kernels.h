#pragma once
// The kernels of fake quantization (framework/dispatch.h): CPU in
// quantize.cpp, CUDA in framework/cuda/quantize.cu, both over the math of
// quantize_math.h. The range of the data-driven forms (fake_quantize_symmetric
// and _unsigned) stays on the tensor's device: the kernels read it from a
// one-element tensor, so a CUDA step never waits on a copy to the host.
#include "framework/dispatch.h"
#include "framework/ops/quantize_math.h"
#include "framework/tensor.h"

namespace neurn {

// y = quantize_value(x) on the grid quant_grid(p, range) (range: undefined
// for a fixed scale, else one element of x's dtype holding max|x| or max x).
NEURN_DECLARE_KERNEL(fake_quantize_kernel,
                     void(const QuantParams& p, const Tensor& range, const Tensor& x, const Tensor& y));
// dx = the straight-through gradient of dy on that grid.
NEURN_DECLARE_KERNEL(fake_quantize_backward_kernel, void(const QuantParams& p, const Tensor& range, const Tensor& x,
                                                         const Tensor& dy, const Tensor& dx));

}  // namespace neurn
