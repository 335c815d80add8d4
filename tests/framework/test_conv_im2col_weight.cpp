// im2col's weight gradient taken transposed (framework/ops/conv_cpu.h,
// Im2colWeightMode): dW_g^T (K, Og) += col_g dY_g^T summed over the chunks
// and the threads' partial sums, then turned back, against the direct
// dW_g += dY_g col_g^T and a plain loop over the definition; float64 to
// 1e-12 relative over pointwise and 3x3 kernels, paddings, strides, groups,
// dilation, chunks of one and of several images, batches large enough that
// the batch is split over threads (with NEURN_NUM_THREADS >= 2); the data
// gradient computed alongside is unchanged; the forward and the data gradient
// through chunks of unequal size against the definition; float32 row copies
// (15 to 40 wide, paddings, 1x7 / 7x1, dilation) against the definition; the
// rule; a gradcheck through conv2d with the transposed product forced.
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
using cpu::Im2colWeightMode;
using cpu::ScopedIm2colWeightMode;
using testing::ConvData;
using testing::make_conv_data;

namespace {

struct Case {
  int64_t N, C, H, W, Cout, kh, kw, sh, sw, ph, pw, dh, dw, groups;
};

ConvGeom make_geom(const Case& c) {
  return testing::conv_geom(c.N, c.C, c.H, c.W, c.Cout, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, c.groups);
}

std::string describe(const Case& c) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "N=%ld C=%ld %ldx%ld Cout=%ld k=%ldx%ld s=%ld,%ld p=%ld,%ld d=%ld,%ld g=%ld",
                long(c.N), long(c.C), long(c.H), long(c.W), long(c.Cout), long(c.kh), long(c.kw), long(c.sh),
                long(c.sw), long(c.ph), long(c.pw), long(c.dh), long(c.dw), long(c.groups));
  return buf;
}

std::vector<Case> cases() {
  return {
      // N  C   H   W  Cout kh kw sh sw ph pw dh dw g
      {2, 3, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1},
      {3, 8, 9, 7, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1},      // unpadded, like the stem's 37x37 -> 35x35
      {4, 6, 11, 11, 4, 3, 3, 2, 2, 0, 0, 1, 1, 1},    // unpadded stride 2 (the reductions)
      {5, 12, 3, 3, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1},     // pointwise on a small map: several images a chunk
      {2, 10, 17, 17, 6, 1, 1, 1, 1, 0, 0, 1, 1, 1},   // pointwise, one image a chunk (x is its col)
      {3, 8, 6, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2},      // groups 2
      {3, 8, 7, 5, 4, 1, 7, 1, 1, 0, 3, 1, 1, 4},      // groups 4, 1x7
      {2, 4, 8, 8, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1},      // dilation 2
      {16, 16, 16, 16, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1}, // enough work to split the batch over threads
      {24, 32, 7, 7, 20, 3, 3, 2, 2, 0, 0, 1, 1, 1},   // ... and with chunks of several images
      {6, 3, 9, 9, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1},     // Og > K: Auto keeps the direct product
      // Several chunks of unequal size (chunk_plan): 64 images of 3x3 in
      // chunks of 32 (or 16 per thread), 13 of 7x7 in 6 + 7, 40 of 4x4 in
      // 20 + 20, 23 of 2x2 in one chunk.
      {64, 12, 3, 3, 5, 1, 1, 1, 1, 0, 0, 1, 1, 1},
      {13, 6, 7, 7, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1},
      {40, 5, 4, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1},
      {23, 7, 2, 2, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1},
  };
}

// y and dx by the definition, in float64 (no bias).
std::vector<double> naive_y(const ConvGeom& g, const ConvData<double>& d) {
  const int64_t Cg = g.Cg(), Og = g.Og();
  std::vector<double> y(static_cast<size_t>(g.N * g.Cout * g.P()), 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t co = 0; co < g.Cout; ++co)
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          double acc = 0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                acc += d.w[static_cast<size_t>(((co * Cg + c) * g.kh + i) * g.kw + j)] *
                       d.x[static_cast<size_t>(((n * g.C + co / Og * Cg + c) * g.H + ih) * g.W + iw)];
              }
          y[static_cast<size_t>(((n * g.Cout + co) * g.Ho + oh) * g.Wo + ow)] = acc;
        }
  return y;
}

std::vector<double> naive_dx(const ConvGeom& g, const ConvData<double>& d) {
  const int64_t Cg = g.Cg(), Og = g.Og();
  std::vector<double> dx(static_cast<size_t>(g.N * g.C * g.H * g.W), 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t co = 0; co < g.Cout; ++co)
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const double gy = d.dy[static_cast<size_t>(((n * g.Cout + co) * g.Ho + oh) * g.Wo + ow)];
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                dx[static_cast<size_t>(((n * g.C + co / Og * Cg + c) * g.H + ih) * g.W + iw)] +=
                    gy * d.w[static_cast<size_t>(((co * Cg + c) * g.kh + i) * g.kw + j)];
              }
        }
  return dx;
}

// dw by the definition, in float64.
std::vector<double> naive_dw(const ConvGeom& g, const ConvData<double>& d) {
  const int64_t Cg = g.Cg(), Og = g.Og();
  std::vector<double> dw(static_cast<size_t>(g.Cout * g.K()), 0.0);
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t co = 0; co < g.Cout; ++co) {
      const int64_t grp = co / Og;
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j) {
            double acc = 0;
            for (int64_t oh = 0; oh < g.Ho; ++oh)
              for (int64_t ow = 0; ow < g.Wo; ++ow) {
                const int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                acc += d.dy[static_cast<size_t>(((n * g.Cout + co) * g.Ho + oh) * g.Wo + ow)] *
                       d.x[static_cast<size_t>(((n * g.C + grp * Cg + c) * g.H + ih) * g.W + iw)];
              }
            dw[static_cast<size_t>(((co * Cg + c) * g.kh + i) * g.kw + j)] += acc;
          }
    }
  return dw;
}

struct Grads {
  std::vector<double> dx, dw;
};

// conv2d_backward by im2col (HWCN and Winograd off) with the weight mode
// given; the outputs start as 7 so that every value must be written.
Grads im2col_backward(const ConvGeom& g, const ConvData<double>& d, Im2colWeightMode mode, bool with_dx) {
  cpu::ScopedWinogradMode wino(cpu::WinogradMode::Off);
  cpu::ScopedHwcnMode hwcn(cpu::HwcnMode::Off);
  ScopedIm2colWeightMode m(mode);
  Grads out{std::vector<double>(d.x.size(), 7.0), std::vector<double>(d.w.size(), 7.0)};
  cpu::conv2d_backward<double>(g, d.x.data(), d.w.data(), d.dy.data(), with_dx ? out.dx.data() : nullptr,
                               out.dw.data(), nullptr);
  return out;
}

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

TEST_CASE("conv im2col weight gradient: transposed equals direct and the definition (float64)") {
  uint32_t seed = 3;
  for (const Case& c : cases()) {
    const ConvGeom g = make_geom(c);
    REQUIRE(g.Ho >= 1);
    REQUIRE(g.Wo >= 1);
    CAPTURE(describe(c));
    const ConvData<double> d = make_conv_data<double>(g, seed);
    seed += 7;
    const std::vector<double> ref = naive_dw(g, d);
    for (bool with_dx : {false, true}) {
      CAPTURE(with_dx);
      const Grads direct = im2col_backward(g, d, Im2colWeightMode::Never, with_dx);
      const Grads flipped = im2col_backward(g, d, Im2colWeightMode::Always, with_dx);
      const Grads automatic = im2col_backward(g, d, Im2colWeightMode::Auto, with_dx);
      CHECK(rel_err(direct.dw, ref) < 1e-12);
      CHECK(rel_err(flipped.dw, ref) < 1e-12);
      CHECK(rel_err(automatic.dw, ref) < 1e-12);
      if (with_dx) {
        CHECK(rel_err(flipped.dx, direct.dx) == 0.0);  // the data gradient's path is untouched
        CHECK(rel_err(direct.dx, naive_dx(g, d)) < 1e-12);
      }
    }
    // The forward through the same chunks.
    cpu::ScopedWinogradMode wino(cpu::WinogradMode::Off);
    cpu::ScopedHwcnMode hwcn(cpu::HwcnMode::Off);
    std::vector<double> y(d.dy.size(), 7.0);
    cpu::conv2d_forward<double>(g, d.x.data(), d.w.data(), nullptr, y.data());
    CHECK(rel_err(y, naive_y(g, d)) < 1e-12);
  }
}

TEST_CASE("conv im2col weight gradient: the mode and the rule") {
  CHECK(cpu::im2col_weight_mode() == Im2colWeightMode::Auto);
  const ConvGeom stem = make_geom({64, 32, 37, 37, 32, 3, 3, 1, 1, 0, 0, 1, 1, 1});      // Og 32 < K 288
  const ConvGeom stem3 = make_geom({64, 3, 75, 75, 32, 3, 3, 2, 2, 0, 0, 1, 1, 1});      // Og 32 > K 27, K < 32
  const ConvGeom wide = make_geom({64, 128, 4, 4, 512, 1, 1, 1, 1, 0, 0, 1, 1, 1});      // Og 512 > K 128
  const ConvGeom grouped = make_geom({8, 64, 8, 8, 64, 1, 1, 1, 1, 0, 0, 1, 1, 4});      // Og 16 = K 16
  const ConvGeom to_1x1 = make_geom({64, 192, 3, 3, 320, 3, 3, 2, 2, 0, 0, 1, 1, 1});    // Og < K, 1 position
  const ConvGeom on_3x3 = make_geom({64, 768, 3, 3, 192, 1, 1, 1, 1, 0, 0, 1, 1, 1});    // 9 positions
  const ConvGeom on_4x4 = make_geom({64, 1024, 4, 4, 128, 1, 1, 1, 1, 0, 0, 1, 1, 1});   // 16 positions
  CHECK(cpu::im2col_weight_transposed(stem));
  CHECK(cpu::im2col_weight_transposed(stem3));  // session 8: K under 32
  CHECK_FALSE(cpu::im2col_weight_transposed(wide));
  CHECK_FALSE(cpu::im2col_weight_transposed(grouped));  // K 16 < 32, but grouped
  CHECK_FALSE(cpu::im2col_weight_transposed(to_1x1));
  CHECK_FALSE(cpu::im2col_weight_transposed(on_3x3));
  CHECK(cpu::im2col_weight_transposed(on_4x4));
  {
    ScopedIm2colWeightMode never(Im2colWeightMode::Never);
    CHECK_FALSE(cpu::im2col_weight_transposed(stem));
    {
      ScopedIm2colWeightMode always(Im2colWeightMode::Always);
      CHECK(cpu::im2col_weight_transposed(wide));
    }
    CHECK(cpu::im2col_weight_mode() == Im2colWeightMode::Never);
  }
  CHECK(cpu::im2col_weight_mode() == Im2colWeightMode::Auto);
}

TEST_CASE("conv im2col weight gradient: gradcheck through conv2d with the transposed product forced") {
  cpu::ScopedWinogradMode wino(cpu::WinogradMode::Off);
  cpu::ScopedHwcnMode hwcn(cpu::HwcnMode::Off);
  ScopedIm2colWeightMode always(Im2colWeightMode::Always);
  struct Shape {
    int64_t N, C, H, W, Cout, k, stride, pad, groups;
  };
  uint64_t seed = 70;
  for (const Shape s : {Shape{2, 4, 5, 5, 3, 3, 1, 1, 1}, Shape{2, 4, 6, 5, 4, 3, 2, 0, 2}, Shape{3, 5, 3, 3, 2, 1, 1, 0, 1}}) {
    CAPTURE(s.k);
    CAPTURE(s.groups);
    std::vector<Tensor> in = {neurn::testing::leaf({s.N, s.C, s.H, s.W}, seed),
                              neurn::testing::leaf({s.Cout, s.C / s.groups, s.k, s.k}, seed + 1),
                              neurn::testing::leaf({s.Cout}, seed + 2)};
    seed += 10;
    CHECK_GRADCHECK(neurn::testing::gradcheck(
        [s](const std::vector<Tensor>& v) {
          return conv2d(v[0], v[1], v[2], Conv2dOptions{{s.stride, s.stride}, {s.pad, s.pad}, {1, 1}, s.groups});
        },
        in));
  }
}

TEST_CASE("conv im2col rows (float32): forward and data gradient through the row copies") {
  // im2col and col2im go row by row for outputs at least 8 wide (the
  // AVX-512 / AVX2 clones of im2col_rows and col2im_plane_rows). Compared
  // with the definition in float64 on the same (float) values: a copy that
  // put a value in the wrong place or missed a zero of the padding is off by
  // O(1), far above the rounding bound 2 L^2 eps (L terms of magnitude <= 1).
  cpu::ScopedWinogradMode wino(cpu::WinogradMode::Off);
  cpu::ScopedHwcnMode hwcn(cpu::HwcnMode::Off);
  const double eps = std::numeric_limits<float>::epsilon();
  const std::vector<Case> rows = {
      // N  C   H   W  Cout kh kw sh sw ph pw dh dw g
      {3, 4, 17, 17, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1},   // 15 wide: one partial vector
      {2, 3, 35, 35, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},   // 35 wide, padded: 16 + 16 + 3
      {2, 3, 37, 37, 2, 3, 3, 1, 1, 0, 0, 1, 1, 1},
      {2, 3, 16, 16, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1},   // exactly 16
      {2, 2, 20, 33, 3, 1, 7, 1, 1, 0, 3, 1, 1, 1},   // 1x7 pad 3: long zero runs at both ends
      {2, 2, 19, 21, 3, 7, 1, 1, 1, 3, 0, 1, 1, 1},
      {2, 3, 18, 18, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1},   // dilation 2
      {2, 4, 12, 40, 4, 3, 3, 2, 1, 1, 1, 1, 1, 2},   // stride 2 along h only, groups 2
      {2, 2, 9, 9, 3, 5, 5, 1, 1, 4, 4, 1, 1, 1},     // padding wider than a tap reaches: whole zero rows
      {2, 3, 21, 21, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1},   // stride 2: the generic loops
  };
  uint32_t seed = 90;
  for (const Case& c : rows) {
    const ConvGeom g = make_geom(c);
    REQUIRE(g.Wo >= 8);
    CAPTURE(describe(c));
    const ConvData<float> f = make_conv_data<float>(g, seed);
    seed += 5;
    const ConvData<double> d{std::vector<double>(f.x.begin(), f.x.end()), std::vector<double>(f.w.begin(), f.w.end()),
                             std::vector<double>(f.b.begin(), f.b.end()), std::vector<double>(f.dy.begin(), f.dy.end())};
    std::vector<float> y(f.dy.size(), 7.0f), dx(f.x.size(), 7.0f);
    cpu::conv2d_forward<float>(g, f.x.data(), f.w.data(), nullptr, y.data());
    cpu::conv2d_backward<float>(g, nullptr, f.w.data(), f.dy.data(), dx.data(), nullptr, nullptr);
    const std::vector<double> ry = naive_y(g, d), rdx = naive_dx(g, d);
    const double Lf = static_cast<double>(g.K()), Ld = static_cast<double>(g.Og() * g.kh * g.kw);
    double my = 0, mdx = 0;
    for (size_t i = 0; i < ry.size(); ++i) my = std::max(my, std::abs(y[i] - ry[i]));
    for (size_t i = 0; i < rdx.size(); ++i) mdx = std::max(mdx, std::abs(dx[i] - rdx[i]));
    CHECK(my <= 2 * Lf * Lf * eps);
    CHECK(mdx <= 2 * Ld * Ld * eps);
  }
}
