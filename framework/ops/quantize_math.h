#pragma once
// The per-element math of fake quantization, written once for the CPU loop
// (quantize.cpp) and the CUDA kernel (cuda/quantize.cu).
#include <cmath>

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

}  // namespace neurn
