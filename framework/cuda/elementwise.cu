// CUDA grids over the element-wise functors of
// framework/ops/elementwise_functors.h: the same functor objects the CPU loops
// call, so both devices run the same arithmetic.
#include "framework/cuda/cuda_check.h"
#include "framework/cuda/cuda_elementwise.h"
#include "framework/cuda/index_math.h"

namespace neurn::cuda {

namespace {

#define NEURN_GRID_STRIDE(i, n)                                                         \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename F>
__global__ void unary_kernel(F f, const float* __restrict__ x, float* __restrict__ y, int64_t n) {
  NEURN_GRID_STRIDE(i, n) y[i] = f.forward(x[i]);
}

template <typename F>
__global__ void unary_backward_kernel(F f, const float* __restrict__ x, const float* __restrict__ y,
                                      const float* __restrict__ g, float* __restrict__ dx, int64_t n) {
  NEURN_GRID_STRIDE(i, n) dx[i] = f.backward(x[i], y[i], g[i]);
}

// Operand layouts of a binary op: both full, one a scalar, or a general broadcast.
enum class Layout { Same, ScalarB, ScalarA, Broadcast };

template <Layout L, typename F>
__global__ void binary_kernel(F f, const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out,
                              BroadcastIndex idx) {
  NEURN_GRID_STRIDE(i, idx.numel) {
    if constexpr (L == Layout::Same) {
      out[i] = f(a[i], b[i]);
    } else if constexpr (L == Layout::ScalarB) {
      out[i] = f(a[i], b[0]);
    } else if constexpr (L == Layout::ScalarA) {
      out[i] = f(a[0], b[i]);
    } else {
      int64_t off[3];
      broadcast_offsets(idx, i, off);
      out[i] = f(a[off[0]], b[off[1]]);
    }
  }
}

__global__ void where_kernel(const float* __restrict__ c, const float* __restrict__ a, const float* __restrict__ b,
                             float* __restrict__ out, BroadcastIndex idx) {
  NEURN_GRID_STRIDE(i, idx.numel) {
    int64_t off[3];
    broadcast_offsets(idx, i, off);
    out[i] = c[off[0]] != 0.0f ? a[off[1]] : b[off[2]];
  }
}

// Number of elements an operand of `idx` spans: 1 when every stride is 0 (a
// scalar broadcast), numel when its strides are those of the output.
int64_t operand_extent(const BroadcastIndex& idx, int k) {
  int64_t extent = 1;
  for (int d = 0; d < idx.ndim; ++d)
    if (idx.strides[k][d] != 0) extent *= idx.shape[d];
  return extent;
}

bool is_full(const BroadcastIndex& idx, int k) {
  int64_t stride = 1;
  for (int d = idx.ndim - 1; d >= 0; --d) {
    if (idx.shape[d] != 1 && idx.strides[k][d] != stride) return false;
    stride *= idx.shape[d];
  }
  return true;
}

}  // namespace

void unary(UnaryKind kind, UnaryParams p, const void* x, void* y, DType dtype, int64_t n) {
  require_float32(dtype, "unary op");
  if (n == 0) return;
  visit_unary(kind, p, [&](auto f) {
    unary_kernel<<<grid_for(n), 256, 0, stream()>>>(f, static_cast<const float*>(x), static_cast<float*>(y), n);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void unary_backward(UnaryKind kind, UnaryParams p, const void* x, const void* y, const void* g, void* dx, DType dtype,
                    int64_t n) {
  require_float32(dtype, "unary op backward");
  if (n == 0) return;
  visit_unary(kind, p, [&](auto f) {
    unary_backward_kernel<<<grid_for(n), 256, 0, stream()>>>(f, static_cast<const float*>(x),
                                                             static_cast<const float*>(y),
                                                             static_cast<const float*>(g), static_cast<float*>(dx), n);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void binary(BinaryKind kind, const void* a, const void* b, void* out, DType dtype, const BroadcastIndex& idx) {
  require_float32(dtype, "binary op");
  if (idx.numel == 0) return;
  const float* pa = static_cast<const float*>(a);
  const float* pb = static_cast<const float*>(b);
  float* po = static_cast<float*>(out);
  bool full_a = is_full(idx, 0), full_b = is_full(idx, 1);
  bool scalar_a = operand_extent(idx, 0) == 1, scalar_b = operand_extent(idx, 1) == 1;
  unsigned grid = grid_for(idx.numel);
  visit_binary(kind, [&](auto f) {
    if (full_a && full_b)
      binary_kernel<Layout::Same><<<grid, 256, 0, stream()>>>(f, pa, pb, po, idx);
    else if (full_a && scalar_b)
      binary_kernel<Layout::ScalarB><<<grid, 256, 0, stream()>>>(f, pa, pb, po, idx);
    else if (scalar_a && full_b)
      binary_kernel<Layout::ScalarA><<<grid, 256, 0, stream()>>>(f, pa, pb, po, idx);
    else
      binary_kernel<Layout::Broadcast><<<grid, 256, 0, stream()>>>(f, pa, pb, po, idx);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void where(const void* cond, const void* a, const void* b, void* out, DType dtype, const BroadcastIndex& idx) {
  require_float32(dtype, "where");
  if (idx.numel == 0) return;
  where_kernel<<<grid_for(idx.numel), 256, 0, stream()>>>(static_cast<const float*>(cond),
                                                          static_cast<const float*>(a), static_cast<const float*>(b),
                                                          static_cast<float*>(out), idx);
  NEURN_CUDA_CHECK_LAUNCH();
}

}  // namespace neurn::cuda
