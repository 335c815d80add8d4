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

// The inverse of the taps: the outputs d in [0, out) that read input i
// (i0(d) == i or i1(d) == i). i0 and i1 = min(i0 + 1, in - 1) never decrease
// with d, so these are the d with i1(d) >= i and i0(d) <= i, one contiguous
// range found by two binary searches over upsample_tap itself (no closed form
// that could disagree with the float rounding of the taps).
struct UpsampleRange {
  int64_t begin, end;
};

NEURN_HD UpsampleRange upsample_inverse_span(int64_t i, int64_t in, int64_t out, bool bilinear, bool align_corners) {
  int64_t lo = 0, hi = out;  // first d with i1(d) >= i
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (upsample_tap(mid, in, out, bilinear, align_corners).i1 >= i)
      hi = mid;
    else
      lo = mid + 1;
  }
  const int64_t begin = lo;
  hi = out;  // first d with i0(d) > i
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (upsample_tap(mid, in, out, bilinear, align_corners).i0 > i)
      hi = mid;
    else
      lo = mid + 1;
  }
  return {begin, lo};
}

// dx at input (h, w) of one plane (H x W, gradients dy of Ho x Wo) as a
// gather over the outputs that read it, rows rh and columns rw
// (upsample_inverse_span), in row-major output order and, per output, in
// the order (i0, i0), (i0, i1), (i1, i0), (i1, i1) of the forward's four
// terms: the order a scatter over the outputs reaches the input, so the
// result is the scatter's bit for bit, without atomics.
template <typename T>
NEURN_HD T upsample_grad_at(int64_t H, int64_t W, int64_t Ho, int64_t Wo, bool bilinear, bool align_corners,
                            const T* dy, int64_t h, int64_t w, UpsampleRange rh, UpsampleRange rw) {
  T acc = T(0);
  for (int64_t oh = rh.begin; oh < rh.end; ++oh) {
    const UpsampleTap th = upsample_tap(oh, H, Ho, bilinear, align_corners);
    const T a0 = static_cast<T>(th.l0), a1 = static_cast<T>(th.l1);
    for (int64_t ow = rw.begin; ow < rw.end; ++ow) {
      const UpsampleTap tw = upsample_tap(ow, W, Wo, bilinear, align_corners);
      const T b0 = static_cast<T>(tw.l0), b1 = static_cast<T>(tw.l1);
      const T v = dy[oh * Wo + ow];
      if (th.i0 == h && tw.i0 == w) acc += a0 * b0 * v;
      if (th.i0 == h && tw.i1 == w) acc += a0 * b1 * v;
      if (th.i1 == h && tw.i0 == w) acc += a1 * b0 * v;
      if (th.i1 == h && tw.i1 == w) acc += a1 * b1 * v;
    }
  }
  return acc;
}

}  // namespace neurn
