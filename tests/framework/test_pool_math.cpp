// The pooling window arithmetic shared by the CPU loops and the CUDA kernels
// (framework/ops/pool_math.h): known windows and divisors, and the whole
// max/avg pooling output recomputed from these functions alone.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "framework/ops.h"
#include "framework/ops/pool_math.h"

using namespace neurn;

TEST_CASE("pool_math: windows, divisors, adaptive spans and the max rule") {
  // kernel 3, stride 2, padding 1 over 5 samples: windows [-1, 2), [1, 4), [3, 6).
  PoolSpan s = pool_span(0, 5, 3, 2, 1);
  CHECK(s.begin == 0);
  CHECK(s.end == 2);
  CHECK(s.padded == 3);
  s = pool_span(2, 5, 3, 2, 1);
  CHECK(s.begin == 3);
  CHECK(s.end == 5);
  CHECK(s.padded == 3);
  // Ceil mode: kernel 2, stride 2 over 5 samples, output 2 overhangs: [4, 6) -> only 4 counts.
  s = pool_span(2, 5, 2, 2, 0);
  CHECK(s.begin == 4);
  CHECK(s.end == 5);
  CHECK(s.padded == 1);
  // Divisors: padding counts with count_include_pad, the overhang never does.
  PoolSpan h = pool_span(0, 5, 3, 2, 1), w = pool_span(2, 5, 2, 2, 0);
  CHECK(pool_divisor(h, w, true) == 3 * 1);
  CHECK(pool_divisor(h, w, false) == 2 * 1);
  // Adaptive: 5 -> 3 is [0, 2), [1, 4), [3, 5).
  const int64_t b[3] = {0, 1, 3}, e[3] = {2, 4, 5};
  for (int64_t i = 0; i < 3; ++i) {
    CHECK(adaptive_span(i, 5, 3).begin == b[i]);
    CHECK(adaptive_span(i, 5, 3).end == e[i]);
  }
  // The running maximum: ties keep the first, a NaN wins once and stays.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(pool_beats(2.0f, 1.0f));
  CHECK_FALSE(pool_beats(1.0f, 1.0f));
  CHECK(pool_beats(nan, 1.0f));
  CHECK_FALSE(pool_beats(5.0f, nan));
  CHECK_FALSE(pool_beats(nan, nan));
}

TEST_CASE("pool_math: max and avg pooling equal a loop over the shared windows") {
  Generator gen(2);
  const int64_t H = 7, W = 6;
  Tensor x = randn({2, 3, H, W}, {DType::Float64}, &gen);
  auto vx = x.to_vector<double>();
  for (bool ceil : {false, true})
    for (bool include_pad : {false, true}) {
      Pool2dOptions o;
      o.kernel = {3, 2};
      o.stride = {2, 2};
      o.padding = {1, 1};
      o.ceil_mode = ceil;
      o.count_include_pad = include_pad;
      Tensor ym = max_pool2d(x, o), ya = avg_pool2d(x, o);
      const int64_t Ho = ym.size(2), Wo = ym.size(3);
      auto vm = ym.to_vector<double>(), va = ya.to_vector<double>();
      double worst = 0;
      int64_t wrong_max = 0;
      for (int64_t p = 0; p < 6; ++p)
        for (int64_t oh = 0; oh < Ho; ++oh)
          for (int64_t ow = 0; ow < Wo; ++ow) {
            PoolSpan sh = pool_span(oh, H, 3, 2, 1), sw = pool_span(ow, W, 2, 2, 1);
            double best = vx[p * H * W + sh.begin * W + sw.begin], acc = 0;
            for (int64_t i = sh.begin; i < sh.end; ++i)
              for (int64_t j = sw.begin; j < sw.end; ++j) {
                double v = vx[p * H * W + i * W + j];
                if (pool_beats(v, best)) best = v;
                acc += v;
              }
            const int64_t at = (p * Ho + oh) * Wo + ow;
            wrong_max += vm[at] != best;
            worst = std::max(worst, std::abs(va[at] - acc / static_cast<double>(pool_divisor(sh, sw, include_pad))));
          }
      INFO("ceil_mode " << ceil << " count_include_pad " << include_pad);
      CHECK(wrong_max == 0);
      CHECK(worst <= 1e-15);
    }
}
