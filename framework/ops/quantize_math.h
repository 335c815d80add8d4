#pragma once
// The per-element math of fake quantization, written once for the CPU loop
// (quantize.cpp) and the CUDA kernel (cuda/quantize.cu).
#include <cmath>
#include <cstdint>

#include "framework/hd.h"

namespace neurn {

// clamp(round(x / scale), qmin, qmax) * scale, round half away from zero;
// computed in double so float32 and float64 data land on the same grid.
template <typename T>
NEURN_HD T quantize_value(T x, double scale, double qmin, double qmax) {
  double q = static_cast<double>(x) / scale;
  q = q < 0 ? -::floor(-q + 0.5) : ::floor(q + 0.5);
  q = q < qmin ? qmin : (q > qmax ? qmax : q);
  return static_cast<T>(q * scale);
}

// The straight-through gradient: dy inside [lo, hi], 0 outside.
template <typename T>
NEURN_HD T straight_through(T x, T dy, double lo, double hi) {
  double v = static_cast<double>(x);
  return (v >= lo && v <= hi) ? dy : T(0);
}

// The grid of one call. A fixed scale (fake_quantize) or one from the data
// (levels > 0): scale = range / levels, computed where the range lives (on
// the device for CUDA tensors), and no quantization at all (identity, the
// gradient passes) when the range is not positive: all zero, or, unsigned,
// nothing positive.
struct QuantParams {
  double scale = 1.0;  // used when levels == 0
  int64_t qmin = 0, qmax = 0;
  int64_t levels = 0;  // > 0: scale = range / levels
};

struct QuantGrid {
  double scale, qmin, qmax;
  double lo, hi;  // the straight-through window [qmin scale, qmax scale]
  bool identity;
};

NEURN_HD QuantGrid quant_grid(const QuantParams& p, double range) {
  QuantGrid g;
  g.scale = p.levels > 0 ? range / static_cast<double>(p.levels) : p.scale;
  g.identity = p.levels > 0 && !(range > 0);
  g.qmin = static_cast<double>(p.qmin);
  g.qmax = static_cast<double>(p.qmax);
  g.lo = g.qmin * g.scale;
  g.hi = g.qmax * g.scale;
  return g;
}

}  // namespace neurn
