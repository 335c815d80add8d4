#pragma once
// Softmax math shared by the CPU and CUDA kernels (NEURN_HD), so the CPU
// tests check what the GPU runs: an exponential whose loop the compiler can
// vectorise, and the softmax / log-softmax of one slice (n values `stride`
// apart) with its backward.
//
// softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m), m = max_j x_j (the shift
// keeps every exp <= 1; a slice that is all -inf uses m = 0, so it gives
// 0 / 0 = NaN like PyTorch instead of inf - inf); log_softmax(x)_i = x_i - m -
// log sum_j exp(x_j - m). Backward from the output y and dL/dy g:
//   softmax:     dx = y (g - sum_j g_j y_j)
//   log_softmax: dx = g - exp(y) sum_j g_j
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "framework/hd.h"

namespace neurn {

namespace detail {

template <typename T>
struct ExpConsts;

// exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]
// (Cody and Waite: ln 2 split into a high part with trailing zero bits, so
// n * ln2_hi is exact, and a low correction), exp(r) by its Taylor series:
// degree 7 in float (truncation 0.347^8 / 8! = 5e-9 relative), 13 in double
// (0.347^14 / 14! = 4e-18). Rounding n uses the 1.5 * 2^(mantissa bits)
// trick (plain IEEE additions, no fast-math needed), and 2^n is built from
// exponent bits as two factors, so results down to the subnormals and up to
// overflow come out right. Inputs are clamped to [lo, hi], beyond which the
// result is 0 or inf anyway.
template <>
struct ExpConsts<float> {
  using Bits = int32_t;
  static constexpr float kLog2e = 1.44269504088896341f;
  static constexpr float kLn2Hi = 0.693359375f;  // 355 / 512
  static constexpr float kLn2Lo = -2.12194440e-4f;
  static constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  static constexpr float kLo = -104.0f, kHi = 89.0f;
  static constexpr int kMantissa = 23, kBias = 127, kDegree = 7;
};

template <>
struct ExpConsts<double> {
  using Bits = int64_t;
  static constexpr double kLog2e = 1.44269504088896338700e+00;
  static constexpr double kLn2Hi = 6.93147180369123816490e-01;  // fdlibm's split of ln 2
  static constexpr double kLn2Lo = 1.90821492927058770002e-10;
  static constexpr double kRound = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr double kLo = -746.0, kHi = 710.0;
  static constexpr int kMantissa = 52, kBias = 1023, kDegree = 13;
};

template <typename To, typename From>
NEURN_HD To bits_as(From v) {
  To r;
  memcpy(&r, &v, sizeof r);
  return r;
}

// 1/K! + r (1/(K+1)! + r (... + r / Deg!)): the Taylor series of exp(r)
// from term K on, in Horner form with the coefficients folded at compile time
// (a loop here is not unrolled before the vectoriser runs, and blocks it).
template <typename T>
constexpr T inv_factorial(int k) {
  T f = 1;
  for (int i = 2; i <= k; ++i) f *= T(i);
  return T(1) / f;
}

template <typename T, int K, int Deg>
NEURN_HD T exp_series(T r) {
  constexpr T c = inv_factorial<T>(K);
  if constexpr (K == Deg) {
    return c;
  } else {
    return c + r * exp_series<T, K + 1, Deg>(r);
  }
}

// Every select below is on integer bit patterns with all-ones / all-zeros
// masks: GCC will not if-convert a float comparison or a select between
// floats in a loop under the default -ftrapping-math, and a loop with a
// branch does not vectorise.
template <typename Bits>
NEURN_HD Bits select_bits(Bits mask, Bits a, Bits b) {
  return (mask & a) | (~mask & b);
}

template <typename Bits>
NEURN_HD Bits mask_of(bool c) {
  return -static_cast<Bits>(c);
}

}  // namespace detail

// exp(x) for float or double: max relative error against std::exp measured
// by tests/framework/test_softmax_norm_math.cpp (a few ulp); exp(-inf) = 0,
// exp(+inf) = inf, NaN stays NaN.
template <typename T>
NEURN_HD T exp_poly(T x) {
  using C = detail::ExpConsts<T>;
  using Bits = typename C::Bits;
  using detail::bits_as;
  using detail::mask_of;
  using detail::select_bits;
  constexpr Bits kAbs = ~(Bits(1) << (sizeof(Bits) * 8 - 1));
  const Bits xi = bits_as<Bits>(x), ax = xi & kAbs;
  const Bits nan = mask_of<Bits>(ax > bits_as<Bits>(std::numeric_limits<T>::infinity()));
  const Bits big = mask_of<Bits>((xi >= 0) & (ax > bits_as<Bits>(C::kHi)));
  const Bits small = mask_of<Bits>((xi < 0) & (ax > bits_as<Bits>(-C::kLo)));
  const T xc = bits_as<T>(select_bits(big, bits_as<Bits>(C::kHi),
                                      select_bits(small, bits_as<Bits>(C::kLo), select_bits(nan, Bits(0), xi))));
  const T t = xc * C::kLog2e + C::kRound;  // round(x / ln 2) in the low mantissa bits
  const T n = t - C::kRound;
  const Bits ni = bits_as<Bits>(t) - bits_as<Bits>(C::kRound);
  const T r = (xc - n * C::kLn2Hi) - n * C::kLn2Lo;
  const T p = detail::exp_series<T, 0, C::kDegree>(r);
  // 2^n = 2^n1 2^n2 with both halves normal numbers.
  const Bits n1 = ni / 2, n2 = ni - n1;
  const T s1 = bits_as<T>(static_cast<Bits>((n1 + C::kBias) << C::kMantissa));
  const T s2 = bits_as<T>(static_cast<Bits>((n2 + C::kBias) << C::kMantissa));
  const T e = p * s1 * s2;
  return bits_as<T>(select_bits(nan, xi, bits_as<Bits>(e)));
}

// ---- one slice: n values `stride` apart ---------------------------------------------
// Sums run in 8 independent lanes added pairwise at the end, so a contiguous
// slice (stride 1) vectorises; the result is the same on every device that
// runs these functions.

constexpr int kSoftmaxLanes = 8;

template <typename T>
NEURN_HD T lanes_total(const T* lane) {
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

// The shift m of a slice: its maximum, or 0 when every value is -inf. NaN is
// skipped (the exp of it propagates it anyway).
template <typename T>
NEURN_HD T softmax_shift(const T* x, int64_t n, int64_t stride) {
  const T ninf = -std::numeric_limits<T>::infinity();
  T lane[kSoftmaxLanes];
  for (int l = 0; l < kSoftmaxLanes; ++l) lane[l] = ninf;
  int64_t i = 0;
  for (; i + kSoftmaxLanes <= n; i += kSoftmaxLanes)
    for (int l = 0; l < kSoftmaxLanes; ++l) {
      const T v = x[(i + l) * stride];
      lane[l] = v > lane[l] ? v : lane[l];
    }
  for (; i < n; ++i) lane[0] = x[i * stride] > lane[0] ? x[i * stride] : lane[0];
  T m = lane[0];
  for (int l = 1; l < kSoftmaxLanes; ++l) m = lane[l] > m ? lane[l] : m;
  return m == ninf ? T(0) : m;
}

// sum_i exp(x_i - m)
template <typename T>
NEURN_HD T sum_exp_shifted(const T* x, int64_t n, int64_t stride, T m) {
  T lane[kSoftmaxLanes] = {};
  int64_t i = 0;
  for (; i + kSoftmaxLanes <= n; i += kSoftmaxLanes)
    for (int l = 0; l < kSoftmaxLanes; ++l) lane[l] += exp_poly(x[(i + l) * stride] - m);
  for (; i < n; ++i) lane[0] += exp_poly(x[i * stride] - m);
  return lanes_total(lane);
}

// sum_i a_i (b_i when b is given)
template <typename T>
NEURN_HD T sum_lanes(const T* a, const T* b, int64_t n, int64_t stride) {
  T lane[kSoftmaxLanes] = {};
  int64_t i = 0;
  for (; i + kSoftmaxLanes <= n; i += kSoftmaxLanes)
    for (int l = 0; l < kSoftmaxLanes; ++l) {
      const int64_t k = (i + l) * stride;
      lane[l] += b ? a[k] * b[k] : a[k];
    }
  for (; i < n; ++i) lane[0] += b ? a[i * stride] * b[i * stride] : a[i * stride];
  return lanes_total(lane);
}

// log sum_i exp(x_i): the shift plus the log of the shifted sum.
template <typename T>
NEURN_HD T log_sum_exp(const T* x, int64_t n, int64_t stride) {
  const T m = softmax_shift(x, n, stride);
  return m + std::log(sum_exp_shifted(x, n, stride, m));
}

// y = softmax(x) or log_softmax(x) of one slice (y may not alias x).
template <typename T>
NEURN_HD void softmax_slice(const T* x, T* y, int64_t n, int64_t stride, bool log_out) {
  const T m = softmax_shift(x, n, stride);
  if (log_out) {
    const T shift = m + std::log(sum_exp_shifted(x, n, stride, m));
    for (int64_t i = 0; i < n; ++i) y[i * stride] = x[i * stride] - shift;
    return;
  }
  // exp, then its sum, in separate loops: each vectorises on its own (a fused
  // loop was slower here), and the row is still in cache for the second.
  for (int64_t i = 0; i < n; ++i) y[i * stride] = exp_poly(x[i * stride] - m);
  const T inv = T(1) / sum_lanes<T>(y, nullptr, n, stride);
  for (int64_t i = 0; i < n; ++i) y[i * stride] *= inv;
}

// The backward element of a slice, from s = sum(g y) (softmax) or sum(g) (log).
template <typename T>
NEURN_HD T softmax_backward_at(T y, T g, T s, bool log_out) {
  return log_out ? g - exp_poly(y) * s : y * (g - s);
}

template <typename T>
NEURN_HD T softmax_backward_sum(const T* y, const T* g, int64_t n, int64_t stride, bool log_out) {
  return log_out ? sum_lanes<T>(g, nullptr, n, stride) : sum_lanes<T>(g, y, n, stride);
}

template <typename T>
NEURN_HD void softmax_backward_slice(const T* y, const T* g, T* dx, int64_t n, int64_t stride, bool log_out) {
  const T s = softmax_backward_sum(y, g, n, stride, log_out);
  for (int64_t i = 0; i < n; ++i) dx[i * stride] = softmax_backward_at(y[i * stride], g[i * stride], s, log_out);
}

// Cross entropy of one row from its log-sum-exp: loss = lse - (1 - eps) x_t -
// (eps / c) sum_j x_j; its gradient, scaled by gi: gi (exp(x_j - lse) - eps/c
// - (1 - eps) [j == t]).
template <typename T>
NEURN_HD T cross_entropy_row_loss(T lse, T x_target, T sum_x, T keep, T smooth) {
  return lse - keep * x_target - smooth * sum_x;
}

template <typename T>
NEURN_HD T cross_entropy_grad_at(T x, T lse, T gi, T smooth, T keep, bool is_target) {
  T d = exp_poly(x - lse) - smooth;
  if (is_target) d -= keep;
  return gi * d;
}

}  // namespace neurn
