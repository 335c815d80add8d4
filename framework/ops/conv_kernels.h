#pragma once
// The kernels of conv2d (framework/dispatch.h), which conv_transpose2d runs
// too with the roles swapped (conv_transpose.cpp). The front functions check
// the shapes and allocate every output; the CPU kernels (im2col + OpenBLAS,
// conv_cpu.h) are registered in conv.cpp, the CUDA ones (cuDNN) in
// framework/cuda/conv.cu.
#include "framework/dispatch.h"
#include "framework/ops/conv.h"
#include "framework/tensor.h"

namespace neurn {

// x (N, C_in, H, W), weight (C_out, C_in / groups, kH, kW), bias (C_out) or
// undefined -> writes y (N, C_out, H_out, W_out).
NEURN_DECLARE_KERNEL(conv2d_kernel, void(const Conv2dOptions& opt, const Tensor& x, const Tensor& weight,
                                         const Tensor& bias, const Tensor& y));
// dy (N, C_out, H_out, W_out). Overwrites each of dx (like x), dweight (like
// weight) and dbias (C_out) that is defined; an undefined one is not
// computed. x's data is read only for dweight (with dweight undefined, x
// only gives the input's shape).
NEURN_DECLARE_KERNEL(conv2d_backward_kernel,
                     void(const Conv2dOptions& opt, const Tensor& x, const Tensor& weight, const Tensor& dy,
                          const Tensor& dx, const Tensor& dweight, const Tensor& dbias));

}  // namespace neurn
