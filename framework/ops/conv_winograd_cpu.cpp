#include "framework/ops/conv_winograd_cpu.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "framework/error.h"
#include "framework/ops/conv_winograd5_cpu.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/scratch_cpu.h"
#include "framework/ops/winograd_tiles_cpu.h"

namespace neurn::cpu {

// ---- mode, applicability, decisions ----

namespace {

constexpr int kModeUnread = -1;
std::atomic<int> g_mode{kModeUnread};

WinogradMode mode_from_env() {
  const char* env = std::getenv("NEURN_CONV_WINOGRAD");
  if (!env || !*env) return WinogradMode::Auto;
  const std::string v = env;
  if (v == "0" || v == "off") return WinogradMode::Off;
  if (v == "1" || v == "auto") return WinogradMode::Auto;
  if (v == "always") return WinogradMode::Always;
  NEURN_FAIL("NEURN_CONV_WINOGRAD must be 0 (off), 1 (auto: where it is measured to be faster) or always, got '",
             v, "'");
}

thread_local WinogradDecisionLog* t_log = nullptr;

}  // namespace

WinogradMode winograd_mode() {
  int m = g_mode.load(std::memory_order_relaxed);
  if (m == kModeUnread) {
    m = static_cast<int>(mode_from_env());
    int expected = kModeUnread;
    if (!g_mode.compare_exchange_strong(expected, m)) m = expected;
  }
  return static_cast<WinogradMode>(m);
}

void set_winograd_mode(WinogradMode mode) { g_mode.store(static_cast<int>(mode), std::memory_order_relaxed); }

namespace {

bool winograd3_applicable(const ConvGeom& g) {
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.groups == 1 && g.N > 0 &&
         g.C > 0 && g.Cout > 0 && g.Ho > 0 && g.Wo > 0;
}

// F(2x2, 5x5) (docs/engine-bench.md, "Winograd for 5x5 kernels"): the
// digits ConvNet's conv2 (64 -> 128, 14x14 -> 10x10) takes 0.49-0.58 of
// im2col's time in each pass at 1 thread, 0.59-0.72 at 2; InceptionV3's
// 48 -> 64 on 7x7 (padding 2) 0.7-0.8 of its CPU time (HWCN, asked first,
// is faster there still); the digits conv1 (3 -> 64 on 32x32: gemms of
// inner size 3) takes 2x im2col's forward and 4x its weight gradient.
bool winograd5_profitable(const ConvGeom& g) { return g.C >= 48 && g.Cout >= 64 && g.Ho >= 7 && g.Wo >= 7; }

}  // namespace

bool winograd_applicable(const ConvGeom& g) { return winograd3_applicable(g) || winograd5_applicable(g); }
bool winograd_weight_applicable(const ConvGeom& g) { return winograd5_applicable(g); }

bool winograd_weight_profitable(const ConvGeom& g, size_t elem_size, int64_t threads) {
  (void)threads;
  return elem_size == sizeof(float) && winograd5_applicable(g) && winograd5_profitable(g);
}

bool winograd_conv_profitable(const ConvGeom& g, size_t elem_size, bool backward_data, int64_t threads) {
  (void)threads;  // the same rule held on 1 and 2 threads (docs/engine-bench.md)
  // Measured in float32 only; float64 (gradient checks) keeps im2col.
  if (elem_size != sizeof(float) || !winograd_applicable(g)) return false;
  if (g.kh == 5) return winograd5_profitable(g);
  // Below 64 input channels the 16 gemms (inner size C) run far from peak;
  // above 256 channels on either side the weight transform (16 C Cout
  // values, every call) and packing U cost what the saved multiplies gain
  // on the small maps those layers have here (4x4 and below at 32x32).
  if (g.C < 64 || g.C > 256 || g.Cout < 32 || g.Cout > 256) return false;
  if (!backward_data) {
    // Fewer tiles per image lose to im2col; and of the two forwards with
    // C < 128 widening to Cout > C, VGG19's 64 -> 128 gained under 10 %,
    // InceptionV3's 80 -> 192 (17x17 -> 15x15) takes 0.79-0.88 of im2col's
    // CPU time at 1 and 2 threads (session 8, docs/engine-bench.md "Winograd
    // for 5x5 kernels"); its 32-channel stem convs (37x37 and 35x35) lose
    // 6-15 % and stay out (C < 64 above).
    return g.Ho >= 8 && g.Wo >= 8 && (g.Cout <= g.C || g.C >= 80);
  }
  // The data gradient: im2col's is a gemm and a col2im over 9 C rows, the
  // more costly the larger C is next to Cout; Winograd wins there from 8x8
  // maps on (C >= Cout), and down to 2x2 when C >= 4 Cout (DenseNet's
  // bottleneck 3x3s, 128 -> 32).
  if (g.Cout > g.C) return false;
  const int64_t min_map = g.C >= 4 * g.Cout ? 2 : 8;
  return g.H >= min_map && g.W >= min_map;
}

namespace {

bool decide(const ConvGeom& g, size_t elem_size, bool backward_data) {
  const WinogradMode mode = winograd_mode();
  bool use = false;
  if (mode != WinogradMode::Off && winograd_applicable(g))
    use = mode == WinogradMode::Always || winograd_conv_profitable(g, elem_size, backward_data, num_threads());
  if (t_log && winograd_applicable(g)) WinogradDecisionLog::record({g, backward_data, false, use});
  return use;
}

}  // namespace

bool use_winograd_forward(const ConvGeom& g, size_t elem_size) { return decide(g, elem_size, false); }
bool use_winograd_backward_data(const ConvGeom& g, size_t elem_size) { return decide(g, elem_size, true); }
bool use_winograd_backward_weight(const ConvGeom& g, size_t elem_size) {
  const WinogradMode mode = winograd_mode();
  bool use = false;
  if (mode != WinogradMode::Off && winograd_weight_applicable(g))
    use = mode == WinogradMode::Always || winograd_weight_profitable(g, elem_size, num_threads());
  if (t_log && winograd_weight_applicable(g)) WinogradDecisionLog::record({g, false, true, use});
  return use;
}

WinogradDecisionLog::WinogradDecisionLog() : parent_(t_log) { t_log = this; }
WinogradDecisionLog::~WinogradDecisionLog() { t_log = parent_; }
void WinogradDecisionLog::record(const WinogradDecision& d) {
  if (t_log) t_log->decisions_.push_back(d);
}

// ---- the transforms and the gemms ----

namespace {

// Problem, make_problem and plane_stride: winograd_tiles_cpu.h (shared with
// F(2x2, 5x5)). Here Ho = H + 2 ph - 2.
using winograd::make_problem;
using winograd::plane_stride;
using winograd::Problem;

// U_k (o, i) for k = 0..15 (U + k plane_stride(Co Ci), row-major (Co, Ci)) from the 3x3
// filters: U = G g G^T with G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
// Forward: g = w[o][i]. Data gradient (rotate): the conv's weight is
// (Ci, Co, 3, 3) here (Ci = its C_out, Co = its C_in) and g = w[i][o] turned
// by 180 degrees.
template <typename T>
void transform_weights(const T* w, int64_t Co, int64_t Ci, bool rotate, T* U) {
  constexpr int64_t L = 16;  // values of i per block: the block's loops run in vector lanes
  const int64_t plane = plane_stride(Co * Ci);
  // Blocks of L x L filters (o, i): their 9 L L values are first copied
  // from w in its own order (L rows of 9 L contiguous values: w[o][i0..] in
  // the forward, w[i][o0..] rotated), then rearranged in L1.
  const int64_t oblocks = (Co + L - 1) / L;
  parallel_for(oblocks, L * Ci * 64, [&](int64_t b0, int64_t b1) {
    const bool rot = rotate;  // a local: stores through T* cannot change it
    T raw[L][L][9];
    for (int64_t ob = b0; ob < b1; ++ob) {
      const int64_t o0 = ob * L, no = std::min(L, Co - o0);
      for (int64_t i0 = 0; i0 < Ci; i0 += L) {
        const int64_t n = std::min(L, Ci - i0);
        if (rot) {
          for (int64_t l = 0; l < n; ++l) std::memcpy(raw[l], w + ((i0 + l) * Co + o0) * 9, static_cast<size_t>(no * 9) * sizeof(T));
        } else {
          for (int64_t j = 0; j < no; ++j) std::memcpy(raw[j], w + ((o0 + j) * Ci + i0) * 9, static_cast<size_t>(n * 9) * sizeof(T));
        }
        for (int64_t j = 0; j < no; ++j) {
          const int64_t o = o0 + j;
          // The 9 taps of filters (o, i0..i0+L) as 9 rows of L (zero past Ci),
          // so the transform below runs over i in vector lanes; u is a local
          // block too (nothing aliases it), copied to the U_k rows at the end.
          T g[9 * L] = {};
          if (rot) {
            for (int64_t l = 0; l < n; ++l)
              for (int64_t tap = 0; tap < 9; ++tap) g[tap * L + l] = raw[l][j][8 - tap];
          } else {
            for (int64_t l = 0; l < n; ++l)
              for (int64_t tap = 0; tap < 9; ++tap) g[tap * L + l] = raw[j][l][tap];
          }
          T u[16][L];
          for (int64_t l = 0; l < L; ++l) {
            // G g: rows t0..t3 of 3 values.
            const T g00 = g[l], g01 = g[L + l], g02 = g[2 * L + l], g10 = g[3 * L + l], g11 = g[4 * L + l],
                    g12 = g[5 * L + l], g20 = g[6 * L + l], g21 = g[7 * L + l], g22 = g[8 * L + l];
            const T t[4][3] = {{g00, g01, g02},
                               {T(0.5) * (g00 + g10 + g20), T(0.5) * (g01 + g11 + g21), T(0.5) * (g02 + g12 + g22)},
                               {T(0.5) * (g00 - g10 + g20), T(0.5) * (g01 - g11 + g21), T(0.5) * (g02 - g12 + g22)},
                               {g20, g21, g22}};
            for (int r = 0; r < 4; ++r) {  // (G g) G^T, row by row
              u[4 * r + 0][l] = t[r][0];
              u[4 * r + 1][l] = T(0.5) * (t[r][0] + t[r][1] + t[r][2]);
              u[4 * r + 2][l] = T(0.5) * (t[r][0] - t[r][1] + t[r][2]);
              u[4 * r + 3][l] = t[r][2];
            }
          }
          for (int k = 0; k < 16; ++k)
            std::memcpy(U + k * plane + o * Ci + i0, u[k], static_cast<size_t>(n) * sizeof(T));
        }
      }
    }
  });
}

// V_k (Ci, nt) for the tiles of rows [r0, r1) (nt = (r1 - r0) tw tiles,
// V_k = V + k plane_stride(Ci nt)): V = B^T d B with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
// Channels [c0, c1) of input_transform below.
template <typename T>
inline void input_channels(const Problem& p, const T* x, int64_t r0, int64_t r1, T* V, int64_t c0, int64_t c1) {
  const int64_t nt = (r1 - r0) * p.tw, Wp = 2 * p.tw + 2, stride_k = plane_stride(p.Ci * nt);
  // The columns x of a padded row that hold input pixels: iw = x - pw in [0, W).
  const int64_t x_lo = std::clamp<int64_t>(p.pw, 0, Wp), x_hi = std::clamp<int64_t>(p.W + p.pw, x_lo, Wp);
  {
    T* d = scratch<T>(Scratch::WinogradRows, static_cast<size_t>(8 * Wp));  // 4 padded input rows, then B^T d's 4 rows
    T* e = d + 4 * Wp;
    for (int64_t ci = c0; ci < c1; ++ci) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / p.th, ty = r % p.th;
        const T* plane = x + (n * p.Ci + ci) * p.H * p.W;
        for (int64_t k = 0; k < 4; ++k) {  // row 2 ty - ph + k of the input, zero-padded to Wp
          T* dr = d + k * Wp;
          const int64_t ih = 2 * ty - p.ph + k;
          if (ih < 0 || ih >= p.H) {
            std::fill(dr, dr + Wp, T(0));
            continue;
          }
          const T* src = plane + ih * p.W - p.pw;
          std::fill(dr, dr + x_lo, T(0));
          for (int64_t c = x_lo; c < x_hi; ++c) dr[c] = src[c];
          std::fill(dr + x_hi, dr + Wp, T(0));
        }
        const T *d0 = d, *d1 = d + Wp, *d2 = d + 2 * Wp, *d3 = d + 3 * Wp;
        T *e0 = e, *e1 = e + Wp, *e2 = e + 2 * Wp, *e3 = e + 3 * Wp;
        for (int64_t c = 0; c < Wp; ++c) {  // B^T d, whole rows at a time
          e0[c] = d0[c] - d2[c];
          e1[c] = d1[c] + d2[c];
          e2[c] = d2[c] - d1[c];
          e3[c] = d1[c] - d3[c];
        }
        T* out = V + ci * nt + (r - r0) * p.tw;
        for (int64_t i = 0; i < 4; ++i) {  // (B^T d) B, tile by tile
          const T* er = e + i * Wp;
          T* v0 = out + (4 * i + 0) * stride_k;
          T* v1 = out + (4 * i + 1) * stride_k;
          T* v2 = out + (4 * i + 2) * stride_k;
          T* v3 = out + (4 * i + 3) * stride_k;
          for (int64_t tx = 0; tx < p.tw; ++tx) {
            const T a = er[2 * tx], b = er[2 * tx + 1], c = er[2 * tx + 2], dd = er[2 * tx + 3];
            v0[tx] = a - c;
            v1[tx] = b + c;
            v2[tx] = c - b;
            v3[tx] = b - dd;
          }
        }
      }
    }
  }
}

// One copy of the transform loops per instruction set, picked at load time
// (GCC's function multiversioning, as in pool.cpp and loss.cpp): they only
// add and subtract (the weight transform's halves are exact), so every copy
// gives the same bits; flatten inlines the template into each copy.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NEURN_WINOGRAD_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), flatten))
#else
#define NEURN_WINOGRAD_CLONES
#endif

NEURN_WINOGRAD_CLONES void input_channels_f32(const Problem& p, const float* x, int64_t r0, int64_t r1, float* V,
                                              int64_t c0, int64_t c1) {
  input_channels<float>(p, x, r0, r1, V, c0, c1);
}
NEURN_WINOGRAD_CLONES void input_channels_f64(const Problem& p, const double* x, int64_t r0, int64_t r1, double* V,
                                              int64_t c0, int64_t c1) {
  input_channels<double>(p, x, r0, r1, V, c0, c1);
}
inline void input_channels_any(const Problem& p, const float* x, int64_t r0, int64_t r1, float* V, int64_t c0,
                               int64_t c1) {
  input_channels_f32(p, x, r0, r1, V, c0, c1);
}
inline void input_channels_any(const Problem& p, const double* x, int64_t r0, int64_t r1, double* V, int64_t c0,
                               int64_t c1) {
  input_channels_f64(p, x, r0, r1, V, c0, c1);
}

template <typename T>
void input_transform(const Problem& p, const T* x, int64_t r0, int64_t r1, T* V) {
  parallel_for(p.Ci, (r1 - r0) * p.tw * 64,
               [&](int64_t c0, int64_t c1) { input_channels_any(p, x, r0, r1, V, c0, c1); });
}

// y for rows [r0, r1) from M_k (Co, nt) (M_k = M + k plane_stride(Co nt)): Y = A^T m A with
// A^T = [1 1 1 0; 0 1 -1 -1], plus the bias; partial tiles at odd Ho / Wo
// write only their inside.
template <typename T>
inline void output_channels(const Problem& p, const T* M, const T* bias, int64_t r0, int64_t r1, T* y, int64_t o0,
                            int64_t o1) {
  const int64_t nt = (r1 - r0) * p.tw, stride_k = plane_stride(p.Co * nt), Wt = 2 * p.tw;
  {
    T* rows = scratch<T>(Scratch::WinogradRows, static_cast<size_t>(2 * Wt));
    T *y0 = rows, *y1 = rows + Wt;
    for (int64_t co = o0; co < o1; ++co) {
      const T bv = bias ? bias[co] : T(0);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / p.th, ty = r % p.th;
        const T* m = M + co * nt + (r - r0) * p.tw;
        for (int64_t tx = 0; tx < p.tw; ++tx) {
          T s0[4], s1[4];  // A^T m: rows 0 and 1
          for (int j = 0; j < 4; ++j) {
            const T a = m[j * stride_k + tx], b = m[(4 + j) * stride_k + tx], c = m[(8 + j) * stride_k + tx],
                    d = m[(12 + j) * stride_k + tx];
            s0[j] = a + b + c;
            s1[j] = b - c - d;
          }
          y0[2 * tx] = s0[0] + s0[1] + s0[2] + bv;
          y0[2 * tx + 1] = s0[1] - s0[2] - s0[3] + bv;
          y1[2 * tx] = s1[0] + s1[1] + s1[2] + bv;
          y1[2 * tx + 1] = s1[1] - s1[2] - s1[3] + bv;
        }
        T* dst = y + ((n * p.Co + co) * p.Ho + 2 * ty) * p.Wo;
        std::memcpy(dst, y0, static_cast<size_t>(p.Wo) * sizeof(T));
        if (2 * ty + 1 < p.Ho) std::memcpy(dst + p.Wo, y1, static_cast<size_t>(p.Wo) * sizeof(T));
      }
    }
  }
}

NEURN_WINOGRAD_CLONES void output_channels_f32(const Problem& p, const float* M, const float* bias, int64_t r0,
                                               int64_t r1, float* y, int64_t o0, int64_t o1) {
  output_channels<float>(p, M, bias, r0, r1, y, o0, o1);
}
NEURN_WINOGRAD_CLONES void output_channels_f64(const Problem& p, const double* M, const double* bias, int64_t r0,
                                               int64_t r1, double* y, int64_t o0, int64_t o1) {
  output_channels<double>(p, M, bias, r0, r1, y, o0, o1);
}
inline void output_channels_any(const Problem& p, const float* M, const float* bias, int64_t r0, int64_t r1, float* y,
                                int64_t o0, int64_t o1) {
  output_channels_f32(p, M, bias, r0, r1, y, o0, o1);
}
inline void output_channels_any(const Problem& p, const double* M, const double* bias, int64_t r0, int64_t r1,
                                double* y, int64_t o0, int64_t o1) {
  output_channels_f64(p, M, bias, r0, r1, y, o0, o1);
}

// y for rows [r0, r1) from M (see output_channels).
template <typename T>
void output_transform(const Problem& p, const T* M, const T* bias, int64_t r0, int64_t r1, T* y) {
  parallel_for(p.Co, (r1 - r0) * p.tw * 48,
               [&](int64_t o0, int64_t o1) { output_channels_any(p, M, bias, r0, r1, y, o0, o1); });
}

// Tile rows per chunk: V and M together within about half of a core's L2
// (the input transform writes V, the gemms read it and write M, the output
// transform reads M: out of cache this traffic cost more than the gemms),
// but at least kMinTiles tiles, so each U_k packed by a gemm serves enough
// columns (the deep layers with 512 channels), and at least one row.
int64_t chunk_rows(const Problem& p, size_t elem) {
  constexpr int64_t kMaxBytes = int64_t{1} << 20, kMinTiles = 128;
  const int64_t per_row = 16 * (p.Ci + p.Co) * p.tw * static_cast<int64_t>(elem);
  const int64_t by_bytes = kMaxBytes / std::max<int64_t>(per_row, 1), by_tiles = (kMinTiles + p.tw - 1) / p.tw;
  return std::max<int64_t>({1, by_bytes, by_tiles});
}

constexpr int64_t kMinFlopsPerThread = int64_t{4} << 20;

// The 16 products M_k = U_k V_k of one chunk of nt tiles. On the caller with
// several cores (one chunk, too few rows to split) the threads share the
// gemms, 16 / threads each, every one single-threaded; inside a pool task
// they run in turn.
template <typename T>
void products(const Problem& p, const T* U, const T* V, int64_t nt, T* M) {
  auto one = [&](int64_t k) {
    gemm(false, false, p.Co, nt, p.Ci, T(1), U + k * plane_stride(p.Co * p.Ci), p.Ci, V + k * plane_stride(p.Ci * nt),
         nt, T(0), M + k * plane_stride(p.Co * nt), nt);
  };
  const int64_t flops = 2 * 16 * p.Co * p.Ci * nt;
  const int64_t threads =
      in_parallel_region() ? 1 : std::min<int64_t>({num_threads(), 16, flops / kMinFlopsPerThread});
  if (threads <= 1) {
    for (int64_t k = 0; k < 16; ++k) one(k);
    return;
  }
  SingleThreadedBlas single;
  run_on_threads(threads, [&](int64_t t) {
    for (int64_t k = t; k < 16; k += threads) one(k);
  });
}

// Rows [r0, r1) of the output, chunk by chunk.
template <typename T>
void run_rows(const Problem& p, const T* x, const T* U, const T* bias, T* y, int64_t r0, int64_t r1) {
  const int64_t per = std::min(chunk_rows(p, sizeof(T)), r1 - r0);
  T* V = scratch<T>(Scratch::WinogradV, static_cast<size_t>(16 * plane_stride(p.Ci * per * p.tw)));
  T* M = scratch<T>(Scratch::WinogradM, static_cast<size_t>(16 * plane_stride(p.Co * per * p.tw)));
  for (int64_t c0 = r0; c0 < r1; c0 += per) {
    const int64_t c1 = std::min(r1, c0 + per), nt = (c1 - c0) * p.tw;
    input_transform(p, x, c0, c1, V);
    products(p, U, V, nt, M);
    output_transform(p, M, bias, c0, c1, y);
  }
}

// Threads that split the rows: one per core when every thread gets at least
// kMinTilesPerThread tiles (fewer tiles per gemm lose more to packing U_k,
// which each thread does for itself) and enough work; else 1, and the gemms
// and transforms of the one chunk use every core.
constexpr int64_t kMinTilesPerThread = 64;

template <typename T>
void run(const Problem& p, const T* x, const T* U, const T* bias, T* y) {
  const int64_t rows = p.rows(), tiles = rows * p.tw;
  const int64_t flops = 2 * 16 * p.Co * p.Ci * tiles;
  int64_t threads = std::min<int64_t>({num_threads(), flops / kMinFlopsPerThread, tiles / kMinTilesPerThread, rows});
  if (in_parallel_region() || threads <= 1) {
    run_rows(p, x, U, bias, y, 0, rows);
    return;
  }
  SingleThreadedBlas single;
  run_on_threads(threads, [&](int64_t t) {
    const int64_t per = rows / threads, extra = rows % threads;
    const int64_t a = t * per + std::min(t, extra), b = a + per + (t < extra ? 1 : 0);
    run_rows(p, x, U, bias, y, a, b);
  });
}

}  // namespace

template <typename T>
void winograd_conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  if (winograd5_applicable(g)) {
    winograd5_conv2d_forward(g, x, w, bias, y);
    return;
  }
  NEURN_CHECK(winograd3_applicable(g), "conv2d (Winograd): needs a 3x3 or 5x5 kernel, stride 1, dilation 1 and groups 1, got ",
              g.kh, "x", g.kw, ", stride (", g.sh, ", ", g.sw, "), dilation (", g.dh, ", ", g.dw, "), groups ",
              g.groups);
  const Problem p = make_problem(g.N, g.C, g.H, g.W, g.Cout, g.ph, g.pw, g.Ho, g.Wo);
  T* U = scratch<T>(Scratch::WinogradU, static_cast<size_t>(16 * plane_stride(g.Cout * g.C)));
  transform_weights(w, g.Cout, g.C, false, U);
  run(p, x, U, bias, y);
}

template <typename T>
void winograd_conv2d_backward_data(const ConvGeom& g, const T* w, const T* dy, T* dx) {
  if (winograd5_applicable(g)) {
    winograd5_conv2d_backward_data(g, w, dy, dx);
    return;
  }
  NEURN_CHECK(winograd3_applicable(g), "conv2d backward (Winograd): needs a 3x3 or 5x5 kernel, stride 1, dilation 1 and "
              "groups 1, got ", g.kh, "x", g.kw, ", stride (", g.sh, ", ", g.sw, "), dilation (", g.dh, ", ", g.dw,
              "), groups ", g.groups);
  // dx = dy (N, Cout, Ho, Wo) correlated with rot180(w)^T at padding 2 - p:
  // H = Ho + 2 (2 - ph) - 2.
  const Problem p = make_problem(g.N, g.Cout, g.Ho, g.Wo, g.C, 2 - g.ph, 2 - g.pw, g.H, g.W);
  T* U = scratch<T>(Scratch::WinogradU, static_cast<size_t>(16 * plane_stride(g.Cout * g.C)));
  transform_weights(w, g.C, g.Cout, true, U);
  run(p, dy, U, static_cast<const T*>(nullptr), dx);
}

template void winograd_conv2d_forward<float>(const ConvGeom&, const float*, const float*, const float*, float*);
template void winograd_conv2d_forward<double>(const ConvGeom&, const double*, const double*, const double*, double*);
template void winograd_conv2d_backward_data<float>(const ConvGeom&, const float*, const float*, float*);
template void winograd_conv2d_backward_data<double>(const ConvGeom&, const double*, const double*, double*);

template <typename T>
void winograd_conv2d_backward_weight(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  winograd5_conv2d_backward_weight(g, x, dy, dw);  // checks the geometry
}

template void winograd_conv2d_backward_weight<float>(const ConvGeom&, const float*, const float*, float*);
template void winograd_conv2d_backward_weight<double>(const ConvGeom&, const double*, const double*, double*);

}  // namespace neurn::cpu
