// The summation order of the CPU batch norm (framework/ops/norm.cpp), bit for
// bit: the contract in docs/engine-bench.md ("Batch norm and pooling at the
// backbones' shapes, part 2") fixes each channel's sums by the shape alone,
//   S >= 16: lane l of 16 takes positions i = l mod 16 of each image's
//            [0, S - S mod 16), images in order; each image's tail (the last
//            S mod 16 values) is summed in order from 0 and added to a running
//            total per image; lanes 0 to 15 are then added to it in order;
//   S < 16:  each position over the images in order (from 0), then the S
//            positions in order.
// Sums in double of u = x - K (K the channel's first value) and u u for the
// moments, dy and dy (x - mean) for the backward. The reference below spells
// that order out with scalar loops and the formulas of norm_math.h, so any loop
// of the kernel (its blocks, its loop nest, its vectors) must give these bits:
// y, mean-dependent running statistics, dx, dw and db, at one thread and at
// the pool's.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "bit_equal.h"
#include "framework/ops.h"
#include "framework/ops/norm_kernels.h"
#include "framework/ops/norm_math.h"
#include "framework/ops/parallel_cpu.h"

using namespace neurn;
using neurn::testing::bit_mismatches;

namespace {

template <typename T>
struct BnOut {
  std::vector<T> y, dx, dw, db, rm, rv;
};

template <typename T>
BnOut<T> run_op(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& dy) {
  Tensor x = x0.detach().requires_grad_(), w = w0.detach().requires_grad_(), b = b0.detach().requires_grad_();
  const int64_t C = x.size(1);
  Tensor rm = zeros({C}, x.options()), rv = ones({C}, x.options());
  Tensor y = batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5);
  y.backward(dy);
  return {y.to_vector<T>(), x.grad().to_vector<T>(), w.grad().to_vector<T>(), b.grad().to_vector<T>(),
          rm.to_vector<T>(), rv.to_vector<T>()};
}

// s1 = sum f1(n, i), s2 = sum f2(n, i) over a channel in the contract's order.
template <typename F1, typename F2>
void ordered_sums(int64_t N, int64_t S, F1 f1, F2 f2, double& s1, double& s2) {
  s1 = 0, s2 = 0;
  if (S >= 16) {
    const int64_t body = S - S % 16;
    double l1[16] = {}, l2[16] = {};
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t i = 0; i < body; ++i) l1[i % 16] += f1(n, i), l2[i % 16] += f2(n, i);
      double t1 = 0, t2 = 0;
      for (int64_t i = body; i < S; ++i) t1 += f1(n, i), t2 += f2(n, i);
      s1 += t1, s2 += t2;
    }
    for (int l = 0; l < 16; ++l) s1 += l1[l], s2 += l2[l];
  } else {
    for (int64_t i = 0; i < S; ++i) {
      double t1 = 0, t2 = 0;
      for (int64_t n = 0; n < N; ++n) t1 += f1(n, i), t2 += f2(n, i);
      s1 += t1, s2 += t2;
    }
  }
}

template <typename T>
BnOut<T> reference(int64_t N, int64_t C, int64_t S, const std::vector<T>& x, const std::vector<T>& w,
                   const std::vector<T>& b, const std::vector<T>& dy) {
  const double M = static_cast<double>(N * S), eps = 1e-5, momentum = 0.1;
  BnOut<T> r;
  r.y.resize(x.size()), r.dx.resize(x.size()), r.dw.resize(C), r.db.resize(C), r.rm.resize(C), r.rv.resize(C);
  for (int64_t c = 0; c < C; ++c) {
    auto at = [&](int64_t n, int64_t i) { return static_cast<size_t>((n * C + c) * S + i); };
    const double K = x[at(0, 0)];
    double d1, d2;
    ordered_sums(
        N, S, [&](int64_t n, int64_t i) { return static_cast<double>(x[at(n, i)]) - K; },
        [&](int64_t n, int64_t i) {
          const double u = static_cast<double>(x[at(n, i)]) - K;
          return u * u;
        },
        d1, d2);
    const double mean = K + d1 / M, sq = std::max(d2 - d1 * d1 / M, 0.0);
    const double invstd = norm_invstd(sq / M, eps);
    r.rm[c] = static_cast<T>(running_update(0.0, mean, momentum));
    r.rv[c] = static_cast<T>(running_update(1.0, sq / (M - 1), momentum));
    const T mean_f = static_cast<T>(mean), invstd_f = static_cast<T>(invstd);
    const NormAffine<double> aff = norm_affine(mean, invstd, w[c], b[c]);
    const T sc = static_cast<T>(aff.scale), sh = static_cast<T>(aff.shift);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) r.y[at(n, i)] = x[at(n, i)] * sc + sh;
    // The backward from the saved float mean and invstd.
    const double mu = mean_f, is = invstd_f;
    double s1, s2;
    ordered_sums(
        N, S, [&](int64_t n, int64_t i) { return static_cast<double>(dy[at(n, i)]) - 0.0; },
        [&](int64_t n, int64_t i) {
          return (static_cast<double>(dy[at(n, i)]) - 0.0) * (static_cast<double>(x[at(n, i)]) - mu);
        },
        s1, s2);
    const double sx = s2 * is;
    r.dw[c] = static_cast<T>(sx), r.db[c] = static_cast<T>(s1);
    const NormBackward<double> bd = norm_backward_coeffs(M, s1, sx, w[c], mu, is, true);
    const NormBackward<T> bf{static_cast<T>(bd.k), static_cast<T>(bd.a), static_cast<T>(bd.c),
                             static_cast<T>(bd.mean)};
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < S; ++i) r.dx[at(n, i)] = norm_backward_at(bf, x[at(n, i)], dy[at(n, i)]);
  }
  return r;
}

// float64 makes every sum's order show in the bits (in float32 the double
// sums of a few hundred floats are often exact, whatever their order).
template <typename T>
void check_order(int64_t N, int64_t C, int64_t S, uint64_t seed) {
  // Values with full mantissas (a float32 randn widened to float64 would
  // leave most double sums exact, whatever their order), and an offset per
  // channel so the shift K matters to the bits.
  uint64_t st = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&st](double lo, double hi) {
    st = st * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<T>(lo + (hi - lo) * (static_cast<double>(st >> 11) / 9007199254740992.0));
  };
  std::vector<T> xv(static_cast<size_t>(N * C * S)), dyv(xv.size()), wv(static_cast<size_t>(C)), bv(wv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < S; ++i) xv[static_cast<size_t>((n * C + c) * S + i)] = next(-1.7, 1.9) + T(3) * T(c);
  for (T& v : dyv) v = next(-1.3, 1.1);
  for (T& v : wv) v = next(0.5, 1.5);
  for (T& v : bv) v = next(-0.5, 0.5);
  Tensor x = from_vector<T>(xv, {N, C, S}), dy = from_vector<T>(dyv, {N, C, S});
  Tensor w = from_vector<T>(wv, {C}), b = from_vector<T>(bv, {C});
  const BnOut<T> want = reference<T>(N, C, S, x.to_vector<T>(), w.to_vector<T>(), b.to_vector<T>(), dy.to_vector<T>());
  BnOut<T> one;
  cpu::run_on_threads(2, [&](int64_t t) {
    if (t == 0) one = run_op<T>(x, w, b, dy);
  });
  BnOut<T> pool = run_op<T>(x, w, b, dy);
  INFO("N " << N << " C " << C << " S " << S << (std::is_same_v<T, float> ? " float32" : " float64"));
  for (const BnOut<T>* got : std::vector<const BnOut<T>*>{&one, &pool}) {
    CHECK(bit_mismatches(got->y, want.y) == 0);
    CHECK(bit_mismatches(got->dx, want.dx) == 0);
    CHECK(bit_mismatches(got->dw, want.dw) == 0);
    CHECK(bit_mismatches(got->db, want.db) == 0);
    CHECK(bit_mismatches(got->rm, want.rm) == 0);
    CHECK(bit_mismatches(got->rv, want.rv) == 0);
  }
}

}  // namespace

TEST_CASE("batch_norm order: the documented summation order, bit for bit") {
  // Both copies of the sums where the CPU has avx512f (the 8-wide one, then
  // the avx2 one); elsewhere the second pass repeats the first.
  for (bool wide : {true, false}) {
  const bool was = bn_cpu_use_avx512(wide);
  INFO("avx512 sums allowed " << wide << " (were in use " << was << ")");
  uint64_t seed = 900;
  // Column path (S < 16) and lane path (16 and up, with and without a tail),
  // the backbones' map sizes (1x1 to 8x8 at batch 64, 7x7 = 49 with a tail of
  // one, 16x16), and batch 64 with more channels than one L2 block.
  for (int64_t S : {1, 2, 4, 9, 15, 16, 17, 31, 49, 64, 256})
    for (int64_t N : {3, 64}) {
      const int64_t C = std::max<int64_t>(2, std::min<int64_t>(70, 40000 / (N * S)));
      check_order<double>(N, C, S, ++seed);
      check_order<float>(N, C, S, ++seed);
    }
  check_order<double>(64, 600, 4, ++seed);
  check_order<double>(64, 40, 64, ++seed);
  check_order<float>(64, 40, 64, ++seed);
  }
  bn_cpu_use_avx512(true);
}
