#include "framework/ops/reduce.h"

#include <algorithm>
#include <limits>

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
// Every sum accumulates in double, in an order fixed by the shape alone:
// a contiguous run is cut into blocks of kSumBlock values, each summed in
// eight lanes, and the block sums are added in order. Threads split the work
// only at output or block boundaries and their partial sums are combined in
// that same order, so a result never depends on the number of threads.

constexpr int64_t kSumBlock = 4096;

template <typename T>
double block_sum(const T* __restrict x, int64_t n) {
  double lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lane[j] += static_cast<double>(x[i + j]);
  for (; i < n; ++i) lane[0] += static_cast<double>(x[i]);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

template <typename T>
double run_sum(const T* x, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += kSumBlock) total += block_sum(x + b, std::min(kSumBlock, n - b));
  return total;
}

// (rows, len) -> (rows): each row one run.
template <typename T>
void sum_rows(const T* x, T* out, int64_t rows, int64_t len) {
  const int64_t blocks = (len + kSumBlock - 1) / kSumBlock;
  if (rows >= 4 * cpu::num_threads() || blocks <= 1) {
    cpu::parallel_for(rows, len, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) out[r] = static_cast<T>(run_sum(x + r * len, len));
    });
    return;
  }
  // Few long rows: split them at block boundaries, then add each row's block
  // sums in order (what run_sum does on one thread).
  std::vector<double> part(static_cast<size_t>(rows * blocks));
  cpu::parallel_for(rows * blocks, kSumBlock, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      int64_t r = t / blocks, b = (t % blocks) * kSumBlock;
      part[static_cast<size_t>(t)] = block_sum(x + r * len + b, std::min(kSumBlock, len - b));
    }
  });
  for (int64_t r = 0; r < rows; ++r) {
    double total = 0;
    for (int64_t b = 0; b < blocks; ++b) total += part[static_cast<size_t>(r * blocks + b)];
    out[r] = static_cast<T>(total);
  }
}

// (outer, len, inner) -> (outer, inner): columns summed down the middle axis
// in row order, a stripe of columns per task, so every task streams whole
// row segments (vectorised across columns). The stripe width only changes who
// sums a column, never the order of its additions.
template <typename T>
void sum_columns(const T* x, T* out, int64_t outer, int64_t len, int64_t inner) {
  constexpr int64_t kMaxCols = 4096;  // 32 KB of accumulators
  const int64_t want = (inner + cpu::num_threads() - 1) / cpu::num_threads();
  const int64_t width = std::clamp<int64_t>((want + 15) / 16 * 16, 16, kMaxCols);
  const int64_t stripes = (inner + width - 1) / width;
  cpu::parallel_for(outer * stripes, len * width, [&](int64_t begin, int64_t end) {
    std::vector<double> acc(static_cast<size_t>(width));
    for (int64_t t = begin; t < end; ++t) {
      const int64_t o = t / stripes, c0 = (t % stripes) * width, nc = std::min(width, inner - c0);
      double* __restrict a = acc.data();
      std::fill(a, a + nc, 0.0);
      const T* xs = x + o * len * inner + c0;
      for (int64_t r = 0; r < len; ++r) {
        const T* __restrict row = xs + r * inner;
        for (int64_t c = 0; c < nc; ++c) a[c] += static_cast<double>(row[c]);
      }
      T* os = out + o * inner + c0;
      for (int64_t c = 0; c < nc; ++c) os[c] = static_cast<T>(a[c]);
    }
  });
}

// Any other pattern whose innermost axis is reduced (e.g. (N, C, H W) summed
// to (C)): each output adds its runs in order, outputs split over threads.
template <typename T>
void sum_runs(const T* x, T* out, const BroadcastIndex& c, int64_t n_out) {
  const int nd = c.ndim;
  const int64_t len = c.shape[nd - 1];
  // The kept axes (output stride != 0) and the reduced ones, innermost excluded.
  int kept[BroadcastIndex::kMaxDims], red[BroadcastIndex::kMaxDims], nk = 0, nr = 0;
  for (int d = 0; d < nd - 1; ++d) (c.strides[1][d] != 0 ? kept[nk++] : red[nr++]) = d;
  int64_t runs = 1;
  for (int i = 0; i < nr; ++i) runs *= c.shape[red[i]];
  cpu::parallel_for(n_out, runs * len, [&](int64_t begin, int64_t end) {
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
void sum_cpu_typed(const Tensor& x, const Tensor& out) {
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
    sum_rows(px, po, n_out, c.shape[nd - 1]);
  } else if (inner_reduced) {
    sum_runs(px, po, c, n_out);
  } else if (n_reduced == 1 && (nd == 2 || (nd == 3 && c.strides[1][0] != 0))) {  // (outer, len, inner)
    const int64_t inner = c.shape[nd - 1], len = c.shape[nd - 2], outer = nd == 3 ? c.shape[0] : 1;
    sum_columns(px, po, outer, len, inner);
  } else {
    // Several reduced axes under a kept innermost one: one thread, in input
    // order (rare: no op of the project reduces this way in a training step).
    std::vector<double> acc(static_cast<size_t>(n_out), 0.0);
    cpu::for_each_broadcast(c, [&](int64_t, int64_t i, int64_t o, int64_t) { acc[o] += px[i]; });
    for (int64_t o = 0; o < n_out; ++o) po[o] = static_cast<T>(acc[o]);
  }
}

void sum_cpu(const Tensor& x, const Tensor& out) {
  dispatch_float(x.dtype(), "sum", [&](auto z) { sum_cpu_typed<decltype(z)>(x, out); });
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
