// The backward of pooling and upsampling as a gather (framework/ops/pool_math.h,
// upsample_math.h): the inverse windows ("which outputs read input i") against
// brute force over many shapes, and the gathered gradients against a scatter
// over the outputs (the CPU backward and a loop here), bit for bit. The
// deterministic CUDA backward (NEURN_DETERMINISTIC=1) calls these same
// functions, so these tests check what the GPU runs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "bit_equal.h"
#include "framework/ops.h"
#include "framework/ops/pool_math.h"
#include "framework/ops/upsample_math.h"

using namespace neurn;
using neurn::testing::bit_mismatches;

namespace {

// Values on a coarse grid, so that max-pooling windows have ties.
std::vector<float> tie_data(int64_t n, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  uint64_t s = seed;
  for (auto& e : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    e = static_cast<float>(static_cast<int>((s >> 33) % 7) - 3) * 0.375f;
  }
  return v;
}

std::vector<float> uniform_data(int64_t n, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  uint64_t s = seed;
  for (auto& e : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    e = static_cast<float>(static_cast<double>(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
  }
  return v;
}

}  // namespace

TEST_CASE("pool gather: the inverse pooling window equals brute force") {
  int64_t cases = 0, wrong = 0;
  for (int64_t in = 1; in <= 13; ++in)
    for (int64_t k = 1; k <= 5; ++k)
      for (int64_t s = 1; s <= 4; ++s)
        for (int64_t p = 0; 2 * p <= k; ++p)
          for (bool ceil : {false, true}) {
            if (k > in + 2 * p) continue;  // rejected by the pooling ops
            const int64_t out = conv_out_size(in, k, s, p, 1, ceil);
            for (int64_t i = 0; i < in; ++i) {
              int64_t lo = -1, hi = -1;  // the outputs whose window holds i, by brute force
              for (int64_t o = 0; o < out; ++o) {
                const PoolSpan w = pool_span(o, in, k, s, p);
                if (w.begin <= i && i < w.end) {
                  if (lo < 0) lo = o;
                  REQUIRE_MESSAGE((hi < 0 || hi == o), "non-contiguous windows in=", in, " k=", k, " s=", s);
                  hi = o + 1;
                }
              }
              if (lo < 0) lo = hi = 0;
              const OutRange r = pool_inverse_span(i, k, s, p, out);
              const bool ok = (r.begin == r.end && lo == hi) || (r.begin == lo && r.end == hi);
              if (!ok) {
                ++wrong;
                INFO("in " << in << " k " << k << " s " << s << " p " << p << " ceil " << ceil << " i " << i
                           << ": got [" << r.begin << ", " << r.end << "), brute force [" << lo << ", " << hi << ")");
                CHECK(ok);
              }
              ++cases;
            }
          }
  CHECK(cases > 2000);
  CHECK(wrong == 0);
}

TEST_CASE("pool gather: the inverse adaptive window equals brute force") {
  int64_t wrong = 0;
  for (int64_t in = 1; in <= 24; ++in)
    for (int64_t out = 1; out <= 24; ++out)
      for (int64_t i = 0; i < in; ++i) {
        int64_t lo = -1, hi = -1;
        for (int64_t o = 0; o < out; ++o) {
          const PoolSpan w = adaptive_span(o, in, out);
          if (w.begin <= i && i < w.end) {
            if (lo < 0) lo = o;
            hi = o + 1;
          }
        }
        const OutRange r = adaptive_inverse_span(i, in, out);
        if (r.begin != lo || r.end != hi) {
          ++wrong;
          INFO("in " << in << " out " << out << " i " << i);
          CHECK(r.begin == lo);
          CHECK(r.end == hi);
        }
      }
  CHECK(wrong == 0);
}

TEST_CASE("pool gather: the inverse upsampling taps equal brute force") {
  int64_t wrong = 0, cases = 0;
  for (int mode = 0; mode < 3; ++mode) {  // nearest, bilinear, bilinear align_corners
    const bool bilinear = mode > 0, align = mode == 2;
    for (int64_t in = 1; in <= 17; ++in)
      for (int64_t out = 1; out <= 40; ++out)
        for (int64_t i = 0; i < in; ++i) {
          int64_t lo = -1, hi = -1;
          for (int64_t d = 0; d < out; ++d) {
            const UpsampleTap t = upsample_tap(d, in, out, bilinear, align);
            if (t.i0 == i || t.i1 == i) {
              if (lo < 0) lo = d;
              REQUIRE_MESSAGE((hi < 0 || hi == d), "non-contiguous taps in=", in, " out=", out);
              hi = d + 1;
            }
          }
          const UpsampleRange r = upsample_inverse_span(i, in, out, bilinear, align);
          const bool ok = (lo < 0 && r.begin == r.end) || (r.begin == lo && r.end == hi);
          if (!ok) {
            ++wrong;
            INFO("mode " << mode << " in " << in << " out " << out << " i " << i << ": got [" << r.begin << ", "
                         << r.end << "), brute force [" << lo << ", " << hi << ")");
            CHECK(ok);
          }
          ++cases;
        }
  }
  CHECK(cases > 10000);
  CHECK(wrong == 0);
}

TEST_CASE("pool gather: max and avg pooling backward equal a scatter over the outputs, bit for bit") {
  struct Case {
    int64_t H, W, kh, kw, sh, sw, ph, pw;
    bool ceil;
  };
  const Case cases[] = {{8, 8, 2, 2, 2, 2, 0, 0, false}, {7, 9, 3, 3, 2, 2, 1, 1, false}, {7, 9, 3, 3, 2, 2, 1, 1, true},
                        {6, 5, 3, 2, 1, 1, 1, 0, false}, {9, 7, 5, 3, 3, 2, 2, 1, true},  {5, 5, 1, 1, 2, 2, 0, 0, true},
                        {11, 4, 4, 4, 3, 1, 2, 2, true}, {3, 3, 3, 3, 1, 1, 0, 0, false}};
  uint64_t seed = 1;
  for (const Case& c : cases)
    for (int ties = 0; ties < 2; ++ties)
      for (bool include_pad : {false, true}) {
        const int64_t N = 2, C = 2, HW = c.H * c.W;
        auto xv = ties ? tie_data(N * C * HW, ++seed) : uniform_data(N * C * HW, ++seed);
        Tensor x = from_vector<float>(xv, {N, C, c.H, c.W});
        x.requires_grad_();
        Pool2dOptions o;
        o.kernel = {c.kh, c.kw};
        o.stride = {c.sh, c.sw};
        o.padding = {c.ph, c.pw};
        o.ceil_mode = c.ceil;
        o.count_include_pad = include_pad;
        for (int op = 0; op < 2; ++op) {
          x.zero_grad();
          Tensor y = op == 0 ? max_pool2d(x, o) : avg_pool2d(x, o);
          const int64_t Ho = y.size(2), Wo = y.size(3), P = Ho * Wo;
          auto gv = uniform_data(y.numel(), ++seed);
          y.backward(from_vector<float>(gv, y.shape()));
          // The scatter: each output adds into its window (max: its first
          // maximum), outputs in row-major order.
          std::vector<float> want(xv.size(), 0.0f);
          for (int64_t plane = 0; plane < N * C; ++plane)
            for (int64_t oh = 0; oh < Ho; ++oh)
              for (int64_t ow = 0; ow < Wo; ++ow) {
                const PoolSpan sh = pool_span(oh, c.H, c.kh, c.sh, c.ph), sw = pool_span(ow, c.W, c.kw, c.sw, c.pw);
                const float g = gv[static_cast<size_t>(plane * P + oh * Wo + ow)];
                float* dxp = want.data() + plane * HW;
                const float* xp = xv.data() + plane * HW;
                if (op == 0) {
                  int64_t best_i = sh.begin * c.W + sw.begin;
                  for (int64_t h = sh.begin; h < sh.end; ++h)
                    for (int64_t w = sw.begin; w < sw.end; ++w)
                      if (pool_beats(xp[h * c.W + w], xp[best_i])) best_i = h * c.W + w;
                  dxp[best_i] += g;
                } else {
                  const int64_t d = pool_divisor(sh, sw, include_pad);
                  if (d <= 0) continue;
                  const float v = g / static_cast<float>(d);
                  for (int64_t h = sh.begin; h < sh.end; ++h)
                    for (int64_t w = sw.begin; w < sw.end; ++w) dxp[h * c.W + w] += v;
                }
              }
          // The gather of pool_math.h (the deterministic CUDA backward),
          // from the argmax the scatter used.
          std::vector<float> gathered(xv.size());
          for (int64_t plane = 0; plane < N * C; ++plane) {
            std::vector<int64_t> idx(static_cast<size_t>(P));
            const float* xp = xv.data() + plane * HW;
            for (int64_t oh = 0; oh < Ho; ++oh)
              for (int64_t ow = 0; ow < Wo; ++ow) {
                const PoolSpan sh = pool_span(oh, c.H, c.kh, c.sh, c.ph), sw = pool_span(ow, c.W, c.kw, c.sw, c.pw);
                int64_t best_i = sh.begin * c.W + sw.begin;
                for (int64_t h = sh.begin; h < sh.end; ++h)
                  for (int64_t w = sw.begin; w < sw.end; ++w)
                    if (pool_beats(xp[h * c.W + w], xp[best_i])) best_i = h * c.W + w;
                idx[static_cast<size_t>(oh * Wo + ow)] = best_i;
              }
            PoolGeometry pg;
            pg.planes = 1, pg.H = c.H, pg.W = c.W, pg.Ho = Ho, pg.Wo = Wo;
            pg.kh = c.kh, pg.kw = c.kw, pg.sh = c.sh, pg.sw = c.sw, pg.ph = c.ph, pg.pw = c.pw;
            const float* gp = gv.data() + plane * P;
            for (int64_t h = 0; h < c.H; ++h)
              for (int64_t w = 0; w < c.W; ++w)
                gathered[static_cast<size_t>(plane * HW + h * c.W + w)] =
                    op == 0 ? max_pool_grad_at(pg, gp, idx.data(), h, w) : avg_pool_grad_at(pg, include_pad, gp, h, w);
          }
          INFO((op == 0 ? "max" : "avg") << " pool H " << c.H << " W " << c.W << " kernel " << c.kh << "x" << c.kw
                                         << " stride " << c.sh << "x" << c.sw << " pad " << c.ph << "x" << c.pw
                                         << " ceil " << c.ceil << " ties " << ties << " include_pad " << include_pad);
          CHECK(bit_mismatches(x.grad().to_vector<float>(), want) == 0);
          CHECK(bit_mismatches(gathered, want) == 0);
        }
      }
}

TEST_CASE("pool gather: adaptive pooling backward equals a scatter, bit for bit") {
  uint64_t seed = 100;
  for (int64_t H : {1, 5, 7, 12})
    for (int64_t W : {1, 3, 8})
      for (int64_t Ho : {1, 2, 3, 7})
        for (int64_t Wo : {1, 4, 5}) {
          const int64_t planes = 3;
          auto xv = uniform_data(planes * H * W, ++seed);
          Tensor x = from_vector<float>(xv, {1, planes, H, W});
          x.requires_grad_();
          Tensor y = adaptive_avg_pool2d(x, Ho, Wo);
          auto gv = uniform_data(y.numel(), ++seed);
          y.backward(from_vector<float>(gv, y.shape()));
          std::vector<float> want(xv.size(), 0.0f);
          for (int64_t plane = 0; plane < planes; ++plane)
            for (int64_t oh = 0; oh < Ho; ++oh)
              for (int64_t ow = 0; ow < Wo; ++ow) {
                const PoolSpan sh = adaptive_span(oh, H, Ho), sw = adaptive_span(ow, W, Wo);
                const float v = gv[static_cast<size_t>((plane * Ho + oh) * Wo + ow)] /
                                static_cast<float>((sh.end - sh.begin) * (sw.end - sw.begin));
                for (int64_t h = sh.begin; h < sh.end; ++h)
                  for (int64_t w = sw.begin; w < sw.end; ++w) want[static_cast<size_t>(plane * H * W + h * W + w)] += v;
              }
          std::vector<float> gathered(xv.size());
          for (int64_t plane = 0; plane < planes; ++plane)
            for (int64_t h = 0; h < H; ++h)
              for (int64_t w = 0; w < W; ++w)
                gathered[static_cast<size_t>(plane * H * W + h * W + w)] =
                    adaptive_grad_at(H, W, Ho, Wo, gv.data() + plane * Ho * Wo, h, w);
          INFO("adaptive " << H << "x" << W << " -> " << Ho << "x" << Wo);
          CHECK(bit_mismatches(x.grad().to_vector<float>(), want) == 0);
          CHECK(bit_mismatches(gathered, want) == 0);
        }
}

TEST_CASE("pool gather: the upsampling gather equals the CPU backward (a scatter), bit for bit") {
  uint64_t seed = 200;
  struct Case {
    int64_t H, W, Ho, Wo;
  };
  const Case cases[] = {{4, 4, 8, 8}, {3, 5, 7, 11}, {8, 8, 3, 5}, {1, 6, 4, 6}, {5, 1, 9, 2}, {6, 7, 6, 7}, {2, 3, 13, 17}};
  for (const Case& c : cases)
    for (int mode = 0; mode < 3; ++mode) {
      const UpsampleMode m = mode == 0 ? UpsampleMode::Nearest : UpsampleMode::Bilinear;
      const bool bilinear = mode > 0, align = mode == 2;
      const int64_t planes = 2;
      auto xv = uniform_data(planes * c.H * c.W, ++seed);
      for (int dt = 0; dt < 2; ++dt) {
        // float32 and float64: the gather must give the CPU's bits in both.
        Tensor x = dt == 0 ? from_vector<float>(xv, {planes, 1, c.H, c.W})
                           : from_vector<float>(xv, {planes, 1, c.H, c.W}).to(DType::Float64);
        x.requires_grad_();
        Tensor y = upsample(x, c.Ho, c.Wo, m, align);
        auto gv = uniform_data(y.numel(), ++seed);
        Tensor g = from_vector<float>(gv, y.shape());
        if (dt == 1) g = g.to(DType::Float64);
        y.backward(g);
        INFO("upsample " << c.H << "x" << c.W << " -> " << c.Ho << "x" << c.Wo << " mode " << mode << " dtype " << dt);
        if (dt == 0) {
          std::vector<float> got(xv.size());
          for (int64_t plane = 0; plane < planes; ++plane)
            for (int64_t h = 0; h < c.H; ++h)
              for (int64_t w = 0; w < c.W; ++w)
                got[static_cast<size_t>((plane * c.H + h) * c.W + w)] = upsample_grad_at(
                    c.H, c.W, c.Ho, c.Wo, bilinear, align, gv.data() + plane * c.Ho * c.Wo, h, w,
                    upsample_inverse_span(h, c.H, c.Ho, bilinear, align),
                    upsample_inverse_span(w, c.W, c.Wo, bilinear, align));
          CHECK(bit_mismatches(got, x.grad().to_vector<float>()) == 0);
        } else {
          std::vector<double> gd = g.to_vector<double>(), got(xv.size());
          for (int64_t plane = 0; plane < planes; ++plane)
            for (int64_t h = 0; h < c.H; ++h)
              for (int64_t w = 0; w < c.W; ++w)
                got[static_cast<size_t>((plane * c.H + h) * c.W + w)] = upsample_grad_at(
                    c.H, c.W, c.Ho, c.Wo, bilinear, align, gd.data() + plane * c.Ho * c.Wo, h, w,
                    upsample_inverse_span(h, c.H, c.Ho, bilinear, align),
                    upsample_inverse_span(w, c.W, c.Wo, bilinear, align));
          CHECK(bit_mismatches(got, x.grad().to_vector<double>()) == 0);
        }
      }
    }
}
