#pragma once
// CPU loops for the element-wise functors, threaded over the pool of
// framework/ops/parallel_cpu.h. The output is split into contiguous ranges of
// flat indices, one per thread; each range is walked as segments of the
// innermost axis, whose operand strides are 0 or 1 after coalescing, so the
// inner loops are plain contiguous or broadcast-scalar loops the compiler
// vectorises. Element-wise results do not depend on the thread count (each
// output is computed once, by the same functor).
#include <algorithm>

#include "framework/ops/elementwise_functors.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/shape.h"

namespace neurn::cpu {

// The index of contiguous operands of the given shapes broadcast to `out`.
BroadcastIndex make_broadcast_index(const Shape& out, const Shape* inputs[], int n_inputs);
// The same from the operands' real strides (views: permuted, sliced,
// expanded), offsets counted from each operand's first element
// (strided_data()); equal to the shape form for contiguous operands.
}  // namespace neurn::cpu
namespace neurn {
class Tensor;
}
namespace neurn::cpu {
BroadcastIndex make_broadcast_index(const Shape& out, const Tensor* inputs[], int n_inputs);

// The same index with size-1 axes dropped and adjacent axes merged wherever
// every operand walks them as one (stride[d] == stride[d + 1] * shape[d + 1]):
// a contiguous (N, C, H, W) + (1, C, 1, 1) becomes (N, C, H W) with strides
// (C H W, H W, 1) and (0, 1, 0). Offsets are unchanged for every output index.
BroadcastIndex coalesce(const BroadcastIndex& idx);

// Visits every output index of `idx`, calling f(out_offset, off0, off1, off2).
template <typename F>
void for_each_broadcast(const BroadcastIndex& idx, F&& f) {
  if (idx.numel == 0) return;
  int nd = idx.ndim;
  if (nd == 0) {
    f(0, 0, 0, 0);
    return;
  }
  int64_t counter[BroadcastIndex::kMaxDims] = {};
  int64_t off[3] = {0, 0, 0};
  int64_t inner = idx.shape[nd - 1];
  int64_t s0 = idx.strides[0][nd - 1], s1 = idx.strides[1][nd - 1], s2 = idx.strides[2][nd - 1];
  for (int64_t o = 0; o < idx.numel; o += inner) {
    for (int64_t i = 0; i < inner; ++i) f(o + i, off[0] + i * s0, off[1] + i * s1, off[2] + i * s2);
    for (int d = nd - 2; d >= 0; --d) {  // advance the outer counter
      ++counter[d];
      for (int k = 0; k < 3; ++k) off[k] += idx.strides[k][d];
      if (counter[d] < idx.shape[d]) break;
      for (int k = 0; k < 3; ++k) off[k] -= idx.strides[k][d] * idx.shape[d];
      counter[d] = 0;
    }
  }
}

// Visits the output indices [begin, end) of `idx` as runs along the innermost
// axis: seg(out_offset, off0, off1, off2, len), the operands advancing by
// their innermost strides (idx.strides[k][ndim - 1]) within a run.
template <typename F>
void for_each_segment(const BroadcastIndex& idx, int64_t begin, int64_t end, F&& seg) {
  if (begin >= end) return;
  const int nd = idx.ndim;
  if (nd == 0) {
    seg(int64_t{0}, int64_t{0}, int64_t{0}, int64_t{0}, int64_t{1});
    return;
  }
  const int64_t inner = idx.shape[nd - 1];
  int64_t counter[BroadcastIndex::kMaxDims] = {};
  int64_t off[3] = {0, 0, 0};
  int64_t row = begin / inner, col = begin % inner;
  for (int d = nd - 2; d >= 0; --d) {
    counter[d] = row % idx.shape[d];
    row /= idx.shape[d];
    for (int k = 0; k < 3; ++k) off[k] += counter[d] * idx.strides[k][d];
  }
  const int64_t s0 = idx.strides[0][nd - 1], s1 = idx.strides[1][nd - 1], s2 = idx.strides[2][nd - 1];
  for (int64_t o = begin; o < end;) {
    const int64_t len = std::min(inner - col, end - o);
    seg(o, off[0] + col * s0, off[1] + col * s1, off[2] + col * s2, len);
    o += len;
    col = 0;
    for (int d = nd - 2; d >= 0; --d) {
      ++counter[d];
      for (int k = 0; k < 3; ++k) off[k] += idx.strides[k][d];
      if (counter[d] < idx.shape[d]) break;
      for (int k = 0; k < 3; ++k) off[k] -= idx.strides[k][d] * idx.shape[d];
      counter[d] = 0;
    }
  }
}

// Splits [0, idx.numel) over the pool and visits each share with
// for_each_segment. `cost`: rough operations per element (1 for an add).
template <typename F>
void parallel_segments(const BroadcastIndex& idx, int64_t cost, F&& seg) {
  parallel_for(idx.numel, cost, [&](int64_t begin, int64_t end) { for_each_segment(idx, begin, end, seg); });
}

// Rough cost per element of a functor, so that cheap ops on small tensors stay
// on one thread and transcendental ones split sooner.
constexpr int64_t unary_cost(UnaryKind k) {
  switch (k) {
    case UnaryKind::Exp: case UnaryKind::Log: case UnaryKind::Sigmoid: case UnaryKind::Tanh:
    case UnaryKind::Silu: case UnaryKind::Gelu: case UnaryKind::GeluTanh: case UnaryKind::PowScalar:
      return 16;
    default:
      return 1;
  }
}
constexpr int64_t binary_cost(BinaryKind k) { return k == BinaryKind::Pow ? 16 : 1; }

template <typename T, typename F>
void unary_loop(F f, const T* x, T* y, int64_t n, int64_t cost = 1) {
  parallel_for(n, cost, [&](int64_t begin, int64_t end) {
    const T* __restrict xp = x;
    T* __restrict yp = y;
    for (int64_t i = begin; i < end; ++i) yp[i] = f.forward(xp[i]);
  });
}

// dx may be g (in place: each element is read before it is written, by the
// same iteration), never x or y.
template <typename T, typename F>
void unary_backward_loop(F f, const T* x, const T* y, const T* g, T* dx, int64_t n, int64_t cost = 1) {
  if (dx == g) {
    parallel_for(n, cost, [&](int64_t begin, int64_t end) {
      const T* __restrict xp = x;
      const T* __restrict yp = y;
      T* __restrict gp = dx;  // the one pointer to g's memory in this loop
      for (int64_t i = begin; i < end; ++i) gp[i] = f.backward(xp[i], yp[i], gp[i]);
    });
    return;
  }
  parallel_for(n, cost, [&](int64_t begin, int64_t end) {
    const T* __restrict xp = x;
    const T* __restrict yp = y;
    const T* __restrict gp = g;
    T* __restrict dp = dx;
    for (int64_t i = begin; i < end; ++i) dp[i] = f.backward(xp[i], yp[i], gp[i]);
  });
}

// out = f(a, b) over a coalesced broadcast index (operands 0 and 1).
template <typename T, typename F>
void binary_loop(F f, const T* a, const T* b, T* out, const BroadcastIndex& idx, int64_t cost = 1) {
  const int nd = idx.ndim;
  const int64_t sa = nd ? idx.strides[0][nd - 1] : 0, sb = nd ? idx.strides[1][nd - 1] : 0;
  parallel_segments(idx, cost, [&](int64_t o, int64_t i, int64_t j, int64_t, int64_t len) {
    T* __restrict op = out + o;
    const T* __restrict ap = a + i;
    const T* __restrict bp = b + j;
    if (sa == 1 && sb == 1) {
      for (int64_t k = 0; k < len; ++k) op[k] = f(ap[k], bp[k]);
    } else if (sa == 1 && sb == 0) {
      const T bv = *bp;
      for (int64_t k = 0; k < len; ++k) op[k] = f(ap[k], bv);
    } else if (sa == 0 && sb == 1) {
      const T av = *ap;
      for (int64_t k = 0; k < len; ++k) op[k] = f(av, bp[k]);
    } else {  // both broadcast along the run (or, later, strided views)
      for (int64_t k = 0; k < len; ++k) op[k] = f(ap[k * sa], bp[k * sb]);
    }
  });
}

}  // namespace neurn::cpu
