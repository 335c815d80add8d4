// The CPU batch norm of framework/ops/norm.cpp takes its moments in one pass
// of shifted double sums and walks a channel's values either in 16 lanes per
// run (maps of kBnLaneMinS = 16 values or more) or with one accumulator per
// (channel, position) across the images (smaller maps), in blocks of channels
// sized for L2 (several per task at batch 64). Checked here on both sides of
// those thresholds (S = 1 to 1369 and channel counts that split into uneven
// blocks) against a long double reference of the training forward, the
// running statistics and the backward; the shift against a channel whose mean
// is large beside its spread; and the results bit for bit on one thread and
// on the pool's.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "bit_equal.h"
#include "framework/ops.h"
#include "framework/ops/parallel_cpu.h"

using namespace neurn;
using neurn::testing::bit_mismatches;

namespace {

struct BnRun {
  std::vector<float> y, dx, dw, db, rm, rv;
};

BnRun run_bn(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& dy) {
  Tensor x = x0.detach().requires_grad_(), w = w0.detach().requires_grad_(), b = b0.detach().requires_grad_();
  const int64_t C = x.size(1);
  Tensor rm = zeros({C}), rv = ones({C});
  Tensor y = batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5);
  y.backward(dy);
  return {y.to_vector<float>(), x.grad().to_vector<float>(), w.grad().to_vector<float>(), b.grad().to_vector<float>(),
          rm.to_vector<float>(), rv.to_vector<float>()};
}

double worst_rel(const std::vector<float>& got, const std::vector<long double>& want) {
  long double scale = 0;
  for (long double v : want) scale = std::max(scale, std::fabs(v));
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::fabs(got[i] - want[i]) / (1 + scale)));
  return worst;
}

// x (N, C, S) with channel c offset by `offset` c (a large offset against a
// unit spread tests the shifted sums).
void check_shape(int64_t N, int64_t C, int64_t S, float offset, uint64_t seed) {
  Generator gen(seed);
  Tensor x = add(randn({N, C, S}, {}, &gen), mul(reshape(arange(0, static_cast<double>(C)), {1, C, 1}), full({1}, offset)));
  Tensor w = randn({C}, {}, &gen), b = randn({C}, {}, &gen), dy = randn({N, C, S}, {}, &gen);
  const BnRun r = run_bn(x, w, b, dy);
  const auto xv = x.to_vector<float>(), wv = w.to_vector<float>(), bv = b.to_vector<float>(),
             gv = dy.to_vector<float>();
  const long double M = static_cast<long double>(N * S), eps = 1e-5L;
  std::vector<long double> y(xv.size()), dx(xv.size()), dw(C), db(C), rm(C), rv(C);
  for (int64_t c = 0; c < C; ++c) {
    long double mean = 0, var = 0, sdy = 0, sdyx = 0;
    auto at = [&](int64_t n, int64_t s) { return static_cast<size_t>((n * C + c) * S + s); };
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) mean += xv[at(n, s)];
    mean /= M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) var += (xv[at(n, s)] - mean) * (xv[at(n, s)] - mean);
    const long double invstd = 1 / std::sqrt(var / M + eps);
    rm[c] = 0.1L * mean, rv[c] = 0.9L + 0.1L * var / (M - 1);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const long double xh = (xv[at(n, s)] - mean) * invstd;
        y[at(n, s)] = xh * wv[c] + bv[c];
        sdy += gv[at(n, s)], sdyx += gv[at(n, s)] * xh;
      }
    dw[c] = sdyx, db[c] = sdy;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const long double xh = (xv[at(n, s)] - mean) * invstd;
        dx[at(n, s)] = wv[c] * invstd / M * (M * gv[at(n, s)] - sdy - xh * sdyx);
      }
  }
  INFO("N " << N << " C " << C << " S " << S << " offset " << offset);
  // float32 results of double statistics: a few float32 roundings each (the
  // normalised values are O(1); the sums over M values are scaled by 1 + max).
  CHECK(worst_rel(r.rm, rm) < 2e-6);
  CHECK(worst_rel(r.rv, rv) < 2e-6);
  // With a large offset y = x scale + shift cancels in float32 (the affine
  // form of norm_math.h, not the statistics): only the statistics are checked.
  if (offset == 0.0f) {
    CHECK(worst_rel(r.y, y) < 2e-6);
    CHECK(worst_rel(r.dx, dx) < 2e-6);
    CHECK(worst_rel(r.dw, dw) < 2e-6);
    CHECK(worst_rel(r.db, db) < 2e-6);
  }
  // The same bits when every loop runs inline (one thread): each channel is
  // summed by one task in an order fixed by the shape.
  BnRun one;
  cpu::run_on_threads(2, [&](int64_t t) {
    if (t == 0) one = run_bn(x, w, b, dy);
  });
  CHECK(bit_mismatches(one.y, r.y) == 0);
  CHECK(bit_mismatches(one.dx, r.dx) == 0);
  CHECK(bit_mismatches(one.dw, r.dw) == 0);
  CHECK(bit_mismatches(one.db, r.db) == 0);
  CHECK(bit_mismatches(one.rv, r.rv) == 0);
}

}  // namespace

TEST_CASE("batch_norm paths: small and large maps, uneven channel blocks, against long double") {
  uint64_t seed = 5;
  for (int64_t S : {1, 4, 7, 8, 9, 64, 1369})
    for (int64_t C : {3, 300}) {
      if (S * C > 20000) C = 3 + S % 5;  // keep the large maps small in total
      check_shape(S == 1 ? 64 : 5, C, S, 0.0f, ++seed);
    }
  // Channels far from zero against a unit spread: the shift by a sample of
  // the channel keeps the one-pass variance accurate.
  check_shape(8, 5, 16, 1000.0f, ++seed);
  check_shape(64, 40, 1, 3000.0f, ++seed);
}

TEST_CASE("batch_norm paths: both sides of the lane threshold and tasks of several L2 blocks") {
  uint64_t seed = 50;
  // S = 15 is the largest map of the per-position accumulators, 16 the
  // smallest of the 16-lane loop (no tail), 17 and 33 leave a tail of one.
  for (int64_t S : {2, 15, 16, 17, 33}) check_shape(6, 7, S, 0.0f, ++seed);
  check_shape(6, 7, 17, 500.0f, ++seed);
  // Batch 64 with more channels than one block holds (the forward's and the
  // backward's blocks differ: x alone, or x and dy), so a task walks several
  // blocks, the last one short: S = 64 (32 channels a backward block), S = 4
  // and S = 1 (512 and 2048 channels a backward block).
  check_shape(64, 40, 64, 0.0f, ++seed);
  check_shape(64, 600, 4, 0.0f, ++seed);
  check_shape(64, 5000, 1, 0.0f, ++seed);
}
