// Softmax, cross entropy, NLL and dropout kernels. A row of a softmax or a
// loss is reduced by one warp (rows are short: classes, attention keys);
// softmax along a non-innermost axis gives each thread one (outer, inner)
// slice instead, whose elements are `inner` apart, and runs the CPU's slice
// functions (framework/ops/softmax_math.h). Every exp is softmax_math.h's
// exp_poly, as on the CPU.
#include <cmath>

#include "framework/cuda/cuda_backend.h"
#include "framework/cuda/cuda_check.h"
#include "framework/ops/loss_kernels.h"
#include "framework/ops/softmax_math.h"
#include "framework/random.h"

namespace neurn::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

template <typename T>
__device__ T warp_sum(T v) {
  for (int d = 16; d > 0; d /= 2) v += __shfl_xor_sync(0xffffffffu, v, d);
  return v;
}

template <typename T>
__device__ T warp_max(T v) {
  for (int d = 16; d > 0; d /= 2) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, d));
  return v;
}

// Iterates over the rows of a warp-per-row kernel: `row` is uniform across
// the warp, so every lane takes part in the shuffles.
#define NEURN_WARP_ROWS(row, rows)                                                            \
  const int lane = threadIdx.x % 32;                                                           \
  for (int64_t row = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; row < (rows); \
       row += static_cast<int64_t>(gridDim.x) * kWarps)

#define NEURN_GRID_STRIDE(i, n)                                                         \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

unsigned warp_grid(int64_t rows) {
  int64_t blocks = (rows + kWarps - 1) / kWarps;
  int64_t cap = static_cast<int64_t>(sm_count()) * 64;
  return static_cast<unsigned>(blocks < cap ? (blocks > 0 ? blocks : 1) : cap);
}

// ---- softmax -------------------------------------------------------------------------

template <typename T>
__global__ void softmax_rows_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t dim, bool log) {
  NEURN_WARP_ROWS(r, rows) {
    const T* xr = x + r * dim;
    T* yr = y + r * dim;
    T m = -INFINITY;
    for (int64_t j = lane; j < dim; j += 32) m = fmax(m, xr[j]);
    m = warp_max(m);
    if (m == -INFINITY) m = 0;  // an all -inf row: 0 / 0 = NaN, as on the CPU, not inf - inf
    T s = 0;
    for (int64_t j = lane; j < dim; j += 32) s += exp_poly(xr[j] - m);
    s = warp_sum(s);
    if (log) {
      T lse = m + ::log(s);
      for (int64_t j = lane; j < dim; j += 32) yr[j] = xr[j] - lse;
    } else {
      T inv = T(1) / s;
      for (int64_t j = lane; j < dim; j += 32) yr[j] = exp_poly(xr[j] - m) * inv;
    }
  }
}

template <typename T>
__global__ void softmax_strided_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t outer, int64_t dim,
                                       int64_t inner, bool log) {
  NEURN_GRID_STRIDE(s, outer * inner) {
    int64_t base = (s / inner) * dim * inner + s % inner;
    softmax_slice<T>(x + base, y + base, dim, inner, log);
  }
}

// softmax: dx = y (g - sum(g y)); log_softmax: dx = g - exp(y) sum(g).
template <typename T>
__global__ void softmax_backward_rows_kernel(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ dx,
                                             int64_t rows, int64_t dim, bool log) {
  NEURN_WARP_ROWS(r, rows) {
    const T *yr = y + r * dim, *gr = g + r * dim;
    T* dr = dx + r * dim;
    T s = 0;
    for (int64_t j = lane; j < dim; j += 32) s += log ? gr[j] : gr[j] * yr[j];
    s = warp_sum(s);
    for (int64_t j = lane; j < dim; j += 32) dr[j] = softmax_backward_at(yr[j], gr[j], s, log);
  }
}

template <typename T>
__global__ void softmax_backward_strided_kernel(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ dx,
                                                int64_t outer, int64_t dim, int64_t inner, bool log) {
  NEURN_GRID_STRIDE(s, outer * inner) {
    int64_t base = (s / inner) * dim * inner + s % inner;
    softmax_backward_slice<T>(y + base, g + base, dx + base, dim, inner, log);
  }
}

// ---- cross entropy and NLL ---------------------------------------------------------------

template <typename T>
__global__ void cross_entropy_forward_kernel(const T* __restrict__ x, const int64_t* __restrict__ target,
                                             T* __restrict__ loss, T* __restrict__ lse, int64_t n, int64_t c,
                                             T keep, T smooth) {
  NEURN_WARP_ROWS(r, n) {
    const T* xr = x + r * c;
    T m = -INFINITY;
    for (int64_t j = lane; j < c; j += 32) m = fmax(m, xr[j]);
    m = warp_max(m);
    T s = 0, sx = 0;
    if (m == -INFINITY) m = 0;
    for (int64_t j = lane; j < c; j += 32) {
      s += exp_poly(xr[j] - m);
      sx += xr[j];
    }
    s = warp_sum(s);
    sx = warp_sum(sx);
    if (lane == 0) {
      T l = m + ::log(s);
      lse[r] = l;
      int64_t t = target[r];
      loss[r] = (t >= 0 && t < c) ? cross_entropy_row_loss(l, xr[t], sx, keep, smooth) : T(NAN);
    }
  }
}

template <typename T>
__global__ void cross_entropy_backward_kernel(const T* __restrict__ x, const int64_t* __restrict__ target,
                                              const T* __restrict__ lse, const T* __restrict__ grad,
                                              int64_t grad_stride, T scale, T* __restrict__ dx, int64_t n, int64_t c,
                                              T keep, T smooth) {
  NEURN_GRID_STRIDE(i, n * c) {
    int64_t r = i / c, j = i % c;
    dx[i] = cross_entropy_grad_at(x[i], lse[r], scale * grad[r * grad_stride], smooth, keep, target[r] == j);
  }
}

template <typename T>
__global__ void nll_forward_kernel(const T* __restrict__ lp, const int64_t* __restrict__ target, T* __restrict__ loss,
                                   int64_t n, int64_t c) {
  NEURN_GRID_STRIDE(r, n) {
    int64_t t = target[r];
    loss[r] = (t >= 0 && t < c) ? -lp[r * c + t] : T(NAN);
  }
}

template <typename T>
__global__ void nll_backward_kernel(const int64_t* __restrict__ target, const T* __restrict__ grad,
                                    int64_t grad_stride, T scale, T* __restrict__ dx, int64_t n, int64_t c) {
  NEURN_GRID_STRIDE(i, n * c) {
    int64_t r = i / c, j = i % c;
    dx[i] = target[r] == j ? -scale * grad[r * grad_stride] : T(0);
  }
}

// ---- dropout --------------------------------------------------------------------------------

template <typename T>
__global__ void dropout_kernel(const T* __restrict__ src, T* __restrict__ out, int64_t n, double p, T scale,
                               uint64_t seed, uint64_t offset) {
  NEURN_GRID_STRIDE(i, n) {
    out[i] = counter_uniform(seed, offset + static_cast<uint64_t>(i)) >= p ? src[i] * scale : T(0);
  }
}

}  // namespace

void softmax_forward(const Tensor& x, const Tensor& y, int64_t outer, int64_t dim, int64_t inner, bool log) {
  if (outer * dim * inner == 0) return;
  dispatch_real(x.dtype(), log ? "log_softmax" : "softmax", [&](auto z) {
    using T = decltype(z);
    auto px = static_cast<const T*>(x.raw_data());
    auto py = static_cast<T*>(y.raw_data());
    if (inner == 1)
      softmax_rows_kernel<T><<<warp_grid(outer), kThreads, 0, stream()>>>(px, py, outer, dim, log);
    else
      softmax_strided_kernel<T><<<grid_for(outer * inner), kThreads, 0, stream()>>>(px, py, outer, dim, inner, log);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void softmax_backward(const Tensor& y, const Tensor& g, const Tensor& dx, int64_t outer, int64_t dim, int64_t inner,
                      bool log) {
  if (outer * dim * inner == 0) return;
  dispatch_real(y.dtype(), log ? "log_softmax backward" : "softmax backward", [&](auto z) {
    using T = decltype(z);
    auto py = static_cast<const T*>(y.raw_data());
    auto pg = static_cast<const T*>(g.raw_data());
    auto pd = static_cast<T*>(dx.raw_data());
    if (inner == 1)
      softmax_backward_rows_kernel<T><<<warp_grid(outer), kThreads, 0, stream()>>>(py, pg, pd, outer, dim, log);
    else
      softmax_backward_strided_kernel<T><<<grid_for(outer * inner), kThreads, 0, stream()>>>(py, pg, pd, outer, dim,
                                                                                             inner, log);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

namespace {
__global__ void target_range_kernel(const int64_t* __restrict__ target, int64_t n, int64_t c,
                                    unsigned long long* __restrict__ first_bad) {
  NEURN_GRID_STRIDE(i, n) {
    int64_t t = target[i];
    if (t < 0 || t >= c) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}
}  // namespace

int64_t first_target_out_of_range(const Tensor& target_t, int64_t c, int64_t* value) {
  const int64_t n = target_t.numel();
  if (n == 0) return -1;
  const auto* target = static_cast<const int64_t*>(target_t.raw_data());
  const int dev = current_device();  // the dispatcher made the targets' device current
  unsigned long long none = static_cast<unsigned long long>(n), first = none;
  DeviceBuffer d(sizeof first);
  copy_host_to_device(d.get(), dev, &first, sizeof first);
  target_range_kernel<<<grid_for(n), kThreads, 0, stream()>>>(target, n, c, d.as<unsigned long long>());
  NEURN_CUDA_CHECK_LAUNCH();
  copy_device_to_host(&first, d.get(), dev, sizeof first);
  if (first != none) copy_device_to_host(value, target + first, dev, sizeof(int64_t));
  return first == none ? -1 : static_cast<int64_t>(first);
}

void cross_entropy_forward(const Tensor& logits, const Tensor& target, const Tensor& loss, const Tensor& lse,
                           double label_smoothing) {
  const int64_t n = logits.size(0), c = logits.size(1);
  if (n == 0) return;
  dispatch_real(logits.dtype(), "cross_entropy", [&](auto z) {
    using T = decltype(z);
    cross_entropy_forward_kernel<T><<<warp_grid(n), kThreads, 0, stream()>>>(
        static_cast<const T*>(logits.raw_data()), static_cast<const int64_t*>(target.raw_data()),
        static_cast<T*>(loss.raw_data()), static_cast<T*>(lse.raw_data()), n, c,
        static_cast<T>(1.0 - label_smoothing), static_cast<T>(label_smoothing / static_cast<double>(c)));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& lse, const Tensor& grad,
                            int64_t grad_stride, double scale, const Tensor& dx, double label_smoothing) {
  const int64_t n = dx.size(0), c = dx.size(1);
  if (n * c == 0) return;
  dispatch_real(dx.dtype(), "cross_entropy backward", [&](auto z) {
    using T = decltype(z);
    cross_entropy_backward_kernel<T><<<grid_for(n * c), kThreads, 0, stream()>>>(
        static_cast<const T*>(logits.raw_data()), static_cast<const int64_t*>(target.raw_data()),
        static_cast<const T*>(lse.raw_data()), static_cast<const T*>(grad.raw_data()), grad_stride,
        static_cast<T>(scale), static_cast<T*>(dx.raw_data()), n, c, static_cast<T>(1.0 - label_smoothing),
        static_cast<T>(label_smoothing / static_cast<double>(c)));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void nll_loss_forward(const Tensor& log_probs, const Tensor& target, const Tensor& loss) {
  const int64_t n = log_probs.size(0), c = log_probs.size(1);
  if (n == 0) return;
  dispatch_real(log_probs.dtype(), "nll_loss", [&](auto z) {
    using T = decltype(z);
    nll_forward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(static_cast<const T*>(log_probs.raw_data()),
                                                                  static_cast<const int64_t*>(target.raw_data()),
                                                                  static_cast<T*>(loss.raw_data()), n, c);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void nll_loss_backward(const Tensor& target, const Tensor& grad, int64_t grad_stride, double scale, const Tensor& dx) {
  const int64_t n = dx.size(0), c = dx.size(1);
  if (n * c == 0) return;
  dispatch_real(dx.dtype(), "nll_loss backward", [&](auto z) {
    using T = decltype(z);
    nll_backward_kernel<T><<<grid_for(n * c), kThreads, 0, stream()>>>(
        static_cast<const int64_t*>(target.raw_data()), static_cast<const T*>(grad.raw_data()), grad_stride,
        static_cast<T>(scale), static_cast<T*>(dx.raw_data()), n, c);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void dropout(const Tensor& src, const Tensor& out, double p, double scale, uint64_t seed, uint64_t offset) {
  const int64_t n = src.numel();
  if (n == 0) return;
  dispatch_real(src.dtype(), "dropout", [&](auto z) {
    using T = decltype(z);
    dropout_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(static_cast<const T*>(src.raw_data()),
                                                              static_cast<T*>(out.raw_data()), n, p,
                                                              static_cast<T>(scale), seed, offset);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

NEURN_REGISTER_KERNEL(::neurn::softmax_kernel, DeviceType::CUDA, softmax_forward);
NEURN_REGISTER_KERNEL(::neurn::softmax_backward_kernel, DeviceType::CUDA, softmax_backward);
NEURN_REGISTER_KERNEL(::neurn::target_check_kernel, DeviceType::CUDA, first_target_out_of_range);
NEURN_REGISTER_KERNEL(::neurn::nll_forward_kernel, DeviceType::CUDA, nll_loss_forward);
NEURN_REGISTER_KERNEL(::neurn::nll_backward_kernel, DeviceType::CUDA, nll_loss_backward);
NEURN_REGISTER_KERNEL(::neurn::cross_entropy_forward_kernel, DeviceType::CUDA, cross_entropy_forward);
NEURN_REGISTER_KERNEL(::neurn::cross_entropy_backward_kernel, DeviceType::CUDA, cross_entropy_backward);
NEURN_REGISTER_KERNEL(::neurn::dropout_kernel, DeviceType::CUDA, dropout);

}  // namespace neurn::cuda
