#include "framework/ops/conv_cpu.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "framework/ops/conv_hwcn_cpu.h"
#include "framework/ops/conv_winograd_cpu.h"
#include "framework/ops/denormals_cpu.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/scratch_cpu.h"

namespace neurn::cpu {

namespace {

// Output positions o in [0, out) whose input index o * stride + off lies in
// [0, in): returns [lo, hi).
inline void valid_range(int64_t out, int64_t stride, int64_t off, int64_t in, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = in - 1 - off < 0 ? 0 : (in - 1 - off) / stride + 1;
  hi = std::min(hi, out);
  lo = std::min(lo, hi);
}

bool is_pointwise(const ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

// Images per chunk: enough gemm columns (256) that packing the weights (once
// per gemm) is amortised and the product runs near peak, bounded so the
// column buffer stays within a few MB. Fewer columns than the 1024 of before
// keep a chunk's columns in a core's L2 (2 MB here) between im2col and the
// gemms: the digits ConvNet's conv2 (K = 1600) went from 11 images (7 MB) to
// 3 (1.9 MB) per chunk and its backward from 88 to 55-58 ms on one thread,
// while the products alone run as fast at 256 columns as at 1024 (bench gemm
// --shape 128x300x1600 against 128x1100x1600). A pointwise conv over a large map is a full
// gemm on each image's own data (x is its column matrix); over a small one
// (deep layers at 32x32 inputs: 4x4 down to 1x1) per-image gemms of a few
// columns spend their time packing, so images are batched like the others
// (im2col is then just the (b, C, P) -> (C, b, P) transpose).
int64_t chunk_images(const ConvGeom& g, size_t elem) {
  constexpr int64_t kMinColumns = 256;
  if (is_pointwise(g) && g.P() >= kMinColumns) return 1;
  constexpr int64_t kMaxColBytes = int64_t{8} << 20;
  int64_t b = (kMinColumns + g.P() - 1) / g.P();
  int64_t per_image = g.C * g.kh * g.kw * g.P() * static_cast<int64_t>(elem);
  b = std::min(b, std::max<int64_t>(1, kMaxColBytes / std::max<int64_t>(per_image, 1)));
  return std::clamp<int64_t>(b, 1, g.N);
}

// How a range of n images is cut into chunks: `count` runs of nearly equal
// size (at most `max` images). With chunk_images' B the count is n / B
// rounded down, so that no chunk is a small remainder (a split batch of 32 on
// 3x3 maps was 29 + 3 images, the 3-image gemm of 27 columns repacking the
// whole weight for little work), unless that would take the column buffer
// past its bound, then rounded up.
struct ChunkPlan {
  int64_t count, max;
  int64_t begin(int64_t i, int64_t n0, int64_t n) const { return n0 + i * n / count; }
};
ChunkPlan chunk_plan(const ConvGeom& g, size_t elem, int64_t n) {
  const int64_t B = std::min(chunk_images(g, elem), n);
  int64_t count = std::max<int64_t>(1, n / B);
  const int64_t per_image = g.C * g.kh * g.kw * g.P() * static_cast<int64_t>(elem);
  constexpr int64_t kMaxColBytes = int64_t{8} << 20;
  if ((n + count - 1) / count > B && (n + count - 1) / count * per_image > kMaxColBytes) count = (n + B - 1) / B;
  return {count, (n + count - 1) / count};
}

// Below these output widths, the depthwise loops and im2col / col2im go
// through a table of source offsets instead of row by row: on the small maps
// of deep layers (4x4 down to 1x1) the per-row bookkeeping costs more than
// the copies themselves. Measured alone on one thread (noisy machine), the
// two are even on 8x8 maps (table 0.33-0.50, rows 0.41-0.43 ms per chunk)
// and the rows win from 10 wide (the digits ConvNet's 10x10: 0.19-0.29
// against 0.24-0.35 ms; 32x32: 0.17-0.26 against 0.42 ms).
constexpr int64_t kTableMaxWo = 16;
constexpr int64_t kIm2colTableMaxWo = 8;

// For each tap t = i kw + j and output position p: the offset in the input
// plane that col row (c, t) reads at column p, or -1 where it is padding.
std::vector<int32_t> tap_offsets(const ConvGeom& g) {
  std::vector<int32_t> table(static_cast<size_t>(g.kh * g.kw * g.P()));
  int32_t* o = table.data();
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j)
      for (int64_t oh = 0; oh < g.Ho; ++oh)
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
          *o++ = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? static_cast<int32_t>(ih * g.W + iw) : -1;
        }
  return table;
}

// The row-by-row im2col and col2im (maps at least kIm2colTableMaxWo wide):
// each output row of a tap is a run of at most Wo consecutive input values
// (stride 1) between the zeros of the padding. The runs are short (8 to 32
// values on these networks), so the vector width matters: clones for AVX-512
// and AVX2 took conv2 of the digits ConvNet (64 channels, 14x14, 5x5) from
// 0.25-0.38 to 0.19-0.29 ms per 3-image chunk.
#define NEURN_CONV_ROWS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// Rows [r0, r1) of col (C kh kw, B P) from images x[0..B).
template <typename T>
NEURN_CONV_ROWS_CLONES void im2col_rows(const ConvGeom& g, const T* x, int64_t B, T* col, int64_t r0, int64_t r1) {
  const int64_t P = g.P(), BP = B * P, kk = g.kh * g.kw, HW = g.H * g.W;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t c = r / kk, i = (r / g.kw) % g.kh, j = r % g.kw;
    const int64_t offw = j * g.dw - g.pw, offh = i * g.dh - g.ph;
    int64_t lo, hi, oh_lo, oh_hi;  // the output columns and rows that read inside the input
    valid_range(g.Wo, g.sw, offw, g.W, lo, hi);
    valid_range(g.Ho, g.sh, offh, g.H, oh_lo, oh_hi);
    for (int64_t b = 0; b < B; ++b) {
      const T* src = x + (b * g.C + c) * HW + offw;
      T* dst = col + r * BP + b * P;
      std::fill(dst, dst + oh_lo * g.Wo, T(0));
      for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
        const T* s = src + (oh * g.sh + offh) * g.W;
        T* d = dst + oh * g.Wo;
        for (int64_t ow = 0; ow < lo; ++ow) d[ow] = T(0);
        if (g.sw == 1) {
          for (int64_t ow = lo; ow < hi; ++ow) d[ow] = s[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) d[ow] = s[ow * g.sw];
        }
        for (int64_t ow = hi; ow < g.Wo; ++ow) d[ow] = T(0);
      }
      std::fill(dst + oh_hi * g.Wo, dst + P, T(0));
    }
  }
}

// One input plane dst (H, W) += col2im of its kh kw rows of dcol, the first
// at src, each ld apart.
template <typename T>
NEURN_CONV_ROWS_CLONES void col2im_plane_rows(const ConvGeom& g, const T* src, int64_t ld, T* dst) {
  for (int64_t i = 0; i < g.kh; ++i) {
    for (int64_t j = 0; j < g.kw; ++j, src += ld) {
      const int64_t offw = j * g.dw - g.pw, offh = i * g.dh - g.ph;
      int64_t lo, hi, oh_lo, oh_hi;
      valid_range(g.Wo, g.sw, offw, g.W, lo, hi);
      valid_range(g.Ho, g.sh, offh, g.H, oh_lo, oh_hi);
      for (int64_t oh = oh_lo; oh < oh_hi; ++oh) {
        T* d = dst + (oh * g.sh + offh) * g.W + offw;
        const T* s = src + oh * g.Wo;
        if (g.sw == 1) {
          for (int64_t ow = lo; ow < hi; ++ow) d[ow] += s[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) d[ow * g.sw] += s[ow];
        }
      }
    }
  }
}

// col (C kh kw, B P) from images x[0..B).
template <typename T>
void im2col(const ConvGeom& g, const T* x, int64_t B, T* col) {
  const int64_t P = g.P(), BP = B * P, kk = g.kh * g.kw;
  if (is_pointwise(g)) {  // just the transpose (B, C, P) -> (C, B, P): whole planes at a time
    parallel_for(g.C, BP, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t b = 0; b < B; ++b)
          std::memcpy(col + c * BP + b * P, x + (b * g.C + c) * P, static_cast<size_t>(P) * sizeof(T));
    });
    return;
  }
  if (g.Wo < kIm2colTableMaxWo) {
    const std::vector<int32_t> table = tap_offsets(g);
    parallel_for(g.C * kk, BP, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int32_t* off = table.data() + (r % kk) * P;
        for (int64_t b = 0; b < B; ++b) {
          const T* src = x + (b * g.C + r / kk) * g.H * g.W;
          T* dst = col + r * BP + b * P;
          for (int64_t p = 0; p < P; ++p) dst[p] = off[p] >= 0 ? src[off[p]] : T(0);
        }
      }
    });
    return;
  }
  parallel_for(g.C * kk, BP, [&](int64_t r0, int64_t r1) { im2col_rows(g, x, B, col, r0, r1); });
}

// dx[0..B) += col2im(dcol); planes are independent, so threads split them.
template <typename T>
void col2im(const ConvGeom& g, const T* dcol, int64_t B, T* dx) {
  const int64_t P = g.P(), BP = B * P, kk = g.kh * g.kw;
  const std::vector<int32_t> table = g.Wo < kIm2colTableMaxWo ? tap_offsets(g) : std::vector<int32_t>();
  parallel_for(B * g.C, kk * P, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      int64_t b = plane / g.C, c = plane % g.C;
      T* dst = dx + plane * g.H * g.W;
      if (is_pointwise(g)) {  // the plane is one contiguous row of dcol
        const T* src = dcol + c * BP + b * P;
        for (int64_t p = 0; p < P; ++p) dst[p] += src[p];
        continue;
      }
      if (!table.empty()) {  // offsets are distinct within a tap
        for (int64_t t = 0; t < kk; ++t) {
          const int32_t* off = table.data() + t * P;
          const T* src = dcol + (c * kk + t) * BP + b * P;
          for (int64_t p = 0; p < P; ++p)
            if (off[p] >= 0) dst[off[p]] += src[p];
        }
        continue;
      }
      col2im_plane_rows(g, dcol + c * kk * BP + b * P, BP, dst);
    }
  });
}

// ---- depthwise: one input channel per output channel (C / groups == 1) ----

template <typename T>
void depthwise_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t P = g.P(), mult = g.Og(), kk = g.kh * g.kw;
  const std::vector<int32_t> table = g.Wo < kTableMaxWo ? tap_offsets(g) : std::vector<int32_t>();
  parallel_for(g.N * g.Cout, P * g.kh * g.kw, [&](int64_t p0, int64_t p1) {
    for (int64_t plane = p0; plane < p1; ++plane) {
      int64_t n = plane / g.Cout, co = plane % g.Cout;
      const T* xp = x + (n * g.C + co / mult) * g.H * g.W;
      T* yp = y + plane * P;
      std::fill(yp, yp + P, bias ? bias[co] : T(0));
      if (!table.empty()) {
        for (int64_t t = 0; t < kk; ++t) {
          const int32_t* off = table.data() + t * P;
          const T wv = w[co * kk + t];
          for (int64_t p = 0; p < P; ++p)
            if (off[p] >= 0) yp[p] += wv * xp[off[p]];
        }
        continue;
      }
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          T wv = w[(co * g.kh + i) * g.kw + j];
          int64_t offw = j * g.dw - g.pw, lo, hi;
          valid_range(g.Wo, g.sw, offw, g.W, lo, hi);
          for (int64_t oh = 0; oh < g.Ho; ++oh) {
            int64_t ih = oh * g.sh - g.ph + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            const T* xr = xp + ih * g.W + offw;
            T* yr = yp + oh * g.Wo;
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * g.sw];
          }
        }
      }
    }
  });
}

template <typename T>
void depthwise_backward(const ConvGeom& g, const T* x, const T* w, const T* dy, T* dx, T* dw) {
  const int64_t P = g.P(), mult = g.Og(), HW = g.H * g.W, kk = g.kh * g.kw;
  const std::vector<int32_t> table = g.Wo < kTableMaxWo ? tap_offsets(g) : std::vector<int32_t>();
  if (dx) {  // each input plane gathers from its `mult` output planes
    parallel_for(g.N * g.C, mult * P * g.kh * g.kw, [&](int64_t p0, int64_t p1) {
      for (int64_t plane = p0; plane < p1; ++plane) {
        int64_t n = plane / g.C, ci = plane % g.C;
        T* dxp = dx + plane * HW;
        std::fill(dxp, dxp + HW, T(0));
        for (int64_t co = ci * mult; co < (ci + 1) * mult; ++co) {
          const T* dyp = dy + (n * g.Cout + co) * P;
          if (!table.empty()) {
            for (int64_t t = 0; t < kk; ++t) {
              const int32_t* off = table.data() + t * P;
              const T wv = w[co * kk + t];
              for (int64_t p = 0; p < P; ++p)
                if (off[p] >= 0) dxp[off[p]] += wv * dyp[p];
            }
            continue;
          }
          for (int64_t i = 0; i < g.kh; ++i) {
            for (int64_t j = 0; j < g.kw; ++j) {
              T wv = w[(co * g.kh + i) * g.kw + j];
              int64_t offw = j * g.dw - g.pw, lo, hi;
              valid_range(g.Wo, g.sw, offw, g.W, lo, hi);
              for (int64_t oh = 0; oh < g.Ho; ++oh) {
                int64_t ih = oh * g.sh - g.ph + i * g.dh;
                if (ih < 0 || ih >= g.H) continue;
                T* xr = dxp + ih * g.W + offw;
                const T* gr = dyp + oh * g.Wo;
                for (int64_t ow = lo; ow < hi; ++ow) xr[ow * g.sw] += wv * gr[ow];
              }
            }
          }
        }
      }
    });
  }
  if (dw) {  // each output channel's taps sum over the batch
    parallel_for(g.Cout, g.N * P * g.kh * g.kw, [&](int64_t c0, int64_t c1) {
      for (int64_t co = c0; co < c1; ++co) {
        if (!table.empty()) {
          for (int64_t t = 0; t < kk; ++t) {
            const int32_t* off = table.data() + t * P;
            T acc = 0;
            for (int64_t n = 0; n < g.N; ++n) {
              const T* xp = x + (n * g.C + co / mult) * HW;
              const T* dyp = dy + (n * g.Cout + co) * P;
              for (int64_t p = 0; p < P; ++p)
                if (off[p] >= 0) acc += dyp[p] * xp[off[p]];
            }
            dw[co * kk + t] = acc;
          }
          continue;
        }
        for (int64_t i = 0; i < g.kh; ++i) {
          for (int64_t j = 0; j < g.kw; ++j) {
            int64_t offw = j * g.dw - g.pw, lo, hi;
            valid_range(g.Wo, g.sw, offw, g.W, lo, hi);
            T acc = 0;
            for (int64_t n = 0; n < g.N; ++n) {
              const T* xp = x + (n * g.C + co / mult) * HW;
              const T* dyp = dy + (n * g.Cout + co) * P;
              for (int64_t oh = 0; oh < g.Ho; ++oh) {
                int64_t ih = oh * g.sh - g.ph + i * g.dh;
                if (ih < 0 || ih >= g.H) continue;
                const T* xr = xp + ih * g.W + offw;
                const T* gr = dyp + oh * g.Wo;
                for (int64_t ow = lo; ow < hi; ++ow) acc += gr[ow] * xr[ow * g.sw];
              }
            }
            dw[(co * g.kh + i) * g.kw + j] = acc;
          }
        }
      }
    });
  }
}

// Forward of images [n_begin, n_end), chunk by chunk.
template <typename T>
void forward_range(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y, int64_t n_begin, int64_t n_end) {
  const int64_t P = g.P(), K = g.K(), Og = g.Og(), Cg = g.Cg(), CHW = g.C * g.H * g.W;
  const ChunkPlan plan = chunk_plan(g, sizeof(T), n_end - n_begin);
  const int64_t B = plan.max;
  const bool pointwise = is_pointwise(g) && B == 1;  // x[n] is its own column matrix
  T* col = pointwise ? nullptr : scratch<T>(Scratch::ConvColumns, static_cast<size_t>(g.C * g.kh * g.kw * B * P));
  T* tmp = B > 1 ? scratch<T>(Scratch::ConvOutputs, static_cast<size_t>(g.Cout * B * P)) : nullptr;
  for (int64_t ci = 0; ci < plan.count; ++ci) {
    const int64_t n0 = plan.begin(ci, n_begin, n_end - n_begin);
    const int64_t b = plan.begin(ci + 1, n_begin, n_end - n_begin) - n0, BP = b * P;
    const T* cols = pointwise ? x + n0 * CHW : col;
    if (!pointwise) im2col(g, x + n0 * CHW, b, col);
    // One image: the gemm writes (Cout, P) straight into y[n0], on top of
    // the bias (beta = 1 also spares OpenBLAS its pass that zeroes C).
    T* out = b == 1 ? y + n0 * g.Cout * P : tmp;
    const bool onto_bias = b == 1 && bias;
    if (onto_bias)
      for (int64_t co = 0; co < g.Cout; ++co) std::fill(out + co * P, out + (co + 1) * P, bias[co]);
    for (int64_t grp = 0; grp < g.groups; ++grp)
      parallel_gemm(false, false, Og, BP, K, T(1), w + grp * Og * K, K, cols + grp * Cg * g.kh * g.kw * BP, BP,
           onto_bias ? T(1) : T(0), out + grp * Og * BP, BP);
    if (b > 1) {  // (Cout, b, P) -> (b, Cout, P), adding the bias on the way
      parallel_for(b * g.Cout, P, [&](int64_t q0, int64_t q1) {
        for (int64_t q = q0; q < q1; ++q) {
          int64_t i = q / g.Cout, co = q % g.Cout;
          const T* src = tmp + co * BP + i * P;
          T* dst = y + (n0 + i) * g.Cout * P + co * P;
          T bv = bias ? bias[co] : T(0);
          for (int64_t p = 0; p < P; ++p) dst[p] = src[p] + bv;
        }
      });
    }
  }
}

// Backward of images [n_begin, n_end): dx for those images (when dx is not
// null) and their weight gradient added into dw_acc (when not null).
// With dw_transposed the weight gradient is taken as its transpose, dW_g^T
// (K, Og) += col_g dY_g^T, into dw_acc laid out per group as (K, Og).
template <typename T>
void backward_range(const ConvGeom& g, const T* x, const T* w, const T* dy, T* dx, T* dw_acc, bool dw_transposed,
                    int64_t n_begin, int64_t n_end) {
  const int64_t P = g.P(), K = g.K(), Og = g.Og(), Cg = g.Cg(), CHW = g.C * g.H * g.W, kk = g.kh * g.kw;
  const ChunkPlan plan = chunk_plan(g, sizeof(T), n_end - n_begin);
  const int64_t B = plan.max;
  const bool pointwise = is_pointwise(g) && B == 1;  // x[n] is its own column matrix
  T* col = pointwise || !dw_acc ? nullptr : scratch<T>(Scratch::ConvColumns, static_cast<size_t>(g.C * kk * B * P));
  T* dyt = B > 1 ? scratch<T>(Scratch::ConvOutputs, static_cast<size_t>(g.Cout * B * P)) : nullptr;
  T* dcol = dx && !pointwise ? scratch<T>(Scratch::ConvDataColumns, static_cast<size_t>(g.C * kk * B * P)) : nullptr;
  if (dx && !pointwise) std::fill(dx + n_begin * CHW, dx + n_end * CHW, T(0));
  for (int64_t ci = 0; ci < plan.count; ++ci) {
    const int64_t n0 = plan.begin(ci, n_begin, n_end - n_begin);
    const int64_t b = plan.begin(ci + 1, n_begin, n_end - n_begin) - n0, BP = b * P;
    const T* g_out = dy + n0 * g.Cout * P;  // (Cout, P) when b == 1
    if (b > 1) {                            // (b, Cout, P) -> (Cout, b, P)
      parallel_for(b * g.Cout, P, [&](int64_t q0, int64_t q1) {
        for (int64_t q = q0; q < q1; ++q) {
          int64_t i = q / g.Cout, co = q % g.Cout;
          std::memcpy(dyt + co * BP + i * P, dy + (n0 + i) * g.Cout * P + co * P, static_cast<size_t>(P) * sizeof(T));
        }
      });
      g_out = dyt;
    }
    if (dw_acc) {
      const T* cols = pointwise ? x + n0 * CHW : col;
      if (!pointwise) im2col(g, x + n0 * CHW, b, col);
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* dy_g = g_out + grp * Og * BP;
        const T* col_g = cols + grp * Cg * kk * BP;
        if (dw_transposed)  // dW_g^T += col_g dY_g^T
          parallel_gemm(false, true, K, Og, BP, T(1), col_g, BP, dy_g, BP, T(1), dw_acc + grp * Og * K, Og);
        else  // dW_g += dY_g col_g^T
          parallel_gemm(false, true, Og, K, BP, T(1), dy_g, BP, col_g, BP, T(1), dw_acc + grp * Og * K, K);
      }
    }
    if (dx) {
      // dcol_g = W_g^T dY_g; pointwise: that is dx[n0] itself.
      T* target = pointwise ? dx + n0 * CHW : dcol;
      for (int64_t grp = 0; grp < g.groups; ++grp)
        parallel_gemm(true, false, K, BP, Og, T(1), w + grp * Og * K, K, g_out + grp * Og * BP, BP, T(0),
             target + grp * Cg * kk * BP, BP);
      if (!pointwise) col2im(g, dcol, b, dx + n0 * CHW);
    }
  }
}

// Buffers of conv2d_backward's weight-gradient sums (slot 0: the transposed
// sum, 1: the other tasks' partial sums) that survive between calls on this
// thread: fresh ones (2 MB for Inception's 3x3 192 -> 320) cost their page
// faults on every call, which on the small maps was more than the products
// (perf: exc_page_fault the top entry; 0.46 -> 0.64 ms on one thread, 0.55 ->
// 2.8 ms on two with both allocated per call).
template <typename T>
T* weight_sums(int slot, size_t n) {
  thread_local std::vector<T> buffers[2];
  std::vector<T>& b = buffers[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

// Threads that split the batch: one per core when there are at least as many
// images and enough work; else 1, and the gemms and im2col use every core.
int64_t batch_threads(const ConvGeom& g) {
  constexpr int64_t kMinFlopsPerThread = int64_t{4} << 20;
  int64_t flops = 2 * g.N * g.Cout * g.P() * g.K();
  return std::clamp<int64_t>(std::min<int64_t>(num_threads(), flops / kMinFlopsPerThread), 1, g.N);
}

inline void split(int64_t n, int64_t parts, int64_t t, int64_t& begin, int64_t& end) {
  int64_t per = n / parts, extra = n % parts;
  begin = t * per + std::min(t, extra);
  end = begin + per + (t < extra ? 1 : 0);
}

}  // namespace

namespace {
std::atomic<Im2colWeightMode> g_im2col_weight_mode{Im2colWeightMode::Auto};
}  // namespace

Im2colWeightMode im2col_weight_mode() { return g_im2col_weight_mode.load(std::memory_order_relaxed); }
void set_im2col_weight_mode(Im2colWeightMode mode) { g_im2col_weight_mode.store(mode, std::memory_order_relaxed); }

bool im2col_weight_transposed(const ConvGeom& g) {
  switch (im2col_weight_mode()) {
    case Im2colWeightMode::Never: return false;
    case Im2colWeightMode::Always: return true;
    case Im2colWeightMode::Auto: break;
  }
  // Outputs of at least 4x4: on smaller ones a chunk's inner size (B P, 64
  // columns for a whole batch on a 1x1 output) is too short for the turn
  // back to pay (one thread, SkylakeX kernels: Inception's 3x3 s2 192 -> 320
  // to 1x1 0.46 -> 0.61 ms transposed, DenseNet's 1024 -> 256 on 2x2 0.80 ->
  // 0.88-0.91; 3x3 outputs within noise; from 4x4 even or faster).
  // Session 8, AVX-512 (Cooperlake) kernels, `neurn bench conv --model`
  // (im2col-t / im2col-n columns), three runs at 1 and 2 threads: the rule
  // holds on every conv of inception_v3 (75x75), densenet121 and resnet50
  // but one: with fewer than 32 rows (K) the (Cout, K) sums' gemm has too
  // few columns as well, and Inception's stem (3 -> 32, 3x3 s2, K = 27 <
  // Og = 32) takes 0.69-0.74 of its time transposed at 1 and 2 threads
  // (0.87-0.89 with the Haswell kernels).
  // Grouped convs with K < 32 are unmeasured and keep the first clause.
  return (g.Og() < g.K() || (g.groups == 1 && g.K() < 32)) && g.P() >= 16;
}

template <typename T>
void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  FlushDenormals flush;  // subnormal operands would slow the gemms many times (denormals_cpu.h)
  if (g.Cg() == 1) {
    depthwise_forward(g, x, w, bias, y);
    return;
  }
  if (use_hwcn_forward(g, sizeof(T))) {  // batch-innermost gemms on small maps (conv_hwcn_cpu.h)
    hwcn_conv2d_forward(g, x, w, bias, y);
    return;
  }
  if (use_winograd_forward(g, sizeof(T))) {  // 3x3 stride 1 where measured faster (conv_winograd_cpu.h)
    winograd_conv2d_forward(g, x, w, bias, y);
    return;
  }
  const int64_t threads = batch_threads(g);
  if (threads == 1) {
    forward_range(g, x, w, bias, y, 0, g.N);
    return;
  }
  SingleThreadedBlas single;
  run_on_threads(threads, [&](int64_t t) {
    int64_t a, b;
    split(g.N, threads, t, a, b);
    forward_range(g, x, w, bias, y, a, b);
  });
}

template <typename T>
void conv2d_backward(const ConvGeom& g, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  FlushDenormals flush;  // as in the forward: the gradients of a saturated softmax are e^-90 and below
  const int64_t P = g.P(), K = g.K();
  if (db) {
    parallel_for(g.Cout, g.N * P, [&](int64_t c0, int64_t c1) {
      constexpr int64_t L = 16;  // independent partial sums: the loop vectorises
      for (int64_t co = c0; co < c1; ++co) {
        T lanes[L] = {};
        T tail = 0;
        for (int64_t n = 0; n < g.N; ++n) {
          const T* p = dy + (n * g.Cout + co) * P;
          int64_t i = 0;
          for (; i + L <= P; i += L)
            for (int64_t l = 0; l < L; ++l) lanes[l] += p[i + l];
          for (; i < P; ++i) tail += p[i];
        }
        for (int64_t l = 0; l < L; ++l) tail += lanes[l];
        db[co] = tail;
      }
    });
  }
  if (!dx && !dw) return;
  if (g.Cg() == 1) {
    depthwise_backward(g, x, w, dy, dx, dw);
    return;
  }
  {  // batch-innermost gemms on small maps (conv_hwcn_cpu.h), for one or both gradients
    T* hx = dx && use_hwcn_backward_data(g, sizeof(T)) ? dx : nullptr;
    T* hw = dw && use_hwcn_backward_weight(g, sizeof(T)) ? dw : nullptr;
    if (hx || hw) hwcn_conv2d_backward(g, x, w, dy, hx, hw);
    if (hx) dx = nullptr;
    if (hw) dw = nullptr;
    if (!dx && !dw) return;
  }
  if (dx && use_winograd_backward_data(g, sizeof(T))) {  // the data gradient by Winograd, dw below by gemm
    winograd_conv2d_backward_data(g, w, dy, dx);
    dx = nullptr;
    if (!dw) return;
  }
  if (dw && use_winograd_backward_weight(g, sizeof(T))) {  // 5x5 weight gradient by Winograd (conv_winograd5_cpu.h)
    winograd_conv2d_backward_weight(g, x, dy, dw);
    dw = nullptr;
    if (!dx) return;
  }
  // The weight gradient is summed into dw, or (transposed) into dwt and
  // turned back once at the end.
  const bool transposed = dw && im2col_weight_transposed(g);
  const int64_t wn = g.Cout * K;
  T* dwt = transposed ? weight_sums<T>(0, static_cast<size_t>(wn)) : nullptr;
  T* acc0 = transposed ? dwt : dw;
  if (dw) std::fill(acc0, acc0 + wn, T(0));
  const int64_t threads = batch_threads(g);
  if (threads == 1) {
    backward_range(g, x, w, dy, dx, acc0, transposed, 0, g.N);
  } else {
    // Task 0 accumulates into acc0, the others into their own buffers (one
    // per task: a thread may run several tasks), summed at the end.
    T* partial = dw ? weight_sums<T>(1, static_cast<size_t>((threads - 1) * wn)) : nullptr;
    if (dw) std::fill(partial, partial + (threads - 1) * wn, T(0));
    {
      SingleThreadedBlas single;
      run_on_threads(threads, [&](int64_t t) {
        int64_t a, b;
        split(g.N, threads, t, a, b);
        T* acc = !dw ? nullptr : t == 0 ? acc0 : partial + (t - 1) * wn;
        backward_range(g, x, w, dy, dx, acc, transposed, a, b);
      });
    }
    for (int64_t t = 1; dw && t < threads; ++t) {
      const T* p = partial + (t - 1) * wn;
      for (int64_t i = 0; i < wn; ++i) acc0[i] += p[i];
    }
  }
  if (transposed) {  // per group (K, Og) -> (Og, K), in 16 x 16 blocks
    const int64_t Og = g.Og();
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const T* src = dwt + grp * Og * K;
      T* dst = dw + grp * Og * K;
      constexpr int64_t Bk = 16;
      for (int64_t k0 = 0; k0 < K; k0 += Bk)
        for (int64_t o0 = 0; o0 < Og; o0 += Bk)
          for (int64_t o = o0; o < std::min(o0 + Bk, Og); ++o)
            for (int64_t k = k0; k < std::min(k0 + Bk, K); ++k) dst[o * K + k] = src[k * Og + o];
    }
  }
}

template void conv2d_forward<float>(const ConvGeom&, const float*, const float*, const float*, float*);
template void conv2d_forward<double>(const ConvGeom&, const double*, const double*, const double*, double*);
template void conv2d_backward<float>(const ConvGeom&, const float*, const float*, const float*, float*, float*, float*);
template void conv2d_backward<double>(const ConvGeom&, const double*, const double*, const double*, double*, double*,
                                      double*);

}  // namespace neurn::cpu
