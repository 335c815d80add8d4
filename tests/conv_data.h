#pragma once
// Random operands of a CPU convolution (framework/ops/conv_cpu.h's ConvGeom),
// shared by the tests that pin one conv algorithm against another.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "framework/ops/conv_cpu.h"

namespace neurn::testing {

// n values uniform in [-1, 1), the same for a seed on every machine.
template <typename T>
std::vector<T> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(u(rng));
  return v;
}

// x (N, C, H, W), w (Cout, C / groups, kh, kw), bias (Cout), dy (N, Cout, Ho, Wo).
template <typename T>
struct ConvData {
  std::vector<T> x, w, b, dy;
};

template <typename T>
ConvData<T> make_conv_data(const cpu::ConvGeom& g, uint32_t seed) {
  ConvData<T> d;
  d.x = random_values<T>(static_cast<size_t>(g.N * g.C * g.H * g.W), seed);
  d.w = random_values<T>(static_cast<size_t>(g.Cout * g.Cg() * g.kh * g.kw), seed + 1);
  d.b = random_values<T>(static_cast<size_t>(g.Cout), seed + 2);
  d.dy = random_values<T>(static_cast<size_t>(g.N * g.Cout * g.P()), seed + 3);
  return d;
}

// A geometry with its output size computed the way conv2d does.
inline cpu::ConvGeom conv_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t Cout, int64_t kh, int64_t kw,
                               int64_t sh = 1, int64_t sw = 1, int64_t ph = 0, int64_t pw = 0, int64_t dh = 1,
                               int64_t dw = 1, int64_t groups = 1) {
  cpu::ConvGeom g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.Cout = Cout, g.kh = kh, g.kw = kw;
  g.sh = sh, g.sw = sw, g.ph = ph, g.pw = pw, g.dh = dh, g.dw = dw, g.groups = groups;
  g.Ho = (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
  g.Wo = (W + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
  return g;
}

// The largest |a[i] - b[i]|, in double.
template <typename A, typename B>
double max_abs_diff(const std::vector<A>& a, const std::vector<B>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  return m;
}

// The largest |a[i]|, in double.
template <typename T>
double max_abs(const std::vector<T>& a) {
  double m = 0;
  for (T v : a) m = std::max(m, std::abs(static_cast<double>(v)));
  return m;
}

}  // namespace neurn::testing
