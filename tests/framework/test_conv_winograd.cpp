// Winograd F(2x2, 3x3) convolution (framework/ops/conv_winograd_cpu.h): the
// forward and the data gradient against the im2col + gemm path over odd and
// even sizes, paddings 0 to 3, 1 to 64 channels and batches 1 to 5; float64
// tight, float32 within a bound measured against float64; the conv2d op
// routed through it (NEURN_CONV_WINOGRAD modes) for forward, both gradients
// and conv_transpose2d; the decision log.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "framework/ops.h"
#include "framework/ops/conv_cpu.h"
#include "framework/ops/conv_hwcn_cpu.h"
#include "framework/ops/conv_winograd_cpu.h"
#include "conv_data.h"
#include "gradcheck.h"

using namespace neurn;
using cpu::ConvGeom;
using testing::ConvData;
using testing::make_conv_data;
using testing::max_abs;
using testing::max_abs_diff;
using cpu::ScopedWinogradMode;
using cpu::WinogradMode;

namespace {

ConvGeom geom3x3(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad) {
  return testing::conv_geom(N, C, H, W, K, 3, 3, 1, 1, pad, pad);
}

struct Case {
  int64_t N, C, H, W, K, pad;
  bool bias;
};

// Sizes 1x1 to 33x33 (odd ones give partial tiles), paddings 0 and 1 (2 and
// 3 too: the data gradient then runs at padding 0 and -1), channels 1..64.
std::vector<Case> cases() {
  std::vector<Case> cs = {
      {1, 1, 1, 1, 1, 1, true},    {2, 3, 2, 2, 4, 1, false},   {1, 2, 3, 3, 2, 0, true},
      {3, 5, 5, 7, 6, 1, true},    {1, 4, 7, 5, 3, 0, false},   {5, 8, 9, 9, 8, 1, true},
      {2, 16, 8, 8, 16, 1, false}, {1, 64, 4, 4, 64, 1, true},  {2, 64, 2, 2, 32, 1, true},
      {1, 32, 1, 1, 64, 1, false}, {4, 3, 33, 33, 8, 1, true},  {1, 7, 33, 32, 5, 0, true},
      {2, 13, 16, 16, 17, 1, true}, {1, 9, 6, 11, 10, 2, true}, {2, 6, 5, 4, 3, 3, false},
      {1, 1, 17, 3, 1, 0, true},   {3, 40, 8, 8, 24, 1, false}, {1, 64, 15, 15, 48, 1, true},
  };
  return cs;
}

template <typename T>
std::vector<T> im2col_forward(const ConvGeom& g, const ConvData<T>& d, bool bias) {
  ScopedWinogradMode off(WinogradMode::Off);
  std::vector<T> y(static_cast<size_t>(g.N * g.Cout * g.Ho * g.Wo));
  cpu::conv2d_forward<T>(g, d.x.data(), d.w.data(), bias ? d.b.data() : nullptr, y.data());
  return y;
}

template <typename T>
std::vector<T> winograd_forward(const ConvGeom& g, const ConvData<T>& d, bool bias) {
  std::vector<T> y(static_cast<size_t>(g.N * g.Cout * g.Ho * g.Wo), T(7));  // every value must be written
  cpu::winograd_conv2d_forward<T>(g, d.x.data(), d.w.data(), bias ? d.b.data() : nullptr, y.data());
  return y;
}

template <typename T>
std::vector<T> im2col_dx(const ConvGeom& g, const ConvData<T>& d) {
  ScopedWinogradMode off(WinogradMode::Off);
  std::vector<T> dx(static_cast<size_t>(g.N * g.C * g.H * g.W));
  cpu::conv2d_backward<T>(g, nullptr, d.w.data(), d.dy.data(), dx.data(), nullptr, nullptr);
  return dx;
}

template <typename T>
std::vector<T> winograd_dx(const ConvGeom& g, const ConvData<T>& d) {
  std::vector<T> dx(static_cast<size_t>(g.N * g.C * g.H * g.W), T(7));
  cpu::winograd_conv2d_backward_data<T>(g, d.w.data(), d.dy.data(), dx.data());
  return dx;
}

std::string describe(const Case& c) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "N=%ld C=%ld %ldx%ld K=%ld pad=%ld bias=%d", static_cast<long>(c.N),
                static_cast<long>(c.C), static_cast<long>(c.H), static_cast<long>(c.W), static_cast<long>(c.K),
                static_cast<long>(c.pad), c.bias ? 1 : 0);
  return buf;
}

}  // namespace

TEST_CASE("winograd: applicability") {
  CHECK(cpu::winograd_applicable(geom3x3(1, 2, 5, 5, 3, 1)));
  ConvGeom g = geom3x3(1, 2, 5, 5, 3, 1);
  g.sh = 2;
  CHECK_FALSE(cpu::winograd_applicable(g));
  g = geom3x3(1, 2, 5, 5, 2, 1);
  g.groups = 2;
  CHECK_FALSE(cpu::winograd_applicable(g));
  g = geom3x3(1, 2, 5, 5, 3, 1);
  g.dh = 2;
  CHECK_FALSE(cpu::winograd_applicable(g));
  g = geom3x3(1, 2, 5, 5, 3, 1);
  g.kw = 5;
  CHECK_FALSE(cpu::winograd_applicable(g));
  CHECK_THROWS_CONTAINING(cpu::winograd_conv2d_forward<double>(g, nullptr, nullptr, nullptr, nullptr),
                          "needs a 3x3 or 5x5 kernel");
  {
    ScopedWinogradMode off(WinogradMode::Off);
    CHECK_FALSE(cpu::use_winograd_forward(geom3x3(64, 256, 8, 8, 256, 1), 4));
    CHECK_FALSE(cpu::use_winograd_backward_data(geom3x3(64, 256, 8, 8, 256, 1), 4));
  }
  {
    ScopedWinogradMode always(WinogradMode::Always);
    CHECK(cpu::use_winograd_forward(geom3x3(1, 1, 1, 1, 1, 1), 8));
    CHECK_FALSE(cpu::use_winograd_forward(g, 8));  // not applicable
  }
}

TEST_CASE("winograd: forward in float64 matches im2col to 1e-12") {
  uint32_t seed = 100;
  for (const Case& c : cases()) {
    const ConvGeom g = geom3x3(c.N, c.C, c.H, c.W, c.K, c.pad);
    if (g.Ho <= 0 || g.Wo <= 0) continue;
    const auto d = make_conv_data<double>(g, seed += 10);
    const auto ref = im2col_forward(g, d, c.bias), got = winograd_forward(g, d, c.bias);
    INFO(describe(c));
    CHECK(max_abs_diff(ref, got) <= 1e-12 * std::max(1.0, max_abs(ref)));
  }
}

TEST_CASE("winograd: data gradient in float64 matches the im2col backward to 1e-12") {
  uint32_t seed = 500;
  for (const Case& c : cases()) {
    const ConvGeom g = geom3x3(c.N, c.C, c.H, c.W, c.K, c.pad);
    if (g.Ho <= 0 || g.Wo <= 0) continue;
    const auto d = make_conv_data<double>(g, seed += 10);
    const auto ref = im2col_dx(g, d), got = winograd_dx(g, d);
    INFO(describe(c));
    CHECK(max_abs_diff(ref, got) <= 1e-12 * std::max(1.0, max_abs(ref)));
  }
}

// float32: both algorithms against the float64 result of the same float32
// data. F(2x2,3x3)'s transforms have coefficients 0, +-1 and +-1/2 only: the
// input transform adds up to 4 values, the weight transform 9 (with exact
// halvings), the output transform 9 products, around gemms of C_in terms
// (im2col's sum 9 C_in). Measured over these cases (max error over max |y|):
// forward 3.2e-7 Winograd against 5.5e-7 im2col, data gradient 2.9e-7
// against 1.8e-7, i.e. the same order. The bound, 2e-6, is ~4x the worst of
// either and ~17 float32 epsilons: loose enough for other BLAS kernels'
// summation orders, tight enough to catch a wrong coefficient (which gives
// errors of order 1).
TEST_CASE("winograd: float32 error against float64, beside im2col's") {
  uint32_t seed = 900;
  double worst_wino = 0, worst_im2col = 0, worst_wino_dx = 0, worst_im2col_dx = 0;
  for (const Case& c : cases()) {
    const ConvGeom g = geom3x3(c.N, c.C, c.H, c.W, c.K, c.pad);
    if (g.Ho <= 0 || g.Wo <= 0) continue;
    const auto f = make_conv_data<float>(g, seed += 10);
    ConvData<double> d;  // the same float32 values, computed exactly
    d.x.assign(f.x.begin(), f.x.end());
    d.w.assign(f.w.begin(), f.w.end());
    d.b.assign(f.b.begin(), f.b.end());
    d.dy.assign(f.dy.begin(), f.dy.end());
    const auto exact = im2col_forward(g, d, c.bias), exact_dx = im2col_dx(g, d);
    const double scale = max_abs(exact), scale_dx = max_abs(exact_dx);
    const double e_wino = max_abs_diff(winograd_forward(g, f, c.bias), exact) / scale;
    const double e_im2col = max_abs_diff(im2col_forward(g, f, c.bias), exact) / scale;
    const double e_wino_dx = max_abs_diff(winograd_dx(g, f), exact_dx) / scale_dx;
    const double e_im2col_dx = max_abs_diff(im2col_dx(g, f), exact_dx) / scale_dx;
    INFO(describe(c), ": winograd ", e_wino, " im2col ", e_im2col, " dx: winograd ", e_wino_dx, " im2col ",
         e_im2col_dx);
    CHECK(e_wino <= 2e-6);
    CHECK(e_wino_dx <= 2e-6);
    worst_wino = std::max(worst_wino, e_wino), worst_im2col = std::max(worst_im2col, e_im2col);
    worst_wino_dx = std::max(worst_wino_dx, e_wino_dx), worst_im2col_dx = std::max(worst_im2col_dx, e_im2col_dx);
  }
  MESSAGE("float32 max error / max |y|: forward winograd ", worst_wino, ", im2col ", worst_im2col,
          "; data gradient winograd ", worst_wino_dx, ", im2col ", worst_im2col_dx);
}

// The op routes through the mode: Always gives Winograd's bits, Off im2col's;
// the weight and bias gradients are the gemm path's in both.
TEST_CASE("winograd: conv2d op (forward, dx, dw, db) through NEURN_CONV_WINOGRAD modes") {
  cpu::ScopedHwcnMode no_hwcn(cpu::HwcnMode::Off);  // HWCN is asked first (NEURN_CONV_HWCN=always would win)
  Generator gen(7);
  for (int64_t pad : {0, 1}) {
    Tensor x = randn({3, 12, 9, 10}, {DType::Float64}, &gen), w = randn({10, 12, 3, 3}, {DType::Float64}, &gen);
    Tensor b = randn({10}, {DType::Float64}, &gen);
    x.requires_grad_(), w.requires_grad_(), b.requires_grad_();
    Conv2dOptions opt{{1, 1}, {pad, pad}, {1, 1}, 1};
    auto run = [&](WinogradMode mode) {
      ScopedWinogradMode m(mode);
      x.zero_grad(), w.zero_grad(), b.zero_grad();
      Tensor y = conv2d(x, w, b, opt);
      Generator g2(11);
      Tensor proj = randn(y.shape(), {DType::Float64}, &g2);
      sum(mul(y, proj)).backward();
      return std::vector<std::vector<double>>{y.to_vector<double>(), x.grad().to_vector<double>(),
                                              w.grad().to_vector<double>(), b.grad().to_vector<double>()};
    };
    const auto on = run(WinogradMode::Always), off = run(WinogradMode::Off);
    ConvGeom g = geom3x3(3, 12, 9, 10, 10, pad);
    std::vector<double> wino(static_cast<size_t>(g.N * g.Cout * g.Ho * g.Wo));
    const auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = b.to_vector<double>();
    cpu::winograd_conv2d_forward<double>(g, xv.data(), wv.data(), bv.data(), wino.data());
    INFO("pad ", pad);
    CHECK(on[0] == wino);  // Always: the op ran the Winograd kernel
    CHECK(off[0] != wino);  // Off: it did not (im2col rounds differently)
    for (int i = 0; i < 4; ++i) CHECK(max_abs_diff(on[i], off[i]) <= 1e-12 * std::max(1.0, max_abs(off[i])));
    CHECK(on[2] == off[2]);  // dw stays on the gemm path
    CHECK(on[3] == off[3]);
  }
}

TEST_CASE("winograd: conv_transpose2d 3x3 stride 1 (its forward is conv2d's data gradient)") {
  Generator gen(8);
  Tensor x = randn({2, 6, 7, 5}, {DType::Float64}, &gen), w = randn({6, 4, 3, 3}, {DType::Float64}, &gen);
  ConvTranspose2dOptions opt;
  opt.padding = {1, 1};
  std::vector<double> on, off;
  {
    ScopedWinogradMode m(WinogradMode::Always);
    on = conv_transpose2d(x, w, {}, opt).to_vector<double>();
  }
  {
    ScopedWinogradMode m(WinogradMode::Off);
    off = conv_transpose2d(x, w, {}, opt).to_vector<double>();
  }
  CHECK(max_abs_diff(on, off) <= 1e-12 * std::max(1.0, max_abs(off)));
}

TEST_CASE("winograd: float64 gradient check through the Winograd path") {
  using neurn::testing::gradcheck;
  using neurn::testing::leaf;
  ScopedWinogradMode m(WinogradMode::Always);
  for (int64_t pad : {0, 1}) {
    std::vector<Tensor> in = {leaf({2, 3, 5, 6}, 210 + pad), leaf({4, 3, 3, 3}, 220 + pad), leaf({4}, 230 + pad)};
    INFO("pad ", pad);
    CHECK_GRADCHECK(gradcheck([pad](const std::vector<Tensor>& v) {
      return conv2d(v[0], v[1], v[2], Conv2dOptions{{1, 1}, {pad, pad}, {1, 1}, 1});
    }, in));
  }
}

TEST_CASE("winograd: the decision log records every 3x3 stride-1 conv and its choice") {
  Generator gen(9);
  Tensor x = randn({1, 2, 6, 6}, {DType::Float32}, &gen), w3 = randn({3, 2, 3, 3}, {DType::Float32}, &gen);
  Tensor w1 = randn({3, 2, 1, 1}, {DType::Float32}, &gen);
  x.requires_grad_();
  ScopedWinogradMode m(WinogradMode::Always);
  cpu::ScopedHwcnMode no_hwcn(cpu::HwcnMode::Off);  // HWCN is asked first
  cpu::WinogradDecisionLog log;
  sum(conv2d(x, w3, {}, Conv2dOptions{{1, 1}, {1, 1}, {1, 1}, 1})).backward();
  (void)conv2d(x, w1);  // 1x1: not a candidate, not recorded
  (void)conv2d(x, w3, {}, Conv2dOptions{{2, 2}, {1, 1}, {1, 1}, 1});  // stride 2: neither
  REQUIRE(log.decisions().size() == 2);
  CHECK_FALSE(log.decisions()[0].backward_data);
  CHECK(log.decisions()[1].backward_data);
  CHECK(log.decisions()[0].winograd);
  CHECK(log.decisions()[0].geom.C == 2);
  CHECK(log.decisions()[0].geom.Ho == 6);
}

// The Auto rule (winograd_conv_profitable) on the backbones' convs as
// docs/engine-bench.md ("Winograd F(2x2,3x3) on the CPU") lists them: a
// change of the rule must come with new measurements there.
TEST_CASE("winograd: the measured selection rule") {
  auto fwd = [](int64_t C, int64_t H, int64_t K) {
    return cpu::winograd_conv_profitable(geom3x3(64, C, H, H, K, 1), 4, false, 1);
  };
  auto data = [](int64_t C, int64_t H, int64_t K) {
    return cpu::winograd_conv_profitable(geom3x3(64, C, H, H, K, 1), 4, true, 1);
  };
  // VGG19 at 32x32
  CHECK_FALSE(fwd(3, 32, 64));
  CHECK(fwd(64, 32, 64));
  CHECK(data(64, 32, 64));
  CHECK_FALSE(fwd(64, 16, 128));
  CHECK_FALSE(data(64, 16, 128));
  CHECK(fwd(128, 16, 128));
  CHECK(data(128, 16, 128));
  CHECK(fwd(128, 8, 256));
  CHECK_FALSE(data(128, 8, 256));
  CHECK(fwd(256, 8, 256));
  CHECK(data(256, 8, 256));
  CHECK_FALSE(fwd(256, 4, 512));
  CHECK_FALSE(fwd(512, 4, 512));
  CHECK_FALSE(data(512, 2, 512));
  // ResNet50 and DenseNet121 at 32x32
  CHECK(fwd(64, 8, 64));
  CHECK(data(64, 8, 64));
  CHECK_FALSE(fwd(128, 4, 128));
  CHECK_FALSE(data(128, 4, 128));
  CHECK(fwd(128, 8, 32));
  CHECK(data(128, 4, 32));
  CHECK(data(128, 2, 32));
  CHECK_FALSE(data(128, 1, 32));
  // InceptionV3 at 75x75 (35x35 with 32 channels, 17x17 80 -> 192)
  CHECK_FALSE(fwd(32, 35, 64));
  CHECK_FALSE(data(80, 17, 192));
  CHECK(cpu::winograd_conv_profitable(geom3x3(64, 80, 17, 17, 192, 0), 4, false, 1));  // session 8
  CHECK(cpu::winograd_conv_profitable(geom3x3(64, 80, 17, 17, 192, 0), 4, false, 2));
  CHECK_FALSE(cpu::winograd_conv_profitable(geom3x3(64, 80, 17, 17, 192, 0), 4, true, 1));
  CHECK_FALSE(cpu::winograd_conv_profitable(geom3x3(64, 32, 37, 37, 32, 0), 4, false, 1));
  CHECK_FALSE(cpu::winograd_conv_profitable(geom3x3(64, 32, 37, 37, 32, 0), 4, true, 1));
  CHECK_FALSE(data(32, 35, 64));
  // float64 is never selected; neither is anything Winograd does not apply to
  CHECK_FALSE(cpu::winograd_conv_profitable(geom3x3(64, 128, 16, 16, 128, 1), 8, false, 1));
  ConvGeom s2 = geom3x3(64, 128, 16, 16, 128, 1);
  s2.sh = s2.sw = 2;
  CHECK_FALSE(cpu::winograd_conv_profitable(s2, 4, false, 1));
}
