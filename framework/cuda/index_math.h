#pragma once
// Index arithmetic of the CUDA kernels, written with NEURN_HD so the CPU tests
// can check it against the CPU loops (tests/framework/test_cuda.cpp) on a
// machine without a GPU.
#include <cstdint>

#include "framework/hd.h"
#include "framework/ops/elementwise_functors.h"

namespace neurn::cuda {

// The offset of every operand of `idx` at output position `linear` (row-major).
NEURN_HD void broadcast_offsets(const BroadcastIndex& idx, int64_t linear, int64_t off[3]) {
  off[0] = off[1] = off[2] = 0;
  for (int d = idx.ndim - 1; d >= 0; --d) {
    int64_t size = idx.shape[d];
    int64_t c = linear % size;
    linear /= size;
    off[0] += c * idx.strides[0][d];
    off[1] += c * idx.strides[1][d];
    off[2] += c * idx.strides[2][d];
  }
}

// A reduction seen from its output: every output element owns `count` inputs.
// Input offset of (output o, reduced position r) = kept part + reduced part,
// each decomposed over its own axes (row-major, innermost last).
struct ReduceIndex {
  static constexpr int kMaxDims = 8;
  int n_kept = 0, n_reduced = 0;
  int64_t kept_shape[kMaxDims] = {}, kept_stride[kMaxDims] = {};
  int64_t red_shape[kMaxDims] = {}, red_stride[kMaxDims] = {};
  int64_t n_out = 1;  // product of kept_shape
  int64_t count = 1;  // product of red_shape
  // The reduced axes are the innermost ones and contiguous: input offset =
  // o * count + r.
  bool inner_contiguous = false;
};

NEURN_HD int64_t reduce_base_offset(const ReduceIndex& ri, int64_t o) {
  int64_t off = 0;
  for (int d = ri.n_kept - 1; d >= 0; --d) {
    off += (o % ri.kept_shape[d]) * ri.kept_stride[d];
    o /= ri.kept_shape[d];
  }
  return off;
}

NEURN_HD int64_t reduce_inner_offset(const ReduceIndex& ri, int64_t r) {
  int64_t off = 0;
  for (int d = ri.n_reduced - 1; d >= 0; --d) {
    off += (r % ri.red_shape[d]) * ri.red_stride[d];
    r /= ri.red_shape[d];
  }
  return off;
}

// Builds the index of reducing a contiguous tensor of shape `in` (ndim axes)
// to `keep` (same rank, 1 on reduced axes). Size-1 axes are dropped and
// neighbouring axes of the same kind merged, so the common cases (all axes,
// the last axis, the batch axis) become one or two axes.
inline ReduceIndex make_reduce_index(const int64_t* in, const int64_t* keep, int ndim) {
  ReduceIndex ri;
  int64_t stride = 1;
  // Walk from the innermost axis, merging runs of the same kind.
  int last_kind = -1;  // 0 kept, 1 reduced
  int64_t kshape[ReduceIndex::kMaxDims], kstride[ReduceIndex::kMaxDims];
  int64_t rshape[ReduceIndex::kMaxDims], rstride[ReduceIndex::kMaxDims];
  int nk = 0, nr = 0;
  for (int d = ndim - 1; d >= 0; --d) {
    int64_t size = in[d];
    if (size == 1) continue;
    int kind = keep[d] == 1 ? 1 : 0;
    if (kind == last_kind) {
      if (kind) rshape[nr - 1] *= size;
      else kshape[nk - 1] *= size;
    } else if (kind) {
      rshape[nr] = size;
      rstride[nr++] = stride;
    } else {
      kshape[nk] = size;
      kstride[nk++] = stride;
    }
    last_kind = kind;
    stride *= size;
  }
  // Stored innermost last.
  ri.n_kept = nk;
  ri.n_reduced = nr;
  for (int i = 0; i < nk; ++i) {
    ri.kept_shape[i] = kshape[nk - 1 - i];
    ri.kept_stride[i] = kstride[nk - 1 - i];
    ri.n_out *= ri.kept_shape[i];
  }
  for (int i = 0; i < nr; ++i) {
    ri.red_shape[i] = rshape[nr - 1 - i];
    ri.red_stride[i] = rstride[nr - 1 - i];
    ri.count *= ri.red_shape[i];
  }
  ri.inner_contiguous = nr == 0 || (nr == 1 && ri.red_stride[0] == 1);
  return ri;
}

// Reflect padding of an axis of size n by `before` and `after` (each < n):
// output i reads input reflect_index(i - before, n).
NEURN_HD int64_t reflect_index(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

// The output positions that read input position r (at most three: itself,
// its mirror in the leading pad, its mirror in the trailing pad); returns how
// many were written to out.
NEURN_HD int reflect_sources(int64_t r, int64_t n, int64_t before, int64_t after, int64_t out[3]) {
  int k = 0;
  out[k++] = r + before;
  if (r > 0 && r <= before) out[k++] = before - r;
  if (r < n - 1 && r >= n - 1 - after) out[k++] = 2 * (n - 1) - r + before;
  return k;
}

}  // namespace neurn::cuda
