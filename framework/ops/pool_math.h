#pragma once
// The window arithmetic of pooling, written once for the CPU loops
// (framework/ops/pool.cpp) and the CUDA kernels (framework/cuda/pool.cu), so
// the CPU tests exercise the windows, divisors and tie rule the GPU runs.
// Windows follow PyTorch (max_pool2d, avg_pool2d, adaptive_avg_pool2d).
#include <cstdint>

#include "framework/hd.h"

namespace neurn {

// One axis of a pooling window: output position o with kernel k, stride s,
// padding p over an input of `in` samples.
struct PoolSpan {
  int64_t begin, end;  // the samples inside the input, [begin, end)
  int64_t padded;      // the window clipped to the padded input (p + in + p)
};

NEURN_HD PoolSpan pool_span(int64_t o, int64_t in, int64_t k, int64_t s, int64_t p) {
  const int64_t start = o * s - p;
  // The ceil-mode overhang past the right padding is not part of the window.
  const int64_t stop = start + k < in + p ? start + k : in + p;
  PoolSpan r;
  r.padded = stop - start;
  r.begin = start > 0 ? start : 0;
  r.end = stop < in ? stop : in;
  return r;
}

// avg_pool2d's divisor: with count_include_pad the padded window, else only
// the elements inside the input (0 for a window of padding only, which the
// checks of pool.cpp rule out; the callers then write 0).
NEURN_HD int64_t pool_divisor(const PoolSpan& h, const PoolSpan& w, bool count_include_pad) {
  if (count_include_pad) return h.padded * w.padded;
  const int64_t nh = h.end > h.begin ? h.end - h.begin : 0, nw = w.end > w.begin ? w.end - w.begin : 0;
  return nh * nw;
}

// Adaptive pooling: output i of `out` averages [floor(i in / out), ceil((i + 1) in / out)).
NEURN_HD PoolSpan adaptive_span(int64_t i, int64_t in, int64_t out) {
  const int64_t b = (i * in) / out, e = ((i + 1) * in + out - 1) / out;
  return {b, e, e - b};
}

// Max pooling's rule for the running maximum: strictly greater replaces it
// (the first maximum in row-major order wins ties); a NaN replaces it once
// and then stays (v != v is the NaN test on both host and device).
template <typename T>
NEURN_HD bool pool_beats(T v, T best) {
  return best == best && (v > best || v != v);
}

}  // namespace neurn
