#pragma once
#include <array>

#include "framework/tensor.h"

namespace neurn {

struct Conv2dOptions {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};   // zero padding, each side
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;                      // groups == C_in == C_out: depthwise
};

// x (N, C_in, H, W), weight (C_out, C_in / groups, kH, kW), bias (C_out) or
// undefined -> (N, C_out, H_out, W_out) with
// H_out = (H + 2 pad - dilation (kH - 1) - 1) / stride + 1.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const Conv2dOptions& opt = {});

// Output spatial size of a convolution or pooling window along one axis.
int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode = false);

}  // namespace neurn
