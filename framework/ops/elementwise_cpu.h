#pragma once
// CPU loops for the element-wise functors (one thread; the loops are simple
// enough for the compiler to vectorise the contiguous cases).
#include "framework/ops/elementwise_functors.h"
#include "framework/shape.h"

namespace neurn::cpu {

BroadcastIndex make_broadcast_index(const Shape& out, const Shape* inputs[], int n_inputs);

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

template <typename T, typename F>
void unary_loop(F f, const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = f.forward(x[i]);
}

template <typename T, typename F>
void unary_backward_loop(F f, const T* x, const T* y, const T* g, T* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = f.backward(x[i], y[i], g[i]);
}

template <typename T, typename F>
void binary_loop(F f, const T* a, const T* b, T* out, const BroadcastIndex& idx, int64_t na, int64_t nb) {
  if (na == idx.numel && nb == idx.numel) {
    for (int64_t i = 0; i < idx.numel; ++i) out[i] = f(a[i], b[i]);
  } else if (nb == 1 && na == idx.numel) {
    T bv = b[0];
    for (int64_t i = 0; i < idx.numel; ++i) out[i] = f(a[i], bv);
  } else if (na == 1 && nb == idx.numel) {
    T av = a[0];
    for (int64_t i = 0; i < idx.numel; ++i) out[i] = f(av, b[i]);
  } else {
    for_each_broadcast(idx, [&](int64_t o, int64_t i, int64_t j, int64_t) { out[o] = f(a[i], b[j]); });
  }
}

}  // namespace neurn::cpu
