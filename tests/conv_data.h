#pragma once
// Random operands of a CPU convolution (framework/ops/conv_cpu.h's ConvGeom),
// shared by the tests that pin one conv algorithm against another.
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

}  // namespace neurn::testing
