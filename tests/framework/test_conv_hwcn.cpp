// Batch-innermost convolution (framework/ops/conv_hwcn_cpu.h): forward, data
// and weight gradients against the im2col + gemm path (Winograd and HWCN off)
// over 1x1 to odd maps, kernels larger than the map, paddings 0..3, strides
// 1 and 2, dilation 2, groups 2 and 4, 1x7 / 7x1 / 5x5 kernels, channel
// counts off multiples of 16, batches 1 to 64, with and without bias, split
// in 1, 2 and 3 pieces; float64 to 1e-12 relative, float32 within a bound
// from the sums' length; a gradcheck through conv2d with the mode forced;
// the mode switch and the decision log.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
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
using cpu::HwcnMode;
using cpu::ScopedHwcnMode;

namespace {

struct Case {
  int64_t N, C, H, W, Cout, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  bool bias;
};

ConvGeom make_geom(const Case& c) {
  return testing::conv_geom(c.N, c.C, c.H, c.W, c.Cout, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, c.groups);
}

std::string describe(const Case& c) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "N=%ld C=%ld %ldx%ld Cout=%ld k=%ldx%ld s=%ld,%ld p=%ld,%ld d=%ld,%ld g=%ld bias=%d",
                long(c.N), long(c.C), long(c.H), long(c.W), long(c.Cout), long(c.kh), long(c.kw), long(c.sh),
                long(c.sw), long(c.ph), long(c.pw), long(c.dh), long(c.dw), long(c.groups), c.bias ? 1 : 0);
  return buf;
}

std::vector<Case> cases() {
  return {
      // N  C   H  W  Cout kh kw sh sw ph pw dh dw g  bias
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, true},
      {3, 5, 1, 1, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},  // 1x1 map: only the centre tap
      {17, 19, 2, 2, 21, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
      {3, 8, 3, 3, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
      {64, 32, 4, 4, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
      {2, 7, 5, 7, 9, 3, 3, 1, 1, 0, 0, 1, 1, 1, true},
      {3, 6, 3, 3, 5, 5, 5, 1, 1, 2, 2, 1, 1, 1, true},   // 5x5 on 3x3
      {3, 6, 2, 2, 5, 5, 5, 1, 1, 3, 3, 1, 1, 1, false},  // kernel larger than the map, pad 3
      {17, 9, 3, 3, 10, 1, 7, 1, 1, 0, 3, 1, 1, 1, true},  // Inception's 1x7 / 7x1
      {17, 9, 3, 3, 10, 7, 1, 1, 1, 3, 0, 1, 1, 1, false},
      {3, 5, 7, 7, 6, 1, 7, 1, 1, 0, 3, 1, 1, 1, true},
      {3, 10, 7, 6, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, true},  // stride 2
      {3, 10, 8, 8, 12, 3, 3, 2, 2, 0, 0, 1, 1, 1, false},
      {3, 10, 7, 7, 12, 1, 1, 2, 2, 0, 0, 1, 1, 1, false},  // ResNet's strided 1x1 (inputs nobody reads)
      {2, 4, 9, 9, 5, 3, 3, 3, 3, 0, 0, 1, 1, 1, true},     // stride 3 with a 3x3
      {3, 6, 7, 7, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1, true},     // dilation 2
      {3, 6, 6, 5, 4, 3, 3, 2, 1, 2, 1, 2, 1, 1, false},    // mixed
      {3, 8, 4, 4, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, true},     // groups 2
      {5, 12, 3, 5, 8, 3, 3, 1, 2, 1, 0, 1, 1, 4, false},   // groups 4, stride along w
      {3, 8, 5, 5, 12, 3, 1, 1, 1, 1, 0, 2, 1, 4, true},
      {64, 40, 2, 2, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
      {64, 33, 1, 1, 20, 1, 1, 1, 1, 0, 0, 1, 1, 1, false},
      {1, 11, 6, 6, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},  // batch 1
      {17, 24, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
      {3, 3, 11, 9, 4, 5, 5, 2, 2, 2, 2, 1, 1, 1, true},
      {2, 4, 3, 3, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1, false},  // 1x1 output, no padding
      {2, 3, 1, 1, 4, 1, 1, 2, 2, 1, 1, 1, 1, 1, true},   // every output reads padding only: y = bias, dx = dw = 0
      {2, 3, 1, 1, 4, 3, 3, 4, 4, 3, 3, 1, 1, 1, false},  // the same with a 3x3 (stride 4, padding 3)
      // The weight gradient's transposed product (Cout < C times the longest
      // tap run, at least 4 positions), turned back live taps only: the
      // middle tap of each axis reads padding only here.
      {5, 6, 1, 1, 4, 3, 3, 2, 2, 2, 2, 1, 1, 1, true},
      {64, 40, 4, 4, 24, 1, 1, 1, 1, 0, 0, 1, 1, 1, false},  // pointwise on 2x2..8x8 maps, batch 64
      {64, 24, 8, 8, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1, true},
      {32, 20, 2, 2, 36, 1, 1, 1, 1, 0, 0, 1, 1, 1, false},  // more outputs than inputs: not transposed
      {64, 24, 8, 8, 20, 3, 3, 2, 2, 1, 1, 1, 1, 1, false},  // ResNet's strided 3x3 and 1x1, batch 64
      {64, 16, 8, 8, 32, 1, 1, 2, 2, 0, 0, 1, 1, 1, true},
      {64, 48, 7, 7, 16, 3, 3, 2, 2, 0, 0, 1, 1, 1, false},  // Inception's unpadded reduction
  };
}

struct Outputs {
  std::vector<double> y, dx, dw;
};

template <typename T>
std::vector<double> widen(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// The im2col path: conv2d_forward / conv2d_backward with both other modes off.
template <typename T>
Outputs reference(const ConvGeom& g, const ConvData<T>& d, bool bias) {
  cpu::ScopedWinogradMode wino(cpu::WinogradMode::Off);
  ScopedHwcnMode off(HwcnMode::Off);
  std::vector<T> y(d.dy.size()), dx(d.x.size()), dw(d.w.size());
  cpu::conv2d_forward<T>(g, d.x.data(), d.w.data(), bias ? d.b.data() : nullptr, y.data());
  cpu::conv2d_backward<T>(g, d.x.data(), d.w.data(), d.dy.data(), dx.data(), dw.data(), nullptr);
  return {widen(y), widen(dx), widen(dw)};
}

// HWCN called directly, split in `tasks` pieces; the outputs start as 7 so
// that every value must be written. Each gradient alone and both together.
template <typename T>
Outputs hwcn(const ConvGeom& g, const ConvData<T>& d, bool bias, int64_t tasks, bool together) {
  std::vector<T> y(d.dy.size(), T(7)), dx(d.x.size(), T(7)), dw(d.w.size(), T(7));
  cpu::hwcn_conv2d_forward<T>(g, d.x.data(), d.w.data(), bias ? d.b.data() : nullptr, y.data(), tasks);
  if (together) {
    cpu::hwcn_conv2d_backward<T>(g, d.x.data(), d.w.data(), d.dy.data(), dx.data(), dw.data(), tasks);
  } else {
    cpu::hwcn_conv2d_backward<T>(g, nullptr, d.w.data(), d.dy.data(), dx.data(), nullptr, tasks);
    cpu::hwcn_conv2d_backward<T>(g, d.x.data(), nullptr, d.dy.data(), nullptr, dw.data(), tasks);
  }
  return {widen(y), widen(dx), widen(dw)};
}

// max |a - b| / max(max |b|, tiny)
double rel_err(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0, s = std::numeric_limits<double>::min();
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::abs(a[i] - b[i]));
    s = std::max(s, std::abs(b[i]));
  }
  return m / s;
}

}  // namespace

TEST_CASE("conv hwcn: float64 forward, data and weight gradients equal im2col's") {
  for (const Case& c : cases()) {
    const ConvGeom g = make_geom(c);
    REQUIRE(g.Ho >= 1);
    REQUIRE(g.Wo >= 1);
    const ConvData<double> d = make_conv_data<double>(g, 11);
    const Outputs ref = reference(g, d, c.bias);
    for (int64_t tasks : {1, 2, 3}) {
      for (bool together : {true, false}) {
        CAPTURE(describe(c));
        CAPTURE(tasks);
        CAPTURE(together);
        const Outputs h = hwcn(g, d, c.bias, tasks, together);
        CHECK(rel_err(h.y, ref.y) < 1e-12);
        CHECK(rel_err(h.dx, ref.dx) < 1e-12);
        CHECK(rel_err(h.dw, ref.dw) < 1e-12);
      }
    }
  }
}

TEST_CASE("conv hwcn: float32 agrees with im2col within the sums' rounding bound") {
  // Both paths sum the same L = Cg kh kw (forward), Og kh kw (dx) or N Ho Wo
  // (dw) products in some order; each float32 result is then within
  // about L eps sum |terms| of the exact one (the usual recursive-summation
  // bound), so the two within 2 L eps sum |terms|. The float64 results give
  // sum |terms| through the same op on |x| and |w|, bounded here by the
  // largest product times L.
  const double eps = std::numeric_limits<float>::epsilon();
  for (const Case& c : cases()) {
    const ConvGeom g = make_geom(c);
    const ConvData<float> d = make_conv_data<float>(g, 5);
    const Outputs ref = reference(g, d, c.bias);
    const Outputs h = hwcn(g, d, c.bias, 2, true);
    // Inputs are in [-1, 1], so every product is at most 1 in magnitude.
    const double Lf = static_cast<double>(g.Cg() * g.kh * g.kw) + 1, Ld = static_cast<double>(g.Og() * g.kh * g.kw),
                 Lw = static_cast<double>(g.N * g.P());
    CAPTURE(describe(c));
    auto max_diff = [](const std::vector<double>& a, const std::vector<double>& b) {
      double m = 0;
      for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
      return m;
    };
    CHECK(max_diff(h.y, ref.y) <= 2 * Lf * Lf * eps);
    CHECK(max_diff(h.dx, ref.dx) <= 2 * Ld * Ld * eps);
    CHECK(max_diff(h.dw, ref.dw) <= 2 * Lw * Lw * eps);
  }
}

TEST_CASE("conv hwcn: conv2d routes through it with NEURN_CONV_HWCN=always, gradcheck in float64") {
  ScopedHwcnMode always(HwcnMode::Always);
  struct Shape {
    int64_t N, C, H, W, Cout, k, stride, pad, dil, groups;
  };
  uint64_t seed = 40;
  for (const Shape s : {Shape{3, 4, 3, 3, 5, 3, 1, 1, 1, 1}, Shape{2, 4, 5, 4, 6, 3, 2, 1, 1, 2},
                        Shape{2, 3, 2, 2, 4, 5, 1, 2, 1, 1}, Shape{2, 2, 5, 5, 3, 3, 1, 2, 2, 1}}) {
    CAPTURE(s.N);
    CAPTURE(s.k);
    CAPTURE(s.groups);
    std::vector<Tensor> in = {neurn::testing::leaf({s.N, s.C, s.H, s.W}, seed),
                              neurn::testing::leaf({s.Cout, s.C / s.groups, s.k, s.k}, seed + 1),
                              neurn::testing::leaf({s.Cout}, seed + 2)};
    seed += 10;
    cpu::HwcnDecisionLog log;
    CHECK_GRADCHECK(neurn::testing::gradcheck(
        [s](const std::vector<Tensor>& v) {
          return conv2d(v[0], v[1], v[2],
                        Conv2dOptions{{s.stride, s.stride}, {s.pad, s.pad}, {s.dil, s.dil}, s.groups});
        },
        in));
    // Every decision the op asked for said yes, and all three passes ran.
    bool fwd = false, data = false, weight = false;
    for (const auto& d : log.decisions()) {
      CHECK(d.hwcn);
      fwd |= d.pass == cpu::HwcnPass::Forward;
      data |= d.pass == cpu::HwcnPass::Data;
      weight |= d.pass == cpu::HwcnPass::Weight;
    }
    CHECK((fwd && data && weight));
  }
}

TEST_CASE("conv hwcn: mode switch, applicability and errors") {
  ConvGeom g = make_geom({64, 64, 2, 2, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, false});
  {
    ScopedHwcnMode off(HwcnMode::Off);
    CHECK_FALSE(cpu::use_hwcn_forward(g, 4));
    CHECK_FALSE(cpu::use_hwcn_backward_data(g, 4));
    CHECK_FALSE(cpu::use_hwcn_backward_weight(g, 4));
  }
  {
    ScopedHwcnMode always(HwcnMode::Always);
    CHECK(cpu::use_hwcn_forward(g, 8));
    CHECK(cpu::use_hwcn_backward_weight(g, 4));
  }
  CHECK(cpu::hwcn_applicable(g));
  ConvGeom bad = g;
  bad.Ho = 0;
  CHECK_FALSE(cpu::hwcn_applicable(bad));
  CHECK_THROWS_CONTAINING(cpu::hwcn_conv2d_forward<float>(bad, nullptr, nullptr, nullptr, nullptr), "conv2d (HWCN)");
}

TEST_CASE("conv hwcn: the automatic rule (float32, batches from 16, small maps)") {
  auto conv = [](int64_t N, int64_t C, int64_t H, int64_t Cout, int64_t k, int64_t stride, int64_t pad) {
    return make_geom({N, C, H, H, Cout, k, k, stride, stride, pad, pad, 1, 1, 1, false});
  };
  using cpu::HwcnPass;
  for (HwcnPass pass : {HwcnPass::Forward, HwcnPass::Data, HwcnPass::Weight}) {
    CAPTURE(static_cast<int>(pass));
    for (int64_t threads : {1, 2}) {
      // DenseNet's bottleneck 3x3s on 4x4..1x1 maps, Inception's 1x7 on 3x3.
      CHECK(cpu::hwcn_conv_profitable(conv(64, 128, 2, 32, 3, 1, 1), 4, pass, threads));
      CHECK(cpu::hwcn_conv_profitable(conv(64, 128, 1, 32, 3, 1, 1), 4, pass, threads));
      CHECK(cpu::hwcn_conv_profitable(make_geom({64, 160, 3, 3, 160, 1, 7, 1, 1, 0, 3, 1, 1, 1, false}), 4, pass,
                                      threads));
      CHECK(cpu::hwcn_conv_profitable(conv(64, 64, 8, 64, 3, 1, 1), 4, pass, threads));   // ResNet's 8x8
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 256, 8, 256, 3, 1, 1), 4, pass, threads));  // VGG's
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 64, 14, 128, 5, 1, 0), 4, pass, threads));  // digits conv2
      // Pointwise: on 1x1 maps, and on 2x2 maps up to 128 outputs (session 8).
      CHECK(cpu::hwcn_conv_profitable(conv(64, 512, 1, 128, 1, 1, 0), 4, pass, threads));
      CHECK(cpu::hwcn_conv_profitable(conv(64, 512, 2, 128, 1, 1, 0), 4, pass, threads));   // DenseNet's
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 1024, 2, 256, 1, 1, 0), 4, pass, threads));  // ResNet's
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 256, 2, 1024, 1, 1, 0), 4, pass, threads));
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 128, 4, 128, 1, 1, 0), 4, pass, threads));
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 128, 8, 128, 1, 1, 0), 4, pass, threads));
      // Strided: ResNet's padded 3x3s on small maps forward and data only;
      // Inception's unpadded reductions never; not on 16x16 maps.
      CHECK(cpu::hwcn_conv_profitable(conv(64, 256, 4, 256, 3, 2, 1), 4, pass, threads) ==
            (pass != HwcnPass::Weight));
      CHECK(cpu::hwcn_conv_profitable(conv(64, 128, 8, 128, 3, 2, 1), 4, pass, threads) ==
            (pass != HwcnPass::Weight));
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 768, 7, 192, 3, 2, 0), 4, pass, threads));
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 64, 16, 64, 3, 2, 1), 4, pass, threads));
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 256, 8, 512, 1, 2, 0), 4, pass, threads));  // pointwise
      CHECK(cpu::hwcn_conv_profitable(conv(64, 1024, 2, 2048, 1, 2, 0), 4, pass, threads));  // ... to a 1x1 map
      // The 7x7 s2 stems (ResNet's, DenseNet's) forward only (session 8);
      // Inception's unpadded 3x3 s2 stem and a 3x3 padded one never.
      CHECK(cpu::hwcn_conv_profitable(conv(64, 3, 32, 64, 7, 2, 3), 4, pass, threads) == (pass == HwcnPass::Forward));
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 3, 75, 32, 3, 2, 0), 4, pass, threads));
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 3, 32, 32, 3, 2, 1), 4, pass, threads));
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 16, 32, 64, 7, 2, 3), 4, pass, threads));  // not a stem
      // Small batches, float64, groups: today's paths.
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(8, 128, 2, 32, 3, 1, 1), 4, pass, threads));
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(1, 128, 2, 32, 3, 1, 1), 4, pass, threads));
      CHECK_FALSE(cpu::hwcn_conv_profitable(conv(64, 128, 2, 32, 3, 1, 1), 8, pass, threads));
      CHECK_FALSE(cpu::hwcn_conv_profitable(make_geom({64, 128, 2, 2, 32, 3, 3, 1, 1, 1, 1, 1, 1, 2, false}), 4, pass,
                                            threads));
    }
  }
}
