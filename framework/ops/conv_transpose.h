#pragma once
// Transposed convolution (the gradient of conv2d with respect to its input,
// used as a layer: U-Net's up-convolutions). Same arguments and output size as
// torch.nn.functional.conv_transpose2d.
#include <array>

#include "framework/tensor.h"

namespace neurn {

struct ConvTranspose2dOptions {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};         // removed from each side of the output
  std::array<int64_t, 2> output_padding{0, 0};  // added to the bottom/right of the output; < stride
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
};

// x (N, C_in, H, W), weight (C_in, C_out / groups, kH, kW) (PyTorch's layout:
// the layout of the conv2d whose input gradient this is), bias (C_out) or
// undefined -> (N, C_out, H_out, W_out) with
// H_out = (H - 1) stride - 2 padding + dilation (kH - 1) + output_padding + 1.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {},
                        const ConvTranspose2dOptions& opt = {});

// H_out above, along one axis.
int64_t conv_transpose_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation,
                                int64_t output_padding);

}  // namespace neurn
