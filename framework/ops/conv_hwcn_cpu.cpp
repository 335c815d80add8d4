#include "framework/ops/conv_hwcn_cpu.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "framework/error.h"
#include "framework/ops/denormals_cpu.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/scratch_cpu.h"

namespace neurn::cpu {

// ---- mode, applicability, decisions ----

namespace {

constexpr int kModeUnread = -1;
std::atomic<int> g_mode{kModeUnread};

HwcnMode mode_from_env() {
  const char* env = std::getenv("NEURN_CONV_HWCN");
  if (!env || !*env) return HwcnMode::Auto;
  const std::string v = env;
  if (v == "0" || v == "off") return HwcnMode::Off;
  if (v == "1" || v == "auto") return HwcnMode::Auto;
  if (v == "always") return HwcnMode::Always;
  NEURN_FAIL("NEURN_CONV_HWCN must be 0 (off), 1 (auto: where it is measured to be faster) or always, got '", v,
             "'");
}

thread_local HwcnDecisionLog* t_log = nullptr;

bool decide(const ConvGeom& g, size_t elem_size, HwcnPass pass) {
  const HwcnMode mode = hwcn_mode();
  bool use = false;
  if (mode != HwcnMode::Off && hwcn_applicable(g))
    use = mode == HwcnMode::Always || hwcn_conv_profitable(g, elem_size, pass, num_threads());
  if (t_log) HwcnDecisionLog::record({g, pass, use});
  return use;
}

}  // namespace

HwcnMode hwcn_mode() {
  int m = g_mode.load(std::memory_order_relaxed);
  if (m == kModeUnread) {
    m = static_cast<int>(mode_from_env());
    int expected = kModeUnread;
    if (!g_mode.compare_exchange_strong(expected, m)) m = expected;
  }
  return static_cast<HwcnMode>(m);
}

void set_hwcn_mode(HwcnMode mode) { g_mode.store(static_cast<int>(mode), std::memory_order_relaxed); }

bool hwcn_applicable(const ConvGeom& g) {
  return g.N > 0 && g.C > 0 && g.Cout > 0 && g.Ho > 0 && g.Wo > 0 && g.H > 0 && g.W > 0 && g.groups > 0 &&
         g.C % g.groups == 0 && g.Cout % g.groups == 0;
}

bool hwcn_conv_profitable(const ConvGeom& g, size_t elem_size, HwcnPass pass, int64_t threads) {
  // Measured with `neurn bench conv --model` (float32, batch 64, 1 and 2
  // threads, docs/engine-bench.md "Batch-innermost convolution on small
  // maps") over every non-depthwise conv of densenet121, resnet50, vgg19,
  // mobilenet_v2, efficientnet_b0, shufflenet_v2 (32x32 inputs) and
  // inception_v3 (75x75). The same rule held on 1 and 2 threads.
  (void)threads;
  // float64 (gradient checks) keeps the im2col path, as for Winograd.
  if (elem_size != sizeof(float) || !hwcn_applicable(g)) return false;
  // The gemms have N = batch: below 16 columns OpenBLAS's small-matrix
  // kernels run far from peak, and inference at batch 1 keeps its path.
  if (g.N < 16) return false;
  // Unmeasured: grouped convs (per-tap gemms of Cg) and dilation.
  if (g.groups != 1 || g.dh != 1 || g.dw != 1) return false;
  const int64_t map = g.H * g.W;
  if (g.kh == 1 && g.kw == 1) {
    // Pointwise: im2col is then a transpose and one wide gemm, which HWCN
    // beats only on 1x1 maps (0.3-0.6 of its time on DenseNet's, ResNet's,
    // MobileNet's and Inception's last blocks, 0.1-0.2 on EfficientNet's
    // squeeze-excite convs); on 2x2 maps the two are within noise
    // (0.6-1.1), from 4x4 HWCN is slower (1.1-6x: its transposes of x and
    // y cost what the gemm does).
    // Round 2: a strided pointwise conv with a 1x1 output (ResNet's 1x1
    // s2 1024 -> 2048 on a 2x2 map) is one such product on the position it
    // reads: 0.58-1.03 of im2col over four runs, 0.87 typical.
    // Session 8, AVX-512 (Cooperlake) kernels: on 2x2 maps narrow outputs
    // now win too: DenseNet's last block, 256..992 -> 128, three runs each,
    // HWCN / im2col 0.71-0.88 in every pass at 1 thread, at 2 threads
    // forward 0.80-1.12 (0.96 typical), data 0.88-1.25 (1.0), weight
    // 0.78-1.14 (0.89); ResNet's wider ones (256 -> 1024, 1024 -> 256 and
    // 1024 -> 512) are even at 1 thread (0.92-1.1) and lose at 2 (up to 1.3).
    // With the Haswell (AVX2) kernels 256 -> 128 and 512 -> 128 take
    // 0.87-1.05 (--shape, three runs), so the rule does not ask which.
    return map == 1 || g.P() == 1 || (map == 4 && g.Cout <= 128);
  }
  // Strided (round 2, four runs at 1 and 2 threads): ResNet's padded
  // stride-2 3x3s on 8x8, 4x4 and 2x2 maps win forward (0.56-1.03 of
  // im2col, 0.8 typical) and in the data gradient (0.67-1.01); their weight
  // gradient does not (0.92-1.51). The unpadded reductions of Inception
  // (3x3 s2 p0 on 7x7 and 3x3 maps: no tap reads padding, so nothing is
  // skipped) lose in every pass (1.1-1.9). So: padded, on maps up to 8x8,
  // forward and data only.
  // Session 8, AVX-512 kernels: the 7x7 s2 stems of ResNet and DenseNet
  // (3 -> 64, padding 3, 32x32 -> 16x16) forward take 0.60-0.79 of
  // im2col's time at 1 and 2 threads (six runs each; im2col's 147-row
  // columns cost more than HWCN's 49 taps of inner size 3), 0.86-0.96 with
  // the Haswell kernels; their weight gradient does not (1.1-1.6).
  // Inception's unpadded 3x3 s2 stem (3 -> 32 on 75x75) loses in every
  // pass (2.2-3.6x).
  const bool padded = g.ph > 0 || g.pw > 0;
  if (g.sh != 1 || g.sw != 1) {
    if (pass == HwcnPass::Forward && padded && g.C <= 4 && g.kh * g.kw >= 49) return true;
    return pass != HwcnPass::Weight && padded && map <= 64;
  }
  // Kernels larger than 1x1 at stride 1: every pass wins on maps up to 7x7
  // (dead taps skipped, no im2col: 0.1-0.5 of the best other algorithm on
  // DenseNet's 4x4..1x1 3x3s, Inception's 7x7 / 3x3 / 1x1 maps with 1x7,
  // 7x1, 5x5, 3x3 kernels, ResNet's 4x4..1x1 3x3s). On 8x8 maps it still
  // wins with few channels (ResNet's 64 -> 64: 0.3-0.6, DenseNet's 128 -> 32:
  // 0.6-0.9) but loses to Winograd's forward with more (VGG's 128 -> 256
  // and 256 -> 256: 1.35-2.7). From 14x14 (the digits ConvNet's conv2,
  // VGG's 16x16 and 32x32) im2col or Winograd win.
  if (map <= 49) return true;
  return map <= 64 && g.C * g.Cout <= 128 * 128;
}

bool use_hwcn_forward(const ConvGeom& g, size_t elem_size) { return decide(g, elem_size, HwcnPass::Forward); }
bool use_hwcn_backward_data(const ConvGeom& g, size_t elem_size) { return decide(g, elem_size, HwcnPass::Data); }
bool use_hwcn_backward_weight(const ConvGeom& g, size_t elem_size) { return decide(g, elem_size, HwcnPass::Weight); }

HwcnDecisionLog::HwcnDecisionLog() : parent_(t_log) { t_log = this; }
HwcnDecisionLog::~HwcnDecisionLog() { t_log = parent_; }
void HwcnDecisionLog::record(const HwcnDecision& d) {
  if (t_log) t_log->decisions_.push_back(d);
}

// ---- layouts ----

namespace {

// The layout changes are transposes of an R x M matrix A into B (M x R),
// B[m][r] = A[r][m] + add[r], whose rows lie wherever the row functions say:
// a(r) points at A's row r (M contiguous values), b(m) at B's row m. Going
// to HWCN, A = x as (N, C HW) and B's row m = (c, hw) is xt's (hw, c) slab;
// coming back A's rows are the slabs and B = y as (N, C HW). The float
// version moves 8 x 8 tiles through AVX registers (unpack, shuffle, lane
// permute): the scalar loops ran at ~1 value per cycle and took 43 % of a
// pointwise conv on an 8x8 map (perf, one thread).
#if defined(__x86_64__) || defined(__i386__)
#define NEURN_HWCN_AVX 1
__attribute__((target("avx"))) inline void tile8x8(const float* const a[8], float* const b[8], int64_t r,
                                                   const float* add) {
  __m256 r0 = _mm256_loadu_ps(a[0]), r1 = _mm256_loadu_ps(a[1]), r2 = _mm256_loadu_ps(a[2]),
         r3 = _mm256_loadu_ps(a[3]), r4 = _mm256_loadu_ps(a[4]), r5 = _mm256_loadu_ps(a[5]),
         r6 = _mm256_loadu_ps(a[6]), r7 = _mm256_loadu_ps(a[7]);
  // Pairs of rows interleaved, then quads, then the 128-bit halves swapped.
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
         t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
         t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE),
         s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE),
         s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE),
         s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  const __m256 v = add ? _mm256_loadu_ps(add) : _mm256_setzero_ps();
  _mm256_storeu_ps(b[0] + r, _mm256_add_ps(_mm256_permute2f128_ps(s0, s4, 0x20), v));
  _mm256_storeu_ps(b[1] + r, _mm256_add_ps(_mm256_permute2f128_ps(s1, s5, 0x20), v));
  _mm256_storeu_ps(b[2] + r, _mm256_add_ps(_mm256_permute2f128_ps(s2, s6, 0x20), v));
  _mm256_storeu_ps(b[3] + r, _mm256_add_ps(_mm256_permute2f128_ps(s3, s7, 0x20), v));
  _mm256_storeu_ps(b[4] + r, _mm256_add_ps(_mm256_permute2f128_ps(s0, s4, 0x31), v));
  _mm256_storeu_ps(b[5] + r, _mm256_add_ps(_mm256_permute2f128_ps(s1, s5, 0x31), v));
  _mm256_storeu_ps(b[6] + r, _mm256_add_ps(_mm256_permute2f128_ps(s2, s6, 0x31), v));
  _mm256_storeu_ps(b[7] + r, _mm256_add_ps(_mm256_permute2f128_ps(s3, s7, 0x31), v));
}
bool has_avx() {
  static const bool yes = __builtin_cpu_supports("avx");
  return yes;
}
#endif

// Columns [m0, m1) of the transpose: every row of A, those rows of B.
template <typename T, typename RowA, typename RowB, typename AddR>
void transpose_columns(int64_t R, int64_t m0, int64_t m1, RowA a, RowB b, AddR add_r) {
  int64_t m = m0;
#ifdef NEURN_HWCN_AVX
  if constexpr (std::is_same_v<T, float>) {
    if (has_avx()) {
      // 16 columns at a time: the two tiles of a row group read whole
      // cache lines of A back to back (rows of A are often a power of two
      // apart, e.g. 32 KB for 128 channels of 8x8, and evict each other
      // before a second visit).
      for (; m + 8 <= m1;) {
        const int64_t w = m + 16 <= m1 ? 16 : 8;
        float* brow[16];
        for (int k = 0; k < w; ++k) brow[k] = b(m + k);
        int64_t r = 0;
        for (; r + 8 <= R; r += 8) {
          const float* arow[8];
          float add[8];
          for (int k = 0; k < 8; ++k) arow[k] = a(r + k) + m, add[k] = add_r(r + k);
          tile8x8(arow, brow, r, add);
          if (w == 16) {
            for (int k = 0; k < 8; ++k) arow[k] += 8;
            tile8x8(arow, brow + 8, r, add);
          }
        }
        for (; r < R; ++r) {
          const float* ar = a(r) + m;
          const float ad = add_r(r);
          for (int k = 0; k < w; ++k) brow[k][r] = ar[k] + ad;
        }
        m += w;
      }
    }
  }
#endif
  for (; m < m1; ++m) {
    T* bm = b(m);
    for (int64_t r = 0; r < R; ++r) bm[r] = a(r)[m] + add_r(r);
  }
}

// x (N, C, H, W) -> xt (H, W, C, N).
template <typename T>
void to_hwcn(const T* x, int64_t N, int64_t C, int64_t HW, T* xt) {
  const int64_t M = C * HW;
  parallel_for((M + 15) / 16, 16 * N, [&](int64_t b0, int64_t b1) {
    transpose_columns<T>(
        N, b0 * 16, std::min(M, b1 * 16), [&](int64_t n) { return x + n * M; },
        [&](int64_t m) { return xt + ((m % HW) * C + m / HW) * N; }, [](int64_t) { return T(0); });
  });
}

// xt (H, W, C, N) -> x (N, C, H, W), adding bias[c] when bias is not null.
template <typename T>
void from_hwcn(const T* xt, int64_t N, int64_t C, int64_t HW, const T* bias, T* x) {
  const int64_t M = C * HW;
  parallel_for((N + 15) / 16, 16 * M, [&](int64_t b0, int64_t b1) {
    transpose_columns<T>(
        M, b0 * 16, std::min(N, b1 * 16), [&](int64_t m) { return xt + ((m % HW) * C + m / HW) * N; },
        [&](int64_t n) { return x + n * M; }, [&](int64_t m) { return bias ? bias[m / HW] : T(0); });
  });
}

// Pieces of work: `items` units (positions, or positions times column
// blocks) in `tasks` contiguous ranges.
inline void split(int64_t n, int64_t parts, int64_t t, int64_t& begin, int64_t& end) {
  const int64_t per = n / parts, extra = n % parts;
  begin = t * per + std::min(t, extra);
  end = begin + per + (t < extra ? 1 : 0);
}

// Columns [lo, hi) of block b of nb over N columns, in whole multiples of 16
// (the gemm micro-kernel's width) where N allows.
inline void column_block(int64_t N, int64_t nb, int64_t b, int64_t& lo, int64_t& hi) {
  const int64_t blocks = (N + 15) / 16;
  int64_t b0, b1;
  split(blocks, nb, b, b0, b1);
  lo = std::min(b0 * 16, N), hi = std::min(b1 * 16, N);
}

int64_t default_tasks(const ConvGeom& g) {
  constexpr int64_t kMinFlopsPerTask = int64_t{2} << 20;
  const int64_t flops = 2 * g.N * g.Cout * g.P() * g.K();
  return std::clamp<int64_t>(flops / kMinFlopsPerTask, 1, num_threads());
}

// Column blocks for `positions` output (or input) positions on `tasks`
// tasks: none while the positions share out evenly enough (at least 8 per
// task), else the batch is cut too, into blocks of at least 16 columns.
int64_t column_blocks(int64_t positions, int64_t N, int64_t tasks) {
  if (tasks <= 1 || positions >= 8 * tasks) return 1;
  return std::clamp<int64_t>(N / 16, 1, tasks);
}

// Runs body(item_begin, item_end) over `items` units on `tasks` tasks, OpenBLAS
// single-threaded throughout.
template <typename F>
void run_items(int64_t items, int64_t tasks, F&& body) {
  SingleThreadedBlas single;
  tasks = std::clamp<int64_t>(tasks, 1, std::max<int64_t>(items, 1));
  if (tasks == 1) {
    body(int64_t{0}, items);
    return;
  }
  run_on_threads(tasks, [&](int64_t t) {
    int64_t a, b;
    split(items, tasks, t, a, b);
    if (a < b) body(a, b);
  });
}

// Valid taps along one axis for output index o: those j in [j_lo, j_hi) with
// o * stride - pad + j * dil inside [0, n). For dil == 1 they are
// consecutive; otherwise the caller checks each tap.
inline void tap_range(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t n, int64_t& j_lo, int64_t& j_hi) {
  const int64_t base = o * stride - pad;
  j_lo = std::clamp<int64_t>(-base, 0, k);
  j_hi = std::clamp<int64_t>(n - base, 0, k);
  if (j_hi < j_lo) j_hi = j_lo;
}

// Taps t = i kw + j that some output position reads inside the input (the
// others only ever meet padding): along each axis separately.
std::vector<char> live_taps(const ConvGeom& g) {
  auto axis = [](int64_t k, int64_t out, int64_t stride, int64_t pad, int64_t dil, int64_t in) {
    std::vector<char> used(static_cast<size_t>(k), 0);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t o = 0; o < out && !used[i]; ++o) {
        const int64_t x = o * stride - pad + i * dil;
        used[i] = x >= 0 && x < in;
      }
    return used;
  };
  const auto ui = axis(g.kh, g.Ho, g.sh, g.ph, g.dh, g.H), uj = axis(g.kw, g.Wo, g.sw, g.pw, g.dw, g.W);
  std::vector<char> live(static_cast<size_t>(g.kh * g.kw));
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) live[i * g.kw + j] = ui[i] && uj[j];
  return live;
}

}  // namespace

// ---- forward ----

template <typename T>
void hwcn_conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y, int64_t tasks) {
  NEURN_CHECK(hwcn_applicable(g), "conv2d (HWCN): geometry N=", g.N, " C=", g.C, " ", g.H, "x", g.W, " Cout=", g.Cout,
              " groups=", g.groups, " gives no output or splits no channels evenly");
  FlushDenormals flush;
  const int64_t N = g.N, C = g.C, Cout = g.Cout, P = g.P(), HW = g.H * g.W, kk = g.kh * g.kw;
  const int64_t Cg = g.Cg(), Og = g.Og(), K = g.K();  // K = kh kw Cg: a row of wt
  if (tasks <= 0) tasks = default_tasks(g);
  T* xt = scratch<T>(Scratch::HwcnInput, static_cast<size_t>(HW * C * N));    // (H, W, C, N)
  T* yt = scratch<T>(Scratch::HwcnOutput, static_cast<size_t>(P * Cout * N));  // (Ho, Wo, Cout, N)
  to_hwcn(x, N, C, HW, xt);
  // wt (Cout, kh, kw, Cg): a 1x1 kernel's weights already are; otherwise
  // only the taps that read the input are copied (a 3x3 on a 1x1 map: the
  // centre; copying all of a 512 x 512 x 3x3 weight took most of the conv).
  const T* wt = w;
  if (kk > 1) {
    T* wr = scratch<T>(Scratch::HwcnWeights, static_cast<size_t>(Cout * K));
    const std::vector<char> live = live_taps(g);
    parallel_for(Cout, K, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o)
        for (int64_t t = 0; t < kk; ++t)
          if (live[t])
            for (int64_t c = 0; c < Cg; ++c) wr[o * K + t * Cg + c] = w[(o * Cg + c) * kk + t];
    });
    wt = wr;
  }
  // One run of taps per (position, tap row) where stride along w is all
  // that separates them: dilation 1 and one group.
  const bool runs = g.dw == 1 && g.groups == 1;
  const int64_t nb = column_blocks(P, N, tasks);
  run_items(P * nb, tasks, [&](int64_t it0, int64_t it1) {
    for (int64_t it = it0; it < it1; ++it) {
      const int64_t p = it / nb, oh = p / g.Wo, ow = p % g.Wo;
      int64_t n0, n1;
      column_block(N, nb, it % nb, n0, n1);
      const int64_t cols = n1 - n0;
      T* out = yt + p * Cout * N + n0;  // (Cout, cols), ld N
      int64_t j_lo, j_hi;
      tap_range(ow, g.sw, g.pw, g.kw, g.W, j_lo, j_hi);  // used for runs (dilation 1)
      bool first = true;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t ih = oh * g.sh - g.ph + i * g.dh;
        if (ih < 0 || ih >= g.H) continue;
        if (runs) {
          if (j_lo >= j_hi) break;
          const int64_t iw = ow * g.sw - g.pw + j_lo;
          gemm(false, false, Cout, cols, (j_hi - j_lo) * C, T(1), wt + (i * g.kw + j_lo) * C, K,
               xt + (ih * g.W + iw) * C * N + n0, N, first ? T(0) : T(1), out, N);
          first = false;
          continue;
        }
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t iw = ow * g.sw - g.pw + j * g.dw;
          if (iw < 0 || iw >= g.W) continue;
          for (int64_t grp = 0; grp < g.groups; ++grp)
            gemm(false, false, Og, cols, Cg, T(1), wt + grp * Og * K + (i * g.kw + j) * Cg, K,
                 xt + ((ih * g.W + iw) * C + grp * Cg) * N + n0, N, first ? T(0) : T(1), out + grp * Og * N, N);
          first = false;
        }
      }
      if (first)  // every tap reads padding
        for (int64_t o = 0; o < Cout; ++o) std::fill(out + o * N, out + o * N + cols, T(0));
    }
  });
  from_hwcn(yt, N, Cout, P, bias, y);
}

// ---- backward ----

template <typename T>
void hwcn_conv2d_backward(const ConvGeom& g, const T* x, const T* w, const T* dy, T* dx, T* dw, int64_t tasks) {
  if (!dx && !dw) return;
  NEURN_CHECK(hwcn_applicable(g), "conv2d backward (HWCN): geometry N=", g.N, " C=", g.C, " ", g.H, "x", g.W,
              " Cout=", g.Cout, " groups=", g.groups, " gives no output or splits no channels evenly");
  FlushDenormals flush;
  const int64_t N = g.N, C = g.C, Cout = g.Cout, P = g.P(), HW = g.H * g.W, kk = g.kh * g.kw;
  const int64_t Cg = g.Cg(), Og = g.Og(), K = g.K();
  if (tasks <= 0) tasks = default_tasks(g);
  T* dyt = scratch<T>(Scratch::HwcnOutput, static_cast<size_t>(P * Cout * N));  // (Ho, Wo, Cout, N)
  to_hwcn(dy, N, Cout, P, dyt);

  if (dx) {
    // wq (kh, kw, Cout, Cg) with j flipped, read transposed ("tn" gemms,
    // which OpenBLAS runs as fast as "nn" at these shapes): the rows of
    // taps (i, jf0..jf1) and outputs o are consecutive, so a run of output
    // positions ow ascending meets them in order. A 1x1 kernel's weights
    // already are wq; otherwise only the live taps are copied.
    const T* wq = w;
    if (kk > 1) {
      T* wr = scratch<T>(Scratch::HwcnWeights, static_cast<size_t>(Cout * K));
      const std::vector<char> live = live_taps(g);
      parallel_for(Cout, K, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o)
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t jf = 0; jf < g.kw; ++jf) {
              const int64_t t = i * g.kw + g.kw - 1 - jf;
              if (!live[t]) continue;
              T* dst = wr + ((i * g.kw + jf) * Cout + o) * Cg;
              for (int64_t c = 0; c < Cg; ++c) dst[c] = w[(o * Cg + c) * kk + t];
            }
      });
      wq = wr;
    }
    T* dxt = scratch<T>(Scratch::HwcnDataGrad, static_cast<size_t>(HW * C * N));  // (H, W, C, N)
    // Stride 1 and dilation 1 along w with one group: the output positions
    // that read input column iw through taps of one row are consecutive.
    const bool runs = g.sw == 1 && g.dw == 1 && g.groups == 1;
    const int64_t nb = column_blocks(HW, N, tasks);
    run_items(HW * nb, tasks, [&](int64_t it0, int64_t it1) {
      for (int64_t it = it0; it < it1; ++it) {
        const int64_t q = it / nb, ih = q / g.W, iw = q % g.W;
        int64_t n0, n1;
        column_block(N, nb, it % nb, n0, n1);
        const int64_t cols = n1 - n0;
        T* out = dxt + q * C * N + n0;  // (C, cols), ld N
        bool first = true;
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t t = ih + g.ph - i * g.dh;  // oh * sh
          if (t < 0 || t % g.sh != 0 || t / g.sh >= g.Ho) continue;
          const int64_t oh = t / g.sh;
          if (runs) {
            // ow = iw + pw - kw + 1 + jf for flipped taps jf inside [0, Wo).
            const int64_t base = iw + g.pw - g.kw + 1;
            const int64_t jf_lo = std::clamp<int64_t>(-base, 0, g.kw), jf_hi = std::clamp<int64_t>(g.Wo - base, 0, g.kw);
            if (jf_lo >= jf_hi) continue;
            gemm(true, false, C, cols, (jf_hi - jf_lo) * Cout, T(1), wq + (i * g.kw + jf_lo) * Cout * C, C,
                 dyt + (oh * g.Wo + base + jf_lo) * Cout * N + n0, N, first ? T(0) : T(1), out, N);
            first = false;
            continue;
          }
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t u = iw + g.pw - j * g.dw;  // ow * sw
            if (u < 0 || u % g.sw != 0 || u / g.sw >= g.Wo) continue;
            const int64_t ow = u / g.sw, jf = g.kw - 1 - j;
            for (int64_t grp = 0; grp < g.groups; ++grp)
              gemm(true, false, Cg, cols, Og, T(1), wq + ((i * g.kw + jf) * Cout + grp * Og) * Cg, Cg,
                   dyt + ((oh * g.Wo + ow) * Cout + grp * Og) * N + n0, N, first ? T(0) : T(1), out + grp * Cg * N, N);
            first = false;
          }
        }
        if (first)  // no output reads this input position (stride larger than the kernel, or cropped)
          for (int64_t c = 0; c < C; ++c) std::fill(out + c * N, out + c * N + cols, T(0));
      }
    });
    from_hwcn(dxt, N, C, HW, static_cast<const T*>(nullptr), dx);
  }

  if (dw) {
    T* xt = scratch<T>(Scratch::HwcnInput, static_cast<size_t>(HW * C * N));
    to_hwcn(x, N, C, HW, xt);
    const std::vector<char> live = live_taps(g);
    const bool runs = g.dw == 1 && g.groups == 1;
    // The gemms sum over the batch ("nt": both operands have N contiguous),
    // a shape OpenBLAS runs at about half its rate when the product's rows
    // are fewer than its columns (one thread: 32x384x64 62 GFLOP/s, its
    // transpose 384x32x64 103; 64x256x64 75 against 114). So with one group
    // and fewer outputs than the longest run of input channels, the product
    // is taken transposed, dwt^T (kh, kw, Cg, Cout) += xt_run (nj C, N)
    // dyt[p]^T, and turned back at the end.
    int64_t longest_run = 1;
    for (int64_t ow = 0; ow < g.Wo && runs; ++ow) {
      int64_t j_lo, j_hi;
      tap_range(ow, g.sw, g.pw, g.kw, g.W, j_lo, j_hi);
      longest_run = std::max(longest_run, j_hi - j_lo);
    }
    // The turn back costs a pass over dw (about a nanosecond a value),
    // which a 1x1 map's 2 N flops per value do not repay: Inception's
    // 2048 -> 320 pointwise convs on 1x1 maps ran 1.6x slower flipped.
    const bool flip = g.groups == 1 && Cout < longest_run * C && P >= 4;
    // dwt: (Cout, kh, kw, Cg), for a 1x1 kernel dw itself; or, flipped,
    // (kh, kw, Cg, Cout) with ld Cout. The live taps start at 0 and sum
    // every position; the others are 0 in dw.
    T* dwt = kk == 1 && !flip ? dw : scratch<T>(Scratch::HwcnWeightGrad, static_cast<size_t>(Cout * K));
    // (A 1x1 kernel whose one tap only meets padding, e.g. stride 2 and
    // padding 1 on a 1x1 map, still needs dw = 0: dwt is dw there.)
    if (flip) {
      parallel_for(kk, Cg * Cout, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
          if (live[t] || kk == 1) std::fill(dwt + t * Cg * Cout, dwt + (t + 1) * Cg * Cout, T(0));
      });
    } else {
      parallel_for(Cout, K, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o)
          for (int64_t t = 0; t < kk; ++t)
            if (live[t] || kk == 1) std::fill(dwt + o * K + t * Cg, dwt + o * K + (t + 1) * Cg, T(0));
      });
    }
    // acc (outputs o0..o1 of a dwt-shaped buffer) += the products of output
    // positions [p0, p1).
    auto accumulate = [&](int64_t o0, int64_t o1, int64_t p0, int64_t p1, T* acc) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t oh = p / g.Wo, ow = p % g.Wo;
        const T* gp = dyt + p * Cout * N;  // (Cout, N)
        int64_t j_lo, j_hi;
        tap_range(ow, g.sw, g.pw, g.kw, g.W, j_lo, j_hi);
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          if (runs) {
            if (j_lo >= j_hi) break;
            const int64_t iw = ow * g.sw - g.pw + j_lo;
            const T* xs = xt + (ih * g.W + iw) * C * N;  // (nj C, N)
            if (flip)
              gemm(false, true, (j_hi - j_lo) * C, o1 - o0, N, T(1), xs, N, gp + o0 * N, N, T(1),
                   acc + (i * g.kw + j_lo) * C * Cout + o0, Cout);
            else
              gemm(false, true, o1 - o0, (j_hi - j_lo) * C, N, T(1), gp + o0 * N, N, xs, N, T(1),
                   acc + o0 * K + (i * g.kw + j_lo) * C, K);
            continue;
          }
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iw = ow * g.sw - g.pw + j * g.dw;
            if (iw < 0 || iw >= g.W) continue;
            const int64_t t = i * g.kw + j;
            if (flip) {  // one group
              gemm(false, true, C, o1 - o0, N, T(1), xt + (ih * g.W + iw) * C * N, N, gp + o0 * N, N, T(1),
                   acc + t * C * Cout + o0, Cout);
              continue;
            }
            for (int64_t grp = 0; grp < g.groups; ++grp) {
              const int64_t lo = std::max(o0, grp * Og), hi = std::min(o1, (grp + 1) * Og);
              if (lo >= hi) continue;
              gemm(false, true, hi - lo, Cg, N, T(1), gp + lo * N, N, xt + ((ih * g.W + iw) * C + grp * Cg) * N, N,
                   T(1), acc + lo * K + t * Cg, K);
            }
          }
        }
      }
    };
    const int64_t rblocks = (Cout + 15) / 16;
    if (tasks > 1 && P >= 4 * tasks) {
      // Enough positions: the threads split them, task 0 summing into dwt
      // and the others into their own buffers, added at the end. (Splitting
      // the rows instead repeats the packing of the x slabs, the larger
      // operand, on every thread: Inception's 7x7 maps ran slower on two
      // threads than on one.)
      const int64_t wn = Cout * K;
      std::vector<T> partial(static_cast<size_t>((tasks - 1) * wn), T(0));
      run_items(tasks, tasks, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          int64_t p0, p1;
          split(P, tasks, t, p0, p1);
          accumulate(0, Cout, p0, p1, t == 0 ? dwt : partial.data() + (t - 1) * wn);
        }
      });
      parallel_for(wn, tasks, [&](int64_t i0, int64_t i1) {
        for (int64_t t = 1; t < tasks; ++t) {
          const T* q = partial.data() + (t - 1) * wn;
          for (int64_t i = i0; i < i1; ++i) dwt[i] += q[i];
        }
      });
    } else {
      // Few positions (1x1 to 2x2 maps): the threads split the outputs
      // (blocks of 16), each summing every position.
      const int64_t parts = std::min(tasks, rblocks);
      run_items(parts, parts, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          int64_t b0, b1;
          split(rblocks, parts, t, b0, b1);
          accumulate(b0 * 16, std::min(b1 * 16, Cout), 0, P, dwt);
        }
      });
    }
    // Where the rows of tap t start in dwt (Cout, kk Cg) as the reorder
    // below reads it: t Cg; a flipped product is turned back live taps only
    // (a 3x3 on a 1x1 map: its centre), so there they are packed.
    std::vector<int64_t> tap_at(static_cast<size_t>(kk));
    for (int64_t t = 0; t < kk; ++t) tap_at[t] = t * Cg;
    int64_t row_len = K;
    if (flip) {
      std::vector<int64_t> live_list;
      for (int64_t t = 0; t < kk; ++t)
        if (live[t] || kk == 1) tap_at[t] = static_cast<int64_t>(live_list.size()) * C, live_list.push_back(t);
      row_len = static_cast<int64_t>(live_list.size()) * C;
      // dwt^T's live rows (row_len, Cout) -> (Cout, row_len): dw itself
      // for a 1x1 kernel, else a copy reordered below.
      T* back = kk == 1 ? dw : scratch<T>(Scratch::HwcnWeights, static_cast<size_t>(Cout * K));
      parallel_for((Cout + 15) / 16, 16 * row_len, [&](int64_t b0, int64_t b1) {
        transpose_columns<T>(
            row_len, b0 * 16, std::min(Cout, b1 * 16),
            [&](int64_t r) { return dwt + (live_list[r / C] * C + r % C) * Cout; },
            [&](int64_t o) { return back + o * row_len; }, [](int64_t) { return T(0); });
      });
      dwt = back;
    }
    if (kk > 1) {
      parallel_for(Cout, K, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o)
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t t = 0; t < kk; ++t)
              dw[(o * Cg + c) * kk + t] = live[t] ? dwt[o * row_len + tap_at[t] + c] : T(0);
      });
    }
  }
}

template void hwcn_conv2d_forward<float>(const ConvGeom&, const float*, const float*, const float*, float*, int64_t);
template void hwcn_conv2d_forward<double>(const ConvGeom&, const double*, const double*, const double*, double*,
                                          int64_t);
template void hwcn_conv2d_backward<float>(const ConvGeom&, const float*, const float*, const float*, float*, float*,
                                          int64_t);
template void hwcn_conv2d_backward<double>(const ConvGeom&, const double*, const double*, const double*, double*,
                                           double*, int64_t);

}  // namespace neurn::cpu
