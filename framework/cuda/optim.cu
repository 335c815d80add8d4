// Fused optimizer updates: one thread per element runs the same element
// function as the CPU loop (framework/optim/update_functors.h), reading and
// writing parameter, gradient and state once per step.
#include "framework/cuda/cuda_check.h"
#include "framework/cuda/cuda_optim.h"

namespace neurn::cuda {

namespace {

template <typename T>
__global__ void sgd_kernel(int64_t n, T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ buf,
                           SgdStep s) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    sgd_update_element<T>(param[i], grad[i], buf ? buf + i : nullptr, s);
}

template <typename T>
__global__ void adam_kernel(int64_t n, T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                            T* __restrict__ v, AdamStep a, double bc1, double sqrt_bc2) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    adam_update_element<T>(param[i], grad[i], m[i], v[i], a, bc1, sqrt_bc2);
}

}  // namespace

void sgd_update(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buf, const SgdStep& s) {
  if (n == 0) return;
  NEURN_CHECK(s.momentum == 0.0 || momentum_buf, "sgd (CUDA): momentum ", s.momentum, " needs a momentum buffer");
  dispatch_real(dtype, "sgd", [&](auto z) {
    using T = decltype(z);
    sgd_kernel<T><<<grid_for(n), 256, 0, stream()>>>(n, static_cast<T*>(param), static_cast<const T*>(grad),
                                                     static_cast<T*>(momentum_buf), s);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void adam_update(DType dtype, int64_t n, void* param, const void* grad, void* exp_avg, void* exp_avg_sq,
                 const AdamStep& a, double bc1, double sqrt_bc2) {
  if (n == 0) return;
  dispatch_real(dtype, a.decoupled ? "adamw" : "adam", [&](auto z) {
    using T = decltype(z);
    adam_kernel<T><<<grid_for(n), 256, 0, stream()>>>(n, static_cast<T*>(param), static_cast<const T*>(grad),
                                                      static_cast<T*>(exp_avg), static_cast<T*>(exp_avg_sq), a, bc1,
                                                      sqrt_bc2);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace neurn::cuda
