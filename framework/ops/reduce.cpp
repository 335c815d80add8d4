#include "framework/ops/reduce.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/elementwise_cpu.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/reduce_kernels.h"
#include "framework/ops/reduce_math.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

namespace {

struct ReducePlan {
  std::vector<bool> reduced;  // per input axis
  Shape keep_shape;           // reduced axes set to 1
  Shape out_shape;            // with or without them, per keepdim
  int64_t count = 1;          // elements per output
};

ReducePlan plan_reduce(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim, const char* op) {
  ReducePlan p;
  p.reduced.assign(static_cast<size_t>(x.dim()), axes.empty());
  for (int64_t a : axes) {
    int64_t n = normalize_axis(a, x.dim(), op);
    NEURN_CHECK(!p.reduced[n] || axes.empty(), op, ": axis ", a, " is listed twice");
    p.reduced[n] = true;
  }
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (p.reduced[i]) {
      p.count *= x.shape()[i];
      p.keep_shape.push_back(1);
      if (keepdim) p.out_shape.push_back(1);
    } else {
      p.keep_shape.push_back(x.shape()[i]);
      p.out_shape.push_back(x.shape()[i]);
    }
  }
  return p;
}

// Index over the input shape: operand 0 walks the input, operand 1 the
// output (keepdim shape, stride 0 along the reduced axes).
BroadcastIndex reduce_index(const Shape& in, const Shape& keep) {
  const Shape* shapes[2] = {&in, &keep};
  return cpu::make_broadcast_index(in, shapes, 2);
}

// ---- sums -------------------------------------------------------------------------
// Every sum adds in an order fixed by the shape alone. Threads split the work
// only at output or block boundaries and combine partial sums in that same
// order, so a result never depends on the number of threads.
//
// float32 (docs/engine-bench.md, "Sums in float32 blocks"): a contiguous run
// is cut into blocks of kF32Block values; in a block, 64 float32 lanes each
// add every 64th value in order (lane j: values j, j + 64, ..., at most
// kF32Run of them), the 64 lane sums are widened to double and added in a
// fixed tree (Lanes64::widen_sum), and the blocks' doubles are added in order.
// A column sum (a reduced axis with kept axes inside it) adds kF32Run rows at
// a time in float32, per column and in row order, and adds those partial
// sums in order in double. No float32 partial sum holds more than kF32Run
// values, so the float32 rounding error is at most (kF32Run - 1) u = 15 u
// (u = 2^-24, about 9e-7) times the sum of the magnitudes; the rest is double
// rounding and the final rounding to float32. Enough independent float32
// accumulators (4 AVX-512 or 8 AVX2 registers) hide the add latency, so the
// loops run at the speed the cache delivers data.
//
// float64: blocks of kF64Block values in 8 double lanes, blocks added in
// order; columns: one double accumulator per column, rows in order.

constexpr int64_t kF32Run = 16;                // values per float32 partial sum, at most
constexpr int64_t kF32Lanes = 64;              // float32 lanes of a block
constexpr int64_t kF32Block = kF32Lanes * kF32Run;
constexpr int64_t kF64Block = 4096;

template <typename T>
constexpr int64_t sum_block_len() {
  return std::is_same_v<T, float> ? kF32Block : kF64Block;
}

// One copy of the sum loops per instruction set, picked at load time
// (GCC's function multiversioning, as the softmax loops in loss.cpp). The
// loops only add, lane by lane, so every copy gives the same bits; flatten
// inlines the helpers into each copy (else they would be compiled once, for
// the baseline instruction set).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NEURN_SUM_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), flatten))
#else
#define NEURN_SUM_CLONES
#endif

// GCC/Clang vector extensions: lane-wise IEEE adds, lowered to whatever
// vector width the instruction set of the copy has (4 x 16 lanes = 4 zmm,
// 8 ymm or 16 xmm registers).
typedef float F32x16 __attribute__((vector_size(64)));
typedef float F32x8 __attribute__((vector_size(32)));
typedef double F64x8 __attribute__((vector_size(64)));

// 64 float32 lanes: lane 16 k + j is element j of v<k>. Only pointers cross
// its member functions (a vector passed by value would change the calling
// convention between the copies); four named vectors, not an array, so that
// GCC keeps them in registers.
struct Lanes64 {
  F32x16 v0, v1, v2, v3;

  void zero() { v0 = v1 = v2 = v3 = F32x16{}; }
  void load(const float* p) {
    std::memcpy(&v0, p, sizeof v0);
    std::memcpy(&v1, p + 16, sizeof v1);
    std::memcpy(&v2, p + 32, sizeof v2);
    std::memcpy(&v3, p + 48, sizeof v3);
  }
  void add(const float* p) {
    F32x16 t0, t1, t2, t3;
    std::memcpy(&t0, p, sizeof t0);
    std::memcpy(&t1, p + 16, sizeof t1);
    std::memcpy(&t2, p + 32, sizeof t2);
    std::memcpy(&t3, p + 48, sizeof t3);
    v0 += t0;
    v1 += t1;
    v2 += t2;
    v3 += t3;
  }
  // Lanes 8 m .. 8 m + 7 widened to double, into d[m].
  void widen(F64x8 d[8]) const {
    const F32x16* v[4] = {&v0, &v1, &v2, &v3};
    for (int k = 0; k < 4; ++k) {
      F32x8 lo = __builtin_shufflevector(*v[k], *v[k], 0, 1, 2, 3, 4, 5, 6, 7);
      F32x8 hi = __builtin_shufflevector(*v[k], *v[k], 8, 9, 10, 11, 12, 13, 14, 15);
      d[2 * k] = __builtin_convertvector(lo, F64x8);
      d[2 * k + 1] = __builtin_convertvector(hi, F64x8);
    }
  }
  // The lanes L[0..63] in double, in a fixed tree: s[i] = ((L[i] + L[8+i]) +
  // (L[16+i] + L[24+i])) + ((L[32+i] + L[40+i]) + (L[48+i] + L[56+i])),
  // then ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)).
  double widen_sum() const {
    F64x8 d[8];
    widen(d);
    F64x8 s = ((d[0] + d[1]) + (d[2] + d[3])) + ((d[4] + d[5]) + (d[6] + d[7]));
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  }
  // acc[L] += lane L, in double.
  void widen_add_to(double* acc) const {
    F64x8 d[8];
    widen(d);
    for (int m = 0; m < 8; ++m) {
      F64x8 a;
      std::memcpy(&a, acc + 8 * m, sizeof a);
      a += d[m];
      std::memcpy(acc + 8 * m, &a, sizeof a);
    }
  }
};

// The sum of n <= kF32Block float32 values: one block.
inline double f32_block(const float* __restrict x, int64_t n) {
  Lanes64 a;
  a.zero();
  int64_t i = 0;
  for (; i + kF32Lanes <= n; i += kF32Lanes) {
    // The four cache lines one block (4 KB) ahead: a single stream read
    // 15 to 30 % faster with it on this machine (a one-thread micro-benchmark
    // over 64 MiB); a prefetch never faults, past the end of x included.
    const float* ahead = x + i + kF32Block;
    __builtin_prefetch(ahead);
    __builtin_prefetch(ahead + 16);
    __builtin_prefetch(ahead + 32);
    __builtin_prefetch(ahead + 48);
    a.add(x + i);
  }
  if (i < n) {  // the tail, zero-padded: adding +0 leaves a lane as it is
    float t[kF32Lanes] = {};
    std::memcpy(t, x + i, sizeof(float) * static_cast<size_t>(n - i));
    a.add(t);
  }
  return a.widen_sum();
}

// The same for n < kF32Lanes, where each lane holds at most one value, in
// scalar code (short rows, e.g. (N, 10) logits or the 4 x 4 runs of a bias
// gradient, would otherwise pay for the zero-padded tail and the widening).
// The same tree over the same lane values gives the same bits: a lane is
// 0.0f + x, exactly x widened but +0 for -0, which + 0.0 reproduces; absent
// lanes are +0 and adding +0 changes nothing, so they are left out.
inline double f32_lane(const float* x, int64_t j) { return static_cast<double>(x[j]) + 0.0; }

// Lanes i, 8 + i, 16 + i, ... of which the first m <= 8 are present (p = x + i).
inline double f32_short_column(const float* p, int64_t m) {
  auto v = [&](int64_t k) { return f32_lane(p, 8 * k); };
  switch (m) {
    case 0: return 0.0;
    case 1: return v(0);
    case 2: return v(0) + v(1);
    case 3: return (v(0) + v(1)) + v(2);
    case 4: return (v(0) + v(1)) + (v(2) + v(3));
    case 5: return ((v(0) + v(1)) + (v(2) + v(3))) + v(4);
    case 6: return ((v(0) + v(1)) + (v(2) + v(3))) + (v(4) + v(5));
    case 7: return ((v(0) + v(1)) + (v(2) + v(3))) + ((v(4) + v(5)) + v(6));
    default: return ((v(0) + v(1)) + (v(2) + v(3))) + ((v(4) + v(5)) + (v(6) + v(7)));  // 8
  }
}

inline double f32_short(const float* x, int64_t n) {
  double s[8];
  for (int64_t i = 0; i < 8; ++i) s[i] = f32_short_column(x + i, n > i ? (n - i + 7) / 8 : 0);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

NEURN_SUM_CLONES double f32_block_sum(const float* x, int64_t n) {
  return n < kF32Lanes ? f32_short(x, n) : f32_block(x, n);
}

NEURN_SUM_CLONES double f32_run_sum(const float* x, int64_t n) {
  if (n < kF32Lanes) return f32_short(x, n);
  double total = 0;
  for (int64_t b = 0; b < n; b += kF32Block) total += f32_block(x + b, std::min(kF32Block, n - b));
  return total;
}

// acc[c] += the sum of column c < nc of the len rows of x (row r at
// x + r * inner): kF32Run rows at a time in float32, rows in order, each
// partial sum added to acc[c] in double.
NEURN_SUM_CLONES void f32_column_sums(const float* x, int64_t len, int64_t inner, int64_t nc, double* acc) {
  for (int64_t r0 = 0; r0 < len; r0 += kF32Run) {
    const int64_t rn = std::min(kF32Run, len - r0);
    const float* x0 = x + r0 * inner;
    int64_t c = 0;
    for (; c + kF32Lanes <= nc; c += kF32Lanes) {
      Lanes64 f;
      f.load(x0 + c);
      for (int64_t r = 1; r < rn; ++r) f.add(x0 + r * inner + c);
      f.widen_add_to(acc + c);
    }
    for (; c + 8 <= nc; c += 8) {
      F32x8 f, t;
      std::memcpy(&f, x0 + c, sizeof f);
      for (int64_t r = 1; r < rn; ++r) {
        std::memcpy(&t, x0 + r * inner + c, sizeof t);
        f += t;
      }
      F64x8 a;
      std::memcpy(&a, acc + c, sizeof a);
      a += __builtin_convertvector(f, F64x8);
      std::memcpy(acc + c, &a, sizeof a);
    }
    for (; c < nc; ++c) {
      float f = x0[c];
      for (int64_t r = 1; r < rn; ++r) f += x0[r * inner + c];
      acc[c] += static_cast<double>(f);
    }
  }
}

double block_sum(const float* x, int64_t n) { return f32_block_sum(x, n); }
double run_sum(const float* x, int64_t n) { return f32_run_sum(x, n); }

// float64: the 8 lanes (lane j: values j, j + 8, ...; the tail after the
// last multiple of 8 into lane 0) as one vector, in the clones too: the same
// bits as the scalar lanes of before, at the speed of the cache.
inline double f64_block(const double* x, int64_t n) {
  F64x8 a = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    F64x8 t;
    std::memcpy(&t, x + i, sizeof t);
    a += t;
  }
  double l0 = a[0];
  for (; i < n; ++i) l0 += x[i];
  return ((l0 + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

NEURN_SUM_CLONES double f64_block_sum(const double* x, int64_t n) { return f64_block(x, n); }

NEURN_SUM_CLONES double f64_run_sum(const double* x, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kF64Block) total += f64_block(x + b, std::min(kF64Block, n - b));
  return total;
}

double block_sum(const double* x, int64_t n) { return f64_block_sum(x, n); }
double run_sum(const double* x, int64_t n) { return f64_run_sum(x, n); }

void column_sums(const float* x, int64_t len, int64_t inner, int64_t nc, double* acc) {
  f32_column_sums(x, len, inner, nc, acc);
}

void column_sums(const double* x, int64_t len, int64_t inner, int64_t nc, double* __restrict acc) {
  for (int64_t r = 0; r < len; ++r) {
    const double* __restrict row = x + r * inner;
    for (int64_t c = 0; c < nc; ++c) acc[c] += row[c];
  }
}

// cpu::parallel_for with the thread count as a parameter: the kernels plan
// and split for `threads` (cpu::num_threads() in use, any count in the test
// that results do not depend on it).
template <typename F>
void split_for(int threads, int64_t n, int64_t cost, F&& f) {
  if (n <= 0) return;
  constexpr int64_t kMinWorkPerThread = 1 << 16;
  const int64_t work = n * std::max<int64_t>(cost, 1);
  const int64_t tasks = std::min<int64_t>({threads, n, std::max<int64_t>(work / kMinWorkPerThread, 1)});
  if (tasks <= 1) {
    f(int64_t{0}, n);
    return;
  }
  cpu::run_on_threads(tasks, [&](int64_t t) {
    const int64_t per = n / tasks, extra = n % tasks;
    const int64_t begin = t * per + std::min(t, extra);
    f(begin, begin + per + (t < extra ? 1 : 0));
  });
}

// (rows, len) -> (rows): each row one run.
template <typename T>
void sum_rows(const T* x, T* out, int64_t rows, int64_t len, int threads) {
  constexpr int64_t block = sum_block_len<T>();
  const int64_t blocks = (len + block - 1) / block;
  if (rows >= 4 * threads || blocks <= 1) {
    split_for(threads, rows, len, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) out[r] = static_cast<T>(run_sum(x + r * len, len));
    });
    return;
  }
  // Few long rows: split them at block boundaries, then add each row's block
  // sums in order (what run_sum does on one thread).
  std::vector<double> part(static_cast<size_t>(rows * blocks));
  split_for(threads, rows * blocks, block, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      int64_t r = t / blocks, b = (t % blocks) * block;
      part[static_cast<size_t>(t)] = block_sum(x + r * len + b, std::min(block, len - b));
    }
  });
  for (int64_t r = 0; r < rows; ++r) {
    double total = 0;
    for (int64_t b = 0; b < blocks; ++b) total += part[static_cast<size_t>(r * blocks + b)];
    out[r] = static_cast<T>(total);
  }
}

// (outer, len, inner) -> (outer, inner): columns summed down the middle axis
// (column_sums), a stripe of columns per task, so every task streams whole
// row segments (vectorised across columns). The stripe width only changes who
// sums a column, never the order of its additions.
template <typename T>
void sum_columns(const T* x, T* out, int64_t outer, int64_t len, int64_t inner, int threads) {
  constexpr int64_t kMaxCols = 4096;  // 32 KB of double accumulators
  const int64_t want = (inner + threads - 1) / threads;
  const int64_t width = std::clamp<int64_t>((want + 15) / 16 * 16, 16, kMaxCols);
  const int64_t stripes = (inner + width - 1) / width;
  split_for(threads, outer * stripes, len * width, [&](int64_t begin, int64_t end) {
    std::vector<double> acc(static_cast<size_t>(width));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t o = t / stripes, c0 = (t % stripes) * width, nc = std::min(width, inner - c0);
      std::fill(acc.begin(), acc.begin() + nc, 0.0);
      column_sums(x + o * len * inner + c0, len, inner, nc, acc.data());
      T* os = out + o * inner + c0;
      for (int64_t c = 0; c < nc; ++c) os[c] = static_cast<T>(acc[static_cast<size_t>(c)]);
    }
  });
}

// Any other pattern whose innermost axis is reduced (e.g. (N, C, H W) summed
// to (C)): each output adds its runs in order, outputs split over threads.
template <typename T>
void sum_runs(const T* x, T* out, const BroadcastIndex& c, int64_t n_out, int threads) {
  const int nd = c.ndim;
  const int64_t len = c.shape[nd - 1];
  // The kept axes (output stride != 0) and the reduced ones, innermost excluded.
  int kept[BroadcastIndex::kMaxDims], red[BroadcastIndex::kMaxDims], nk = 0, nr = 0;
  for (int d = 0; d < nd - 1; ++d) (c.strides[1][d] != 0 ? kept[nk++] : red[nr++]) = d;
  int64_t runs = 1;
  for (int i = 0; i < nr; ++i) runs *= c.shape[red[i]];
  split_for(threads, n_out, runs * len, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      int64_t base = 0, rest = o;  // the output is contiguous over the kept axes, in order
      for (int i = nk - 1; i >= 0; --i) {
        base += (rest % c.shape[kept[i]]) * c.strides[0][kept[i]];
        rest /= c.shape[kept[i]];
      }
      double total = 0;
      for (int64_t r = 0; r < runs; ++r) {
        int64_t off = base, q = r;
        for (int i = nr - 1; i >= 0; --i) {
          off += (q % c.shape[red[i]]) * c.strides[0][red[i]];
          q /= c.shape[red[i]];
        }
        total += run_sum(x + off, len);
      }
      out[o] = static_cast<T>(total);
    }
  });
}

template <typename T>
void sum_cpu_typed(const Tensor& x, const Tensor& out, int threads) {
  const T* px = x.data<T>();
  T* po = out.data<T>();
  const int64_t n_out = out.numel();
  if (n_out == 0) return;
  if (x.numel() == 0) {
    std::fill(po, po + n_out, T(0));
    return;
  }
  BroadcastIndex c = cpu::coalesce(reduce_index(x.shape(), out.shape()));
  const int nd = c.ndim;
  if (nd == 0) {  // one element
    po[0] = px[0];
    return;
  }
  const bool inner_reduced = c.strides[1][nd - 1] == 0;
  int n_reduced = 0;
  for (int d = 0; d < nd; ++d) n_reduced += c.strides[1][d] == 0;
  if (n_reduced == 0) {  // nothing reduced (axes of size 1): a copy
    std::copy(px, px + n_out, po);
  } else if (inner_reduced && n_reduced == 1) {  // (rows, len) -> (rows)
    sum_rows(px, po, n_out, c.shape[nd - 1], threads);
  } else if (inner_reduced) {
    sum_runs(px, po, c, n_out, threads);
  } else if (n_reduced == 1 && (nd == 2 || (nd == 3 && c.strides[1][0] != 0))) {  // (outer, len, inner)
    const int64_t inner = c.shape[nd - 1], len = c.shape[nd - 2], outer = nd == 3 ? c.shape[0] : 1;
    sum_columns(px, po, outer, len, inner, threads);
  } else {
    // Several reduced axes under a kept innermost one: one thread, in input
    // order, in double for float32 too (rare: no op of the project reduces
    // this way in a training step).
    std::vector<double> acc(static_cast<size_t>(n_out), 0.0);
    cpu::for_each_broadcast(c, [&](int64_t, int64_t i, int64_t o, int64_t) { acc[o] += px[i]; });
    for (int64_t o = 0; o < n_out; ++o) po[o] = static_cast<T>(acc[o]);
  }
}

void sum_cpu(const Tensor& x, const Tensor& out) {
  dispatch_float(x.dtype(), "sum", [&](auto z) { sum_cpu_typed<decltype(z)>(x, out, cpu::num_threads()); });
}

// The maxima of x into out (keepdim shape) and the flat input index of each.
void max_cpu(const Tensor& x, const Tensor& out, const Tensor& arg) {
  BroadcastIndex idx = reduce_index(x.shape(), out.shape());
  dispatch_float(x.dtype(), "max", [&](auto z) {
    using T = decltype(z);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    int64_t* pa = arg.data<int64_t>();
    const int64_t n_out = out.numel();
    std::fill(po, po + n_out, -std::numeric_limits<T>::infinity());
    std::fill(pa, pa + n_out, int64_t{-1});
    cpu::for_each_broadcast(idx, [&](int64_t, int64_t i, int64_t o, int64_t) {
      // NaN propagates; the first maximum wins ties.
      if (pa[o] < 0 || px[i] > po[o] || (px[i] != px[i] && po[o] == po[o])) {
        po[o] = px[i];
        pa[o] = i;
      }
    });
  });
}

void argmax_cpu(const Tensor& x, int64_t axis, const Tensor& arg) {
  Tensor vals = Tensor::empty(arg.shape(), {x.dtype(), x.device(), false});
  max_cpu(x, vals, arg);
  const int64_t stride = contiguous_strides(x.shape())[axis], size = x.shape()[axis];
  int64_t* a = arg.data<int64_t>();
  for (int64_t o = 0; o < arg.numel(); ++o) a[o] = axis_coordinate(a[o], stride, size);
}

// A scatter on one thread: each input is the maximum of at most one output,
// so the order of the writes cannot change the result.
void max_backward_cpu(const Tensor& g, const Tensor& arg, const Tensor& dx, const BroadcastIndex&) {
  dispatch_float(g.dtype(), "max backward", [&](auto z) {
    using T = decltype(z);
    const int64_t* a = arg.data<int64_t>();
    const T* pg = g.data<T>();
    T* pd = dx.data<T>();
    std::fill(pd, pd + dx.numel(), T(0));
    for (int64_t o = 0; o < arg.numel(); ++o) pd[a[o]] += pg[o];
  });
}

}  // namespace

NEURN_DEFINE_KERNEL(sum_kernel);
NEURN_DEFINE_KERNEL(max_kernel);
NEURN_DEFINE_KERNEL(argmax_kernel);
NEURN_DEFINE_KERNEL(max_backward_kernel);
NEURN_REGISTER_KERNEL(sum_kernel, DeviceType::CPU, sum_cpu);
NEURN_REGISTER_KERNEL(max_kernel, DeviceType::CPU, max_cpu);
NEURN_REGISTER_KERNEL(argmax_kernel, DeviceType::CPU, argmax_cpu);
NEURN_REGISTER_KERNEL(max_backward_kernel, DeviceType::CPU, max_backward_cpu);

void cpu::sum_with_threads(const Tensor& x, const Tensor& out, int threads) {
  NEURN_CHECK(threads >= 1, "sum: ", threads, " threads (expected at least 1)");
  NEURN_CHECK(x.device().is_cpu() && out.device().is_cpu(), "sum: the CPU kernel got tensors on ", x.device().str(),
              " and ", out.device().str());
  NEURN_CHECK(x.dtype() == out.dtype() && x.dim() == out.dim(), "sum: input ", shape_str(x.shape()), " ",
              dtype_name(x.dtype()), " and output ", shape_str(out.shape()), " ", dtype_name(out.dtype()),
              " (expected the same dtype and rank)");
  for (int64_t d = 0; d < x.dim(); ++d)
    NEURN_CHECK(out.shape()[d] == x.shape()[d] || out.shape()[d] == 1, "sum: output ", shape_str(out.shape()),
                " is not a reduction of ", shape_str(x.shape()));
  dispatch_float(x.dtype(), "sum", [&](auto z) { sum_cpu_typed<decltype(z)>(x, out, threads); });
}

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  ReducePlan p = plan_reduce(x, axes, keepdim, "sum");
  Tensor out = Tensor::empty(p.keep_shape, x.options());
  count_flops(x.numel());
  sum_kernel(x.device(), x, out);
  out = out.detach().reshape(p.out_shape);
  Shape in_shape = x.shape(), keep = p.keep_shape;
  return attach_grad(out, "sum", {x}, [in_shape, keep](const Tensor& g) -> std::vector<Tensor> {
    return {expand(reshape(g, keep), in_shape)};
  });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  ReducePlan p = plan_reduce(x, axes, keepdim, "mean");
  NEURN_CHECK(p.count > 0, "mean: reducing ", shape_str(x.shape()), " over an empty axis");
  return mul(sum(x, axes, keepdim), 1.0 / static_cast<double>(p.count));
}

Tensor max(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  ReducePlan p = plan_reduce(x, axes, keepdim, "max");
  NEURN_CHECK(p.count > 0, "max: reducing ", shape_str(x.shape()), " over an empty axis");
  Tensor out = Tensor::empty(p.keep_shape, x.options());
  // The index of each maximum is kept for the backward as an int64 tensor.
  Tensor arg = Tensor::empty(p.keep_shape, {DType::Int64, x.device(), false});
  count_flops(x.numel());
  if (out.numel() > 0) max_kernel(x.device(), x, out, arg);
  out = out.detach().reshape(p.out_shape);
  Shape in_shape = x.shape(), keep = p.keep_shape;
  return attach_grad(out, "max", {x}, [in_shape, keep, arg](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty(in_shape, g.options());
    if (dx.numel() == 0) return {dx};
    BroadcastIndex idx = reduce_index(in_shape, keep);
    max_backward_kernel(g.device(), g, arg, dx, idx);
    return {dx};
  });
}

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  int64_t ax = normalize_axis(axis, x.dim(), "argmax");
  ReducePlan p = plan_reduce(x, {ax}, keepdim, "argmax");
  NEURN_CHECK(p.count > 0, "argmax: axis ", axis, " of ", shape_str(x.shape()), " is empty");
  Tensor arg = Tensor::empty(p.keep_shape, {DType::Int64, x.device(), false});
  if (arg.numel() > 0) argmax_kernel(x.device(), x, ax, arg);
  return arg.reshape(p.out_shape);
}

}  // namespace neurn
