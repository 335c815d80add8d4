// Winograd F(2x2, 5x5) convolution (framework/ops/conv_winograd5_cpu.h): the
// forward, the data gradient and the weight gradient against the im2col +
// gemm path over odd and even sizes (partial last tiles), paddings 0 to 5
// (the data gradient then runs at padding 4 down to -1), 1 to 64 channels and
// batches 1 to 64; float64 to 1e-12, float32 within a bound measured against
// float64 beside im2col's error; the conv2d op routed through it
// (NEURN_CONV_WINOGRAD modes) for forward and both gradients; a gradient
// check; the selection rule and the decision log.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "framework/ops.h"
#include "framework/ops/conv_cpu.h"
#include "framework/ops/conv_hwcn_cpu.h"
#include "framework/ops/conv_winograd5_cpu.h"
#include "framework/ops/conv_winograd_cpu.h"
#include "conv_data.h"
#include "gradcheck.h"

using namespace neurn;
using cpu::ConvGeom;
using cpu::ScopedWinogradMode;
using cpu::WinogradMode;
using testing::ConvData;
using testing::make_conv_data;
using testing::max_abs;
using testing::max_abs_diff;

namespace {

ConvGeom geom5x5(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad) {
  return testing::conv_geom(N, C, H, W, K, 5, 5, 1, 1, pad, pad);
}

struct Case {
  int64_t N, C, H, W, K, pad;
  bool bias;
};

// 1x1 to 33x33 outputs (odd ones end in a partial tile), paddings 0..5,
// batches 1..64, channels 1..64; the last two are the digits ConvNet's conv2
// and conv1 shapes at small batches, and one batch of 64.
std::vector<Case> cases() {
  return {
      {1, 1, 5, 5, 1, 0, true},     {2, 3, 6, 6, 4, 0, false},    {1, 2, 7, 9, 3, 0, true},
      {3, 5, 9, 8, 6, 2, true},     {1, 4, 3, 3, 2, 2, false},    {2, 6, 1, 1, 5, 2, true},
      {1, 8, 12, 11, 8, 1, true},   {2, 16, 10, 10, 16, 2, false}, {1, 7, 8, 13, 5, 3, true},
      {2, 6, 9, 7, 3, 4, false},    {1, 3, 6, 6, 4, 5, true},     {1, 9, 37, 33, 2, 0, true},
      {64, 4, 9, 9, 5, 0, true},    {2, 64, 14, 14, 32, 0, true}, {3, 3, 32, 32, 16, 0, false},
      {1, 33, 15, 15, 40, 2, true},
  };
}

std::string describe(const Case& c) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "N=%ld C=%ld %ldx%ld K=%ld pad=%ld bias=%d", static_cast<long>(c.N),
                static_cast<long>(c.C), static_cast<long>(c.H), static_cast<long>(c.W), static_cast<long>(c.K),
                static_cast<long>(c.pad), c.bias ? 1 : 0);
  return buf;
}

template <typename T>
std::vector<T> im2col_forward(const ConvGeom& g, const ConvData<T>& d, bool bias) {
  ScopedWinogradMode off(WinogradMode::Off);
  cpu::ScopedHwcnMode no_hwcn(cpu::HwcnMode::Off);
  std::vector<T> y(static_cast<size_t>(g.N * g.Cout * g.Ho * g.Wo));
  cpu::conv2d_forward<T>(g, d.x.data(), d.w.data(), bias ? d.b.data() : nullptr, y.data());
  return y;
}

template <typename T>
std::vector<T> im2col_dx(const ConvGeom& g, const ConvData<T>& d) {
  ScopedWinogradMode off(WinogradMode::Off);
  cpu::ScopedHwcnMode no_hwcn(cpu::HwcnMode::Off);
  std::vector<T> dx(static_cast<size_t>(g.N * g.C * g.H * g.W));
  cpu::conv2d_backward<T>(g, nullptr, d.w.data(), d.dy.data(), dx.data(), nullptr, nullptr);
  return dx;
}

template <typename T>
std::vector<T> im2col_dw(const ConvGeom& g, const ConvData<T>& d) {
  ScopedWinogradMode off(WinogradMode::Off);
  cpu::ScopedHwcnMode no_hwcn(cpu::HwcnMode::Off);
  std::vector<T> dw(static_cast<size_t>(g.Cout * g.K()));
  cpu::conv2d_backward<T>(g, d.x.data(), nullptr, d.dy.data(), nullptr, dw.data(), nullptr);
  return dw;
}

// The Winograd kernels, into buffers filled with 7: every value must be written.
template <typename T>
std::vector<T> winograd_forward(const ConvGeom& g, const ConvData<T>& d, bool bias) {
  std::vector<T> y(static_cast<size_t>(g.N * g.Cout * g.Ho * g.Wo), T(7));
  cpu::winograd5_conv2d_forward<T>(g, d.x.data(), d.w.data(), bias ? d.b.data() : nullptr, y.data());
  return y;
}

template <typename T>
std::vector<T> winograd_dx(const ConvGeom& g, const ConvData<T>& d) {
  std::vector<T> dx(static_cast<size_t>(g.N * g.C * g.H * g.W), T(7));
  cpu::winograd5_conv2d_backward_data<T>(g, d.w.data(), d.dy.data(), dx.data());
  return dx;
}

template <typename T>
std::vector<T> winograd_dw(const ConvGeom& g, const ConvData<T>& d) {
  std::vector<T> dw(static_cast<size_t>(g.Cout * g.K()), T(7));
  cpu::winograd5_conv2d_backward_weight<T>(g, d.x.data(), d.dy.data(), dw.data());
  return dw;
}

}  // namespace

TEST_CASE("winograd 5x5: applicability") {
  const ConvGeom ok = geom5x5(1, 2, 7, 7, 3, 0);
  CHECK(cpu::winograd5_applicable(ok));
  CHECK(cpu::winograd_applicable(ok));
  CHECK(cpu::winograd_weight_applicable(ok));
  ConvGeom g = ok;
  g.sh = g.sw = 2;
  g.Ho = g.Wo = 2;
  CHECK_FALSE(cpu::winograd5_applicable(g));
  g = ok;
  g.dh = 2;
  CHECK_FALSE(cpu::winograd5_applicable(g));
  g = geom5x5(1, 4, 7, 7, 4, 0);
  g.groups = 2;
  CHECK_FALSE(cpu::winograd5_applicable(g));
  g = ok;
  g.kw = 3;
  g.Wo = 5;
  CHECK_FALSE(cpu::winograd5_applicable(g));
  CHECK_FALSE(cpu::winograd_applicable(g));
  CHECK_THROWS_CONTAINING(cpu::winograd5_conv2d_backward_weight<double>(g, nullptr, nullptr, nullptr),
                          "needs a 5x5 kernel");
  // 3x3 convs have no Winograd weight gradient
  ConvGeom g3 = ok;
  g3.kh = g3.kw = 3;
  g3.Ho = g3.Wo = 5;
  CHECK(cpu::winograd_applicable(g3));
  CHECK_FALSE(cpu::winograd_weight_applicable(g3));
  {
    ScopedWinogradMode always(WinogradMode::Always);
    CHECK_FALSE(cpu::use_winograd_backward_weight(g3, 4));
    CHECK(cpu::use_winograd_backward_weight(ok, 8));
  }
  {
    ScopedWinogradMode off(WinogradMode::Off);
    CHECK_FALSE(cpu::use_winograd_forward(geom5x5(64, 64, 14, 14, 128, 0), 4));
    CHECK_FALSE(cpu::use_winograd_backward_weight(geom5x5(64, 64, 14, 14, 128, 0), 4));
  }
}

TEST_CASE("winograd 5x5: forward, data and weight gradients in float64 match im2col to 1e-12") {
  uint32_t seed = 1300;
  for (const Case& c : cases()) {
    const ConvGeom g = geom5x5(c.N, c.C, c.H, c.W, c.K, c.pad);
    REQUIRE(g.Ho > 0);
    REQUIRE(g.Wo > 0);
    const auto d = make_conv_data<double>(g, seed += 10);
    INFO(describe(c));
    const auto y = im2col_forward(g, d, c.bias), dx = im2col_dx(g, d), dw = im2col_dw(g, d);
    CHECK(max_abs_diff(y, winograd_forward(g, d, c.bias)) <= 1e-12 * std::max(1.0, max_abs(y)));
    CHECK(max_abs_diff(dx, winograd_dx(g, d)) <= 1e-12 * std::max(1.0, max_abs(dx)));
    CHECK(max_abs_diff(dw, winograd_dw(g, d)) <= 1e-12 * std::max(1.0, max_abs(dw)));
  }
}

// float32: both algorithms against the float64 result of the same float32
// data, as max error / max |result| over these cases. F(2x2,5x5)'s
// transforms have larger coefficients than F(2x2,3x3)'s (B^T up to 5 with
// rows of L1 norm 10, G's 1/24 .. 2/3, A^T's 2) and their sums cancel, so
// its rounding grows. Measured (docs/engine-bench.md, "Winograd for 5x5
// kernels"): forward 3.2e-6 against im2col's 4.5e-7, data gradient 3.7e-6
// against 2.2e-7, weight gradient 1.1e-5 against 4.9e-7 (the sums over the
// tiles happen in the transformed domain, where the values are ~10x x's).
// The bounds, 1e-5 and 3e-5, are ~3x the worst Winograd error of each;
// a wrong coefficient gives errors of order 1.
TEST_CASE("winograd 5x5: float32 error against float64, beside im2col's") {
  uint32_t seed = 1700;
  double worst[3][2] = {};  // pass (forward, data, weight) x (winograd, im2col)
  for (const Case& c : cases()) {
    const ConvGeom g = geom5x5(c.N, c.C, c.H, c.W, c.K, c.pad);
    const auto f = make_conv_data<float>(g, seed += 10);
    ConvData<double> d;  // the same float32 values, computed in float64
    d.x.assign(f.x.begin(), f.x.end());
    d.w.assign(f.w.begin(), f.w.end());
    d.b.assign(f.b.begin(), f.b.end());
    d.dy.assign(f.dy.begin(), f.dy.end());
    const auto ey = im2col_forward(g, d, c.bias), edx = im2col_dx(g, d), edw = im2col_dw(g, d);
    const double e[3][2] = {
        {max_abs_diff(winograd_forward(g, f, c.bias), ey) / max_abs(ey),
         max_abs_diff(im2col_forward(g, f, c.bias), ey) / max_abs(ey)},
        {max_abs_diff(winograd_dx(g, f), edx) / max_abs(edx), max_abs_diff(im2col_dx(g, f), edx) / max_abs(edx)},
        {max_abs_diff(winograd_dw(g, f), edw) / max_abs(edw), max_abs_diff(im2col_dw(g, f), edw) / max_abs(edw)}};
    INFO(describe(c), ": forward ", e[0][0], " (im2col ", e[0][1], "), dx ", e[1][0], " (", e[1][1], "), dw ",
         e[2][0], " (", e[2][1], ")");
    for (int p = 0; p < 3; ++p) {
      CHECK(e[p][0] <= (p == 2 ? 3e-5 : 1e-5));
      for (int a = 0; a < 2; ++a) worst[p][a] = std::max(worst[p][a], e[p][a]);
    }
  }
  MESSAGE("float32 max error / max |result|: forward winograd ", worst[0][0], ", im2col ", worst[0][1],
          "; data gradient ", worst[1][0], ", ", worst[1][1], "; weight gradient ", worst[2][0], ", ", worst[2][1]);
}

// The op routes through the mode: Always gives the Winograd kernels' bits
// for y, dx and dw, Off im2col's; all four results agree to 1e-12 in float64.
TEST_CASE("winograd 5x5: conv2d op (forward, dx, dw, db) through NEURN_CONV_WINOGRAD modes") {
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
    CHECK(off[0] != winograd_forward(g, d, true));  // Off: it did not (im2col rounds differently)
    CHECK(off[2] != winograd_dw(g, d));
    for (int i = 0; i < 4; ++i) CHECK(max_abs_diff(on[i], off[i]) <= 1e-12 * std::max(1.0, max_abs(off[i])));
    CHECK(on[3] == off[3]);  // db is the same sum either way
  }
}

// The decision log records the weight gradient's decision beside the
// forward's and the data gradient's.
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

TEST_CASE("winograd 5x5: float64 gradient check through the Winograd path") {
  using neurn::testing::gradcheck;
  using neurn::testing::leaf;
  ScopedWinogradMode m(WinogradMode::Always);
  cpu::ScopedHwcnMode no_hwcn(cpu::HwcnMode::Off);
  for (int64_t pad : {0, 2}) {
    std::vector<Tensor> in = {leaf({2, 3, 7, 6}, 310 + pad), leaf({4, 3, 5, 5}, 320 + pad), leaf({4}, 330 + pad)};
    INFO("pad ", pad);
    CHECK_GRADCHECK(gradcheck([pad](const std::vector<Tensor>& v) {
      return conv2d(v[0], v[1], v[2], Conv2dOptions{{1, 1}, {pad, pad}, {1, 1}, 1});
    }, in));
  }
}

// The Auto rule for 5x5 kernels (winograd_conv_profitable, _weight_profitable)
// on the digits ConvNet's convs, as docs/engine-bench.md ("Winograd for 5x5
// kernels") measured them: a change of the rule must come with new
// measurements there.
TEST_CASE("winograd 5x5: the measured selection rule") {
  const ConvGeom conv1 = geom5x5(64, 3, 32, 32, 64, 0), conv2 = geom5x5(64, 64, 14, 14, 128, 0);
  for (int64_t threads : {1, 2}) {
    CHECK(cpu::winograd_conv_profitable(conv2, 4, false, threads));
    CHECK(cpu::winograd_conv_profitable(conv2, 4, true, threads));
    CHECK(cpu::winograd_weight_profitable(conv2, 4, threads));
    CHECK_FALSE(cpu::winograd_conv_profitable(conv1, 4, false, threads));
    CHECK_FALSE(cpu::winograd_conv_profitable(conv1, 4, true, threads));
    CHECK_FALSE(cpu::winograd_weight_profitable(conv1, 4, threads));
    // float64 (gradient checks) keeps im2col
    CHECK_FALSE(cpu::winograd_conv_profitable(conv2, 8, false, threads));
    CHECK_FALSE(cpu::winograd_weight_profitable(conv2, 8, threads));
  }
  // InceptionV3's 5x5 (48 -> 64 on 7x7, padding 2; HWCN takes it first)
  CHECK(cpu::winograd_conv_profitable(geom5x5(64, 48, 7, 7, 64, 2), 4, false, 1));
  CHECK(cpu::winograd_weight_profitable(geom5x5(64, 48, 7, 7, 64, 2), 4, 1));
  CHECK_FALSE(cpu::winograd_conv_profitable(geom5x5(64, 32, 14, 14, 64, 0), 4, false, 1));  // not measured
  ConvGeom s2 = conv2;
  s2.sh = s2.sw = 2;
  s2.Ho = s2.Wo = 5;
  CHECK_FALSE(cpu::winograd_weight_profitable(s2, 4, 1));
  {
    ScopedWinogradMode autom(WinogradMode::Auto);
    cpu::ScopedHwcnMode no_hwcn(cpu::HwcnMode::Off);
    CHECK(cpu::use_winograd_forward(conv2, 4));
    CHECK(cpu::use_winograd_backward_weight(conv2, 4));
    CHECK_FALSE(cpu::use_winograd_backward_weight(conv1, 4));
  }
}
