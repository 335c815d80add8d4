#include "framework/ops/conv_winograd5_cpu.h"

#include <algorithm>
#include <cstring>

#include "framework/error.h"
#include "framework/ops/gemm_cpu.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/scratch_cpu.h"
#include "framework/ops/winograd_tiles_cpu.h"

namespace neurn::cpu {

bool winograd5_applicable(const ConvGeom& g) {
  return g.kh == 5 && g.kw == 5 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.groups == 1 && g.N > 0 &&
         g.C > 0 && g.Cout > 0 && g.Ho > 0 && g.Wo > 0;
}

namespace {

constexpr int64_t kPlanes = 36;  // 6x6 transformed values per tile

// Problem, make_problem and plane_stride: winograd_tiles_cpu.h (shared with
// F(2x2, 3x3)). Here Ho = H + 2 ph - 4.
using winograd::make_problem;
using winograd::plane_stride;
using winograd::Problem;

// ---- the weight transforms (not cloned: 1/6 and 1/24 round) ----

// G applied to 5 values a[0], a[s], ..., a[4 s] -> 6 values.
template <typename T>
inline void g_apply(T a0, T a1, T a2, T a3, T a4, T out[6]) {
  const T even = a0 + a2 + a4, odd = a1 + a3;
  const T even4 = a0 + T(4) * a2 + T(16) * a4, odd4 = T(2) * a1 + T(8) * a3;
  out[0] = T(0.25) * a0;
  out[1] = T(-1.0 / 6) * (even + odd);
  out[2] = T(-1.0 / 6) * (even - odd);
  out[3] = T(1.0 / 24) * (even4 + odd4);
  out[4] = T(1.0 / 24) * (even4 - odd4);
  out[5] = a4;
}

// U_k (o, i) for k = 0..35 (U + k plane_stride(Co Ci), row-major (Co, Ci)):
// U = G g G^T with g = w[o][i] (w is (Co, Ci, 5, 5)).
template <typename T>
void transform_weights(const T* w, int64_t Co, int64_t Ci, T* U) {
  constexpr int64_t L = 16;  // values of i per block, in vector lanes
  const int64_t plane = plane_stride(Co * Ci);
  parallel_for(Co, Ci * 200, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t i0 = 0; i0 < Ci; i0 += L) {
        const int64_t n = std::min(L, Ci - i0);
        // The 25 taps of filters (o, i0..i0+L) as 25 rows of L (zero past
        // Ci), so the transform runs over i in vector lanes.
        T g[25][L] = {};
        const T* src = w + (o * Ci + i0) * 25;
        for (int64_t l = 0; l < n; ++l)
          for (int tap = 0; tap < 25; ++tap) g[tap][l] = src[l * 25 + tap];
        T u[36][L];
        for (int64_t l = 0; l < L; ++l) {
          T t[6][5];  // G g: column c of g -> column c of t
          for (int c = 0; c < 5; ++c) {
            T col[6];
            g_apply(g[c][l], g[5 + c][l], g[10 + c][l], g[15 + c][l], g[20 + c][l], col);
            for (int r = 0; r < 6; ++r) t[r][c] = col[r];
          }
          for (int r = 0; r < 6; ++r) {  // (G g) G^T, row by row
            T row[6];
            g_apply(t[r][0], t[r][1], t[r][2], t[r][3], t[r][4], row);
            for (int c = 0; c < 6; ++c) u[6 * r + c][l] = row[c];
          }
        }
        for (int k = 0; k < 36; ++k) std::memcpy(U + k * plane + o * Ci + i0, u[k], static_cast<size_t>(n) * sizeof(T));
      }
    }
  });
}

// G^T applied to 6 values -> 5 (the weight gradient's transform back).
template <typename T>
inline void gt_apply(T s0, T s1, T s2, T s3, T s4, T s5, T out[5]) {
  const T p = s1 + s2, q = s2 - s1, r = s3 + s4, s = s3 - s4;
  out[0] = T(0.25) * s0 - T(1.0 / 6) * p + T(1.0 / 24) * r;
  out[1] = T(1.0 / 6) * q + T(1.0 / 12) * s;
  out[2] = T(1.0 / 6) * (r - p);
  out[3] = T(1.0 / 6) * q + T(1.0 / 3) * s;
  out[4] = T(-1.0 / 6) * p + T(2.0 / 3) * r + s5;
}

// dw (Co, Ci, 5, 5) = G^T S G with S_k = S + k plane_stride(Co Ci) (Co, Ci).
template <typename T>
void weights_back(const T* S, int64_t Co, int64_t Ci, T* dw) {
  constexpr int64_t L = 16;
  const int64_t plane = plane_stride(Co * Ci);
  parallel_for(Co, Ci * 200, [&](int64_t o0, int64_t o1) {
    T out[L][25];
    for (int64_t o = o0; o < o1; ++o) {
      for (int64_t i0 = 0; i0 < Ci; i0 += L) {
        const int64_t n = std::min(L, Ci - i0);
        T s[36][L] = {};
        for (int k = 0; k < 36; ++k) std::memcpy(s[k], S + k * plane + o * Ci + i0, static_cast<size_t>(n) * sizeof(T));
        for (int64_t l = 0; l < L; ++l) {
          T t[5][6];  // G^T S: column c
          for (int c = 0; c < 6; ++c) {
            T col[5];
            gt_apply(s[c][l], s[6 + c][l], s[12 + c][l], s[18 + c][l], s[24 + c][l], s[30 + c][l], col);
            for (int r = 0; r < 5; ++r) t[r][c] = col[r];
          }
          for (int r = 0; r < 5; ++r) {
            T row[5];
            gt_apply(t[r][0], t[r][1], t[r][2], t[r][3], t[r][4], t[r][5], row);
            for (int c = 0; c < 5; ++c) out[l][5 * r + c] = row[c];
          }
        }
        std::memcpy(dw + (o * Ci + i0) * 25, out, static_cast<size_t>(n * 25) * sizeof(T));
      }
    }
  });
}

// ---- the data transforms (cloned; powers of two only) ----

// B^T applied to 6 values.
template <typename T>
inline void bt_apply(T d0, T d1, T d2, T d3, T d4, T d5, T& e0, T& e1, T& e2, T& e3, T& e4, T& e5) {
  const T four_d2 = T(4) * d2, four_d1 = T(4) * d1;
  const T a = d4 - four_d2, b = d3 - four_d1, c = d4 - d2, d = T(2) * (d3 - d1);
  e0 = (T(4) * d0 + d4) - (four_d2 + d2);
  e1 = a + b;
  e2 = a - b;
  e3 = c + d;
  e4 = c - d;
  e5 = (four_d1 + d5) - (T(4) * d3 + d3);
}

// V_k (Ci, nt) for the tiles of rows [r0, r1) (nt = (r1 - r0) tw, V_k = V +
// k plane_stride(Ci nt)): V = B^T d B; channels [c0, c1).
template <typename T>
inline void input_channels(const Problem& p, const T* x, int64_t r0, int64_t r1, T* V, int64_t c0, int64_t c1) {
  const int64_t nt = (r1 - r0) * p.tw, Wp = 2 * p.tw + 4, stride_k = plane_stride(p.Ci * nt);
  const int64_t x_lo = std::clamp<int64_t>(p.pw, 0, Wp), x_hi = std::clamp<int64_t>(p.W + p.pw, x_lo, Wp);
  T* d = scratch<T>(Scratch::WinogradRows, static_cast<size_t>(12 * Wp));  // 6 padded rows, then B^T d's 6
  T* e = d + 6 * Wp;
  for (int64_t ci = c0; ci < c1; ++ci) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / p.th, ty = r % p.th;
      const T* plane = x + (n * p.Ci + ci) * p.H * p.W;
      for (int64_t k = 0; k < 6; ++k) {
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
      const T *d0 = d, *d1 = d + Wp, *d2 = d + 2 * Wp, *d3 = d + 3 * Wp, *d4 = d + 4 * Wp, *d5 = d + 5 * Wp;
      T *e0 = e, *e1 = e + Wp, *e2 = e + 2 * Wp, *e3 = e + 3 * Wp, *e4 = e + 4 * Wp, *e5 = e + 5 * Wp;
      for (int64_t c = 0; c < Wp; ++c)  // B^T d, whole rows at a time
        bt_apply(d0[c], d1[c], d2[c], d3[c], d4[c], d5[c], e0[c], e1[c], e2[c], e3[c], e4[c], e5[c]);
      T* out = V + ci * nt + (r - r0) * p.tw;
      for (int64_t i = 0; i < 6; ++i) {  // (B^T d) B, tile by tile
        const T* er = e + i * Wp;
        T* v = out + 6 * i * stride_k;
        for (int64_t tx = 0; tx < p.tw; ++tx) {
          const T* s = er + 2 * tx;
          T v0, v1, v2, v3, v4, v5;
          bt_apply(s[0], s[1], s[2], s[3], s[4], s[5], v0, v1, v2, v3, v4, v5);
          v[tx] = v0;
          v[stride_k + tx] = v1;
          v[2 * stride_k + tx] = v2;
          v[3 * stride_k + tx] = v3;
          v[4 * stride_k + tx] = v4;
          v[5 * stride_k + tx] = v5;
        }
      }
    }
  }
}

// y for rows [r0, r1), channels [o0, o1), from M_k (Co, nt): Y = A^T m A plus
// the bias; partial tiles write only their inside.
template <typename T>
inline void output_channels(const Problem& p, const T* M, const T* bias, int64_t r0, int64_t r1, T* y, int64_t o0,
                            int64_t o1) {
  const int64_t nt = (r1 - r0) * p.tw, stride_k = plane_stride(p.Co * nt), Wt = 2 * p.tw;
  T* rows = scratch<T>(Scratch::WinogradRows, static_cast<size_t>(2 * Wt));
  T *y0 = rows, *y1 = rows + Wt;
  for (int64_t co = o0; co < o1; ++co) {
    const T bv = bias ? bias[co] : T(0);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / p.th, ty = r % p.th;
      const T* m = M + co * nt + (r - r0) * p.tw;
      for (int64_t tx = 0; tx < p.tw; ++tx) {
        T s0[6], s1[6];  // A^T m: rows 0 and 1
        for (int j = 0; j < 6; ++j) {
          const T a = m[j * stride_k + tx], b = m[(6 + j) * stride_k + tx], c = m[(12 + j) * stride_k + tx],
                  d = m[(18 + j) * stride_k + tx], e = m[(24 + j) * stride_k + tx], f = m[(30 + j) * stride_k + tx];
          s0[j] = a + b + c + d + e;
          s1[j] = (b - c) + T(2) * (d - e) + f;
        }
        y0[2 * tx] = s0[0] + s0[1] + s0[2] + s0[3] + s0[4] + bv;
        y0[2 * tx + 1] = (s0[1] - s0[2]) + T(2) * (s0[3] - s0[4]) + s0[5] + bv;
        y1[2 * tx] = s1[0] + s1[1] + s1[2] + s1[3] + s1[4] + bv;
        y1[2 * tx + 1] = (s1[1] - s1[2]) + T(2) * (s1[3] - s1[4]) + s1[5] + bv;
      }
      T* dst = y + ((n * p.Co + co) * p.Ho + 2 * ty) * p.Wo;
      std::memcpy(dst, y0, static_cast<size_t>(p.Wo) * sizeof(T));
      if (2 * ty + 1 < p.Ho) std::memcpy(dst + p.Wo, y1, static_cast<size_t>(p.Wo) * sizeof(T));
    }
  }
}

// D_k (Co, nt) = A dy_t A^T for the tiles of rows [r0, r1), channels [o0,
// o1) of dy (N, Co, Ho, Wo); outputs past Ho, Wo count as zero.
template <typename T>
inline void grad_channels(const Problem& p, const T* dy, int64_t r0, int64_t r1, T* D, int64_t o0, int64_t o1) {
  const int64_t nt = (r1 - r0) * p.tw, stride_k = plane_stride(p.Co * nt), Wt = 2 * p.tw;
  T* rows = scratch<T>(Scratch::WinogradRows, static_cast<size_t>(2 * Wt));
  T *g0 = rows, *g1 = rows + Wt;
  for (int64_t co = o0; co < o1; ++co) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / p.th, ty = r % p.th;
      const T* src = dy + ((n * p.Co + co) * p.Ho + 2 * ty) * p.Wo;
      std::memcpy(g0, src, static_cast<size_t>(p.Wo) * sizeof(T));
      std::fill(g0 + p.Wo, g0 + Wt, T(0));
      if (2 * ty + 1 < p.Ho) {
        std::memcpy(g1, src + p.Wo, static_cast<size_t>(p.Wo) * sizeof(T));
        std::fill(g1 + p.Wo, g1 + Wt, T(0));
      } else {
        std::fill(g1, g1 + Wt, T(0));
      }
      T* out = D + co * nt + (r - r0) * p.tw;
      for (int64_t tx = 0; tx < p.tw; ++tx) {
        const T a = g0[2 * tx], b = g0[2 * tx + 1], c = g1[2 * tx], d = g1[2 * tx + 1];
        // A (a c)^T and A (b d)^T: A's rows are (1 0), (1 1), (1 -1), (1 2), (1 -2), (0 1).
        const T ca[6] = {a, a + c, a - c, a + T(2) * c, a - T(2) * c, c};
        const T cb[6] = {b, b + d, b - d, b + T(2) * d, b - T(2) * d, d};
        for (int i = 0; i < 6; ++i) {
          T* o = out + 6 * i * stride_k + tx;
          const T u = ca[i], v = cb[i];
          o[0] = u;
          o[stride_k] = u + v;
          o[2 * stride_k] = u - v;
          o[3 * stride_k] = u + T(2) * v;
          o[4 * stride_k] = u - T(2) * v;
          o[5 * stride_k] = v;
        }
      }
    }
  }
}

// B applied to 6 values (the adjoint of bt_apply), accumulated into z.
template <typename T>
inline void b_apply_add(T v0, T v1, T v2, T v3, T v4, T v5, T* z, int64_t s) {
  const T p = v1 + v2, q = v2 - v1, r = v3 + v4, d = v3 - v4;
  z[0] += T(4) * v0;
  z[s] += (T(4) * q - T(2) * d) + T(4) * v5;
  z[2 * s] -= (T(4) * v0 + v0) + T(4) * p + r;
  z[3 * s] += (T(2) * d - q) - (T(4) * v5 + v5);
  z[4 * s] += v0 + p + r;
  z[5 * s] += v5;
}

// The data gradient by the adjoint of the forward: for the tiles of rows
// [r0, r1) and channels [c0, c1) of x's shape (N, Ci, H, W), adds B m B^T
// (6x6, m from the planes M_k (Ci, nt)) into dx at the tile's input window;
// windows overlap by 4 rows and columns, padding is dropped.
template <typename T>
inline void data_channels(const Problem& p, const T* M, int64_t r0, int64_t r1, T* dx, int64_t c0, int64_t c1) {
  const int64_t nt = (r1 - r0) * p.tw, Wp = 2 * p.tw + 4, stride_k = plane_stride(p.Ci * nt);
  const int64_t x_lo = std::clamp<int64_t>(p.pw, 0, Wp), x_hi = std::clamp<int64_t>(p.W + p.pw, x_lo, Wp);
  T* e = scratch<T>(Scratch::WinogradRows, static_cast<size_t>(12 * Wp));  // 6 rows after B over j, then over i
  T* f = e + 6 * Wp;
  for (int64_t ci = c0; ci < c1; ++ci) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / p.th, ty = r % p.th;
      std::fill(e, e + 12 * Wp, T(0));
      const T* m = M + ci * nt + (r - r0) * p.tw;
      for (int64_t i = 0; i < 6; ++i) {  // m B^T, tile by tile, overlapping by 4 columns
        T* er = e + i * Wp;
        const T* mi = m + 6 * i * stride_k;
        for (int64_t tx = 0; tx < p.tw; ++tx)
          b_apply_add(mi[tx], mi[stride_k + tx], mi[2 * stride_k + tx], mi[3 * stride_k + tx], mi[4 * stride_k + tx],
                      mi[5 * stride_k + tx], er + 2 * tx, 1);
      }
      for (int64_t c = 0; c < Wp; ++c)  // B (m B^T), whole rows at a time
        b_apply_add(e[c], e[Wp + c], e[2 * Wp + c], e[3 * Wp + c], e[4 * Wp + c], e[5 * Wp + c], f + c, Wp);
      T* plane = dx + (n * p.Ci + ci) * p.H * p.W;
      for (int64_t k = 0; k < 6; ++k) {
        const int64_t ih = 2 * ty - p.ph + k;
        if (ih < 0 || ih >= p.H) continue;
        T* dst = plane + ih * p.W - p.pw;
        const T* fr = f + k * Wp;
        for (int64_t c = x_lo; c < x_hi; ++c) dst[c] += fr[c];
      }
    }
  }
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NEURN_WINOGRAD5_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), flatten))
#else
#define NEURN_WINOGRAD5_CLONES
#endif

NEURN_WINOGRAD5_CLONES void input_f32(const Problem& p, const float* x, int64_t r0, int64_t r1, float* V, int64_t c0,
                                      int64_t c1) {
  input_channels<float>(p, x, r0, r1, V, c0, c1);
}
NEURN_WINOGRAD5_CLONES void input_f64(const Problem& p, const double* x, int64_t r0, int64_t r1, double* V,
                                      int64_t c0, int64_t c1) {
  input_channels<double>(p, x, r0, r1, V, c0, c1);
}
NEURN_WINOGRAD5_CLONES void output_f32(const Problem& p, const float* M, const float* bias, int64_t r0, int64_t r1,
                                       float* y, int64_t o0, int64_t o1) {
  output_channels<float>(p, M, bias, r0, r1, y, o0, o1);
}
NEURN_WINOGRAD5_CLONES void output_f64(const Problem& p, const double* M, const double* bias, int64_t r0, int64_t r1,
                                       double* y, int64_t o0, int64_t o1) {
  output_channels<double>(p, M, bias, r0, r1, y, o0, o1);
}
NEURN_WINOGRAD5_CLONES void grad_f32(const Problem& p, const float* dy, int64_t r0, int64_t r1, float* D, int64_t o0,
                                     int64_t o1) {
  grad_channels<float>(p, dy, r0, r1, D, o0, o1);
}
NEURN_WINOGRAD5_CLONES void grad_f64(const Problem& p, const double* dy, int64_t r0, int64_t r1, double* D,
                                     int64_t o0, int64_t o1) {
  grad_channels<double>(p, dy, r0, r1, D, o0, o1);
}
NEURN_WINOGRAD5_CLONES void data_f32(const Problem& p, const float* M, int64_t r0, int64_t r1, float* dx, int64_t c0,
                                     int64_t c1) {
  data_channels<float>(p, M, r0, r1, dx, c0, c1);
}
NEURN_WINOGRAD5_CLONES void data_f64(const Problem& p, const double* M, int64_t r0, int64_t r1, double* dx,
                                     int64_t c0, int64_t c1) {
  data_channels<double>(p, M, r0, r1, dx, c0, c1);
}
inline void data_any(const Problem& p, const float* M, int64_t r0, int64_t r1, float* dx, int64_t c0, int64_t c1) {
  data_f32(p, M, r0, r1, dx, c0, c1);
}
inline void data_any(const Problem& p, const double* M, int64_t r0, int64_t r1, double* dx, int64_t c0, int64_t c1) {
  data_f64(p, M, r0, r1, dx, c0, c1);
}
inline void input_any(const Problem& p, const float* x, int64_t r0, int64_t r1, float* V, int64_t c0, int64_t c1) {
  input_f32(p, x, r0, r1, V, c0, c1);
}
inline void input_any(const Problem& p, const double* x, int64_t r0, int64_t r1, double* V, int64_t c0, int64_t c1) {
  input_f64(p, x, r0, r1, V, c0, c1);
}
inline void output_any(const Problem& p, const float* M, const float* b, int64_t r0, int64_t r1, float* y, int64_t o0,
                       int64_t o1) {
  output_f32(p, M, b, r0, r1, y, o0, o1);
}
inline void output_any(const Problem& p, const double* M, const double* b, int64_t r0, int64_t r1, double* y,
                       int64_t o0, int64_t o1) {
  output_f64(p, M, b, r0, r1, y, o0, o1);
}
inline void grad_any(const Problem& p, const float* dy, int64_t r0, int64_t r1, float* D, int64_t o0, int64_t o1) {
  grad_f32(p, dy, r0, r1, D, o0, o1);
}
inline void grad_any(const Problem& p, const double* dy, int64_t r0, int64_t r1, double* D, int64_t o0, int64_t o1) {
  grad_f64(p, dy, r0, r1, D, o0, o1);
}

// Tile rows per chunk: V and M (or D) together within about kMaxBytes, but
// at least kMinTiles tiles so each gemm has columns enough, and one row.
int64_t chunk_rows(const Problem& p, size_t elem) {
  constexpr int64_t kMaxBytes = int64_t{1} << 20, kMinTiles = 128;
  const int64_t per_row = kPlanes * (p.Ci + p.Co) * p.tw * static_cast<int64_t>(elem);
  const int64_t by_bytes = kMaxBytes / std::max<int64_t>(per_row, 1), by_tiles = (kMinTiles + p.tw - 1) / p.tw;
  return std::max<int64_t>({1, by_bytes, by_tiles});
}

constexpr int64_t kMinFlopsPerThread = int64_t{4} << 20;
constexpr int64_t kMinTilesPerThread = 64;

// Runs one(k) for k = 0..35: on the caller's threads when outside the pool
// and the work is large enough (single-threaded gemms, 36 / threads each).
template <typename F>
void each_plane(int64_t flops, F&& one) {
  const int64_t threads =
      in_parallel_region() ? 1 : std::min<int64_t>({num_threads(), kPlanes, flops / kMinFlopsPerThread});
  if (threads <= 1) {
    for (int64_t k = 0; k < kPlanes; ++k) one(k);
    return;
  }
  SingleThreadedBlas single;
  run_on_threads(threads, [&](int64_t t) {
    for (int64_t k = t; k < kPlanes; k += threads) one(k);
  });
}

// Forward rows [r0, r1): chunk by chunk, transform, 36 gemms, transform back.
template <typename T>
void forward_rows(const Problem& p, const T* x, const T* U, const T* bias, T* y, int64_t r0, int64_t r1) {
  const int64_t per = std::min(chunk_rows(p, sizeof(T)), r1 - r0);
  T* V = scratch<T>(Scratch::WinogradV, static_cast<size_t>(kPlanes * plane_stride(p.Ci * per * p.tw)));
  T* M = scratch<T>(Scratch::WinogradM, static_cast<size_t>(kPlanes * plane_stride(p.Co * per * p.tw)));
  for (int64_t c0 = r0; c0 < r1; c0 += per) {
    const int64_t c1 = std::min(r1, c0 + per), nt = (c1 - c0) * p.tw;
    parallel_for(p.Ci, nt * 150, [&](int64_t a, int64_t b) { input_any(p, x, c0, c1, V, a, b); });
    each_plane(2 * kPlanes * p.Co * p.Ci * nt, [&](int64_t k) {
      gemm(false, false, p.Co, nt, p.Ci, T(1), U + k * plane_stride(p.Co * p.Ci), p.Ci,
           V + k * plane_stride(p.Ci * nt), nt, T(0), M + k * plane_stride(p.Co * nt), nt);
    });
    parallel_for(p.Co, nt * 100, [&](int64_t a, int64_t b) { output_any(p, M, bias, c0, c1, y, a, b); });
  }
}

// Threads that split the rows: one per core when each gets kMinTilesPerThread
// tiles and enough work; else 1 (the chunk's loops then use every core).
int64_t row_threads(const Problem& p) {
  const int64_t rows = p.rows(), tiles = rows * p.tw, flops = 2 * kPlanes * p.Co * p.Ci * tiles;
  if (in_parallel_region()) return 1;
  return std::max<int64_t>(1, std::min<int64_t>({num_threads(), flops / kMinFlopsPerThread,
                                                 tiles / kMinTilesPerThread, rows}));
}

inline void split(int64_t n, int64_t parts, int64_t t, int64_t& begin, int64_t& end) {
  const int64_t per = n / parts, extra = n % parts;
  begin = t * per + std::min(t, extra);
  end = begin + per + (t < extra ? 1 : 0);
}

template <typename T>
void run_forward(const Problem& p, const T* x, const T* U, const T* bias, T* y) {
  const int64_t threads = row_threads(p);
  if (threads <= 1) {
    forward_rows(p, x, U, bias, y, 0, p.rows());
    return;
  }
  SingleThreadedBlas single;
  run_on_threads(threads, [&](int64_t t) {
    int64_t a, b;
    split(p.rows(), threads, t, a, b);
    forward_rows(p, x, U, bias, y, a, b);
  });
}

// Weight gradient of rows [r0, r1): S_k (Co, Ci) = sum over their tiles of
// D_k V_k^T, overwritten.
template <typename T>
void weight_rows(const Problem& p, const T* x, const T* dy, T* S, int64_t r0, int64_t r1) {
  const int64_t per = std::min(chunk_rows(p, sizeof(T)), r1 - r0);
  T* V = scratch<T>(Scratch::WinogradV, static_cast<size_t>(kPlanes * plane_stride(p.Ci * per * p.tw)));
  T* D = scratch<T>(Scratch::WinogradM, static_cast<size_t>(kPlanes * plane_stride(p.Co * per * p.tw)));
  for (int64_t c0 = r0; c0 < r1; c0 += per) {
    const int64_t c1 = std::min(r1, c0 + per), nt = (c1 - c0) * p.tw;
    const T beta = c0 == r0 ? T(0) : T(1);
    parallel_for(p.Ci, nt * 150, [&](int64_t a, int64_t b) { input_any(p, x, c0, c1, V, a, b); });
    parallel_for(p.Co, nt * 100, [&](int64_t a, int64_t b) { grad_any(p, dy, c0, c1, D, a, b); });
    each_plane(2 * kPlanes * p.Co * p.Ci * nt, [&](int64_t k) {
      gemm(false, true, p.Co, p.Ci, nt, T(1), D + k * plane_stride(p.Co * nt), nt, V + k * plane_stride(p.Ci * nt),
           nt, beta, S + k * plane_stride(p.Co * p.Ci), p.Ci);
    });
  }
}

// Data gradient of rows [r0, r1), whole images: D = A dy A^T, the 36 gemms
// M_k (Ci, nt) = U_k^T D_k with the forward's U, then B m B^T added into dx.
template <typename T>
void data_rows(const Problem& p, const T* dy, const T* U, T* dx, int64_t r0, int64_t r1) {
  const int64_t per = std::min(chunk_rows(p, sizeof(T)), r1 - r0);
  T* D = scratch<T>(Scratch::WinogradV, static_cast<size_t>(kPlanes * plane_stride(p.Co * per * p.tw)));
  T* M = scratch<T>(Scratch::WinogradM, static_cast<size_t>(kPlanes * plane_stride(p.Ci * per * p.tw)));
  const int64_t n0 = r0 / p.th, n1 = (r1 + p.th - 1) / p.th;
  std::fill(dx + n0 * p.Ci * p.H * p.W, dx + n1 * p.Ci * p.H * p.W, T(0));
  for (int64_t c0 = r0; c0 < r1; c0 += per) {
    const int64_t c1 = std::min(r1, c0 + per), nt = (c1 - c0) * p.tw;
    parallel_for(p.Co, nt * 100, [&](int64_t a, int64_t b) { grad_any(p, dy, c0, c1, D, a, b); });
    each_plane(2 * kPlanes * p.Co * p.Ci * nt, [&](int64_t k) {
      gemm(true, false, p.Ci, nt, p.Co, T(1), U + k * plane_stride(p.Co * p.Ci), p.Ci,
           D + k * plane_stride(p.Co * nt), nt, T(0), M + k * plane_stride(p.Ci * nt), nt);
    });
    parallel_for(p.Ci, nt * 150, [&](int64_t a, int64_t b) { data_any(p, M, c0, c1, dx, a, b); });
  }
}

}  // namespace

template <typename T>
void winograd5_conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  NEURN_CHECK(winograd5_applicable(g), "conv2d (Winograd 5x5): needs a 5x5 kernel, stride 1, dilation 1 and groups 1, "
              "got ", g.kh, "x", g.kw, ", stride (", g.sh, ", ", g.sw, "), dilation (", g.dh, ", ", g.dw, "), groups ",
              g.groups);
  const Problem p = make_problem(g.N, g.C, g.H, g.W, g.Cout, g.ph, g.pw, g.Ho, g.Wo);
  T* U = scratch<T>(Scratch::WinogradU, static_cast<size_t>(kPlanes * plane_stride(g.Cout * g.C)));
  transform_weights(w, g.Cout, g.C, U);
  run_forward(p, x, U, bias, y);
}

template <typename T>
void winograd5_conv2d_backward_data(const ConvGeom& g, const T* w, const T* dy, T* dx) {
  NEURN_CHECK(winograd5_applicable(g), "conv2d backward (Winograd 5x5): needs a 5x5 kernel, stride 1, dilation 1 and "
              "groups 1, got ", g.kh, "x", g.kw, ", stride (", g.sh, ", ", g.sw, "), dilation (", g.dh, ", ", g.dw,
              "), groups ", g.groups);
  // The forward's tiles (over its output), run backwards; threads split the
  // images (their input windows overlap within an image, not across).
  const Problem p = make_problem(g.N, g.C, g.H, g.W, g.Cout, g.ph, g.pw, g.Ho, g.Wo);
  T* U = scratch<T>(Scratch::WinogradU, static_cast<size_t>(kPlanes * plane_stride(g.Cout * g.C)));
  transform_weights(w, g.Cout, g.C, U);
  const int64_t threads = std::min(row_threads(p), g.N);
  if (threads <= 1) {
    data_rows(p, dy, U, dx, 0, p.rows());
    return;
  }
  SingleThreadedBlas single;
  run_on_threads(threads, [&](int64_t t) {
    int64_t a, b;
    split(g.N, threads, t, a, b);
    data_rows(p, dy, U, dx, a * p.th, b * p.th);
  });
}

template <typename T>
void winograd5_conv2d_backward_weight(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  NEURN_CHECK(winograd5_applicable(g), "conv2d weight gradient (Winograd 5x5): needs a 5x5 kernel, stride 1, dilation "
              "1 and groups 1, got ", g.kh, "x", g.kw, ", stride (", g.sh, ", ", g.sw, "), dilation (", g.dh, ", ",
              g.dw, "), groups ", g.groups);
  const Problem p = make_problem(g.N, g.C, g.H, g.W, g.Cout, g.ph, g.pw, g.Ho, g.Wo);
  const int64_t planes = kPlanes * plane_stride(g.Cout * g.C);
  const int64_t threads = row_threads(p);
  // One set of 36 sums per task (a thread may run several), in the caller's
  // scratch; task 0's receives the others'.
  T* S = scratch<T>(Scratch::WinogradU, static_cast<size_t>(threads * planes));
  if (threads <= 1) {
    weight_rows(p, x, dy, S, 0, p.rows());
  } else {
    {
      SingleThreadedBlas single;
      run_on_threads(threads, [&](int64_t t) {
        int64_t a, b;
        split(p.rows(), threads, t, a, b);
        weight_rows(p, x, dy, S + t * planes, a, b);
      });
    }
    parallel_for(planes, threads, [&](int64_t a, int64_t b) {
      for (int64_t t = 1; t < threads; ++t) {
        const T* src = S + t * planes;
        for (int64_t i = a; i < b; ++i) S[i] += src[i];
      }
    });
  }
  weights_back(S, g.Cout, g.C, dw);
}

template void winograd5_conv2d_forward<float>(const ConvGeom&, const float*, const float*, const float*, float*);
template void winograd5_conv2d_forward<double>(const ConvGeom&, const double*, const double*, const double*, double*);
template void winograd5_conv2d_backward_data<float>(const ConvGeom&, const float*, const float*, float*);
template void winograd5_conv2d_backward_data<double>(const ConvGeom&, const double*, const double*, double*);
template void winograd5_conv2d_backward_weight<float>(const ConvGeom&, const float*, const float*, float*);
template void winograd5_conv2d_backward_weight<double>(const ConvGeom&, const double*, const double*, double*);

}  // namespace neurn::cpu
