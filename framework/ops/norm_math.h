#pragma once
// Normalization math shared by the CPU and CUDA kernels (NEURN_HD), so the CPU
// tests check what the GPU runs: the moments of a set of values and their
// merge, and the affine forward and backward of batch, layer and instance
// norm (xhat = (x - mean) invstd, y = w xhat + b).
#include <cmath>
#include <cstdint>

#include "framework/hd.h"

namespace neurn {

// Count, mean and M2 = sum (x - mean)^2 of a set of values. Welford's update
// adds one value; Chan, Golub and LeVeque's merge combines two sets, so each
// thread (or lane, or block) can reduce its share in one pass and the shares
// be merged in any tree: no E[x^2] - E[x]^2 cancellation either way.
template <typename A>
struct Moments {
  A n = 0, mean = 0, m2 = 0;
};

template <typename A>
NEURN_HD Moments<A> moments_add(Moments<A> m, A x) {
  m.n += A(1);
  const A d = x - m.mean;
  m.mean += d / m.n;
  m.m2 += d * (x - m.mean);
  return m;
}

template <typename A>
NEURN_HD Moments<A> moments_merge(Moments<A> a, Moments<A> b) {
  if (b.n == A(0)) return a;
  if (a.n == A(0)) return b;
  const A n = a.n + b.n, d = b.mean - a.mean, fb = b.n / n;
  Moments<A> r;
  r.n = n;
  r.mean = a.mean + d * fb;
  r.m2 = a.m2 + b.m2 + d * d * a.n * fb;
  return r;
}

// 1 / sqrt(var + eps), var the biased variance (M2 / n): what normalises.
template <typename A>
NEURN_HD A norm_invstd(A biased_var, A eps) {
  return A(1) / std::sqrt(biased_var + eps);
}

// r = (1 - momentum) r + momentum stat (the running statistics).
NEURN_HD double running_update(double r, double stat, double momentum) { return (1 - momentum) * r + momentum * stat; }

// y = x scale + shift with scale = w invstd, shift = b - mean invstd w: the
// forward of a channel (batch norm) in one multiply-add per element.
template <typename T>
struct NormAffine {
  T scale, shift;
};

NEURN_HD NormAffine<double> norm_affine(double mean, double invstd, double w, double b) {
  return {invstd * w, b - mean * invstd * w};
}

// The forward of one element with a per-element weight (layer norm).
template <typename T>
NEURN_HD T norm_apply(T x, T mean, T invstd, T w, T b) {
  return (x - mean) * invstd * w + b;
}

// Backward of y = w (x - mean) invstd + b where mean and invstd are the
// statistics of the M values normalised together (training):
//   dx = w invstd (dy - sum(dy) / M - xhat sum(dy xhat) / M)
// written as k (dy - a - (x - mean) c). With the statistics fixed (eval),
// a = c = 0. Layer norm's per-element weight goes into dy (dy w) with k = invstd.
template <typename T>
struct NormBackward {
  T k, a, c, mean;
};

// sdy = sum(dy), sdy_xhat = sum(dy xhat) over the M values.
NEURN_HD NormBackward<double> norm_backward_coeffs(double M, double sdy, double sdy_xhat, double w, double mean,
                                                    double invstd, bool batch_stats) {
  if (!batch_stats) return {w * invstd, 0.0, 0.0, mean};
  return {w * invstd, sdy / M, sdy_xhat / M * invstd, mean};
}

template <typename T>
NEURN_HD T norm_backward_at(const NormBackward<T>& b, T x, T dy) {
  return b.k * (dy - b.a - (x - b.mean) * b.c);
}

}  // namespace neurn
