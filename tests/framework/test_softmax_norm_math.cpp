// The math shared by the CPU and CUDA kernels of softmax, the losses, the
// normalizations and the max backward (framework/ops/softmax_math.h,
// norm_math.h, reduce_math.h), checked on its own in float64 against plain
// formulas, with the rows that break naive code: large values, -inf, NaN,
// one element.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <algorithm>
#include <vector>

#include "framework/ops.h"
#include "framework/ops/elementwise_cpu.h"
#include "framework/ops/norm_math.h"
#include "framework/ops/reduce_math.h"
#include "framework/ops/softmax_math.h"

using namespace neurn;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Relative error of exp_poly<T>(x) against std::exp in double (long double
// for the float64 version), the result rounded to T as the reference.
template <typename T>
double exp_rel_error(T x) {
  const long double want = std::exp(static_cast<long double>(x));
  const T ref = static_cast<T>(want);
  const T got = exp_poly<T>(x);
  if (ref == T(0)) return got == T(0) ? 0.0 : 1.0;
  if (std::isinf(ref)) return std::isinf(got) && got > 0 ? 0.0 : 1.0;
  return static_cast<double>(std::fabs((static_cast<long double>(got) - want) / want));
}

}  // namespace

TEST_CASE("softmax_math: exp_poly against std::exp over the whole range (float32 and float64)") {
  // Normal results: a few ulp (float32 ulp 1.2e-7, float64 2.2e-16).
  double worst_f = 0, worst_d = 0, worst_sub_f = 0;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> wide(-87.0, 88.0), wide_d(-708.0, 709.0), small(-1.0, 1.0);
  for (int i = 0; i < 200000; ++i) {
    worst_f = std::max(worst_f, exp_rel_error<float>(static_cast<float>(wide(rng))));
    worst_f = std::max(worst_f, exp_rel_error<float>(static_cast<float>(small(rng))));
    worst_d = std::max(worst_d, exp_rel_error<double>(wide_d(rng)));
    worst_d = std::max(worst_d, exp_rel_error<double>(small(rng)));
  }
  // Around the rounding boundaries of n: x = (k + 1/2) ln 2.
  for (int k = -120; k < 120; ++k)
    for (double e : {-1e-6, 0.0, 1e-6}) {
      double x = (k + 0.5 + e) * std::log(2.0);
      worst_f = std::max(worst_f, exp_rel_error<float>(static_cast<float>(x)));
      worst_d = std::max(worst_d, exp_rel_error<double>(x));
    }
  // Subnormal float results (exp(-87.3) .. exp(-103)) keep their absolute
  // accuracy: within one subnormal step of the rounded reference.
  for (double x = -103.0; x < -87.5; x += 0.01) {
    const float got = exp_poly<float>(static_cast<float>(x));
    const float ref = static_cast<float>(std::exp(static_cast<double>(static_cast<float>(x))));
    worst_sub_f = std::max(worst_sub_f, std::fabs(static_cast<double>(got) - ref) / std::ldexp(1.0, -149));
  }
  MESSAGE("exp_poly max relative error: float32 ", worst_f, ", float64 ", worst_d,
          "; float32 subnormals within ", worst_sub_f, " of the smallest subnormal");
  CHECK(worst_f < 4e-7);
  CHECK(worst_d < 1e-15);
  CHECK(worst_sub_f <= 1.0);
  // Special values.
  CHECK(exp_poly(0.0) == 1.0);
  CHECK(exp_poly(0.0f) == 1.0f);
  CHECK(exp_poly(-kInf) == 0.0);
  CHECK(exp_poly(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(exp_poly(kInf) == kInf);
  CHECK(std::isinf(exp_poly(100.0f)));
  CHECK(std::isinf(exp_poly(1000.0)));
  CHECK(exp_poly(-120.0f) == 0.0f);
  CHECK(exp_poly(-800.0) == 0.0);
  CHECK(std::isnan(exp_poly(std::numeric_limits<double>::quiet_NaN())));
  CHECK(std::isnan(exp_poly(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(exp_poly(-std::numeric_limits<float>::quiet_NaN())));
}

namespace {

// softmax in long double, the plain formula.
std::vector<double> softmax_ref(const std::vector<double>& x, bool log_out) {
  long double m = -kInf;
  for (double v : x) m = std::max<long double>(m, v);
  if (m == -kInf) m = 0;
  long double s = 0;
  for (double v : x) s += std::exp(static_cast<long double>(v) - m);
  std::vector<double> y;
  for (double v : x)
    y.push_back(static_cast<double>(log_out ? v - m - std::log(s) : std::exp(static_cast<long double>(v) - m) / s));
  return y;
}

void check_slice(const std::vector<double>& x, const char* what) {
  for (bool log_out : {false, true}) {
    // Strided: the values 3 apart, as along a non-innermost axis.
    const int64_t n = static_cast<int64_t>(x.size()), st = 3;
    std::vector<double> xs(static_cast<size_t>(n * st), 1234.5), ys(xs.size(), -7.0);
    for (int64_t i = 0; i < n; ++i) xs[static_cast<size_t>(i * st)] = x[static_cast<size_t>(i)];
    softmax_slice<double>(xs.data(), ys.data(), n, st, log_out);
    std::vector<double> want = softmax_ref(x, log_out);
    for (int64_t i = 0; i < n; ++i) {
      const std::string label = std::string(what) + (log_out ? " log_softmax" : " softmax") + " element " +
                                std::to_string(i);
      INFO(label);
      const double got = ys[static_cast<size_t>(i * st)], w = want[static_cast<size_t>(i)];
      if (std::isinf(w)) {
        CHECK(got == w);
      } else {
        // log_softmax is x - (m + log s): its absolute error scales with |x|.
        const double scale = std::max({1.0, std::fabs(w), std::fabs(x[static_cast<size_t>(i)])});
        CHECK(std::fabs(got - w) <= 1e-14 * scale);
      }
    }
    for (int64_t i = 0; i < n * st; ++i)
      if (i % st) CHECK(ys[static_cast<size_t>(i)] == -7.0);  // nothing written between the slice's values
  }
}

}  // namespace

TEST_CASE("softmax_math: softmax and log_softmax of one slice against the plain formula") {
  check_slice({0.5}, "one element");
  check_slice({1e4, 1e4 - 1, -1e4, 3}, "large values");
  check_slice({-kInf, 2.0, -kInf, 0.0}, "-inf entries");
  check_slice({-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, -8.0, 9.5}, "past the 8 lanes");
  std::mt19937 rng(3);
  std::normal_distribution<double> nd(0.0, 5.0);
  std::vector<double> big(1000);
  for (auto& v : big) v = nd(rng);
  check_slice(big, "1000 normal values");
  // A row that is all -inf: 0 / 0 (NaN) for softmax, as PyTorch gives.
  std::vector<double> all(3, -kInf), y(3);
  softmax_slice<double>(all.data(), y.data(), 3, 1, false);
  for (double v : y) CHECK(std::isnan(v));
  // NaN propagates.
  std::vector<double> withnan{1.0, std::numeric_limits<double>::quiet_NaN(), 2.0};
  softmax_slice<double>(withnan.data(), y.data(), 3, 1, false);
  for (double v : y) CHECK(std::isnan(v));
  // log-sum-exp of huge values does not overflow.
  std::vector<double> huge{1e300, 1e300};
  CHECK(log_sum_exp<double>(huge.data(), 2, 1) == doctest::Approx(1e300 + std::log(2.0)));
}

TEST_CASE("softmax_math: backward against the Jacobian of the plain formula") {
  const std::vector<double> x{0.3, -1.2, 2.5, 0.0, 1.1, -0.7, 0.9, 3.3, -2.0, 0.4};
  const std::vector<double> g{1.0, -0.5, 0.25, 2.0, -1.5, 0.75, 0.1, -0.3, 0.6, -0.9};
  const int64_t n = static_cast<int64_t>(x.size());
  for (bool log_out : {false, true}) {
    std::vector<double> y(x.size()), dx(x.size());
    softmax_slice<double>(x.data(), y.data(), n, 1, log_out);
    softmax_backward_slice<double>(y.data(), g.data(), dx.data(), n, 1, log_out);
    std::vector<double> p = softmax_ref(x, false);
    for (int64_t j = 0; j < n; ++j) {
      // d out_i / d x_j: softmax p_i ([i == j] - p_j); log_softmax [i == j] - p_j.
      long double want = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double kd = i == j ? 1.0 : 0.0;
        const long double jac = log_out ? kd - p[j] : p[i] * (kd - p[j]);
        want += g[i] * jac;
      }
      CHECK(dx[j] == doctest::Approx(static_cast<double>(want)).epsilon(1e-13));
    }
  }
}

TEST_CASE("softmax_math: cross-entropy row formulas") {
  const std::vector<double> x{2.0, -1.0, 0.5, 3.0};
  const double lse = log_sum_exp<double>(x.data(), 4, 1), eps = 0.1;
  double want_lse = std::log(std::exp(2.0) + std::exp(-1.0) + std::exp(0.5) + std::exp(3.0));
  CHECK(lse == doctest::Approx(want_lse).epsilon(1e-15));
  const double keep = 1 - eps, smooth = eps / 4;
  const double sx = sum_lanes<double>(x.data(), nullptr, 4, 1);
  CHECK(sx == 4.5);
  // -sum_j q_j log p_j with q = (1 - eps) onehot(2) + eps / 4.
  double want = 0;
  for (int j = 0; j < 4; ++j) want -= ((j == 2 ? keep : 0.0) + smooth) * (x[j] - want_lse);
  CHECK(cross_entropy_row_loss(lse, x[2], sx, keep, smooth) == doctest::Approx(want).epsilon(1e-14));
  for (int j = 0; j < 4; ++j)
    CHECK(cross_entropy_grad_at(x[j], lse, 2.0, smooth, keep, j == 2) ==
          doctest::Approx(2.0 * (std::exp(x[j] - want_lse) - smooth - (j == 2 ? keep : 0.0))).epsilon(1e-14));
}

TEST_CASE("norm_math: Welford and the merge against two passes, in any split") {
  // A large offset and a small spread: E[x^2] - E[x]^2 would lose every digit.
  std::mt19937_64 rng(11);
  std::normal_distribution<double> nd(1e8, 0.01);
  std::vector<double> x(1003);
  for (auto& v : x) v = nd(rng);
  long double s = 0;
  for (double v : x) s += v;
  const long double mean = s / x.size();
  long double m2 = 0;
  for (double v : x) m2 += (v - mean) * (v - mean);
  for (int parts : {1, 2, 7, 32, 1003}) {
    // Each part (a thread or a lane) adds its values one by one; the parts merge as a tree.
    std::vector<Moments<double>> ms(static_cast<size_t>(parts));
    for (size_t i = 0; i < x.size(); ++i) ms[i % parts] = moments_add(ms[i % parts], x[i]);
    for (size_t step = 1; step < ms.size(); step *= 2)
      for (size_t i = 0; i + step < ms.size(); i += 2 * step) ms[i] = moments_merge(ms[i], ms[i + step]);
    INFO(parts, " parts");
    CHECK(ms[0].n == x.size());
    CHECK(ms[0].mean == doctest::Approx(static_cast<double>(mean)).epsilon(1e-13));
    CHECK(ms[0].m2 == doctest::Approx(static_cast<double>(m2)).epsilon(1e-7));
  }
  // Empty parts merge as nothing (lanes past the end of a short row).
  Moments<double> one = moments_add(Moments<double>{}, 5.0);
  CHECK(moments_merge(one, Moments<double>{}).mean == 5.0);
  CHECK(moments_merge(Moments<double>{}, one).m2 == 0.0);
  CHECK(moments_merge(Moments<double>{}, Moments<double>{}).n == 0.0);
}

TEST_CASE("norm_math: affine forward and the backward coefficients against the plain formulas") {
  const double mean = 1.5, var = 0.25, eps = 1e-5, w = 2.0, b = -0.5;
  const double is = norm_invstd(var, eps);
  CHECK(is == doctest::Approx(1.0 / std::sqrt(0.25 + 1e-5)).epsilon(1e-15));
  const NormAffine<double> a = norm_affine(mean, is, w, b);
  for (double x : {-3.0, 0.0, 1.5, 7.0}) {
    CHECK(x * a.scale + a.shift == doctest::Approx((x - mean) * is * w + b).epsilon(1e-14));
    CHECK(norm_apply(x, mean, is, w, b) == doctest::Approx((x - mean) * is * w + b).epsilon(1e-14));
  }
  CHECK(running_update(1.0, 3.0, 0.1) == doctest::Approx(1.2));
  // Batch-statistics backward against central differences of
  // L = sum_i g_i (w (x_i - mean(x)) / sqrt(var(x) + eps) + b).
  std::vector<double> x{0.3, -1.0, 2.2, 0.7, 1.9, -0.4}, g{1.0, -2.0, 0.5, 0.3, -0.7, 1.1};
  const size_t M = x.size();
  auto loss = [&](const std::vector<double>& v) {
    double m = 0, q = 0, l = 0;
    for (double e : v) m += e;
    m /= M;
    for (double e : v) q += (e - m) * (e - m);
    const double s = norm_invstd(q / M, eps);
    for (size_t i = 0; i < M; ++i) l += g[i] * (w * (v[i] - m) * s + b);
    return l;
  };
  double m = 0, q = 0;
  for (double e : x) m += e;
  m /= M;
  for (double e : x) q += (e - m) * (e - m);
  const double s = norm_invstd(q / M, eps);
  double sdy = 0, sdyx = 0;
  for (size_t i = 0; i < M; ++i) sdy += g[i], sdyx += g[i] * (x[i] - m) * s;
  const NormBackward<double> bk = norm_backward_coeffs(static_cast<double>(M), sdy, sdyx, w, m, s, true);
  for (size_t i = 0; i < M; ++i) {
    std::vector<double> xp = x, xm = x;
    const double h = 1e-6;
    xp[i] += h, xm[i] -= h;
    CHECK(norm_backward_at(bk, x[i], g[i]) == doctest::Approx((loss(xp) - loss(xm)) / (2 * h)).epsilon(1e-7));
  }
  // Fixed statistics (eval): dx = w invstd dy.
  const NormBackward<double> ev = norm_backward_coeffs(static_cast<double>(M), sdy, sdyx, w, m, s, false);
  CHECK(norm_backward_at(ev, 4.0, 3.0) == doctest::Approx(w * s * 3.0));
}

TEST_CASE("reduce_math: the max backward gather agrees with the CPU scatter, every pattern") {
  // (2, 3, 4) reduced over each set of axes: the gather (CUDA's
  // NEURN_DETERMINISTIC=1 kernel) gives the same bits as max's CPU backward.
  const Shape in{2, 3, 4};
  std::vector<double> vals(24);
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> pick(0, 5);  // small integers: ties, to check the first maximum
  for (auto& v : vals) v = pick(rng);
  const std::vector<std::vector<int64_t>> patterns{{0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2}, {}};
  for (const auto& axes : patterns) {
    Tensor x = from_vector(vals, in);
    x.requires_grad_();
    Tensor m = max(x, axes, true);
    std::vector<double> gv(static_cast<size_t>(m.numel()));
    for (size_t i = 0; i < gv.size(); ++i) gv[i] = 1.0 + static_cast<double>(i);
    Tensor g = from_vector(gv, m.shape());
    sum(mul(m, g)).backward();
    const std::vector<double> cpu = x.grad().to_vector<double>();
    // The index of each maximum, recomputed as max's kernel does (first on ties).
    Shape keep = m.shape();
    const Shape* shapes[2] = {&in, &keep};
    BroadcastIndex idx = cpu::make_broadcast_index(in, shapes, 2);
    std::vector<int64_t> arg(gv.size(), -1);
    for (int64_t i = 0; i < 24; ++i) {
      int64_t o = reduce_output_of(idx, i);
      if (arg[o] < 0 || vals[i] > vals[arg[o]]) arg[o] = i;
    }
    for (int64_t i = 0; i < 24; ++i) {
      INFO("axes of size ", axes.size(), ", input ", i);
      CHECK(max_backward_at(idx, gv.data(), arg.data(), i) == cpu[static_cast<size_t>(i)]);
    }
  }
  // The coordinate along an axis of a flat index: (2, 3, 4) index 17 = (1, 1, 1).
  CHECK(axis_coordinate(17, 12, 2) == 1);
  CHECK(axis_coordinate(17, 4, 3) == 1);
  CHECK(axis_coordinate(17, 1, 4) == 1);
}
