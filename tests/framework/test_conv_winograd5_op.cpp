// Winograd F(2x2, 5x5) through the conv2d op (framework/ops/conv_winograd5_cpu.h,
// called from conv_cpu.cpp): with NEURN_CONV_WINOGRAD=always the op's y, dx
// and dw are the Winograd kernels' bits, with it off im2col's, and the two
// agree to 1e-12 in float64; the decision log records the weight
// gradient's decision beside the forward's and the data gradient's.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/ops.h"
#include "framework/ops/conv_cpu.h"
#include "framework/ops/conv_hwcn_cpu.h"
#include "framework/ops/conv_winograd5_cpu.h"
#include "framework/ops/conv_winograd_cpu.h"
#include "conv_data.h"

using namespace neurn;
using cpu::ConvGeom;
using cpu::ScopedWinogradMode;
using cpu::WinogradMode;
using testing::ConvData;
using testing::max_abs;
using testing::max_abs_diff;

namespace {

ConvGeom geom5x5(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad) {
  return testing::conv_geom(N, C, H, W, K, 5, 5, 1, 1, pad, pad);
}

std::vector<double> winograd_forward(const ConvGeom& g, const ConvData<double>& d, bool bias) {
  std::vector<double> y(static_cast<size_t>(g.N * g.Cout * g.Ho * g.Wo), 7.0);
  cpu::winograd5_conv2d_forward<double>(g, d.x.data(), d.w.data(), bias ? d.b.data() : nullptr, y.data());
  return y;
}

std::vector<double> winograd_dx(const ConvGeom& g, const ConvData<double>& d) {
  std::vector<double> dx(static_cast<size_t>(g.N * g.C * g.H * g.W), 7.0);
  cpu::winograd5_conv2d_backward_data<double>(g, d.w.data(), d.dy.data(), dx.data());
  return dx;
}

std::vector<double> winograd_dw(const ConvGeom& g, const ConvData<double>& d) {
  std::vector<double> dw(static_cast<size_t>(g.Cout * g.K()), 7.0);
  cpu::winograd5_conv2d_backward_weight<double>(g, d.x.data(), d.dy.data(), dw.data());
  return dw;
}

}  // namespace

TEST_CASE("winograd 5x5 op: conv2d forward, dx, dw, db through NEURN_CONV_WINOGRAD modes") {
  cpu::ScopedHwcnMode no_hwcn(cpu::HwcnMode::Off);  // HWCN is asked first
  Generator gen(17);
  for (int64_t pad : {0, 2}) {
    Tensor x = randn({3, 12, 11, 10}, {DType::Float64}, &gen), w = randn({10, 12, 5, 5}, {DType::Float64}, &gen);
    Tensor b = randn({10}, {DType::Float64}, &gen);
    x.requires_grad_(), w.requires_grad_(), b.requires_grad_();
    Conv2dOptions opt{{1, 1}, {pad, pad}, {1, 1}, 1};
    Tensor proj;
    auto run = [&](WinogradMode mode) {
      ScopedWinogradMode m(mode);
      x.zero_grad(), w.zero_grad(), b.zero_grad();
      Tensor y = conv2d(x, w, b, opt);
      Generator g2(11);
      proj = randn(y.shape(), {DType::Float64}, &g2);
      sum(mul(y, proj)).backward();
      return std::vector<std::vector<double>>{y.to_vector<double>(), x.grad().to_vector<double>(),
                                              w.grad().to_vector<double>(), b.grad().to_vector<double>()};
    };
    const auto on = run(WinogradMode::Always), off = run(WinogradMode::Off);
    const ConvGeom g = geom5x5(3, 12, 11, 10, 10, pad);
    ConvData<double> d;
    d.x = x.to_vector<double>(), d.w = w.to_vector<double>(), d.b = b.to_vector<double>();
    d.dy = proj.to_vector<double>();
    INFO("pad ", pad);
    CHECK(on[0] == winograd_forward(g, d, true));  // Always: the op ran the Winograd kernels
    CHECK(on[1] == winograd_dx(g, d));
    CHECK(on[2] == winograd_dw(g, d));
    CHECK(off[2] != winograd_dw(g, d));  // Off: it did not (im2col rounds differently)
    for (int i = 0; i < 4; ++i) CHECK(max_abs_diff(on[i], off[i]) <= 1e-12 * std::max(1.0, max_abs(off[i])));
    CHECK(on[3] == off[3]);  // db is the same sum either way
  }
}


TEST_CASE("winograd 5x5 op: the decision log records the weight gradient's decision") {
  Generator gen(19);
  Tensor x = randn({1, 2, 8, 8}, {DType::Float32}, &gen), w = randn({3, 2, 5, 5}, {DType::Float32}, &gen);
  x.requires_grad_(), w.requires_grad_();
  ScopedWinogradMode m(WinogradMode::Always);
  cpu::ScopedHwcnMode no_hwcn(cpu::HwcnMode::Off);
  cpu::WinogradDecisionLog log;
  sum(conv2d(x, w)).backward();
  REQUIRE(log.decisions().size() == 3);
  int fwd = 0, data = 0, weight = 0;
  for (const auto& d : log.decisions()) {
    CHECK(d.winograd);
    CHECK(d.geom.kh == 5);
    CHECK_FALSE((d.backward_data && d.backward_weight));
    fwd += !d.backward_data && !d.backward_weight, data += d.backward_data, weight += d.backward_weight;
  }
  CHECK(fwd == 1);
  CHECK(data == 1);
  CHECK(weight == 1);
}
