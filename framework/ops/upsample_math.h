#pragma once
// The source taps of upsampling, written once for the CPU loops
// (framework/ops/pool.cpp) and the CUDA kernels (framework/cuda/pool.cu), so
// the CPU tests exercise the index and weight arithmetic the GPU runs.
// Output position d along an axis of `in` -> `out` samples reads x[i0] with
// weight l0 and x[i1] with weight l1 (PyTorch's upsample_nearest2d and
// upsample_bilinear2d without a scale factor):
// - nearest: i0 = i1 = min(floor(d * (in / out)), in - 1), in float as
//   PyTorch computes it, so that the rounding picks the same pixel;
// - bilinear, align_corners=false (half-pixel centres):
//   src = max((d + 0.5) * in / out - 0.5, 0);
// - bilinear, align_corners=true (the corner pixels of input and output
//   coincide): src = d * (in - 1) / (out - 1), and 0 when out == 1;
// then i0 = min(floor(src), in - 1), i1 = min(i0 + 1, in - 1), l1 = src - i0.
#include <cstdint>

#include "framework/hd.h"

namespace neurn {

struct UpsampleTap {
  int64_t i0, i1;
  double l0, l1;
};

NEURN_HD UpsampleTap upsample_tap(int64_t d, int64_t in, int64_t out, bool bilinear, bool align_corners) {
  if (!bilinear) {
    const float fscale = static_cast<float>(in) / static_cast<float>(out);
    int64_t s = static_cast<int64_t>(static_cast<float>(d) * fscale);  // >= 0: truncation is floor
    s = s < in - 1 ? s : in - 1;
    return {s, s, 1.0, 0.0};
  }
  double src;
  if (align_corners) {
    const double scale = out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
    src = scale * static_cast<double>(d);
  } else {
    const double scale = static_cast<double>(in) / static_cast<double>(out);
    src = (static_cast<double>(d) + 0.5) * scale - 0.5;
    src = src > 0.0 ? src : 0.0;
  }
  int64_t i0 = static_cast<int64_t>(src);
  i0 = i0 < in - 1 ? i0 : in - 1;
  const int64_t i1 = i0 + 1 < in - 1 ? i0 + 1 : in - 1;
  const double l1 = src - static_cast<double>(i0);
  return {i0, i1, 1.0 - l1, l1};
}

}  // namespace neurn
