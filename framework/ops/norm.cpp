// batch_norm and layer_norm. CPU kernels accumulate statistics in double, in
// vectorised lanes: batch norm in one pass over each channel for its moments
// (shifted sums) and one to normalise, layer norm in two passes over each row;
// they run whole channels (batch norm) or rows (layer norm) per task; the affine forward and
// backward formulas are norm_math.h's, which the CUDA kernels use too
// (framework/cuda/norm.cu; cuDNN for batch norm's training passes).
#include "framework/ops/norm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/norm_kernels.h"
#include "framework/ops/norm_math.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

namespace {

void check_param(const Tensor& p, const Tensor& x, const Shape& want, const char* what, const char* op) {
  if (!p.defined()) return;
  NEURN_CHECK(p.shape() == want, op, ": ", what, " must have shape ", shape_str(want), " for input ",
              shape_str(x.shape()), ", got ", shape_str(p.shape()));
  NEURN_CHECK(p.dtype() == x.dtype() && p.device() == x.device(), op, ": ", what, " is ", dtype_name(p.dtype()),
              " on ", p.device().str(), ", input is ", dtype_name(x.dtype()), " on ", x.device().str());
}

// ---- sums in independent double lanes (they vectorise; a single running sum
// cannot be reordered by the compiler). Rows shorter than the lanes (the 2x2
// and 1x1 maps of deep layers at 32x32 inputs) skip them: folding 8 empty
// lanes into the result is a chain of 8 dependent adds per row. ------------------

constexpr int kLanes = 8;

template <typename T>
double lane_sum(const T* p, int64_t n) {
  double s = 0;
  int64_t i = 0;
  if (n >= kLanes) {
    double acc[kLanes] = {};
    for (; i + kLanes <= n; i += kLanes)
      for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(p[i + l]);
    for (int l = 0; l < kLanes; ++l) s += acc[l];
  }
  for (; i < n; ++i) s += p[i];
  return s;
}

// sum((p - mu)^2)
template <typename T>
double lane_sq_dev(const T* p, int64_t n, double mu) {
  double s = 0;
  int64_t i = 0;
  if (n >= kLanes) {
    double acc[kLanes] = {};
    for (; i + kLanes <= n; i += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        double d = static_cast<double>(p[i + l]) - mu;
        acc[l] += d * d;
      }
    for (int l = 0; l < kLanes; ++l) s += acc[l];
  }
  for (; i < n; ++i) s += (p[i] - mu) * (p[i] - mu);
  return s;
}

// ---- batch norm: x viewed as (N, C, S) --------------------------------------
// A channel's values are N runs of S. Where S >= kLanes the loops walk each
// run in kLanes double lanes that persist across the runs (folded once per
// channel); the small maps of deep layers (S of 1 to 7: 1x1 and 2x2 planes)
// are walked image by image across a block of channels instead, so the reads
// are contiguous and, for S = 1, the channel loop itself vectorises. Either
// way a channel's sums are taken by one task in an order fixed by the shape:
// the results do not depend on the thread count.

struct BnGeom {
  int64_t N = 0, C = 0, S = 1;
  int64_t count() const { return N * S; }  // elements per channel
};

// Per-channel sums over channels [c0, c1): s1 = sum(u), s2 = sum(u v) with
// u = a - ka[c] and v = b - kb[c] (b = a, kb = ka for the moments of x; for
// backward a = dy, ka = 0, b = x, kb = mean). In double whatever T is.
template <typename T>
void bn_channel_sums(const BnGeom& g, const T* a, const T* b, const T* ka, const T* kb, int64_t c0, int64_t c1,
                     double* s1, double* s2) {
  if (g.S >= kLanes) {
    // Image by image over the block (the reads are runs of (c1 - c0) S
    // values, which the prefetcher follows; channel by channel they would be
    // runs of S with a jump of C S between them). Each channel keeps its lanes
    // across the images.
    const int64_t nc = c1 - c0, body = g.S - g.S % kLanes;
    std::vector<double> lanes(static_cast<size_t>(nc * 2 * kLanes), 0.0);
    for (int64_t c = 0; c < nc; ++c) s1[c] = 0, s2[c] = 0;
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t c = 0; c < nc; ++c) {
        const double ua = ka ? static_cast<double>(ka[c0 + c]) : 0.0, ub = static_cast<double>(kb[c0 + c]);
        const T* pa = a + (n * g.C + c0 + c) * g.S;
        const T* pb = b + (n * g.C + c0 + c) * g.S;
        double l1[kLanes], l2[kLanes];
        double* keep = lanes.data() + c * 2 * kLanes;
        for (int l = 0; l < kLanes; ++l) l1[l] = keep[l], l2[l] = keep[kLanes + l];
        for (int64_t i = 0; i < body; i += kLanes)
          for (int l = 0; l < kLanes; ++l) {
            const double u = static_cast<double>(pa[i + l]) - ua, v = static_cast<double>(pb[i + l]) - ub;
            l1[l] += u, l2[l] += u * v;
          }
        for (int l = 0; l < kLanes; ++l) keep[l] = l1[l], keep[kLanes + l] = l2[l];
        double t1 = 0, t2 = 0;
        for (int64_t i = body; i < g.S; ++i) {
          const double u = static_cast<double>(pa[i]) - ua, v = static_cast<double>(pb[i]) - ub;
          t1 += u, t2 += u * v;
        }
        s1[c] += t1, s2[c] += t2;
      }
    for (int64_t c = 0; c < nc; ++c)
      for (int l = 0; l < kLanes; ++l)
        s1[c] += lanes[static_cast<size_t>(c * 2 * kLanes + l)],
            s2[c] += lanes[static_cast<size_t>(c * 2 * kLanes + kLanes + l)];
    return;
  }
  const int64_t nc = c1 - c0;
  for (int64_t c = 0; c < nc; ++c) s1[c] = 0, s2[c] = 0;
  for (int64_t n = 0; n < g.N; ++n) {
    const T* pa = a + (n * g.C + c0) * g.S;
    const T* pb = b + (n * g.C + c0) * g.S;
    if (g.S == 1) {
      for (int64_t c = 0; c < nc; ++c) {
        const double u = static_cast<double>(pa[c]) - (ka ? static_cast<double>(ka[c0 + c]) : 0.0);
        const double v = static_cast<double>(pb[c]) - static_cast<double>(kb[c0 + c]);
        s1[c] += u, s2[c] += u * v;
      }
      continue;
    }
    for (int64_t c = 0; c < nc; ++c) {
      const double ua = ka ? static_cast<double>(ka[c0 + c]) : 0.0, ub = static_cast<double>(kb[c0 + c]);
      double t1 = 0, t2 = 0;
      for (int64_t i = 0; i < g.S; ++i) {
        const double u = static_cast<double>(pa[c * g.S + i]) - ua, v = static_cast<double>(pb[c * g.S + i]) - ub;
        t1 += u, t2 += u * v;
      }
      s1[c] += t1, s2[c] += t2;
    }
  }
}

// y = x scale[c] + shift[c] (forward), or dx = k (dy - a - (x - mean) c)
// (backward, norm_backward_at), over channels [c0, c1); coefficient arrays
// are indexed from c0.
template <typename T>
void bn_apply_affine(const BnGeom& g, const T* x, const T* scale, const T* shift, int64_t c0, int64_t c1, T* y) {
  if (g.S == 1) {  // (N, C): the channel loop is the contiguous one
    for (int64_t n = 0; n < g.N; ++n) {
      const T* __restrict p = x + n * g.C + c0;
      T* __restrict q = y + n * g.C + c0;
      for (int64_t c = 0; c < c1 - c0; ++c) q[c] = p[c] * scale[c] + shift[c];
    }
    return;
  }
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = c0; c < c1; ++c) {
      const T* p = x + (n * g.C + c) * g.S;
      T* q = y + (n * g.C + c) * g.S;
      const T sc = scale[c - c0], sh = shift[c - c0];
      for (int64_t i = 0; i < g.S; ++i) q[i] = p[i] * sc + sh;
    }
}

template <typename T>
void bn_apply_backward(const BnGeom& g, const T* x, const T* dy, const NormBackward<T>* bc, int64_t c0, int64_t c1,
                       T* dx) {
  if (g.S == 1) {  // (N, C): the channel loop is the contiguous one
    for (int64_t n = 0; n < g.N; ++n) {
      const T* __restrict p = x + n * g.C + c0;
      const T* __restrict d = dy + n * g.C + c0;
      T* __restrict o = dx + n * g.C + c0;
      for (int64_t c = 0; c < c1 - c0; ++c) o[c] = norm_backward_at(bc[c], p[c], d[c]);
    }
    return;
  }
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t off = (n * g.C + c) * g.S;
      const NormBackward<T> b = bc[c - c0];
      for (int64_t i = 0; i < g.S; ++i) dx[off + i] = norm_backward_at(b, x[off + i], dy[off + i]);
    }
}

// One copy of the loops per instruction set, picked at load time (as the
// softmax loops of loss.cpp). "avx2" brings no FMA, so every copy does the
// same IEEE operations in the same order: the same bits on every machine.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NEURN_NORM_CLONES __attribute__((target_clones("avx2", "default"), flatten))
#else
#define NEURN_NORM_CLONES
#endif

#define NEURN_BN_CLONE(T, suffix)                                                                                    \
  NEURN_NORM_CLONES void bn_channel_sums_##suffix(const BnGeom& g, const T* a, const T* b, const T* ka, const T* kb, \
                                                  int64_t c0, int64_t c1, double* s1, double* s2) {                 \
    bn_channel_sums<T>(g, a, b, ka, kb, c0, c1, s1, s2);                                                             \
  }                                                                                                                  \
  NEURN_NORM_CLONES void bn_apply_affine_##suffix(const BnGeom& g, const T* x, const T* scale, const T* shift,        \
                                                  int64_t c0, int64_t c1, T* y) {                                    \
    bn_apply_affine<T>(g, x, scale, shift, c0, c1, y);                                                               \
  }                                                                                                                  \
  NEURN_NORM_CLONES void bn_apply_backward_##suffix(const BnGeom& g, const T* x, const T* dy,                        \
                                                    const NormBackward<T>* bc, int64_t c0, int64_t c1, T* dx) {      \
    bn_apply_backward<T>(g, x, dy, bc, c0, c1, dx);                                                                  \
  }
NEURN_BN_CLONE(float, f32)
NEURN_BN_CLONE(double, f64)
#undef NEURN_BN_CLONE

template <typename T>
void bn_sums(const BnGeom& g, const T* a, const T* b, const T* ka, const T* kb, int64_t c0, int64_t c1, double* s1,
             double* s2) {
  if constexpr (std::is_same_v<T, float>)
    bn_channel_sums_f32(g, a, b, ka, kb, c0, c1, s1, s2);
  else
    bn_channel_sums_f64(g, a, b, ka, kb, c0, c1, s1, s2);
}

// Channels per task: whole channels, so each channel's sums have one order
// (whatever the split, the results do not depend on the thread count). A
// task walks its channels in blocks of contiguous channels, image by image;
// a block spans at most ~64 KB of each image (and 256 channels), so its
// lanes and coefficients stay in cache.
template <typename F>
void bn_for_channels(const BnGeom& g, int64_t cost_per_elem, F&& f) {
  const int64_t block = std::clamp<int64_t>((1 << 14) / std::max<int64_t>(g.S, 1), 1, 256);
  cpu::parallel_for(g.C, std::max<int64_t>(g.count(), 1) * cost_per_elem, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; c += block) f(c, std::min(c1, c + block));
  });
}

// Training statistics per channel, the running-statistics update, and y.
// mean/invstd (C) are saved for backward. The moments come from one pass over
// x, shifted by the channel's first value K: mean = K + sum(x - K) / M,
// M var = sum((x - K)^2) - sum(x - K)^2 / M. With K a sample of the channel,
// |mean - K| is of the order of the spread, so the subtraction loses no more
// than a digit or so of the double sums (unshifted, E[x^2] - E[x]^2 would
// cancel badly for a channel whose mean is large against its spread).
template <typename T>
void bn_train_forward(const BnGeom& g, const T* x, const T* w, const T* b, T* rm, T* rv, double momentum, double eps,
                      T* y, T* mean_out, T* invstd_out) {
  const double M = static_cast<double>(g.count());
  std::vector<T> K(static_cast<size_t>(g.C));
  for (int64_t c = 0; c < g.C; ++c) K[static_cast<size_t>(c)] = x[c * g.S];
  bn_for_channels(g, 3, [&](int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    std::vector<double> s1(static_cast<size_t>(nc)), s2(static_cast<size_t>(nc));
    std::vector<T> scale(static_cast<size_t>(nc)), shift(static_cast<size_t>(nc));
    bn_sums<T>(g, x, x, K.data(), K.data(), c0, c1, s1.data(), s2.data());
    for (int64_t c = c0; c < c1; ++c) {
      const double d1 = s1[static_cast<size_t>(c - c0)], d2 = s2[static_cast<size_t>(c - c0)];
      const double mean = static_cast<double>(K[static_cast<size_t>(c)]) + d1 / M;
      const double sq = std::max(d2 - d1 * d1 / M, 0.0);  // M var
      const double invstd = norm_invstd(sq / M, eps);
      if (rm) rm[c] = static_cast<T>(running_update(rm[c], mean, momentum));
      if (rv) rv[c] = static_cast<T>(running_update(rv[c], sq / (M - 1), momentum));  // unbiased
      mean_out[c] = static_cast<T>(mean), invstd_out[c] = static_cast<T>(invstd);
      const NormAffine<double> aff = norm_affine(mean, invstd, w ? w[c] : 1.0, b ? b[c] : 0.0);
      scale[static_cast<size_t>(c - c0)] = static_cast<T>(aff.scale);
      shift[static_cast<size_t>(c - c0)] = static_cast<T>(aff.shift);
    }
    if constexpr (std::is_same_v<T, float>)
      bn_apply_affine_f32(g, x, scale.data(), shift.data(), c0, c1, y);
    else
      bn_apply_affine_f64(g, x, scale.data(), shift.data(), c0, c1, y);
  });
}

template <typename T>
void bn_eval_forward(const BnGeom& g, const T* x, const T* w, const T* b, const T* rm, const T* rv, double eps, T* y,
                     T* mean_out, T* invstd_out) {
  std::vector<T> scale(static_cast<size_t>(g.C)), shift(static_cast<size_t>(g.C));
  for (int64_t c = 0; c < g.C; ++c) {
    mean_out[c] = rm[c];
    const double invstd = norm_invstd(static_cast<double>(rv[c]), eps);
    invstd_out[c] = static_cast<T>(invstd);
    const NormAffine<double> aff = norm_affine(rm[c], invstd, w ? w[c] : 1.0, b ? b[c] : 0.0);
    scale[static_cast<size_t>(c)] = static_cast<T>(aff.scale), shift[static_cast<size_t>(c)] = static_cast<T>(aff.shift);
  }
  bn_for_channels(g, 1, [&](int64_t c0, int64_t c1) {
    if constexpr (std::is_same_v<T, float>)
      bn_apply_affine_f32(g, x, scale.data() + c0, shift.data() + c0, c0, c1, y);
    else
      bn_apply_affine_f64(g, x, scale.data() + c0, shift.data() + c0, c0, c1, y);
  });
}

// training: the batch statistics depend on x, so dx has the two extra terms
//   dx = w invstd / M (M dy - sum(dy) - xhat sum(dy xhat));
// eval: dx = w invstd dy. dw = sum(dy xhat), db = sum(dy). One pass for the
// two sums, one to write dx, a block of channels per task.
template <typename T>
void bn_backward(const BnGeom& g, bool training, const T* x, const T* dy, const T* w, const T* mean, const T* invstd,
                 T* dx, T* dw, T* db) {
  const double M = static_cast<double>(g.count());
  bn_for_channels(g, 4, [&](int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    std::vector<double> sdy(static_cast<size_t>(nc)), sdyx(static_cast<size_t>(nc));
    std::vector<NormBackward<T>> bc(static_cast<size_t>(nc));
    bn_sums<T>(g, dy, x, nullptr, mean, c0, c1, sdy.data(), sdyx.data());
    for (int64_t c = c0; c < c1; ++c) {
      const size_t i = static_cast<size_t>(c - c0);
      const double mu = mean[c], is = invstd[c];
      const double sx = sdyx[i] * is;  // sum(dy xhat)
      if (dw) dw[c] = static_cast<T>(sx);
      if (db) db[c] = static_cast<T>(sdy[i]);
      const NormBackward<double> bd = norm_backward_coeffs(M, sdy[i], sx, w ? w[c] : 1.0, mu, is, training);
      bc[i] = {static_cast<T>(bd.k), static_cast<T>(bd.a), static_cast<T>(bd.c), static_cast<T>(bd.mean)};
    }
    if (!dx) return;
    if constexpr (std::is_same_v<T, float>)
      bn_apply_backward_f32(g, x, dy, bc.data(), c0, c1, dx);
    else
      bn_apply_backward_f64(g, x, dy, bc.data(), c0, c1, dx);
  });
}

// ---- layer norm: x viewed as (R, D) ---------------------------------------------

template <typename T>
void ln_forward(int64_t R, int64_t D, const T* x, const T* w, const T* b, double eps, T* y, T* mean_out,
                T* invstd_out) {
  cpu::parallel_for(R, 4 * D, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* p = x + r * D;
      T* q = y + r * D;
      double mean = lane_sum(p, D) / static_cast<double>(D);
      double sq = lane_sq_dev(p, D, mean);
      const double invstd = norm_invstd(sq / static_cast<double>(D), eps);
      mean_out[r] = static_cast<T>(mean), invstd_out[r] = static_cast<T>(invstd);
      const T mu = static_cast<T>(mean), is = static_cast<T>(invstd);
      for (int64_t j = 0; j < D; ++j) q[j] = norm_apply<T>(p[j], mu, is, w ? w[j] : T(1), b ? b[j] : T(0));
    }
  });
}

template <typename T>
void ln_backward(int64_t R, int64_t D, const T* x, const T* dy, const T* w, const T* mean, const T* invstd, T* dx,
                 T* dw, T* db) {
  if (dx) {
    cpu::parallel_for(R, 6 * D, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* p = x + r * D;
        const T* d = dy + r * D;
        const T mu = mean[r], is = invstd[r];
        double s1 = 0, s2 = 0;  // sum(dxhat), sum(dxhat xhat)
        for (int64_t j = 0; j < D; ++j) {
          double gx = w ? d[j] * w[j] : d[j];
          s1 += gx;
          s2 += gx * (p[j] - mu) * is;
        }
        // k = invstd, the weight folded into dy (norm_math.h).
        const NormBackward<double> bd = norm_backward_coeffs(static_cast<double>(D), s1, s2, 1.0, mu, is, true);
        const NormBackward<T> bt{static_cast<T>(bd.k), static_cast<T>(bd.a), static_cast<T>(bd.c), mu};
        T* o = dx + r * D;
        for (int64_t j = 0; j < D; ++j) o[j] = norm_backward_at(bt, p[j], w ? d[j] * w[j] : d[j]);
      }
    });
  }
  if (dw || db) {  // column sums over rows, in blocks of contiguous columns
    constexpr int64_t kBlock = 64;
    int64_t blocks = (D + kBlock - 1) / kBlock;
    cpu::parallel_for(blocks, 3 * R * kBlock, [&](int64_t k0, int64_t k1) {
      std::vector<double> aw(kBlock), ab(kBlock);
      for (int64_t k = k0; k < k1; ++k) {
        int64_t j0 = k * kBlock, j1 = std::min(D, j0 + kBlock);
        std::fill(aw.begin(), aw.end(), 0.0), std::fill(ab.begin(), ab.end(), 0.0);
        for (int64_t r = 0; r < R; ++r) {
          const T* p = x + r * D;
          const T* d = dy + r * D;
          const T mu = mean[r], is = invstd[r];
          for (int64_t j = j0; j < j1; ++j) {
            aw[j - j0] += d[j] * (p[j] - mu) * is;
            ab[j - j0] += d[j];
          }
        }
        for (int64_t j = j0; j < j1; ++j) {
          if (dw) dw[j] = static_cast<T>(aw[j - j0]);
          if (db) db[j] = static_cast<T>(ab[j - j0]);
        }
      }
    });
  }
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

template <typename T>
T* mut_data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

BnGeom bn_geom(const Tensor& x) {
  BnGeom g;
  g.N = x.size(0), g.C = x.size(1), g.S = 1;
  for (int64_t i = 2; i < x.dim(); ++i) g.S *= x.size(i);
  return g;
}

void bn_train_cpu(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& rm, const Tensor& rv,
                  double momentum, double eps, const Tensor& y, const Tensor& mean, const Tensor& invstd) {
  dispatch_float(x.dtype(), "batch_norm", [&](auto z) {
    using T = decltype(z);
    bn_train_forward<T>(bn_geom(x), x.data<T>(), data_or_null<T>(w), data_or_null<T>(b), mut_data_or_null<T>(rm),
                        mut_data_or_null<T>(rv), momentum, eps, y.data<T>(), mean.data<T>(), invstd.data<T>());
  });
}

void bn_eval_cpu(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& rm, const Tensor& rv, double eps,
                 const Tensor& y, const Tensor& mean, const Tensor& invstd) {
  dispatch_float(x.dtype(), "batch_norm", [&](auto z) {
    using T = decltype(z);
    bn_eval_forward<T>(bn_geom(x), x.data<T>(), data_or_null<T>(w), data_or_null<T>(b), rm.data<T>(), rv.data<T>(),
                       eps, y.data<T>(), mean.data<T>(), invstd.data<T>());
  });
}

void bn_backward_cpu(const Tensor& x, const Tensor& dy, const Tensor& w, const Tensor& mean, const Tensor& invstd,
                     double, const Tensor& dx, const Tensor& dw, const Tensor& db) {
  dispatch_float(x.dtype(), "batch_norm backward", [&](auto z) {
    using T = decltype(z);
    bn_backward<T>(bn_geom(x), true, x.data<T>(), dy.data<T>(), data_or_null<T>(w), mean.data<T>(), invstd.data<T>(),
                   mut_data_or_null<T>(dx), mut_data_or_null<T>(dw), mut_data_or_null<T>(db));
  });
}

void ln_forward_cpu(const Tensor& x, const Tensor& w, const Tensor& b, int64_t D, double eps, const Tensor& y,
                    const Tensor& mean, const Tensor& invstd) {
  dispatch_float(x.dtype(), "layer_norm", [&](auto z) {
    using T = decltype(z);
    ln_forward<T>(mean.numel(), D, x.data<T>(), data_or_null<T>(w), data_or_null<T>(b), eps, y.data<T>(),
                  mean.data<T>(), invstd.data<T>());
  });
}

void ln_backward_cpu(const Tensor& x, const Tensor& dy, const Tensor& w, const Tensor& mean, const Tensor& invstd,
                     int64_t D, const Tensor& dx, const Tensor& dw, const Tensor& db) {
  dispatch_float(x.dtype(), "layer_norm backward", [&](auto z) {
    using T = decltype(z);
    ln_backward<T>(mean.numel(), D, x.data<T>(), dy.data<T>(), data_or_null<T>(w), mean.data<T>(), invstd.data<T>(),
                   mut_data_or_null<T>(dx), mut_data_or_null<T>(dw), mut_data_or_null<T>(db));
  });
}

}  // namespace

NEURN_DEFINE_KERNEL(batch_norm_train_kernel);
NEURN_DEFINE_KERNEL(batch_norm_eval_kernel);
NEURN_DEFINE_KERNEL(batch_norm_backward_kernel);
NEURN_DEFINE_KERNEL(layer_norm_kernel);
NEURN_DEFINE_KERNEL(layer_norm_backward_kernel);
NEURN_REGISTER_KERNEL(batch_norm_train_kernel, DeviceType::CPU, bn_train_cpu);
NEURN_REGISTER_KERNEL(batch_norm_eval_kernel, DeviceType::CPU, bn_eval_cpu);
NEURN_REGISTER_KERNEL(batch_norm_backward_kernel, DeviceType::CPU, bn_backward_cpu);
NEURN_REGISTER_KERNEL(layer_norm_kernel, DeviceType::CPU, ln_forward_cpu);
NEURN_REGISTER_KERNEL(layer_norm_backward_kernel, DeviceType::CPU, ln_backward_cpu);

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  NEURN_CHECK(x.defined(), op, ": undefined input");
  NEURN_CHECK(x.dim() >= 2, op, ": input must be (N, C, ...), got ", shape_str(x.shape()));
  NEURN_CHECK(is_floating(x.dtype()), op, ": input must be floating point, got ", dtype_name(x.dtype()));
  BnGeom g;
  g.N = x.size(0), g.C = x.size(1), g.S = 1;
  for (int64_t i = 2; i < x.dim(); ++i) g.S *= x.size(i);
  const Shape cshape{g.C};
  check_param(weight, x, cshape, "weight", op);
  check_param(bias, x, cshape, "bias", op);
  check_param(running_mean, x, cshape, "running_mean", op);
  check_param(running_var, x, cshape, "running_var", op);
  NEURN_CHECK(running_mean.defined() == running_var.defined(), op,
              ": running_mean and running_var must be given together");
  NEURN_CHECK(training || running_mean.defined(), op, ": eval mode needs running_mean and running_var (input ",
              shape_str(x.shape()), ")");
  NEURN_CHECK(!training || g.count() > 1 || x.device().is_meta(), op,
              ": training needs more than one value per channel, got input ", shape_str(x.shape()));
  NEURN_CHECK(eps > 0 && momentum >= 0 && momentum <= 1, op, ": need eps > 0 and momentum in [0, 1], got eps ", eps,
              ", momentum ", momentum);

  Tensor y = Tensor::empty(x.shape(), x.options());
  count_flops((training ? 6 : 2) * x.numel());  // statistics + normalise, or one fused scale and shift
  if (training && running_mean.defined()) {  // the kernels update them in place
    running_mean.bump_version();
    running_var.bump_version();
  }
  // mean and invstd (C) of the statistics that normalised x, for backward.
  Tensor mean = Tensor::empty(cshape, x.options()), invstd = Tensor::empty(cshape, x.options());
  if (training)
    batch_norm_train_kernel(x.device(), x, weight, bias, running_mean, running_var, momentum, eps, y, mean, invstd);
  else
    batch_norm_eval_kernel(x.device(), x, weight, bias, running_mean, running_var, eps, y, mean, invstd);

  SavedTensor xs(x, op, "input"), ws(weight, op, "weight");
  bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad();
  bool need_b = bias.defined() && bias.requires_grad();
  return attach_grad(y, op, {x, weight, bias},
                     [xs, ws, mean, invstd, g, training, eps, need_x, need_w, need_b](const Tensor& dy) -> std::vector<Tensor> {
                       const Tensor &xd = xs.get(), &wd = ws.get();
                       if (!training) {
                         // eval: y is an affine map of x with fixed statistics,
                         // its gradients written with element-wise ops and sums.
                         Shape bshape(static_cast<size_t>(xd.dim()), 1);
                         bshape[1] = g.C;
                         std::vector<int64_t> axes{0};
                         for (int64_t i = 2; i < xd.dim(); ++i) axes.push_back(i);
                         Tensor is = reshape(invstd, bshape);
                         Tensor k = wd.defined() ? mul(is, reshape(wd, bshape)) : is;
                         Tensor dx = need_x ? mul(dy, k) : Tensor();
                         Tensor dw = need_w ? sum(mul(dy, mul(sub(xd, reshape(mean, bshape)), is)), axes) : Tensor();
                         Tensor db = need_b ? sum(dy, axes) : Tensor();
                         return {dx, dw, db};
                       }
                       Tensor dx = need_x ? Tensor::empty(xd.shape(), xd.options()) : Tensor();
                       Tensor dw = need_w ? Tensor::empty({g.C}, xd.options()) : Tensor();
                       Tensor db = need_b ? Tensor::empty({g.C}, xd.options()) : Tensor();
                       batch_norm_backward_kernel(xd.device(), xd, dy, wd, mean, invstd, eps, dx, dw, db);
                       return {dx, dw, db};
                     });
}

Tensor layer_norm(const Tensor& x, int64_t normalized_dims, const Tensor& weight, const Tensor& bias, double eps) {
  const char* op = "layer_norm";
  NEURN_CHECK(x.defined(), op, ": undefined input");
  NEURN_CHECK(is_floating(x.dtype()), op, ": input must be floating point, got ", dtype_name(x.dtype()));
  NEURN_CHECK(normalized_dims >= 1 && normalized_dims <= x.dim(), op, ": normalized_dims must be in [1, ", x.dim(),
              "] for input ", shape_str(x.shape()), ", got ", normalized_dims);
  NEURN_CHECK(eps > 0, op, ": eps must be > 0, got ", eps);
  Shape nshape(x.shape().end() - normalized_dims, x.shape().end());
  check_param(weight, x, nshape, "weight", op);
  check_param(bias, x, nshape, "bias", op);
  const int64_t D = shape_numel(nshape), R = D == 0 ? 0 : x.numel() / D;
  NEURN_CHECK(D >= 1 || x.device().is_meta(), op, ": empty normalized shape ", shape_str(nshape));

  Tensor y = Tensor::empty(x.shape(), x.options());
  count_flops(6 * x.numel());  // statistics, normalise, affine
  Tensor mean = Tensor::empty({R}, x.options()), invstd = Tensor::empty({R}, x.options());
  if (y.numel() > 0) layer_norm_kernel(x.device(), x, weight, bias, D, eps, y, mean, invstd);
  SavedTensor xs(x, op, "input"), ws(weight, op, "weight");
  bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad();
  bool need_b = bias.defined() && bias.requires_grad();
  return attach_grad(y, op, {x, weight, bias},
                     [xs, ws, mean, invstd, nshape, D, need_x, need_w, need_b](const Tensor& dy) -> std::vector<Tensor> {
                       const Tensor &xd = xs.get(), &wd = ws.get();
                       Tensor dx = need_x ? Tensor::empty(xd.shape(), xd.options()) : Tensor();
                       Tensor dw = need_w ? Tensor::empty(nshape, xd.options()) : Tensor();
                       Tensor db = need_b ? Tensor::empty(nshape, xd.options()) : Tensor();
                       layer_norm_backward_kernel(xd.device(), xd, dy, wd, mean, invstd, D, dx, dw, db);
                       return {dx, dw, db};
                     });
}

}  // namespace neurn
