#pragma once
#include <array>

#include "framework/tensor.h"

namespace neurn {

struct Pool2dOptions {
  std::array<int64_t, 2> kernel{2, 2};
  std::array<int64_t, 2> stride{0, 0};   // 0: equal to kernel
  std::array<int64_t, 2> padding{0, 0};
  bool ceil_mode = false;
  bool count_include_pad = true;         // avg_pool2d only
};

// (N, C, H, W) -> (N, C, H_out, W_out). Max pooling sends the gradient to the
// first maximal element of each window (ties: the first in row-major order).
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt);
// PyTorch's adaptive windows: start = floor(i H / out), end = ceil((i+1) H / out).
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
// (N, C, H, W) -> (N, C)
Tensor global_avg_pool2d(const Tensor& x);

enum class UpsampleMode { Nearest, Bilinear };
// (N, C, H, W) -> (N, C, out_h, out_w), as torch.nn.functional.interpolate
// with a size: bilinear with align_corners=false (half-pixel centres, what
// PyTorch and the image resizers do by default) or true (corner pixels of
// input and output coincide: MiDaS, DeepLab). align_corners needs bilinear.
// The source taps are framework/ops/upsample_math.h.
Tensor upsample(const Tensor& x, int64_t out_h, int64_t out_w, UpsampleMode mode = UpsampleMode::Nearest,
                bool align_corners = false);

}  // namespace neurn
