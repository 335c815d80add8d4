// batch_norm and layer_norm. CPU kernels accumulate statistics in double, in
// vectorised lanes: batch norm in one pass over each channel for its moments
// (shifted sums) and one to normalise, layer norm in two passes over each row;
// they run whole channels (batch norm) or rows (layer norm) per task; the affine forward and
// backward formulas are norm_math.h's, which the CUDA kernels use too
// (framework/cuda/norm.cu; cuDNN for batch norm's training passes).
#include "framework/ops/norm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
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

// No contraction of a * b + c into one FMA anywhere in this file: the sums'
// avx512f copy (which allows FMA) must do the IEEE operations of the avx2
// and default copies (which have none), so every machine gets the same bits.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

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
// A channel's values are N runs of S. The loops take a task's channels in
// blocks small enough that the block's x (and dy) over all N images stay in a
// core's L2 between the pass that sums them and the pass that writes y or dx,
// so x and dy are read from memory once (kBnBlockBytes). Within a block they
// walk image by image (runs of (c1 - c0) S contiguous values, which the
// prefetcher follows). Maps of kBnLaneMinS values or more keep kBnLanes double
// lanes per channel across the images; smaller maps (the 1x1 to 3x3 planes of
// deep layers) keep one double accumulator per (channel, position) across
// the images, 16 positions at a time in registers, so the loads are
// contiguous vectors whatever S is. Either way a channel's sums are taken by one
// task in an order fixed by the shape (never by the block or the split): the
// results do not depend on the thread count.

struct BnGeom {
  int64_t N = 0, C = 0, S = 1;
  int64_t count() const { return N * S; }  // elements per channel
};

// A block's x and dy over all N images (~1 MB; the L2 is 2 MB a core here).
constexpr int64_t kBnBlockBytes = int64_t{1} << 20;
// Maps of at least this many values take the per-channel lanes.
constexpr int64_t kBnLaneMinS = 16;
// A block of small maps: at most this many values per image (its column
// sums, 2 arrays of doubles, and the spread coefficients of dx, 4 of T).
constexpr int64_t kBnMaxColumns = 4096;

bool bn_columns(const BnGeom& g) { return g.S < kBnLaneMinS; }

// Channels per block for a pass over `tensors` arrays of `elem` bytes.
int64_t bn_block(const BnGeom& g, int64_t tensors, int64_t elem) {
  const int64_t per_channel = std::max<int64_t>(g.count(), 1) * tensors * elem;
  int64_t block = std::max<int64_t>(kBnBlockBytes / per_channel, 1);
  if (bn_columns(g)) block = std::min(block, std::max<int64_t>(kBnMaxColumns / g.S, 1));
  return std::min(block, std::max<int64_t>(g.C, 1));
}

// Four doubles as one value (GCC/Clang vector extensions): the lanes below
// stay in registers as these (as arrays, GCC kept them on the stack, and the
// store-to-load latency of every add bounded the loop), and each copy of the
// clones does the same four IEEE operations per vector.
typedef double BnVec __attribute__((vector_size(32)));
constexpr int kBnLanes = 16;  // four BnVec per sum: eight independent add chains

// GCC warns that returning a 32-byte vector without AVX changes the ABI: the
// helpers below live in this file only and are inlined into each clone, so no
// such value crosses a call between differently compiled code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

template <typename T>
inline BnVec bn_load(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    // Element by element: GCC 12 makes this one vcvtps2pd in the avx2 clone,
    // where __builtin_convertvector of a 4-float vector became two 2-value
    // conversions, an insert and a trip of the upper half through the stack.
    return BnVec{static_cast<double>(p[0]), static_cast<double>(p[1]), static_cast<double>(p[2]),
                 static_cast<double>(p[3])};
  } else {
    BnVec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
}

// Eight doubles as one value, for the avx512f copy of the sums only (the
// avx2 and default copies would lower it through the stack). Lane l of the
// 16 is lane l % 8 of the (l / 8)-th value instead of lane l % 4 of the
// (l / 4)-th BnVec: each lane takes the same additions in the same order, so
// the bits are those of the 4-wide loops. No FMA either: the file is compiled
// with fp-contract off (the pragma at its top), which avx512f would otherwise
// allow.
typedef double BnVec8 __attribute__((vector_size(64)));

template <typename T>
inline BnVec8 bn_load8(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return BnVec8{static_cast<double>(p[0]), static_cast<double>(p[1]), static_cast<double>(p[2]),
                  static_cast<double>(p[3]), static_cast<double>(p[4]), static_cast<double>(p[5]),
                  static_cast<double>(p[6]), static_cast<double>(p[7])};
  } else {
    BnVec8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
}

// Per-channel sums over channels [c0, c1): s1 = sum(u), s2 = sum(u v) with
// u = a - ka[c] and v = b - kb[c] (kSame: b = a, kb = ka, the moments of x;
// for backward a = dy, ka = 0, b = x, kb = mean). In double whatever T is.
// Maps of kBnLaneMinS values or more: each channel keeps kBnLanes lanes
// across the images (folded in lane order once, after the images), the tail
// of each run (S mod kBnLanes values) summed on its own and added per image.
// Software prefetch kBnRunAhead values ahead within a run and of the next
// image's first values (35x35 maps: 3.0 -> 2.0 ms forward, 4.3 -> 3.0 ms
// backward at (64, 64, 35, 35), one thread; 1024 ahead was worse backward).
constexpr int64_t kBnRunAhead = 512;

template <bool kSame, typename T>
void bn_lane_sums(const BnGeom& g, const T* a, const T* b, const T* ka, const T* kb, int64_t c0, int64_t c1,
                  double* s1, double* s2, double*) {
  static_assert(kBnLanes == 16, "the loop below is written out for four vectors of four");
  const int64_t body = g.S - g.S % kBnLanes, stride = g.C * g.S;
  // Channel by channel, its images in order: the lanes stay in registers
  // across the images (walked image by image with the lanes kept in memory
  // per (image, channel), the reload and store of eight vectors per run cost
  // as much as the run's own loads on maps of 16 to 64 values).
  for (int64_t c = c0; c < c1; ++c) {
    const double da = ka ? static_cast<double>(ka[c]) : 0.0, db = static_cast<double>(kb[c]);
    const BnVec ua = {da, da, da, da}, ub = {db, db, db, db};
    // Named, not an array: GCC keeps an array of them in memory.
    BnVec p0 = {}, p1 = {}, p2 = {}, p3 = {}, q0 = {}, q1 = {}, q2 = {}, q3 = {};
    double r1 = 0, r2 = 0;
    const T* pa = a + c * g.S;
    const T* pb = b + c * g.S;
    for (int64_t n = 0; n < g.N; ++n, pa += stride, pb += stride) {
      // The next image's run is C S values on: its first lines are fetched
      // while this one is summed, and each run kBnRunAhead values ahead (the
      // prefetchers restart on every run otherwise).
      if (n + 1 < g.N)
        for (int64_t i = 0; i < std::min<int64_t>(g.S, kBnRunAhead); i += 64 / static_cast<int64_t>(sizeof(T))) {
          __builtin_prefetch(pa + stride + i);
          if constexpr (!kSame) __builtin_prefetch(pb + stride + i);
        }
      for (int64_t i = 0; i < body; i += kBnLanes) {
        if (i + kBnRunAhead < g.S) {
          __builtin_prefetch(pa + i + kBnRunAhead);
          if constexpr (!kSame) __builtin_prefetch(pb + i + kBnRunAhead);
        }
        const BnVec u0 = bn_load(pa + i) - ua, u1 = bn_load(pa + i + 4) - ua, u2 = bn_load(pa + i + 8) - ua,
                    u3 = bn_load(pa + i + 12) - ua;
        p0 += u0, p1 += u1, p2 += u2, p3 += u3;
        if constexpr (kSame) {
          q0 += u0 * u0, q1 += u1 * u1, q2 += u2 * u2, q3 += u3 * u3;
        } else {
          q0 += u0 * (bn_load(pb + i) - ub), q1 += u1 * (bn_load(pb + i + 4) - ub);
          q2 += u2 * (bn_load(pb + i + 8) - ub), q3 += u3 * (bn_load(pb + i + 12) - ub);
        }
      }
      double t1 = 0, t2 = 0;
      for (int64_t i = body; i < g.S; ++i) {
        const double u = static_cast<double>(pa[i]) - da, w = static_cast<double>(pb[i]) - db;
        t1 += u, t2 += u * w;
      }
      r1 += t1, r2 += t2;
    }
    double lanes[2 * kBnLanes];
    std::memcpy(lanes, &p0, 32), std::memcpy(lanes + 4, &p1, 32), std::memcpy(lanes + 8, &p2, 32),
        std::memcpy(lanes + 12, &p3, 32);
    std::memcpy(lanes + 16, &q0, 32), std::memcpy(lanes + 20, &q1, 32), std::memcpy(lanes + 24, &q2, 32),
        std::memcpy(lanes + 28, &q3, 32);
    for (int l = 0; l < kBnLanes; ++l) r1 += lanes[l], r2 += lanes[kBnLanes + l];
    s1[c - c0] = r1, s2[c - c0] = r2;
  }
}

// Maps of fewer values: one accumulator per (channel, position) of the
// block, summed over the images in order, then each channel's S positions
// folded in order. The block's positions are taken 16 at a time with their
// accumulators in registers across all the images (a column of loads with a
// stride of C S), the last few one by one. kMoments: u = a - ka, v = u (the
// forward); else u = a, v = b - kb (backward: ka is null). cols: 2 (c1 - c0) S
// doubles of scratch.
constexpr int64_t kBnColumnAhead = 64;

// The end of bn_column_sums and bn_column_sums8: positions [j, L) of the
// block one at a time, then each channel's S accumulators folded in order.
template <bool kMoments, typename T>
void bn_column_finish(const BnGeom& g, const T* a0, const T* b0, const T* k, int64_t c0, int64_t j, int64_t L,
                      double* acc1, double* acc2, double* s1, double* s2) {
  const int64_t stride = g.C * g.S;
  for (; j < L; ++j) {
    const double kj = static_cast<double>(k[c0 + j / g.S]);
    double t1 = 0, t2 = 0;
    for (int64_t n = 0; n < g.N; ++n) {
      const double va = static_cast<double>(a0[n * stride + j]);
      if constexpr (kMoments) {
        const double u = va - kj;
        t1 += u, t2 += u * u;
      } else {
        t1 += va, t2 += va * (static_cast<double>(b0[n * stride + j]) - kj);
      }
    }
    acc1[j] = t1, acc2[j] = t2;
  }
  for (int64_t c = 0; c < L / g.S; ++c) {
    double t1 = 0, t2 = 0;
    for (int64_t s = 0; s < g.S; ++s) t1 += acc1[c * g.S + s], t2 += acc2[c * g.S + s];
    s1[c] = t1, s2[c] = t2;
  }
}

template <bool kMoments, typename T>
void bn_column_sums(const BnGeom& g, const T* a, const T* b, const T* ka, const T* kb, int64_t c0, int64_t c1,
                    double* s1, double* s2, double* cols) {
  const int64_t nc = c1 - c0, L = nc * g.S, stride = g.C * g.S;
  const T* a0 = a + c0 * g.S;
  const T* b0 = b + c0 * g.S;
  double* acc1 = cols;
  double* acc2 = cols + L;
  const T* k = kMoments ? ka : kb;  // the shift of the values that are shifted
  int64_t j = 0;
  for (; j + 16 <= L; j += 16) {
    double kc[16];
    for (int i = 0; i < 16; ++i) kc[i] = static_cast<double>(k[c0 + (j + i) / g.S]);
    BnVec k0, k1, k2, k3;
    std::memcpy(&k0, kc, 32), std::memcpy(&k1, kc + 4, 32), std::memcpy(&k2, kc + 8, 32),
        std::memcpy(&k3, kc + 12, 32);
    BnVec p0 = {}, p1 = {}, p2 = {}, p3 = {}, q0 = {}, q1 = {}, q2 = {}, q3 = {};
    for (int64_t n = 0; n < g.N; ++n) {
      const T* pa = a0 + n * stride + j;
      // The same images' values kBnColumnAhead columns on: a column of loads
      // strides C S values from image to image, which the hardware
      // prefetchers do not follow.
      __builtin_prefetch(pa + kBnColumnAhead);
      if constexpr (!kMoments) __builtin_prefetch(b0 + n * stride + j + kBnColumnAhead);
      if constexpr (kMoments) {
        const BnVec u0 = bn_load(pa) - k0, u1 = bn_load(pa + 4) - k1, u2 = bn_load(pa + 8) - k2,
                    u3 = bn_load(pa + 12) - k3;
        p0 += u0, p1 += u1, p2 += u2, p3 += u3;
        q0 += u0 * u0, q1 += u1 * u1, q2 += u2 * u2, q3 += u3 * u3;
      } else {
        const T* pb = b0 + n * stride + j;
        const BnVec u0 = bn_load(pa), u1 = bn_load(pa + 4), u2 = bn_load(pa + 8), u3 = bn_load(pa + 12);
        p0 += u0, p1 += u1, p2 += u2, p3 += u3;
        q0 += u0 * (bn_load(pb) - k0), q1 += u1 * (bn_load(pb + 4) - k1);
        q2 += u2 * (bn_load(pb + 8) - k2), q3 += u3 * (bn_load(pb + 12) - k3);
      }
    }
    std::memcpy(acc1 + j, &p0, 32), std::memcpy(acc1 + j + 4, &p1, 32), std::memcpy(acc1 + j + 8, &p2, 32),
        std::memcpy(acc1 + j + 12, &p3, 32);
    std::memcpy(acc2 + j, &q0, 32), std::memcpy(acc2 + j + 4, &q1, 32), std::memcpy(acc2 + j + 8, &q2, 32),
        std::memcpy(acc2 + j + 12, &q3, 32);
  }
  bn_column_finish<kMoments>(g, a0, b0, k, c0, j, L, acc1, acc2, s1, s2);
}

// bn_lane_sums and bn_column_sums with BnVec8 (the avx512f copy).
template <bool kSame, typename T>
void bn_lane_sums8(const BnGeom& g, const T* a, const T* b, const T* ka, const T* kb, int64_t c0, int64_t c1,
                   double* s1, double* s2) {
  const int64_t body = g.S - g.S % kBnLanes, stride = g.C * g.S;
  for (int64_t c = c0; c < c1; ++c) {
    const double da = ka ? static_cast<double>(ka[c]) : 0.0, db = static_cast<double>(kb[c]);
    const BnVec8 ua = {da, da, da, da, da, da, da, da}, ub = {db, db, db, db, db, db, db, db};
    BnVec8 p0 = {}, p1 = {}, q0 = {}, q1 = {};
    double r1 = 0, r2 = 0;
    const T* pa = a + c * g.S;
    const T* pb = b + c * g.S;
    for (int64_t n = 0; n < g.N; ++n, pa += stride, pb += stride) {
      if (n + 1 < g.N)
        for (int64_t i = 0; i < std::min<int64_t>(g.S, kBnRunAhead); i += 64 / static_cast<int64_t>(sizeof(T))) {
          __builtin_prefetch(pa + stride + i);
          if constexpr (!kSame) __builtin_prefetch(pb + stride + i);
        }
      for (int64_t i = 0; i < body; i += kBnLanes) {
        if (i + kBnRunAhead < g.S) {
          __builtin_prefetch(pa + i + kBnRunAhead);
          if constexpr (!kSame) __builtin_prefetch(pb + i + kBnRunAhead);
        }
        const BnVec8 u0 = bn_load8(pa + i) - ua, u1 = bn_load8(pa + i + 8) - ua;
        p0 += u0, p1 += u1;
        if constexpr (kSame) {
          q0 += u0 * u0, q1 += u1 * u1;
        } else {
          q0 += u0 * (bn_load8(pb + i) - ub), q1 += u1 * (bn_load8(pb + i + 8) - ub);
        }
      }
      double t1 = 0, t2 = 0;
      for (int64_t i = body; i < g.S; ++i) {
        const double u = static_cast<double>(pa[i]) - da, w = static_cast<double>(pb[i]) - db;
        t1 += u, t2 += u * w;
      }
      r1 += t1, r2 += t2;
    }
    double lanes[2 * kBnLanes];
    std::memcpy(lanes, &p0, 64), std::memcpy(lanes + 8, &p1, 64);
    std::memcpy(lanes + 16, &q0, 64), std::memcpy(lanes + 24, &q1, 64);
    for (int l = 0; l < kBnLanes; ++l) r1 += lanes[l], r2 += lanes[kBnLanes + l];
    s1[c - c0] = r1, s2[c - c0] = r2;
  }
}

template <bool kMoments, typename T>
void bn_column_sums8(const BnGeom& g, const T* a, const T* b, const T* ka, const T* kb, int64_t c0, int64_t c1,
                     double* s1, double* s2, double* cols) {
  const int64_t nc = c1 - c0, L = nc * g.S, stride = g.C * g.S;
  const T* a0 = a + c0 * g.S;
  const T* b0 = b + c0 * g.S;
  double* acc1 = cols;
  double* acc2 = cols + L;
  const T* k = kMoments ? ka : kb;
  int64_t j = 0;
  for (; j + 16 <= L; j += 16) {
    double kc[16];
    for (int i = 0; i < 16; ++i) kc[i] = static_cast<double>(k[c0 + (j + i) / g.S]);
    BnVec8 k0, k1;
    std::memcpy(&k0, kc, 64), std::memcpy(&k1, kc + 8, 64);
    BnVec8 p0 = {}, p1 = {}, q0 = {}, q1 = {};
    for (int64_t n = 0; n < g.N; ++n) {
      const T* pa = a0 + n * stride + j;
      __builtin_prefetch(pa + kBnColumnAhead);
      if constexpr (!kMoments) __builtin_prefetch(b0 + n * stride + j + kBnColumnAhead);
      if constexpr (kMoments) {
        const BnVec8 u0 = bn_load8(pa) - k0, u1 = bn_load8(pa + 8) - k1;
        p0 += u0, p1 += u1;
        q0 += u0 * u0, q1 += u1 * u1;
      } else {
        const T* pb = b0 + n * stride + j;
        const BnVec8 u0 = bn_load8(pa), u1 = bn_load8(pa + 8);
        p0 += u0, p1 += u1;
        q0 += u0 * (bn_load8(pb) - k0), q1 += u1 * (bn_load8(pb + 8) - k1);
      }
    }
    std::memcpy(acc1 + j, &p0, 64), std::memcpy(acc1 + j + 8, &p1, 64);
    std::memcpy(acc2 + j, &q0, 64), std::memcpy(acc2 + j + 8, &q1, 64);
  }
  bn_column_finish<kMoments>(g, a0, b0, k, c0, j, L, acc1, acc2, s1, s2);
}

// y = x scale[c] + shift[c] over channels [c0, c1); scale and shift are
// indexed from c0. Small maps: the coefficients spread per (channel,
// position) once (cols: 2 (c1 - c0) S of scratch), then each image's block
// is one contiguous loop.
template <typename T>
void bn_apply_affine(const BnGeom& g, const T* x, const T* scale, const T* shift, int64_t c0, int64_t c1, T* y,
                     T* cols) {
  if (bn_columns(g)) {
    const int64_t L = (c1 - c0) * g.S;
    T* __restrict sc = cols;
    T* __restrict sh = cols + L;
    for (int64_t j = 0; j < L; ++j) sc[j] = scale[j / g.S], sh[j] = shift[j / g.S];
    for (int64_t n = 0; n < g.N; ++n) {
      const T* __restrict p = x + (n * g.C + c0) * g.S;
      T* __restrict q = y + (n * g.C + c0) * g.S;
      for (int64_t j = 0; j < L; ++j) q[j] = p[j] * sc[j] + sh[j];
    }
    return;
  }
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = c0; c < c1; ++c) {
      const T* __restrict p = x + (n * g.C + c) * g.S;
      T* __restrict q = y + (n * g.C + c) * g.S;
      const T sc = scale[c - c0], sh = shift[c - c0];
      for (int64_t i = 0; i < g.S; ++i) q[i] = p[i] * sc + sh;
    }
}

// dx = k (dy - a - (x - mean) c) (norm_backward_at) over channels [c0, c1);
// bc indexed from c0; cols: 4 (c1 - c0) S of scratch for small maps.
template <typename T>
void bn_apply_backward(const BnGeom& g, const T* x, const T* dy, const NormBackward<T>* bc, int64_t c0, int64_t c1,
                       T* dx, T* cols) {
  if (bn_columns(g)) {
    const int64_t L = (c1 - c0) * g.S;
    T* __restrict k = cols;
    T* __restrict a = cols + L;
    T* __restrict c = cols + 2 * L;
    T* __restrict m = cols + 3 * L;
    for (int64_t j = 0; j < L; ++j) {
      const NormBackward<T>& b = bc[j / g.S];
      k[j] = b.k, a[j] = b.a, c[j] = b.c, m[j] = b.mean;
    }
    for (int64_t n = 0; n < g.N; ++n) {
      const T* __restrict p = x + (n * g.C + c0) * g.S;
      const T* __restrict d = dy + (n * g.C + c0) * g.S;
      T* __restrict o = dx + (n * g.C + c0) * g.S;
      // norm_backward_at's expression, spelt out on the spread coefficients.
      for (int64_t j = 0; j < L; ++j) o[j] = k[j] * (d[j] - a[j] - (p[j] - m[j]) * c[j]);
    }
    return;
  }
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t off = (n * g.C + c) * g.S;
      const NormBackward<T> b = bc[c - c0];
      const T* __restrict p = x + off;
      const T* __restrict d = dy + off;
      T* __restrict o = dx + off;
      for (int64_t i = 0; i < g.S; ++i) o[i] = norm_backward_at(b, p[i], d[i]);
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
                                                  int64_t c0, int64_t c1, double* s1, double* s2, double* scratch) { \
    const bool same = a == b && ka == kb;                                                                            \
    if (bn_columns(g) && same)                                                                                       \
      bn_column_sums<true, T>(g, a, b, ka, kb, c0, c1, s1, s2, scratch);                                             \
    else if (bn_columns(g))                                                                                          \
      bn_column_sums<false, T>(g, a, b, ka, kb, c0, c1, s1, s2, scratch);                                            \
    else if (same)                                                                                                   \
      bn_lane_sums<true, T>(g, a, b, ka, kb, c0, c1, s1, s2, scratch);                                               \
    else                                                                                                             \
      bn_lane_sums<false, T>(g, a, b, ka, kb, c0, c1, s1, s2, scratch);                                              \
  }                                                                                                                  \
  NEURN_NORM_CLONES void bn_apply_affine_##suffix(const BnGeom& g, const T* x, const T* scale, const T* shift,        \
                                                  int64_t c0, int64_t c1, T* y, T* cols) {                           \
    bn_apply_affine<T>(g, x, scale, shift, c0, c1, y, cols);                                                         \
  }                                                                                                                  \
  NEURN_NORM_CLONES void bn_apply_backward_##suffix(const BnGeom& g, const T* x, const T* dy,                        \
                                                    const NormBackward<T>* bc, int64_t c0, int64_t c1, T* dx,        \
                                                    T* cols) {                                                       \
    bn_apply_backward<T>(g, x, dy, bc, c0, c1, dx, cols);                                                            \
  }
NEURN_BN_CLONE(float, f32)
NEURN_BN_CLONE(double, f64)
#undef NEURN_BN_CLONE

// The sums' avx512f copy (BnVec8), picked at run time where the CPU has it.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NEURN_BN_SUMS8(T, suffix)                                                                               \
  __attribute__((target("avx512f"), flatten)) void bn_channel_sums8_##suffix(                                    \
      const BnGeom& g, const T* a, const T* b, const T* ka, const T* kb, int64_t c0, int64_t c1, double* s1,     \
      double* s2, double* scratch) {                                                                             \
    const bool same = a == b && ka == kb;                                                                        \
    if (bn_columns(g) && same)                                                                                   \
      bn_column_sums8<true, T>(g, a, b, ka, kb, c0, c1, s1, s2, scratch);                                        \
    else if (bn_columns(g))                                                                                      \
      bn_column_sums8<false, T>(g, a, b, ka, kb, c0, c1, s1, s2, scratch);                                       \
    else if (same)                                                                                               \
      bn_lane_sums8<true, T>(g, a, b, ka, kb, c0, c1, s1, s2);                                                   \
    else                                                                                                         \
      bn_lane_sums8<false, T>(g, a, b, ka, kb, c0, c1, s1, s2);                                                  \
  }
NEURN_BN_SUMS8(float, f32)
NEURN_BN_SUMS8(double, f64)
#undef NEURN_BN_SUMS8
std::atomic<bool> bn_allow_avx512{true};
bool bn_have_avx512() {
  static const bool have = __builtin_cpu_supports("avx512f");
  return have && bn_allow_avx512.load(std::memory_order_relaxed);
}
#define NEURN_BN_HAVE_SUMS8 1
#endif

template <typename T>
void bn_sums(const BnGeom& g, const T* a, const T* b, const T* ka, const T* kb, int64_t c0, int64_t c1, double* s1,
             double* s2, double* scratch) {
#ifdef NEURN_BN_HAVE_SUMS8
  if (bn_have_avx512()) {
    if constexpr (std::is_same_v<T, float>)
      bn_channel_sums8_f32(g, a, b, ka, kb, c0, c1, s1, s2, scratch);
    else
      bn_channel_sums8_f64(g, a, b, ka, kb, c0, c1, s1, s2, scratch);
    return;
  }
#endif
  if constexpr (std::is_same_v<T, float>)
    bn_channel_sums_f32(g, a, b, ka, kb, c0, c1, s1, s2, scratch);
  else
    bn_channel_sums_f64(g, a, b, ka, kb, c0, c1, s1, s2, scratch);
}

template <typename T>
void bn_affine(const BnGeom& g, const T* x, const T* scale, const T* shift, int64_t c0, int64_t c1, T* y, T* cols) {
  if constexpr (std::is_same_v<T, float>)
    bn_apply_affine_f32(g, x, scale, shift, c0, c1, y, cols);
  else
    bn_apply_affine_f64(g, x, scale, shift, c0, c1, y, cols);
}

// What a task needs for blocks of up to nb channels.
template <typename T>
struct BnScratch {
  std::vector<double> s1, s2, sums;  // per channel; the column accumulators (small maps)
  std::vector<T> coef, cols;         // per channel (scale, shift); the coefficients spread per column
  std::vector<NormBackward<T>> bc;   // per channel (backward)
  BnScratch(const BnGeom& g, int64_t nb, int64_t coef_per_channel)
      : s1(static_cast<size_t>(nb)),
        s2(static_cast<size_t>(nb)),
        sums(static_cast<size_t>(bn_columns(g) ? 2 * nb * g.S : 0)),
        coef(static_cast<size_t>(coef_per_channel * nb)),
        cols(static_cast<size_t>(bn_columns(g) ? 4 * nb * g.S : 0)),
        bc(static_cast<size_t>(coef_per_channel == 0 ? nb : 0)) {}
};

// Whole channels per task, split by parallel_for; each task walks its
// channels in blocks of `block` (bn_block): f(c0, c1, scratch) per block.
// coef_per_channel: the T coefficients a block needs per channel (the
// forward's scale and shift); 0 for backward, which keeps NormBackward's.
template <typename T, typename F>
void bn_for_blocks(const BnGeom& g, int64_t block, int64_t coef_per_channel, int64_t cost_per_elem, F&& f) {
  cpu::parallel_for(g.C, std::max<int64_t>(g.count(), 1) * cost_per_elem, [&](int64_t t0, int64_t t1) {
    BnScratch<T> s(g, std::min(block, t1 - t0), coef_per_channel);
    for (int64_t c = t0; c < t1; c += block) f(c, std::min(t1, c + block), s);
  });
}

// Training statistics per channel, the running-statistics update, and y.
// mean/invstd (C) are saved for backward. The moments come from one pass over
// x, shifted by the channel's first value K: mean = K + sum(x - K) / M,
// M var = sum((x - K)^2) - sum(x - K)^2 / M. With K a sample of the channel,
// |mean - K| is of the order of the spread, so the subtraction loses no more
// than a digit or so of the double sums (unshifted, E[x^2] - E[x]^2 would
// cancel badly for a channel whose mean is large against its spread). y is
// written block by block right after the block's sums, while its x is in L2.
template <typename T>
void bn_train_forward(const BnGeom& g, const T* x, const T* w, const T* b, T* rm, T* rv, double momentum, double eps,
                      T* y, T* mean_out, T* invstd_out) {
  const double M = static_cast<double>(g.count());
  std::vector<T> K(static_cast<size_t>(g.C));
  for (int64_t c = 0; c < g.C; ++c) K[static_cast<size_t>(c)] = x[c * g.S];
  bn_for_blocks<T>(g, bn_block(g, 1, sizeof(T)), 2, 3, [&](int64_t c0, int64_t c1, BnScratch<T>& s) {
    const int64_t nc = c1 - c0;
    T* scale = s.coef.data();
    T* shift = scale + nc;
    bn_sums<T>(g, x, x, K.data(), K.data(), c0, c1, s.s1.data(), s.s2.data(), s.sums.data());
    for (int64_t c = c0; c < c1; ++c) {
      const double d1 = s.s1[static_cast<size_t>(c - c0)], d2 = s.s2[static_cast<size_t>(c - c0)];
      const double mean = static_cast<double>(K[static_cast<size_t>(c)]) + d1 / M;
      const double sq = std::max(d2 - d1 * d1 / M, 0.0);  // M var
      const double invstd = norm_invstd(sq / M, eps);
      if (rm) rm[c] = static_cast<T>(running_update(rm[c], mean, momentum));
      if (rv) rv[c] = static_cast<T>(running_update(rv[c], sq / (M - 1), momentum));  // unbiased
      mean_out[c] = static_cast<T>(mean), invstd_out[c] = static_cast<T>(invstd);
      const NormAffine<double> aff = norm_affine(mean, invstd, w ? w[c] : 1.0, b ? b[c] : 0.0);
      scale[c - c0] = static_cast<T>(aff.scale);
      shift[c - c0] = static_cast<T>(aff.shift);
    }
    bn_affine<T>(g, x, scale, shift, c0, c1, y, s.cols.data());
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
  bn_for_blocks<T>(g, bn_block(g, 1, sizeof(T)), 2, 1, [&](int64_t c0, int64_t c1, BnScratch<T>& s) {
    bn_affine<T>(g, x, scale.data() + c0, shift.data() + c0, c0, c1, y, s.cols.data());
  });
}

// training: the batch statistics depend on x, so dx has the two extra terms
//   dx = w invstd / M (M dy - sum(dy) - xhat sum(dy xhat));
// eval: dx = w invstd dy. dw = sum(dy xhat), db = sum(dy). One pass for the
// two sums and one to write dx, block by block (the block's x and dy are
// still in L2 for the second).
template <typename T>
void bn_backward(const BnGeom& g, bool training, const T* x, const T* dy, const T* w, const T* mean, const T* invstd,
                 T* dx, T* dw, T* db) {
  const double M = static_cast<double>(g.count());
  bn_for_blocks<T>(g, bn_block(g, 2, sizeof(T)), 0, 4, [&](int64_t c0, int64_t c1, BnScratch<T>& s) {
    NormBackward<T>* bc = s.bc.data();
    bn_sums<T>(g, dy, x, nullptr, mean, c0, c1, s.s1.data(), s.s2.data(), s.sums.data());
    for (int64_t c = c0; c < c1; ++c) {
      const size_t i = static_cast<size_t>(c - c0);
      const double mu = mean[c], is = invstd[c];
      const double sx = s.s2[i] * is;  // sum(dy xhat)
      if (dw) dw[c] = static_cast<T>(sx);
      if (db) db[c] = static_cast<T>(s.s1[i]);
      const NormBackward<double> bd = norm_backward_coeffs(M, s.s1[i], sx, w ? w[c] : 1.0, mu, is, training);
      bc[i] = {static_cast<T>(bd.k), static_cast<T>(bd.a), static_cast<T>(bd.c), static_cast<T>(bd.mean)};
    }
    if (!dx) return;
    if constexpr (std::is_same_v<T, float>)
      bn_apply_backward_f32(g, x, dy, bc, c0, c1, dx, s.cols.data());
    else
      bn_apply_backward_f64(g, x, dy, bc, c0, c1, dx, s.cols.data());
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

bool bn_cpu_use_avx512(bool allow) {
#ifdef NEURN_BN_HAVE_SUMS8
  const bool was = bn_allow_avx512.exchange(allow);
  return was && __builtin_cpu_supports("avx512f");
#else
  (void)allow;
  return false;
#endif
}

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
