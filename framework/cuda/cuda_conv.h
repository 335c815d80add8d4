#pragma once
// CUDA launchers of conv2d over cuDNN (implemented by the CUDA backend in
// framework/cuda/*.cu). The front function in framework/ops/conv.cpp has
// already validated the shapes, dtypes and devices, and allocated the outputs
// on the device; the launchers pick the cuDNN algorithm (cached per shape) and
// check every call.
#include "framework/ops/conv.h"
#include "framework/tensor.h"

namespace neurn::cuda {

// x (N, C_in, H, W), weight (C_out, C_in / groups, kH, kW), bias (C_out) or
// undefined -> writes y (N, C_out, H_out, W_out), already allocated.
void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                    const Conv2dOptions& opt);

// dy (N, C_out, H_out, W_out). Overwrites (does not accumulate into) each of
// dx (like x), dweight (like weight) and dbias (C_out) that is defined; an
// undefined one is not needed and must not be computed.
void conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, const Tensor& dx, const Tensor& dweight,
                     const Tensor& dbias, const Conv2dOptions& opt);

}  // namespace neurn::cuda
