// CUDA grids over the unary element-wise functors of
// framework/ops/elementwise_functors.h (activations, scalar arithmetic): the
// same functor objects the CPU loops call, so both devices run the same
// arithmetic. (Binary ops and where are in elementwise_binary.cu: two files
// compile in parallel.)
#include "framework/cuda/cuda_check.h"
#include "framework/ops/elementwise_kernels.h"

namespace neurn::cuda {

namespace {

#define NEURN_GRID_STRIDE(i, n)                                                         \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

template <typename T, typename F>
__global__ void unary_grid(F f, const T* __restrict__ x, T* __restrict__ y, int64_t n) {
  NEURN_GRID_STRIDE(i, n) y[i] = f.forward(x[i]);
}

template <typename T, typename F>
__global__ void unary_backward_grid(F f, const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ g,
                                      T* __restrict__ dx, int64_t n) {
  NEURN_GRID_STRIDE(i, n) dx[i] = f.backward(x[i], y[i], g[i]);
}

// dx written over g (the front reuses a gradient buffer): g is not restrict
// then, as its one pointer is written.
template <typename T, typename F>
__global__ void unary_backward_inplace_grid(F f, const T* __restrict__ x, const T* __restrict__ y, T* __restrict__ g_dx,
                                              int64_t n) {
  NEURN_GRID_STRIDE(i, n) g_dx[i] = f.backward(x[i], y[i], g_dx[i]);
}

void unary(UnaryKind kind, UnaryParams p, const Tensor& xview, const Tensor& yt) {
  // The table is strided (the CPU loop reads views); this grid reads a
  // contiguous copy of a view.
  const Tensor xt = ::neurn::detail::contiguous_copy(xview);
  const int64_t n = xt.numel();
  const void* x = xt.raw_data();
  void* y = yt.raw_data();
  if (n == 0) return;
  dispatch_real(xt.dtype(), "unary op", [&](auto z) {
    using T = decltype(z);
    visit_unary(kind, p, [&](auto f) {
      unary_grid<T><<<grid_for(n), 256, 0, stream()>>>(f, static_cast<const T*>(x), static_cast<T*>(y), n);
      NEURN_CUDA_CHECK_LAUNCH();
    });
  });
}

void unary_backward(UnaryKind kind, UnaryParams p, const Tensor& xt, const Tensor& yt, const Tensor& gt,
                    const Tensor& dxt) {
  const int64_t n = xt.numel();
  const void *x = xt.raw_data(), *y = yt.raw_data(), *g = gt.raw_data();
  void* dx = dxt.raw_data();
  if (n == 0) return;
  dispatch_real(xt.dtype(), "unary op backward", [&](auto z) {
    using T = decltype(z);
    visit_unary(kind, p, [&](auto f) {
      if (dx == g)
        unary_backward_inplace_grid<T><<<grid_for(n), 256, 0, stream()>>>(f, static_cast<const T*>(x),
                                                                            static_cast<const T*>(y), static_cast<T*>(dx), n);
      else
        unary_backward_grid<T><<<grid_for(n), 256, 0, stream()>>>(f, static_cast<const T*>(x),
                                                                    static_cast<const T*>(y), static_cast<const T*>(g),
                                                                    static_cast<T*>(dx), n);
      NEURN_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace

NEURN_REGISTER_KERNEL(::neurn::unary_kernel, DeviceType::CUDA, unary);
NEURN_REGISTER_KERNEL(::neurn::unary_backward_kernel, DeviceType::CUDA, unary_backward);

}  // namespace neurn::cuda
