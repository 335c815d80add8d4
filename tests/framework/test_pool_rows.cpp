// The CPU pooling loops of framework/ops/pool.cpp run the windows that lie
// inside the input along w tap by tap across a row (vectorised, strides 1 and
// 2 compiled apart, others at run time), the clipped ones window by window,
// and the average backward with stride 1 as a gather. Each must give the
// plain per-window loop's bits: max values and first-maximum indices (ties
// and NaNs included), average sums in row-major tap order, and the backward
// scatter's order. Rows of fewer than 8 interior columns take the plain loop
// throughout. Checked here in float32 and float64 on both sides of that
// threshold, from no interior at all to 40 columns (vector bodies and their
// scalar tails), every stride path, padding, ceil mode and both divisor rules.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "bit_equal.h"
#include "framework/ops.h"
#include "framework/ops/pool_math.h"

using namespace neurn;
using neurn::testing::bit_mismatches;

namespace {

// kind 0: uniform in [-1, 1); 1: a coarse grid (ties in most windows);
// 2: the grid with a NaN every 37 values.
template <typename T>
std::vector<T> data(int64_t n, uint64_t seed, int kind) {
  std::vector<T> v(static_cast<size_t>(n));
  uint64_t s = seed;
  for (size_t i = 0; i < v.size(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    if (kind == 0)
      v[i] = static_cast<T>(static_cast<double>(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    else
      v[i] = static_cast<T>(static_cast<int>((s >> 33) % 5) - 2) * T(0.25);
    if (kind == 2 && i % 37 == 5) v[i] = std::numeric_limits<T>::quiet_NaN();
  }
  return v;
}

struct Cfg {
  int64_t H, W, kh, kw, sh, sw, ph, pw;
  bool ceil;
};

template <typename T>
void check_rows(const Cfg& c, int kind, bool include_pad, uint64_t seed, int64_t N = 2, int64_t C = 3) {
  const int64_t HW = c.H * c.W, planes = N * C;
  const DType dt = std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
  const auto xv = data<T>(planes * HW, seed, kind);
  Tensor x = from_vector<T>(xv, {N, C, c.H, c.W});
  x.requires_grad_();
  Pool2dOptions o;
  o.kernel = {c.kh, c.kw}, o.stride = {c.sh, c.sw}, o.padding = {c.ph, c.pw};
  o.ceil_mode = c.ceil, o.count_include_pad = include_pad;
  INFO("planes " << planes << " H " << c.H << " W " << c.W << " kernel " << c.kh << "x" << c.kw << " stride " << c.sh << "x" << c.sw
            << " pad " << c.ph << "x" << c.pw << " ceil " << c.ceil << " data " << kind << " include_pad "
            << include_pad << " " << dtype_name(dt));
  for (int op = 0; op < 2; ++op) {
    x.zero_grad();
    Tensor y = op == 0 ? max_pool2d(x, o) : avg_pool2d(x, o);
    const int64_t Ho = y.size(2), Wo = y.size(3), P = Ho * Wo;
    // Distinct gradients, so a wrong argmax or a wrong order shows in dx.
    const auto gv = data<T>(y.numel(), seed + 7, 0);
    y.backward(from_vector<T>(gv, y.shape()));
    std::vector<T> want_y(static_cast<size_t>(planes * P)), want_dx(xv.size(), T(0));
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const PoolSpan sh = pool_span(oh, c.H, c.kh, c.sh, c.ph), sw = pool_span(ow, c.W, c.kw, c.sw, c.pw);
          const T* xp = xv.data() + p * HW;
          T* dxp = want_dx.data() + p * HW;
          const size_t at = static_cast<size_t>(p * P + oh * Wo + ow);
          if (op == 0) {
            int64_t bi = sh.begin * c.W + sw.begin;
            T best = xp[bi];
            for (int64_t h = sh.begin; h < sh.end; ++h)
              for (int64_t w = sw.begin; w < sw.end; ++w)
                if (pool_beats(xp[h * c.W + w], best)) best = xp[h * c.W + w], bi = h * c.W + w;
            want_y[at] = best;
            dxp[bi] += gv[at];
          } else {
            const int64_t d = pool_divisor(sh, sw, include_pad);
            T acc = 0;
            for (int64_t h = sh.begin; h < sh.end; ++h)
              for (int64_t w = sw.begin; w < sw.end; ++w) acc += xp[h * c.W + w];
            want_y[at] = d > 0 ? acc / static_cast<T>(d) : T(0);
            if (d <= 0) continue;
            const T v = gv[at] / static_cast<T>(d);
            for (int64_t h = sh.begin; h < sh.end; ++h)
              for (int64_t w = sw.begin; w < sw.end; ++w) dxp[h * c.W + w] += v;
          }
        }
    INFO((op == 0 ? "max_pool2d" : "avg_pool2d"));
    CHECK(bit_mismatches(y.to_vector<T>(), want_y) == 0);
    CHECK(bit_mismatches(x.grad().to_vector<T>(), want_dx) == 0);
  }
}

}  // namespace

TEST_CASE("pool rows: the vectorised interior, the clipped ends and the stride-1 gather give the plain loop's bits") {
  const Cfg cfgs[] = {
      {16, 16, 3, 3, 2, 2, 1, 1, false},  // ResNet's stem: 7 interior columns, the plain loop
      {18, 18, 3, 3, 2, 2, 1, 1, false},  // 8 interior columns: the row loops
      {35, 35, 3, 3, 2, 2, 0, 0, false},  // Inception's stem: all interior, 17 columns
      {7, 7, 3, 3, 2, 2, 0, 0, false},    // 3 columns: the plain loop
      {32, 40, 2, 2, 2, 2, 0, 0, false},  // 2x2 stride 2: its own one-pass loop
      {9, 40, 2, 2, 2, 2, 0, 0, true},    // ceil mode, an odd height
      {28, 28, 2, 2, 2, 2, 0, 0, false},  // the digits ConvNet: 8 columns as vectors, a tail of 6
      {10, 16, 2, 2, 2, 2, 0, 0, false},  // exactly one vector of 8 outputs
      {6, 15, 2, 2, 2, 2, 0, 0, false},   // 7 outputs (odd W): the scalar tail alone
      {7, 18, 2, 2, 2, 2, 0, 0, false},   // odd H: a row no window covers (its gradient 0)
      {7, 37, 3, 3, 1, 1, 1, 1, false},   // Inception's 3x3 stride 1 average: the gather
      {3, 3, 3, 3, 1, 1, 1, 1, false},    // one interior column: plain loop and scatter
      {7, 10, 3, 3, 1, 1, 1, 1, false},   // W - kw = 7: the scatter
      {7, 11, 3, 3, 1, 1, 1, 1, false},   // W - kw = 8: the gather
      {6, 23, 3, 5, 1, 1, 1, 2, true},    // stride 1, wide kernel, ceil mode
      {8, 29, 3, 3, 3, 3, 1, 1, true},    // stride 3: the run-time stride path
      {5, 31, 4, 4, 3, 2, 2, 2, true},    // padding both sides, overhang
      {4, 4, 4, 4, 1, 1, 2, 2, false},    // no interior column at all
      {5, 6, 1, 1, 1, 1, 0, 0, false},    // 1x1 windows
  };
  uint64_t seed = 11;
  for (const Cfg& c : cfgs)
    for (int kind = 0; kind < 3; ++kind)
      for (bool inc : {true, false}) {
        check_rows<float>(c, kind, inc, ++seed);
        check_rows<double>(c, kind, inc, ++seed);
      }
}

// Maps of at most 576 values without interior columns, given 16 planes or
// more, run 16 planes side by side (the forwards, and avg_pool2d's backward
// as a gather): 2 x 19 planes are two full blocks and a partial one, and on
// two threads tasks of whole blocks.
TEST_CASE("pool rows: small maps, 16 planes at a time, give the plain loop's and the scatter's bits") {
  const Cfg cfgs[] = {
      {16, 16, 3, 3, 2, 2, 1, 1, false},  // ResNet's and DenseNet's stem (8x8 out)
      {15, 15, 3, 3, 2, 2, 0, 0, false},  // Inception's stem, second pool
      {7, 7, 3, 3, 2, 2, 0, 0, false},    // Inception's Mixed_6a
      {7, 7, 3, 3, 1, 1, 1, 1, false},    // Inception's 3x3 stride-1 average
      {3, 3, 3, 3, 1, 1, 1, 1, false},    // the same on 3x3 maps
      {8, 8, 2, 2, 2, 2, 0, 0, false},    // DenseNet's transition (average; max takes its 2x2 loop)
      {9, 9, 2, 2, 2, 2, 0, 0, true},     // ceil mode: clipped windows at the end
      {5, 7, 4, 4, 3, 2, 2, 2, true},     // padding both sides, overhang
      {4, 4, 4, 4, 1, 1, 2, 2, false},    // windows larger than half the map
      {24, 24, 3, 3, 3, 3, 1, 1, false},  // 576 values, the largest the lanes take
      {5, 6, 1, 1, 1, 1, 0, 0, false},    // 1x1 windows
  };
  uint64_t seed = 911;
  for (const Cfg& c : cfgs)
    for (int kind = 0; kind < 3; ++kind)
      for (bool inc : {true, false}) {
        check_rows<float>(c, kind, inc, ++seed, 2, 19);
        check_rows<double>(c, kind, inc, ++seed, 2, 19);
      }
}
