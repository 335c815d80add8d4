// Pooling and upsampling: max/avg pooling with PyTorch's window rules,
// adaptive and global average pooling, nearest and bilinear upsampling.
// The front functions check, shape and call the kernel tables
// (pool_kernels.h); the CPU kernels below run one (n, c) plane per task, the
// CUDA ones are in framework/cuda/pool.cu.
#include "framework/ops/pool.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <memory>
#include <vector>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/conv.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/pool_kernels.h"
#include "framework/ops/pool_math.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape_ops.h"
#include "framework/ops/upsample_math.h"

namespace neurn {

namespace {

void check_4d(const Tensor& x, const char* op) {
  NEURN_CHECK(x.defined(), op, ": undefined input");
  NEURN_CHECK(x.dim() == 4, op, ": input must be 4-D (N, C, H, W), got ", shape_str(x.shape()));
  NEURN_CHECK(is_floating(x.dtype()), op, ": input must be floating point, got ", dtype_name(x.dtype()));
}

// Resolves stride 0 to the kernel and checks the window against the input.
Pool2dOptions resolve(const Tensor& x, Pool2dOptions o, const char* op) {
  check_4d(x, op);
  for (int i = 0; i < 2; ++i) {
    if (o.stride[i] == 0) o.stride[i] = o.kernel[i];
    NEURN_CHECK(o.kernel[i] >= 1 && o.stride[i] >= 1 && o.padding[i] >= 0, op,
                ": kernel and stride must be >= 1 and padding >= 0, got kernel (", o.kernel[0], ", ", o.kernel[1],
                "), stride (", o.stride[0], ", ", o.stride[1], "), padding (", o.padding[0], ", ", o.padding[1], ")");
    // A larger pad would make windows that see only padding.
    NEURN_CHECK(2 * o.padding[i] <= o.kernel[i], op, ": padding (", o.padding[0], ", ", o.padding[1],
                ") must be at most half the kernel (", o.kernel[0], ", ", o.kernel[1], ")");
    int64_t in = x.size(2 + i);
    NEURN_CHECK(o.kernel[i] <= in + 2 * o.padding[i], op, ": kernel ", o.kernel[0], "x", o.kernel[1],
                " is larger than the padded input ", x.size(2) + 2 * o.padding[0], "x", x.size(3) + 2 * o.padding[1],
                " (input ", shape_str(x.shape()), ")");
  }
  return o;
}

PoolGeometry pool_geom(const Tensor& x, const Pool2dOptions& o) {
  PoolGeometry g;
  g.planes = x.size(0) * x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.kh = o.kernel[0], g.kw = o.kernel[1], g.sh = o.stride[0], g.sw = o.stride[1];
  g.ph = o.padding[0], g.pw = o.padding[1];
  g.Ho = conv_out_size(g.H, g.kh, g.sh, g.ph, 1, o.ceil_mode);
  g.Wo = conv_out_size(g.W, g.kw, g.sw, g.pw, 1, o.ceil_mode);
  return g;
}

// pool_beats with & and | instead of && and ||: the same truth table without
// branches, so the row loops vectorise (the plain per-window loops keep the
// branches: selects measured no faster there).
template <typename T>
inline bool beats_select(T v, T best) {
  return (best == best) & ((v > best) | (v != v));
}

// ---- the vectorised rows -------------------------------------------------------
// Most windows of a row lie inside the input along w (all but the first and
// last few when there is padding or a ceil-mode overhang). For those, the
// loops below run tap by tap with the output columns innermost: every output
// visits its taps in the same row-major order as the plain per-window loop,
// so the results are the same bits, but the innermost loop now runs over
// independent outputs (loads with a fixed stride, compares and selects, or
// adds), which the compiler vectorises. The clipped windows at the ends take
// the per-window loop (pool_span).

// Rows of fewer interior columns than this take the plain loop throughout:
// on the 3x3 to 7x7 maps of deep layers the tap-by-tap passes cost more than
// they save (measured: Inception v3's 7x7 -> 3x3 max pool and 3x3 average).
constexpr int64_t kMinInteriorCols = 8;

// Output columns [begin, end) whose window along w is [ow sw - pw, ow sw - pw + kw)
// inside [0, W): ow sw >= pw and ow sw - pw + kw <= W. Empty when fewer than
// kMinInteriorCols.
OutRange interior_cols(const PoolGeometry& g) {
  const int64_t lo = (g.pw + g.sw - 1) / g.sw;
  const int64_t hi = g.W + g.pw - g.kw >= 0 ? std::min(g.Wo, (g.W + g.pw - g.kw) / g.sw + 1) : 0;
  if (hi - lo < kMinInteriorCols) return {0, 0};
  return {lo, hi};
}

// A compile-time stride (1 or 2, the backbones' strides) lets the loads be
// contiguous or de-interleaved; 0 reads the stride at run time.
template <int kS>
inline int64_t col_stride(const PoolGeometry& g) {
  return kS > 0 ? kS : g.sw;
}

// Max over the window rows [h0, h1) of output columns [c0, c1): best and
// arg (the flat index in the plane, int32 so it packs with float lanes) of
// each column, starting from the window's first element as the plain loop does.
template <typename T, int kS>
void max_pool_interior(const PoolGeometry& g, const T* xp, int64_t h0, int64_t h1, int64_t c0, int64_t c1, T* best,
                       int32_t* arg) {
  const int64_t s = col_stride<kS>(g), n = c1 - c0;
  const int64_t first = h0 * g.W + c0 * s - g.pw;  // the first tap of column c0
  for (int64_t i = 0; i < n; ++i) best[i] = xp[first + i * s], arg[i] = static_cast<int32_t>(first + i * s);
  for (int64_t h = h0; h < h1; ++h)
    for (int64_t j = 0; j < g.kw; ++j) {
      if (h == h0 && j == 0) continue;
      const int64_t base = h * g.W + c0 * s - g.pw + j;
      const T* __restrict r = xp + base;
      T* __restrict bp = best;
      int32_t* __restrict ap = arg;
      for (int64_t i = 0; i < n; ++i) {
        const T v = r[i * s], b = bp[i];
        const bool take = beats_select(v, b);
        bp[i] = take ? v : b;
        ap[i] = take ? static_cast<int32_t>(base + i * s) : ap[i];
      }
    }
}

// Sum over the window rows [h0, h1) of output columns [c0, c1), taps in
// row-major order from 0 (as the plain loop adds them).
template <typename T, int kS>
void avg_pool_interior(const PoolGeometry& g, const T* xp, int64_t h0, int64_t h1, int64_t c0, int64_t c1, T* acc) {
  const int64_t s = col_stride<kS>(g), n = c1 - c0;
  for (int64_t i = 0; i < n; ++i) acc[i] = T(0);
  for (int64_t h = h0; h < h1; ++h)
    for (int64_t j = 0; j < g.kw; ++j) {
      const T* __restrict r = xp + h * g.W + c0 * s - g.pw + j;
      T* __restrict ap = acc;
      for (int64_t i = 0; i < n; ++i) ap[i] += r[i * s];
    }
}

// ---- max pooling ------------------------------------------------------------

// One window by the plain loop: its maximum and the flat index of its first maximum.
template <typename T>
inline void max_window(const PoolGeometry& g, const T* xp, const PoolSpan& sh, int64_t ow, T& best, int64_t& best_i) {
  const PoolSpan sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
  best_i = sh.begin * g.W + sw.begin;
  best = xp[best_i];
  for (int64_t h = sh.begin; h < sh.end; ++h)
    for (int64_t w = sw.begin; w < sw.end; ++w) {
      T v = xp[h * g.W + w];
      if (pool_beats(v, best)) best = v, best_i = h * g.W + w;
    }
}

// 2x2 windows with stride 2 inside the input (VGG, the digits ConvNet): one
// pass per output row with selects instead of branches (random data would
// mispredict half of them), faster here than the tap-by-tap passes; a NaN,
// never seen in practice, takes the general rule.
//
// float32 with planes of int32 indices: eight outputs at a time as GCC vector
// values (GCC 12 vectorises neither the loop below, whose NaN test is a
// branch, nor its select form: "no vectype" for the mask), the two input
// rows' 16 values de-interleaved into the windows' four taps, and the same
// rule as the plain loop (beats_select, pool_beats' truth table) tap by tap
// in row-major order: the same values and first-maximum indices, NaNs and
// ties included. Returns the first output column it did not write.
typedef float PoolF8 __attribute__((vector_size(32)));
typedef int32_t PoolI8 __attribute__((vector_size(32)));

// These 32-byte values never cross a call: the helpers are inlined into each
// clone (flatten), so GCC's warning that returning one without AVX changes
// the ABI does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

inline PoolF8 pool_load8(const float* p) {
  PoolF8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// One step: the windows of outputs [ow, ow + 8) from 16 values of each row.
inline void max_pool_2x2_step8(const float* p0, const float* p1, int32_t col0, int32_t base0, int32_t base1,
                               float* yo, int32_t* io) {
  const PoolI8 even = {0, 2, 4, 6, 8, 10, 12, 14};
  const PoolF8 l0 = pool_load8(p0), h0 = pool_load8(p0 + 8), l1 = pool_load8(p1), h1 = pool_load8(p1 + 8);
  const PoolF8 a = __builtin_shufflevector(l0, h0, 0, 2, 4, 6, 8, 10, 12, 14);
  const PoolF8 b = __builtin_shufflevector(l0, h0, 1, 3, 5, 7, 9, 11, 13, 15);
  const PoolF8 c = __builtin_shufflevector(l1, h1, 0, 2, 4, 6, 8, 10, 12, 14);
  const PoolF8 d = __builtin_shufflevector(l1, h1, 1, 3, 5, 7, 9, 11, 13, 15);
  const PoolI8 col = even + col0;
  PoolF8 best = a;
  PoolI8 bi = col + base0;
  // beats_select(v, best) lane by lane: -1 where v takes over.
  PoolI8 t = (best == best) & ((b > best) | (b != b));
  bi = t ? col + (base0 + 1) : bi, best = t ? b : best;
  t = (best == best) & ((c > best) | (c != c));
  bi = t ? col + base1 : bi, best = t ? c : best;
  t = (best == best) & ((d > best) | (d != d));
  bi = t ? col + (base1 + 1) : bi, best = t ? d : best;
  std::memcpy(yo, &best, sizeof best);
  std::memcpy(io, &bi, sizeof bi);
}

// A row of outputs, eight at a time; the last few through padded copies (the
// scalar loop, whose selects GCC turns into branches, cost more there than
// the vectors: 28x28 maps leave 6 of every 14 outputs).
inline void max_pool_2x2_row8(const float* r0, const float* r1, int64_t Wo, int32_t base0, int32_t base1, float* yr,
                              int64_t* ir) {
  float yo[8];
  int32_t io[8];
  for (int64_t ow = 0; ow < Wo; ow += 8) {
    const int64_t n = std::min<int64_t>(8, Wo - ow);
    if (n == 8) {
      max_pool_2x2_step8(r0 + 2 * ow, r1 + 2 * ow, static_cast<int32_t>(2 * ow), base0, base1, yo, io);
    } else {
      float t0[16] = {}, t1[16] = {};
      std::memcpy(t0, r0 + 2 * ow, static_cast<size_t>(2 * n) * sizeof(float));
      std::memcpy(t1, r1 + 2 * ow, static_cast<size_t>(2 * n) * sizeof(float));
      max_pool_2x2_step8(t0, t1, static_cast<int32_t>(2 * ow), base0, base1, yo, io);
    }
    for (int64_t k = 0; k < n; ++k) yr[ow + k] = yo[k];
    if (ir)
      for (int64_t k = 0; k < n; ++k) ir[ow + k] = io[k];
  }
}

template <typename T>
void max_pool_2x2_planes(const PoolGeometry& g, const T* x, T* y, int64_t* idx, int64_t p0, int64_t p1) {
  const int64_t HW = g.H * g.W, P = g.Ho * g.Wo;
  for (int64_t plane = p0; plane < p1; ++plane) {
    const T* xp = x + plane * HW;
    T* yp = y + plane * P;
    int64_t* ip = idx ? idx + plane * P : nullptr;
    for (int64_t oh = 0; oh < g.Ho; ++oh) {
      const T* r0 = xp + 2 * oh * g.W;
      const T* r1 = r0 + g.W;
      const int64_t base0 = 2 * oh * g.W, base1 = base0 + g.W;
      if constexpr (std::is_same_v<T, float>) {
        if (HW <= INT32_MAX) {
          max_pool_2x2_row8(r0, r1, g.Wo, static_cast<int32_t>(base0), static_cast<int32_t>(base1), yp + oh * g.Wo,
                            ip ? ip + oh * g.Wo : nullptr);
          continue;
        }
      }
      for (int64_t ow = 0; ow < g.Wo; ++ow) {
        const int64_t i = 2 * ow;
        const T a = r0[i], b = r0[i + 1], c = r1[i], d = r1[i + 1];
        T best = a;
        int64_t bi = base0 + i;
        if (std::isnan(a) | std::isnan(b) | std::isnan(c) | std::isnan(d)) {
          const T v[4] = {a, b, c, d};
          const int64_t at[4] = {base0 + i, base0 + i + 1, base1 + i, base1 + i + 1};
          for (int k = 1; k < 4; ++k)
            if (pool_beats(v[k], best)) best = v[k], bi = at[k];
        } else {
          bi = b > best ? base0 + i + 1 : bi, best = b > best ? b : best;
          bi = c > best ? base1 + i : bi, best = c > best ? c : best;
          bi = d > best ? base1 + i + 1 : bi, best = d > best ? d : best;
        }
        yp[oh * g.Wo + ow] = best;
        if (ip) ip[oh * g.Wo + ow] = bi;
      }
    }
  }
}

// Planes [p0, p1): x (planes, H, W) -> y (planes, Ho, Wo), idx (planes, Ho, Wo) or null.
template <typename T, int kS>
void max_pool_planes(const PoolGeometry& g, const T* x, T* y, int64_t* idx, int64_t p0, int64_t p1) {
  const int64_t HW = g.H * g.W, P = g.Ho * g.Wo;
  // The interior loop keeps indices in int32; larger planes take the plain loop.
  const OutRange in = HW <= INT32_MAX ? interior_cols(g) : OutRange{0, 0};
  if (in.end == in.begin) {  // no row loops: the plain loop over every window
    for (int64_t plane = p0; plane < p1; ++plane) {
      const T* xp = x + plane * HW;
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const PoolSpan sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
          int64_t best_i = sh.begin * g.W + sw.begin;
          T best = xp[best_i];
          for (int64_t h = sh.begin; h < sh.end; ++h)
            for (int64_t w = sw.begin; w < sw.end; ++w) {
              T v = xp[h * g.W + w];
              if (pool_beats(v, best)) best = v, best_i = h * g.W + w;
            }
          y[plane * P + oh * g.Wo + ow] = best;
          if (idx) idx[plane * P + oh * g.Wo + ow] = best_i;
        }
      }
    }
    return;
  }
  std::vector<T> best(static_cast<size_t>(in.end - in.begin));
  std::vector<int32_t> arg(best.size());
  for (int64_t plane = p0; plane < p1; ++plane) {
    const T* xp = x + plane * HW;
    T* yp = y + plane * P;
    int64_t* ip = idx ? idx + plane * P : nullptr;
    for (int64_t oh = 0; oh < g.Ho; ++oh) {
      const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph);
      T* yr = yp + oh * g.Wo;
      int64_t* ir = ip ? ip + oh * g.Wo : nullptr;
      auto plain = [&](int64_t ow) {
        T b;
        int64_t bi;
        max_window(g, xp, sh, ow, b, bi);
        yr[ow] = b;
        if (ir) ir[ow] = bi;
      };
      for (int64_t ow = 0; ow < in.begin; ++ow) plain(ow);
      if (in.end > in.begin) {
        max_pool_interior<T, kS>(g, xp, sh.begin, sh.end, in.begin, in.end, best.data(), arg.data());
        for (int64_t ow = in.begin; ow < in.end; ++ow) yr[ow] = best[static_cast<size_t>(ow - in.begin)];
        if (ir)
          for (int64_t ow = in.begin; ow < in.end; ++ow) ir[ow] = arg[static_cast<size_t>(ow - in.begin)];
      }
      for (int64_t ow = std::max(in.end, in.begin); ow < g.Wo; ++ow) plain(ow);
    }
  }
}

// ---- small maps: kPlaneLanes planes at once -----------------------------------
// On maps too narrow for the row loops (fewer than kMinInteriorCols interior
// columns: the 3x3 to 16x16 planes of deep layers) each window is a handful
// of taps, and the per-window loop spends its time on the window bounds and
// on branches (the running maximum's, mispredicted on random data). Here a
// block of kPlaneLanes planes is transposed so that each position holds its
// value in every plane of the block, side by side; each output then runs its
// window's taps (from a table built once per call) as operations across the
// planes, which vectorise, and the results are transposed back. Every plane
// sees the operations of the plain loop in the same order (the taps of a
// window in row-major order; for the backward, the outputs that reach an
// input in the scatter's row-major order), so the bits are the plain loop's.
// Lanes past the last plane of a partial block hold zeros and are dropped.
// Max pooling's backward keeps its scatter: gathering with a compare and a
// select per candidate output measured slower than it (16x16 -> 8x8, k3 s2).

constexpr int64_t kPlaneLanes = 16;
// Planes up to this many values go through the lanes (a block's 16 planes
// of x are 36 KB of float32 at 24x24).
constexpr int64_t kLaneMaxHW = 576;

// The windows of one plane as tables of flat positions (int32: small maps).
struct WindowTable {
  std::vector<int32_t> first;      // Ho Wo + 1: output o's taps are tap[first[o], first[o + 1])
  std::vector<int32_t> tap;        // flat input index, row-major within each window
  std::vector<int32_t> div;        // avg_pool's divisor per output (pool_divisor)
  std::vector<int32_t> inv_first;  // H W + 1: input e is in the windows of outputs inv[inv_first[e], inv_first[e + 1])
  std::vector<int32_t> inv;        // ascending, as the scatter reaches e
};

WindowTable window_table(const PoolGeometry& g, bool include_pad) {
  WindowTable t;
  const int64_t P = g.Ho * g.Wo, HW = g.H * g.W;
  t.first.reserve(static_cast<size_t>(P + 1));
  t.div.reserve(static_cast<size_t>(P));
  std::vector<int32_t> count(static_cast<size_t>(HW), 0);
  for (int64_t oh = 0; oh < g.Ho; ++oh) {
    const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph);
    for (int64_t ow = 0; ow < g.Wo; ++ow) {
      const PoolSpan sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
      t.first.push_back(static_cast<int32_t>(t.tap.size()));
      t.div.push_back(static_cast<int32_t>(pool_divisor(sh, sw, include_pad)));
      for (int64_t h = sh.begin; h < sh.end; ++h)
        for (int64_t w = sw.begin; w < sw.end; ++w) {
          t.tap.push_back(static_cast<int32_t>(h * g.W + w));
          ++count[static_cast<size_t>(h * g.W + w)];
        }
    }
  }
  t.first.push_back(static_cast<int32_t>(t.tap.size()));
  t.inv_first.assign(static_cast<size_t>(HW + 1), 0);
  for (size_t e = 0; e < count.size(); ++e) t.inv_first[e + 1] = t.inv_first[e] + count[e];
  t.inv.resize(t.tap.size());
  std::vector<int32_t> fill(t.inv_first.begin(), t.inv_first.end() - 1);
  for (int64_t o = 0; o < P; ++o)  // outputs in row-major order: each input's list ascends
    for (int32_t k = t.first[static_cast<size_t>(o)]; k < t.first[static_cast<size_t>(o + 1)]; ++k)
      t.inv[static_cast<size_t>(fill[static_cast<size_t>(t.tap[static_cast<size_t>(k)])]++)] = static_cast<int32_t>(o);
  return t;
}

bool plane_lanes_fit(const PoolGeometry& g) {
  return g.H * g.W <= kLaneMaxHW && g.planes >= kPlaneLanes && interior_cols(g).end == interior_cols(g).begin;
}

// buf[e][l] = src[l n + e] for the block's nl planes of n values, 0 past them.
template <typename S, typename T>
inline void lanes_in(const S* src, int64_t n, int64_t nl, T* buf) {
  if (nl < kPlaneLanes) std::fill(buf, buf + n * kPlaneLanes, T(0));
  for (int64_t l = 0; l < nl; ++l)
    for (int64_t e = 0; e < n; ++e) buf[e * kPlaneLanes + l] = static_cast<T>(src[l * n + e]);
}

template <typename T, typename D>
inline void lanes_out(const T* buf, int64_t n, int64_t nl, D* dst) {
  for (int64_t l = 0; l < nl; ++l)
    for (int64_t e = 0; e < n; ++e) dst[l * n + e] = static_cast<D>(buf[e * kPlaneLanes + l]);
}

// Planes [p0, p1): max and first-maximum index of every window, as
// max_window (the first tap starts the running maximum, as there).
template <typename T>
void max_pool_lanes(const PoolGeometry& g, const WindowTable& t, const T* x, T* y, int64_t* idx, int64_t p0,
                    int64_t p1) {
  constexpr int64_t L = kPlaneLanes;
  const int64_t HW = g.H * g.W, P = g.Ho * g.Wo;
  std::vector<T> in(static_cast<size_t>(HW * L)), out(static_cast<size_t>(P * L));
  std::vector<int32_t> arg(static_cast<size_t>(P * L));
  for (int64_t p = p0; p < p1; p += L) {
    const int64_t nl = std::min(L, p1 - p);
    lanes_in(x + p * HW, HW, nl, in.data());
    for (int64_t o = 0; o < P; ++o) {
      const int32_t* tp = t.tap.data() + t.first[static_cast<size_t>(o)];
      const int32_t nt = t.first[static_cast<size_t>(o + 1)] - t.first[static_cast<size_t>(o)];
      T* __restrict best = out.data() + o * L;
      int32_t* __restrict bi = arg.data() + o * L;
      const T* __restrict r0 = in.data() + static_cast<int64_t>(tp[0]) * L;
      for (int64_t l = 0; l < L; ++l) best[l] = r0[l], bi[l] = tp[0];
      for (int32_t k = 1; k < nt; ++k) {
        const T* __restrict r = in.data() + static_cast<int64_t>(tp[k]) * L;
        const int32_t at = tp[k];
        for (int64_t l = 0; l < L; ++l) {
          const bool take = beats_select(r[l], best[l]);
          best[l] = take ? r[l] : best[l];
          bi[l] = take ? at : bi[l];
        }
      }
    }
    lanes_out(out.data(), P, nl, y + p * P);
    if (idx) lanes_out(arg.data(), P, nl, idx + p * P);
  }
}

// The window sums (taps in row-major order from 0) over the divisor.
template <typename T>
void avg_pool_lanes(const PoolGeometry& g, const WindowTable& t, const T* x, T* y, int64_t p0, int64_t p1) {
  constexpr int64_t L = kPlaneLanes;
  const int64_t HW = g.H * g.W, P = g.Ho * g.Wo;
  std::vector<T> in(static_cast<size_t>(HW * L)), out(static_cast<size_t>(P * L));
  for (int64_t p = p0; p < p1; p += L) {
    const int64_t nl = std::min(L, p1 - p);
    lanes_in(x + p * HW, HW, nl, in.data());
    for (int64_t o = 0; o < P; ++o) {
      T* __restrict acc = out.data() + o * L;
      for (int64_t l = 0; l < L; ++l) acc[l] = T(0);
      for (int32_t k = t.first[static_cast<size_t>(o)]; k < t.first[static_cast<size_t>(o + 1)]; ++k) {
        const T* __restrict r = in.data() + static_cast<int64_t>(t.tap[static_cast<size_t>(k)]) * L;
        for (int64_t l = 0; l < L; ++l) acc[l] += r[l];
      }
      const int32_t d = t.div[static_cast<size_t>(o)];
      const T dt = static_cast<T>(d);
      if (d > 0)  // one test per output, so the division vectorises
        for (int64_t l = 0; l < L; ++l) acc[l] /= dt;
      else
        for (int64_t l = 0; l < L; ++l) acc[l] = T(0);
    }
    lanes_out(out.data(), P, nl, y + p * P);
  }
}

// Each output's share dy / divisor, gathered by the inputs of its window in
// ascending output order (the scatter's order).
template <typename T>
void avg_pool_backward_lanes(const PoolGeometry& g, const WindowTable& t, const T* dy, T* dx, int64_t p0, int64_t p1) {
  constexpr int64_t L = kPlaneLanes;
  const int64_t HW = g.H * g.W, P = g.Ho * g.Wo;
  std::vector<T> v(static_cast<size_t>(P * L)), out(static_cast<size_t>(HW * L));
  for (int64_t p = p0; p < p1; p += L) {
    const int64_t nl = std::min(L, p1 - p);
    lanes_in(dy + p * P, P, nl, v.data());
    for (int64_t o = 0; o < P; ++o) {
      const int32_t d = t.div[static_cast<size_t>(o)];
      const T dt = static_cast<T>(d);
      T* __restrict vo = v.data() + o * L;
      if (d > 0)
        for (int64_t l = 0; l < L; ++l) vo[l] /= dt;
      else
        for (int64_t l = 0; l < L; ++l) vo[l] = T(0);
    }
    for (int64_t e = 0; e < HW; ++e) {
      T* __restrict acc = out.data() + e * L;
      for (int64_t l = 0; l < L; ++l) acc[l] = T(0);
      for (int32_t k = t.inv_first[static_cast<size_t>(e)]; k < t.inv_first[static_cast<size_t>(e + 1)]; ++k) {
        const T* __restrict r = v.data() + static_cast<int64_t>(t.inv[static_cast<size_t>(k)]) * L;
        for (int64_t l = 0; l < L; ++l) acc[l] += r[l];
      }
    }
    lanes_out(out.data(), HW, nl, dx + p * HW);
  }
}

// One copy of the pooling loops per instruction set, picked at load time
// (GCC's function multiversioning, as the sums of reduce.cpp): they compare,
// select, add and divide, never multiply-add (nothing for AVX-512's FMA to
// contract), so every copy gives the same bits. flatten inlines the helpers
// into each copy.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NEURN_POOL_CLONES __attribute__((target_clones("avx2", "default"), flatten))
#else
#define NEURN_POOL_CLONES
#endif

#define NEURN_POOL_LANES_CLONE(T, suffix)                                                                           \
  NEURN_POOL_CLONES void max_pool_lanes_##suffix(const PoolGeometry& g, const WindowTable& t, const T* x, T* y,     \
                                                 int64_t* idx, int64_t p0, int64_t p1) {                            \
    max_pool_lanes<T>(g, t, x, y, idx, p0, p1);                                                                     \
  }                                                                                                                 \
  NEURN_POOL_CLONES void avg_pool_lanes_##suffix(const PoolGeometry& g, const WindowTable& t, const T* x, T* y,     \
                                                 int64_t p0, int64_t p1) {                                          \
    avg_pool_lanes<T>(g, t, x, y, p0, p1);                                                                          \
  }                                                                                                                 \
  NEURN_POOL_CLONES void avg_pool_backward_lanes_##suffix(const PoolGeometry& g, const WindowTable& t, const T* dy, \
                                                          T* dx, int64_t p0, int64_t p1) {                          \
    avg_pool_backward_lanes<T>(g, t, dy, dx, p0, p1);                                                               \
  }
NEURN_POOL_LANES_CLONE(float, f32)
NEURN_POOL_LANES_CLONE(double, f64)
#undef NEURN_POOL_LANES_CLONE

// Whole blocks of kPlaneLanes planes per task where there are enough of
// them (a task's last block may be partial).
template <typename F>
void for_plane_blocks(int64_t planes, int64_t cost_per_plane, F&& f) {
  const int64_t blocks = (planes + kPlaneLanes - 1) / kPlaneLanes;
  cpu::parallel_for(blocks, cost_per_plane * kPlaneLanes, [&](int64_t b0, int64_t b1) {
    f(b0 * kPlaneLanes, std::min(planes, b1 * kPlaneLanes));
  });
}

template <typename T>
void max_pool_planes_any(const PoolGeometry& g, const T* x, T* y, int64_t* idx, int64_t p0, int64_t p1) {
  if (g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && 2 * g.Ho <= g.H &&
      2 * g.Wo <= g.W)
    return max_pool_2x2_planes<T>(g, x, y, idx, p0, p1);
  if (g.sw == 1) return max_pool_planes<T, 1>(g, x, y, idx, p0, p1);
  if (g.sw == 2) return max_pool_planes<T, 2>(g, x, y, idx, p0, p1);
  max_pool_planes<T, 0>(g, x, y, idx, p0, p1);
}
NEURN_POOL_CLONES void max_pool_planes_f32(const PoolGeometry& g, const float* x, float* y, int64_t* idx, int64_t p0,
                                           int64_t p1) {
  max_pool_planes_any<float>(g, x, y, idx, p0, p1);
}
NEURN_POOL_CLONES void max_pool_planes_f64(const PoolGeometry& g, const double* x, double* y, int64_t* idx, int64_t p0,
                                           int64_t p1) {
  max_pool_planes_any<double>(g, x, y, idx, p0, p1);
}

// idx: flat index inside the input plane of each output's first maximum.
template <typename T>
void max_pool_forward(const PoolGeometry& g, const T* x, T* y, int64_t* idx) {
  if (plane_lanes_fit(g) && !(g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0)) {
    const WindowTable t = window_table(g, false);
    for_plane_blocks(g.planes, g.Ho * g.Wo * g.kh * g.kw, [&](int64_t p0, int64_t p1) {
      if constexpr (std::is_same_v<T, float>)
        max_pool_lanes_f32(g, t, x, y, idx, p0, p1);
      else
        max_pool_lanes_f64(g, t, x, y, idx, p0, p1);
    });
    return;
  }
  cpu::parallel_for(g.planes, g.Ho * g.Wo * g.kh * g.kw, [&](int64_t p0, int64_t p1) {
    if constexpr (std::is_same_v<T, float>)
      max_pool_planes_f32(g, x, y, idx, p0, p1);
    else
      max_pool_planes_f64(g, x, y, idx, p0, p1);
  });
}

// The CPU backward of pooling and upsampling scatters each output into its
// window, one task per plane (no two threads write one input, so it is
// deterministic). The gather of pool_math.h / upsample_math.h, which the
// deterministic CUDA kernels run, gives the same bits (the outputs reach an
// input in the same order: tests/framework/test_pool_gather.cpp) but was
// measured 1.5-7x slower here (it recomputes windows or taps per input
// element; docs/engine-bench.md), so the CPU keeps the scatter.
template <typename T>
void max_pool_backward(const PoolGeometry& g, const T* dy, const int64_t* idx, T* dx) {
  const int64_t HW = g.H * g.W, P = g.Ho * g.Wo;
  cpu::parallel_for(g.planes, HW + P, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      T* dxp = dx + plane * HW;
      std::fill(dxp, dxp + HW, T(0));
      for (int64_t o = 0; o < P; ++o) dxp[idx[plane * P + o]] += dy[plane * P + o];
    }
  });
}

// ---- average pooling ----------------------------------------------------------

// Planes [p0, p1) of x (planes, H, W) -> y (planes, Ho, Wo).
template <typename T, int kS>
void avg_pool_planes(const PoolGeometry& g, bool include_pad, const T* x, T* y, int64_t p0, int64_t p1) {
  const int64_t HW = g.H * g.W, P = g.Ho * g.Wo;
  const OutRange in = interior_cols(g);
  if (in.end == in.begin) {  // no row loops: the plain loop over every window
    for (int64_t plane = p0; plane < p1; ++plane) {
      const T* xp = x + plane * HW;
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const PoolSpan sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
          const int64_t d = pool_divisor(sh, sw, include_pad);
          T a = 0;
          for (int64_t h = sh.begin; h < sh.end; ++h)
            for (int64_t w = sw.begin; w < sw.end; ++w) a += xp[h * g.W + w];
          y[plane * P + oh * g.Wo + ow] = d > 0 ? a / static_cast<T>(d) : T(0);
        }
      }
    }
    return;
  }
  std::vector<T> acc(static_cast<size_t>(in.end - in.begin));
  for (int64_t plane = p0; plane < p1; ++plane) {
    const T* xp = x + plane * HW;
    for (int64_t oh = 0; oh < g.Ho; ++oh) {
      const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph);
      T* yr = y + plane * P + oh * g.Wo;
      auto plain = [&](int64_t ow) {
        const PoolSpan sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
        const int64_t d = pool_divisor(sh, sw, include_pad);
        T a = 0;
        for (int64_t h = sh.begin; h < sh.end; ++h)
          for (int64_t w = sw.begin; w < sw.end; ++w) a += xp[h * g.W + w];
        yr[ow] = d > 0 ? a / static_cast<T>(d) : T(0);
      };
      for (int64_t ow = 0; ow < in.begin; ++ow) plain(ow);
      if (in.end > in.begin) {
        // Interior columns share the divisor of the row.
        const int64_t d = pool_divisor(sh, pool_span(in.begin, g.W, g.kw, g.sw, g.pw), include_pad);
        avg_pool_interior<T, kS>(g, xp, sh.begin, sh.end, in.begin, in.end, acc.data());
        const T dt = static_cast<T>(d);
        for (int64_t ow = in.begin; ow < in.end; ++ow) {
          const T a = acc[static_cast<size_t>(ow - in.begin)];
          yr[ow] = d > 0 ? a / dt : T(0);
        }
      }
      for (int64_t ow = std::max(in.end, in.begin); ow < g.Wo; ++ow) plain(ow);
    }
  }
}

// The backward of planes [p0, p1): dy (planes, Ho, Wo) -> dx (planes, H, W).
// Each output's share v = dy / divisor is computed once per plane (the
// divisor is a product of one factor per axis). With stride 1 along w, every
// input inside the columns' interior gathers the same pattern of outputs (kw
// consecutive columns of each output row whose window holds its row), in
// row-major output order: the order in which the scatter reaches it, so the
// gather gives the scatter's bits (tests/framework/test_pool_gather.cpp) while
// vectorising across inputs. Other strides, and the border columns, scatter.
template <typename T, int kS>
void avg_pool_backward_planes(const PoolGeometry& g, bool include_pad, const T* dy, T* dx, int64_t p0, int64_t p1) {
  const int64_t HW = g.H * g.W, P = g.Ho * g.Wo;
  std::vector<int64_t> dh(static_cast<size_t>(g.Ho)), dw(static_cast<size_t>(g.Wo));
  for (int64_t oh = 0; oh < g.Ho; ++oh) {
    const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph);
    dh[static_cast<size_t>(oh)] = include_pad ? sh.padded : std::max<int64_t>(sh.end - sh.begin, 0);
  }
  for (int64_t ow = 0; ow < g.Wo; ++ow) {
    const PoolSpan sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
    dw[static_cast<size_t>(ow)] = include_pad ? sw.padded : std::max<int64_t>(sw.end - sw.begin, 0);
  }
  std::vector<T> v(static_cast<size_t>(P));
  // Inputs w in [w0, w1) gather outputs [w + pw - kw + 1, w + pw], all inside [0, Wo).
  const bool gather = kS == 1 && g.sw == 1 && g.W - g.kw >= kMinInteriorCols;
  const int64_t w0 = gather ? std::max<int64_t>(g.kw - 1 - g.pw, 0) : 0;
  const int64_t w1 = gather ? std::max(w0, std::min(g.W, g.Wo - g.pw)) : 0;
  for (int64_t plane = p0; plane < p1; ++plane) {
    const T* dyp = dy + plane * P;
    T* dxp = dx + plane * HW;
    if (!gather) {  // the scatter, each output's share added into its window
      std::fill(dxp, dxp + HW, T(0));
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const PoolSpan sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
          const int64_t d = pool_divisor(sh, sw, include_pad);
          if (d <= 0) continue;
          const T vo = dyp[oh * g.Wo + ow] / static_cast<T>(d);
          for (int64_t h = sh.begin; h < sh.end; ++h)
            for (int64_t w = sw.begin; w < sw.end; ++w) dxp[h * g.W + w] += vo;
        }
      }
      continue;
    }
    for (int64_t oh = 0; oh < g.Ho; ++oh)
      for (int64_t ow = 0; ow < g.Wo; ++ow) {
        const int64_t d = dh[static_cast<size_t>(oh)] * dw[static_cast<size_t>(ow)];
        v[static_cast<size_t>(oh * g.Wo + ow)] = d > 0 ? dyp[oh * g.Wo + ow] / static_cast<T>(d) : T(0);
      }
    for (int64_t h = 0; h < g.H; ++h) {
      const OutRange rh = pool_inverse_span(h, g.kh, g.sh, g.ph, g.Ho);
      T* dr = dxp + h * g.W;
      auto plain = [&](int64_t w) {  // the gather of avg_pool_grad_at over v
        const OutRange rw = pool_inverse_span(w, g.kw, 1, g.pw, g.Wo);
        T a = T(0);
        for (int64_t oh = rh.begin; oh < rh.end; ++oh)
          for (int64_t ow = rw.begin; ow < rw.end; ++ow) a += v[static_cast<size_t>(oh * g.Wo + ow)];
        dr[w] = a;
      };
      for (int64_t w = 0; w < w0; ++w) plain(w);
      if (w1 > w0) {
        for (int64_t w = w0; w < w1; ++w) dr[w] = T(0);
        for (int64_t oh = rh.begin; oh < rh.end; ++oh)
          for (int64_t t = 0; t < g.kw; ++t) {
            const int64_t off = oh * g.Wo + g.pw - g.kw + 1 + t;  // input w reads output column w + off
            for (int64_t w = w0; w < w1; ++w) dr[w] += v[static_cast<size_t>(off + w)];
          }
      }
      for (int64_t w = w1 > w0 ? w1 : w0; w < g.W; ++w) plain(w);
    }
  }
}

template <typename T>
void avg_pool_planes_any(const PoolGeometry& g, bool include_pad, const T* x, T* y, int64_t p0, int64_t p1) {
  if (g.sw == 1) return avg_pool_planes<T, 1>(g, include_pad, x, y, p0, p1);
  if (g.sw == 2) return avg_pool_planes<T, 2>(g, include_pad, x, y, p0, p1);
  avg_pool_planes<T, 0>(g, include_pad, x, y, p0, p1);
}
template <typename T>
void avg_pool_backward_any(const PoolGeometry& g, bool include_pad, const T* dy, T* dx, int64_t p0, int64_t p1) {
  if (g.sw == 1) return avg_pool_backward_planes<T, 1>(g, include_pad, dy, dx, p0, p1);
  avg_pool_backward_planes<T, 0>(g, include_pad, dy, dx, p0, p1);
}
NEURN_POOL_CLONES void avg_pool_planes_f32(const PoolGeometry& g, bool inc, const float* x, float* y, int64_t p0,
                                           int64_t p1) {
  avg_pool_planes_any<float>(g, inc, x, y, p0, p1);
}
NEURN_POOL_CLONES void avg_pool_planes_f64(const PoolGeometry& g, bool inc, const double* x, double* y, int64_t p0,
                                           int64_t p1) {
  avg_pool_planes_any<double>(g, inc, x, y, p0, p1);
}
NEURN_POOL_CLONES void avg_pool_backward_f32(const PoolGeometry& g, bool inc, const float* dy, float* dx, int64_t p0,
                                             int64_t p1) {
  avg_pool_backward_any<float>(g, inc, dy, dx, p0, p1);
}
NEURN_POOL_CLONES void avg_pool_backward_f64(const PoolGeometry& g, bool inc, const double* dy, double* dx,
                                             int64_t p0, int64_t p1) {
  avg_pool_backward_any<double>(g, inc, dy, dx, p0, p1);
}

template <typename T>
void avg_pool_forward(const PoolGeometry& g, bool include_pad, const T* x, T* y) {
  if (plane_lanes_fit(g)) {
    const WindowTable t = window_table(g, include_pad);
    for_plane_blocks(g.planes, g.Ho * g.Wo * g.kh * g.kw, [&](int64_t p0, int64_t p1) {
      if constexpr (std::is_same_v<T, float>)
        avg_pool_lanes_f32(g, t, x, y, p0, p1);
      else
        avg_pool_lanes_f64(g, t, x, y, p0, p1);
    });
    return;
  }
  cpu::parallel_for(g.planes, g.Ho * g.Wo * g.kh * g.kw, [&](int64_t p0, int64_t p1) {
    if constexpr (std::is_same_v<T, float>)
      avg_pool_planes_f32(g, include_pad, x, y, p0, p1);
    else
      avg_pool_planes_f64(g, include_pad, x, y, p0, p1);
  });
}

template <typename T>
void avg_pool_backward(const PoolGeometry& g, bool include_pad, const T* dy, T* dx) {
  if (plane_lanes_fit(g)) {
    const WindowTable t = window_table(g, include_pad);
    for_plane_blocks(g.planes, g.H * g.W + g.Ho * g.Wo * g.kh * g.kw, [&](int64_t p0, int64_t p1) {
      if constexpr (std::is_same_v<T, float>)
        avg_pool_backward_lanes_f32(g, t, dy, dx, p0, p1);
      else
        avg_pool_backward_lanes_f64(g, t, dy, dx, p0, p1);
    });
    return;
  }
  cpu::parallel_for(g.planes, g.H * g.W + g.Ho * g.Wo * g.kh * g.kw, [&](int64_t p0, int64_t p1) {
    if constexpr (std::is_same_v<T, float>)
      avg_pool_backward_f32(g, include_pad, dy, dx, p0, p1);
    else
      avg_pool_backward_f64(g, include_pad, dy, dx, p0, p1);
  });
}

// ---- adaptive average pooling --------------------------------------------------

template <typename T>
void adaptive_forward(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, const T* x, T* y) {
  cpu::parallel_for(planes, H * W + Ho * Wo, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      const T* xp = x + plane * H * W;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const PoolSpan sh = adaptive_span(oh, H, Ho);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const PoolSpan sw = adaptive_span(ow, W, Wo);
          T acc = 0;
          for (int64_t h = sh.begin; h < sh.end; ++h)
            for (int64_t w = sw.begin; w < sw.end; ++w) acc += xp[h * W + w];
          y[(plane * Ho + oh) * Wo + ow] = acc / static_cast<T>((sh.end - sh.begin) * (sw.end - sw.begin));
        }
      }
    }
  });
}

template <typename T>
void adaptive_backward(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, const T* dy, T* dx) {
  cpu::parallel_for(planes, H * W + Ho * Wo, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      T* dxp = dx + plane * H * W;
      std::fill(dxp, dxp + H * W, T(0));
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const PoolSpan sh = adaptive_span(oh, H, Ho);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const PoolSpan sw = adaptive_span(ow, W, Wo);
          const T v = dy[(plane * Ho + oh) * Wo + ow] / static_cast<T>((sh.end - sh.begin) * (sw.end - sw.begin));
          for (int64_t h = sh.begin; h < sh.end; ++h)
            for (int64_t w = sw.begin; w < sw.end; ++w) dxp[h * W + w] += v;
        }
      }
    }
  });
}

// ---- upsampling -------------------------------------------------------------------

// Per output row (or column): two source indices and their weights, from
// upsample_tap (framework/ops/upsample_math.h, shared with the CUDA kernels).
struct Taps {
  std::vector<int64_t> i0, i1;
  std::vector<double> l0, l1;
};

Taps make_taps(int64_t in, int64_t out, UpsampleMode mode, bool align_corners) {
  Taps t;
  t.i0.resize(out), t.i1.resize(out), t.l0.resize(out), t.l1.resize(out);
  for (int64_t d = 0; d < out; ++d) {
    UpsampleTap tap = upsample_tap(d, in, out, mode == UpsampleMode::Bilinear, align_corners);
    t.i0[d] = tap.i0, t.i1[d] = tap.i1, t.l0[d] = tap.l0, t.l1[d] = tap.l1;
  }
  return t;
}

template <typename T>
void upsample_forward(int64_t planes, int64_t H, int64_t W, const Taps& th, const Taps& tw, const T* x, T* y) {
  const int64_t Ho = static_cast<int64_t>(th.i0.size()), Wo = static_cast<int64_t>(tw.i0.size());
  cpu::parallel_for(planes, Ho * Wo * 4, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      const T* xp = x + plane * H * W;
      T* yp = y + plane * Ho * Wo;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const T* r0 = xp + th.i0[oh] * W;
        const T* r1 = xp + th.i1[oh] * W;
        T a0 = static_cast<T>(th.l0[oh]), a1 = static_cast<T>(th.l1[oh]);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          int64_t c0 = tw.i0[ow], c1 = tw.i1[ow];
          T b0 = static_cast<T>(tw.l0[ow]), b1 = static_cast<T>(tw.l1[ow]);
          yp[oh * Wo + ow] = a0 * (b0 * r0[c0] + b1 * r0[c1]) + a1 * (b0 * r1[c0] + b1 * r1[c1]);
        }
      }
    }
  });
}

// A scatter over the precomputed taps (see max_pool_backward for why not
// the gather of upsample_grad_at).
template <typename T>
void upsample_backward(int64_t planes, int64_t H, int64_t W, const Taps& th, const Taps& tw, const T* dy, T* dx) {
  const int64_t Ho = static_cast<int64_t>(th.i0.size()), Wo = static_cast<int64_t>(tw.i0.size());
  cpu::parallel_for(planes, H * W + Ho * Wo * 4, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      T* dxp = dx + plane * H * W;
      const T* gp = dy + plane * Ho * Wo;
      std::fill(dxp, dxp + H * W, T(0));
      for (int64_t oh = 0; oh < Ho; ++oh) {
        T* r0 = dxp + th.i0[oh] * W;
        T* r1 = dxp + th.i1[oh] * W;
        T a0 = static_cast<T>(th.l0[oh]), a1 = static_cast<T>(th.l1[oh]);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          int64_t c0 = tw.i0[ow], c1 = tw.i1[ow];
          T b0 = static_cast<T>(tw.l0[ow]), b1 = static_cast<T>(tw.l1[ow]);
          T v = gp[oh * Wo + ow];
          r0[c0] += a0 * b0 * v, r0[c1] += a0 * b1 * v;
          r1[c0] += a1 * b0 * v, r1[c1] += a1 * b1 * v;
        }
      }
    }
  });
}

// ---- the CPU kernels --------------------------------------------------------------

void max_pool2d_cpu(const PoolGeometry& g, const Tensor& x, const Tensor& y, const Tensor& idx) {
  dispatch_float(x.dtype(), "max_pool2d", [&](auto z) {
    using T = decltype(z);
    max_pool_forward<T>(g, x.data<T>(), y.data<T>(), idx.defined() ? idx.data<int64_t>() : nullptr);
  });
}

void max_pool2d_backward_cpu(const PoolGeometry& g, const Tensor& dy, const Tensor& idx, const Tensor& dx) {
  dispatch_float(dx.dtype(), "max_pool2d backward", [&](auto z) {
    using T = decltype(z);
    max_pool_backward<T>(g, dy.data<T>(), idx.data<int64_t>(), dx.data<T>());
  });
}

void avg_pool2d_cpu(const PoolGeometry& g, bool include_pad, const Tensor& x, const Tensor& y) {
  dispatch_float(x.dtype(), "avg_pool2d", [&](auto z) {
    using T = decltype(z);
    avg_pool_forward<T>(g, include_pad, x.data<T>(), y.data<T>());
  });
}

void avg_pool2d_backward_cpu(const PoolGeometry& g, bool include_pad, const Tensor& dy, const Tensor& dx) {
  dispatch_float(dx.dtype(), "avg_pool2d backward", [&](auto z) {
    using T = decltype(z);
    avg_pool_backward<T>(g, include_pad, dy.data<T>(), dx.data<T>());
  });
}

void adaptive_avg_pool2d_cpu(const Tensor& x, const Tensor& y) {
  dispatch_float(x.dtype(), "adaptive_avg_pool2d", [&](auto z) {
    using T = decltype(z);
    adaptive_forward<T>(x.size(0) * x.size(1), x.size(2), x.size(3), y.size(2), y.size(3), x.data<T>(), y.data<T>());
  });
}

void adaptive_avg_pool2d_backward_cpu(const Tensor& dy, const Tensor& dx) {
  dispatch_float(dx.dtype(), "adaptive_avg_pool2d backward", [&](auto z) {
    using T = decltype(z);
    adaptive_backward<T>(dx.size(0) * dx.size(1), dx.size(2), dx.size(3), dy.size(2), dy.size(3), dy.data<T>(),
                         dx.data<T>());
  });
}

const char* upsample_name(UpsampleMode mode, bool align_corners) {
  return mode == UpsampleMode::Nearest ? "upsample (nearest)"
         : align_corners               ? "upsample (bilinear, align_corners)"
                                       : "upsample (bilinear)";
}

void upsample_cpu(UpsampleMode mode, bool align_corners, const Tensor& x, const Tensor& y) {
  const Taps th = make_taps(x.size(2), y.size(2), mode, align_corners);
  const Taps tw = make_taps(x.size(3), y.size(3), mode, align_corners);
  dispatch_float(x.dtype(), upsample_name(mode, align_corners), [&](auto z) {
    using T = decltype(z);
    upsample_forward<T>(x.size(0) * x.size(1), x.size(2), x.size(3), th, tw, x.data<T>(), y.data<T>());
  });
}

void upsample_backward_cpu(UpsampleMode mode, bool align_corners, const Tensor& dy, const Tensor& dx) {
  const Taps th = make_taps(dx.size(2), dy.size(2), mode, align_corners);
  const Taps tw = make_taps(dx.size(3), dy.size(3), mode, align_corners);
  dispatch_float(dx.dtype(), upsample_name(mode, align_corners), [&](auto z) {
    using T = decltype(z);
    upsample_backward<T>(dx.size(0) * dx.size(1), dx.size(2), dx.size(3), th, tw, dy.data<T>(), dx.data<T>());
  });
}

}  // namespace

NEURN_DEFINE_KERNEL(max_pool2d_kernel);
NEURN_DEFINE_KERNEL(max_pool2d_backward_kernel);
NEURN_DEFINE_KERNEL(avg_pool2d_kernel);
NEURN_DEFINE_KERNEL(avg_pool2d_backward_kernel);
NEURN_DEFINE_KERNEL(adaptive_avg_pool2d_kernel);
NEURN_DEFINE_KERNEL(adaptive_avg_pool2d_backward_kernel);
NEURN_DEFINE_KERNEL(upsample_kernel);
NEURN_DEFINE_KERNEL(upsample_backward_kernel);
NEURN_REGISTER_KERNEL(max_pool2d_kernel, DeviceType::CPU, max_pool2d_cpu);
NEURN_REGISTER_KERNEL(max_pool2d_backward_kernel, DeviceType::CPU, max_pool2d_backward_cpu);
NEURN_REGISTER_KERNEL(avg_pool2d_kernel, DeviceType::CPU, avg_pool2d_cpu);
NEURN_REGISTER_KERNEL(avg_pool2d_backward_kernel, DeviceType::CPU, avg_pool2d_backward_cpu);
NEURN_REGISTER_KERNEL(adaptive_avg_pool2d_kernel, DeviceType::CPU, adaptive_avg_pool2d_cpu);
NEURN_REGISTER_KERNEL(adaptive_avg_pool2d_backward_kernel, DeviceType::CPU, adaptive_avg_pool2d_backward_cpu);
NEURN_REGISTER_KERNEL(upsample_kernel, DeviceType::CPU, upsample_cpu);
NEURN_REGISTER_KERNEL(upsample_backward_kernel, DeviceType::CPU, upsample_backward_cpu);

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt) {
  Pool2dOptions o = resolve(x, opt, "max_pool2d");
  PoolGeometry g = pool_geom(x, o);
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.Ho, g.Wo}, x.options());  // (N, C, Ho, Wo)
  count_flops(y.numel() * g.kh * g.kw);  // one comparison per window element
  const bool need_grad = any_requires_grad({x});
  // (N, C, Ho, Wo) int64: each output's argmax in its input plane, all the
  // backward needs (x itself is not kept).
  Tensor idx = need_grad ? Tensor::empty(y.shape(), {DType::Int64, x.device(), false}) : Tensor();
  if (y.numel() > 0) max_pool2d_kernel(x.device(), g, x, y, idx);
  Shape xshape = x.shape();
  TensorOptions xo = x.options();
  return attach_grad(y, "max_pool2d", {x}, [xshape, xo, g, idx](const Tensor& dy) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(xshape, xo);
    if (dx.numel() > 0) max_pool2d_backward_kernel(xo.device, g, dy, idx, dx);
    return {dx};
  });
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt) {
  Pool2dOptions o = resolve(x, opt, "avg_pool2d");
  PoolGeometry g = pool_geom(x, o);
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.Ho, g.Wo}, x.options());  // (N, C, Ho, Wo)
  count_flops(y.numel() * g.kh * g.kw);  // one addition per window element
  const bool inc = o.count_include_pad;
  if (y.numel() > 0) avg_pool2d_kernel(x.device(), g, inc, x, y);
  Shape xs = x.shape();
  TensorOptions xo = x.options();
  return attach_grad(y, "avg_pool2d", {x}, [xs, xo, g, inc](const Tensor& dy) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(xs, xo);
    if (dx.numel() > 0) avg_pool2d_backward_kernel(xo.device, g, inc, dy, dx);
    return {dx};
  });
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_4d(x, "adaptive_avg_pool2d");
  NEURN_CHECK(out_h >= 1 && out_w >= 1, "adaptive_avg_pool2d: output size must be >= 1, got ", out_h, "x", out_w,
              " for input ", shape_str(x.shape()));
  NEURN_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "adaptive_avg_pool2d: empty spatial size in input ",
              shape_str(x.shape()));
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  Tensor y = Tensor::empty({x.size(0), x.size(1), out_h, out_w}, x.options());  // (N, C, out_h, out_w)
  count_flops(planes * std::max(H, out_h) * std::max(W, out_w));  // every input summed at least once
  if (y.numel() > 0) adaptive_avg_pool2d_kernel(x.device(), x, y);
  Shape xs = x.shape();
  TensorOptions xo = x.options();
  return attach_grad(y, "adaptive_avg_pool2d", {x}, [xs, xo](const Tensor& dy) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(xs, xo);
    if (dx.numel() > 0) adaptive_avg_pool2d_backward_kernel(xo.device, dy, dx);
    return {dx};
  });
}

Tensor global_avg_pool2d(const Tensor& x) {
  check_4d(x, "global_avg_pool2d");
  NEURN_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "global_avg_pool2d: empty spatial size in input ",
              shape_str(x.shape()));
  return mean(x, {2, 3});  // (N, C); differentiable and device-generic
}

Tensor upsample(const Tensor& x, int64_t out_h, int64_t out_w, UpsampleMode mode, bool align_corners) {
  check_4d(x, "upsample");
  NEURN_CHECK(!align_corners || mode == UpsampleMode::Bilinear,
              "upsample: align_corners=true needs bilinear mode (nearest has no corners to align), input ",
              shape_str(x.shape()));
  NEURN_CHECK(out_h >= 1 && out_w >= 1, "upsample: output size must be >= 1, got ", out_h, "x", out_w, " for input ",
              shape_str(x.shape()));
  NEURN_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "upsample: empty spatial size in input ", shape_str(x.shape()));
  Tensor y = Tensor::empty({x.size(0), x.size(1), out_h, out_w}, x.options());  // (N, C, out_h, out_w)
  // Bilinear: 4 multiply-adds per output plus the weights; nearest copies.
  count_flops(mode == UpsampleMode::Bilinear ? 8 * y.numel() : 0);
  if (y.numel() > 0) upsample_kernel(x.device(), mode, align_corners, x, y);
  Shape xs = x.shape();
  TensorOptions xo = x.options();
  return attach_grad(y, "upsample", {x}, [xs, xo, mode, align_corners](const Tensor& dy) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(xs, xo);
    if (dx.numel() > 0) upsample_backward_kernel(xo.device, mode, align_corners, dy, dx);
    return {dx};
  });
}

}  // namespace neurn
