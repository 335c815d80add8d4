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

// The geometry of a 2-D pooling: planes (N C) of H x W into Ho x Wo, kernel
// (kh, kw), stride (sh, sw), padding (ph, pw); the CPU loops and the CUDA
// kernels take the same struct.
struct PoolGeometry {
  int64_t planes = 0, H = 0, W = 0, Ho = 0, Wo = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
};

// A range [begin, end) of output positions along one axis.
struct OutRange {
  int64_t begin, end;
};

// The inverse window: the outputs o in [0, out) whose pooling window along
// this axis contains input sample i (0 <= i < in). Window o covers
// [o s - p, min(o s - p + k, in + p)) and i < in <= in + p, so o s - p <= i <
// o s - p + k: o in [floor((i + p - k) / s) + 1, floor((i + p) / s)], the
// lower bound floored towards minus infinity (i + p - k may be negative).
NEURN_HD OutRange pool_inverse_span(int64_t i, int64_t k, int64_t s, int64_t p, int64_t out) {
  const int64_t a = i + p - k;
  int64_t lo = a < 0 ? 0 : a / s + 1;
  int64_t hi = (i + p) / s + 1;
  hi = hi < out ? hi : out;
  lo = lo < hi ? lo : hi;
  return {lo, hi};
}

// The inverse of adaptive_span: outputs j of `out` whose window
// [floor(j in / out), ceil((j + 1) in / out)) contains input i:
// floor(j in / out) <= i  <=>  j < (i + 1) out / in, and
// ceil((j + 1) in / out) > i  <=>  j >= floor(i out / in).
NEURN_HD OutRange adaptive_inverse_span(int64_t i, int64_t in, int64_t out) {
  int64_t lo = (i * out) / in, hi = ((i + 1) * out + in - 1) / in;
  hi = hi < out ? hi : out;
  return {lo, hi};
}

// ---- the backward of pooling as a gather ----------------------------------------
// dx at input (h, w) of one plane: the sum over the outputs whose windows
// contain it, visited in row-major output order. That is the order in which a
// scatter over the outputs (for each output, add into its window) reaches any
// one input, so the gather gives the scatter's result bit for bit, and with
// one thread per input it needs no atomics: the deterministic CUDA backward
// (NEURN_DETERMINISTIC=1) calls these. The CPU keeps its scatter (one thread
// per plane, deterministic too, and faster on a CPU); the CPU tests check the
// gather against it bit for bit. dy (and idx) point at the plane's Ho x Wo
// gradients.

// Max pooling: idx holds each output's argmax (flat index in the input plane).
template <typename T>
NEURN_HD T max_pool_grad_at(const PoolGeometry& g, const T* dy, const int64_t* idx, int64_t h, int64_t w) {
  const OutRange rh = pool_inverse_span(h, g.kh, g.sh, g.ph, g.Ho), rw = pool_inverse_span(w, g.kw, g.sw, g.pw, g.Wo);
  const int64_t target = h * g.W + w;
  T acc = T(0);
  for (int64_t oh = rh.begin; oh < rh.end; ++oh)
    for (int64_t ow = rw.begin; ow < rw.end; ++ow)
      if (idx[oh * g.Wo + ow] == target) acc += dy[oh * g.Wo + ow];
  return acc;
}

// Average pooling: each output's gradient over its divisor (pool_divisor).
template <typename T>
NEURN_HD T avg_pool_grad_at(const PoolGeometry& g, bool count_include_pad, const T* dy, int64_t h, int64_t w) {
  const OutRange rh = pool_inverse_span(h, g.kh, g.sh, g.ph, g.Ho), rw = pool_inverse_span(w, g.kw, g.sw, g.pw, g.Wo);
  T acc = T(0);
  for (int64_t oh = rh.begin; oh < rh.end; ++oh) {
    const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph);
    for (int64_t ow = rw.begin; ow < rw.end; ++ow) {
      const int64_t d = pool_divisor(sh, pool_span(ow, g.W, g.kw, g.sw, g.pw), count_include_pad);
      if (d > 0) acc += dy[oh * g.Wo + ow] / static_cast<T>(d);
    }
  }
  return acc;
}

// Adaptive average pooling of H x W into Ho x Wo.
template <typename T>
NEURN_HD T adaptive_grad_at(int64_t H, int64_t W, int64_t Ho, int64_t Wo, const T* dy, int64_t h, int64_t w) {
  const OutRange rh = adaptive_inverse_span(h, H, Ho), rw = adaptive_inverse_span(w, W, Wo);
  T acc = T(0);
  for (int64_t oh = rh.begin; oh < rh.end; ++oh) {
    const PoolSpan sh = adaptive_span(oh, H, Ho);
    for (int64_t ow = rw.begin; ow < rw.end; ++ow) {
      const PoolSpan sw = adaptive_span(ow, W, Wo);
      acc += dy[oh * Wo + ow] / static_cast<T>((sh.end - sh.begin) * (sw.end - sw.begin));
    }
  }
  return acc;
}

// Max pooling's rule for the running maximum: strictly greater replaces it
// (the first maximum in row-major order wins ties); a NaN replaces it once
// and then stays (v != v is the NaN test on both host and device).
template <typename T>
NEURN_HD bool pool_beats(T v, T best) {
  return best == best && (v > best || v != v);
}

}  // namespace neurn
