#pragma once
// The per-thread work of the NeuRN CUDA kernels (framework/cuda/neurn.cu),
// written once with NEURN_HD: a kernel thread runs one row or one column of a
// plane; the CPU tests run the same functions over every row and column and
// compare with the CPU op, so the kernels' index arithmetic is checked on a
// machine without a GPU. Running window sums in double; padding 0 valid,
// 1 zero, 2 reflect.
#include <cmath>
#include <cstdint>

#include "framework/hd.h"

namespace neurn::cuda {

NEURN_HD int64_t neurn_reflect(int64_t i, int64_t n) {
  if (i < 0) i = -i;
  if (i >= n) i = 2 * (n - 1) - i;
  return i;
}

// In-bounds pixels of a patch along one axis.
NEURN_HD int64_t neurn_clipped(int64_t i, int64_t r, int64_t n) {
  int64_t hi = i + r < n - 1 ? i + r : n - 1;
  int64_t lo = i - r > 0 ? i - r : 0;
  return hi - lo + 1;
}

// Forward, one row: h1[j] = sum of y, h2[j] = sum of y^2 over columns
// j - r .. j + r of the padded row, y = x - s (0 outside for valid and zero).
NEURN_HD void neurn_row_sums(const float* row, int64_t W, int64_t r, int padding, double s, double* h1, double* h2) {
  auto val = [&](int64_t c) -> double {
    if (c >= 0 && c < W) return static_cast<double>(row[c]) - s;
    return padding == 2 ? static_cast<double>(row[neurn_reflect(c, W)]) - s : 0.0;
  };
  double a1 = 0, a2 = 0;
  for (int64_t c = -r; c < r; ++c) {
    double y = val(c);
    a1 += y;
    a2 += y * y;
  }
  for (int64_t j = 0; j < W; ++j) {
    double y = val(j + r);
    a1 += y;
    a2 += y * y;
    h1[j] = a1;
    h2[j] = a2;
    y = val(j - r);
    a1 -= y;
    a2 -= y * y;
  }
}

// Forward, one column j: the patch sums down the rows of h1, h2 ((H, W)),
// then sigma (into sig) and the shifted patch mean (into mean, if given) of
// every pixel of the column. Keeps the running maximum (best, best_at) with
// flat indices base + i * W + j, the first index winning ties.
NEURN_HD void neurn_column_stats(const double* h1, const double* h2, int64_t H, int64_t W, int64_t j, int64_t r,
                                 int padding, double s, float* sig, float* mean, int64_t base, float& best,
                                 int64_t& best_at) {
  const int64_t k = 2 * r + 1;
  const double kk = static_cast<double>(k * k);
  // As on the CPU: a variance below the rounding level of the sums is a flat patch.
  const double tiny = 4.0 * static_cast<double>(k) * 2.220446049250313e-16;
  auto src = [&](int64_t iq) -> int64_t {
    if (padding == 2) return neurn_reflect(iq, H);
    return (iq >= 0 && iq < H) ? iq : -1;
  };
  double a1 = 0, a2 = 0;
  for (int64_t iq = -r; iq < r; ++iq) {
    int64_t t = src(iq);
    if (t >= 0) {
      a1 += h1[t * W + j];
      a2 += h2[t * W + j];
    }
  }
  const int64_t cc = neurn_clipped(j, r, W);
  for (int64_t i = 0; i < H; ++i) {
    int64_t t = src(i + r);
    if (t >= 0) {
      a1 += h1[t * W + j];
      a2 += h2[t * W + j];
    }
    double s1 = a1, s2 = a2, n = kk;
    const double in_bounds = static_cast<double>(neurn_clipped(i, r, H) * cc);
    if (padding == 0) {
      n = in_bounds;
    } else if (padding == 1) {  // zeros are -s after the shift
      s1 -= (kk - in_bounds) * s;
      s2 += (kk - in_bounds) * s * s;
    }
    double mu = s1 / n, e2 = s2 / n, var = e2 - mu * mu;
    float sd = (k > 1 && var > tiny * e2) ? static_cast<float>(sqrt(var)) : 0.f;
    sig[i * W + j] = sd;
    if (mean) mean[i * W + j] = static_cast<float>(mu);
    const int64_t at = base + i * W + j;
    if (sd > best || (sd == best && at < best_at)) {
      best = sd;
      best_at = at;
    }
    t = src(i - r);
    if (t >= 0) {
      a1 -= h1[t * W + j];
      a2 -= h2[t * W + j];
    }
  }
}

// Backward inputs of output (i, j) of a plane: A = dL/dsigma / (2 sigma n)
// and B = A * mean, with sigma = out * D and dL/dsigma = g / D (+ dc where
// `is_arg`).
NEURN_HD void neurn_ab(const float* out, const float* mean, const float* gout, int64_t H, int64_t W, int64_t r,
                       int padding, double D, double dc, int64_t i, int64_t j, bool is_arg, double& a, double& b) {
  const int64_t p = i * W + j;
  const double o = static_cast<double>(out[p]);
  if (!(o > 0)) {
    a = b = 0;
    return;
  }
  const int64_t k = 2 * r + 1;
  const double n =
      padding == 0 ? static_cast<double>(neurn_clipped(i, r, H) * neurn_clipped(j, r, W)) : static_cast<double>(k * k);
  const double dsig = static_cast<double>(gout[p]) / D + (is_arg ? dc : 0.0);
  a = dsig / (2 * o * D * n);
  b = a * static_cast<double>(mean[p]);
}

// Backward, one row i: ha[d], hb[d] = sums of A, B over the outputs j in
// [jq - r, jq + r] of the row, for every padded column jq (folded onto
// d = reflect(jq) for reflect; d = jq in [0, W) otherwise). `arg_in_row` is
// the column of the argmax in this row, or -1.
NEURN_HD void neurn_row_transposed(const float* out, const float* mean, const float* gout, int64_t H, int64_t W,
                                   int64_t r, int padding, double D, double dc, int64_t i, int64_t arg_in_row,
                                   double* ha, double* hb) {
  const bool reflect = padding == 2;
  const int64_t lo = reflect ? -r : 0, hi = reflect ? W + r : W;
  if (reflect)
    for (int64_t j = 0; j < W; ++j) ha[j] = hb[j] = 0;
  double sa = 0, sb = 0, a, b;
  for (int64_t j = lo - r; j < lo + r; ++j)
    if (j >= 0 && j < W) {
      neurn_ab(out, mean, gout, H, W, r, padding, D, dc, i, j, j == arg_in_row, a, b);
      sa += a;
      sb += b;
    }
  for (int64_t jq = lo; jq < hi; ++jq) {
    if (jq + r >= 0 && jq + r < W) {
      neurn_ab(out, mean, gout, H, W, r, padding, D, dc, i, jq + r, jq + r == arg_in_row, a, b);
      sa += a;
      sb += b;
    }
    if (reflect) {
      const int64_t d = neurn_reflect(jq, W);
      ha[d] += sa;
      hb[d] += sb;
    } else {
      ha[jq] = sa;
      hb[jq] = sb;
    }
    if (jq - r >= 0 && jq - r < W) {
      neurn_ab(out, mean, gout, H, W, r, padding, D, dc, i, jq - r, jq - r == arg_in_row, a, b);
      sa -= a;
      sb -= b;
    }
  }
}

// Backward, one column j: sums of ha, hb ((H, W)) over the output rows whose
// patch holds padded row iq, then dx = 2 (y * sum A - sum B), y = x - s,
// folded onto reflect(iq) for reflect.
NEURN_HD void neurn_column_transposed(const double* ha, const double* hb, const float* x, int64_t H, int64_t W,
                                      int64_t r, int padding, double s, int64_t j, float* dx) {
  const bool reflect = padding == 2;
  const int64_t lo = reflect ? -r : 0, hi = reflect ? H + r : H;
  if (reflect)
    for (int64_t i = 0; i < H; ++i) dx[i * W + j] = 0.f;
  double sa = 0, sb = 0;
  for (int64_t i = lo - r; i < lo + r; ++i)
    if (i >= 0 && i < H) {
      sa += ha[i * W + j];
      sb += hb[i * W + j];
    }
  for (int64_t iq = lo; iq < hi; ++iq) {
    if (iq + r >= 0 && iq + r < H) {
      sa += ha[(iq + r) * W + j];
      sb += hb[(iq + r) * W + j];
    }
    const int64_t d = reflect ? neurn_reflect(iq, H) : iq;
    const float v = static_cast<float>(2 * ((static_cast<double>(x[d * W + j]) - s) * sa - sb));
    if (reflect) {
      dx[d * W + j] += v;
    } else {
      dx[d * W + j] = v;
    }
    if (iq - r >= 0 && iq - r < H) {
      sa -= ha[(iq - r) * W + j];
      sb -= hb[(iq - r) * W + j];
    }
  }
}

}  // namespace neurn::cuda
