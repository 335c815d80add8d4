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

constexpr int kMaxBoxRank = 8;
struct Box {
  int rank;
  int64_t shape[kMaxBoxRank], extent[kMaxBoxRank];
};

// Thread i takes the i-th element of the box in row-major order and finds its
// offset in the whole tensor.
template <typename T>
__global__ void slice_adam_kernel(int64_t n, Box box, T* __restrict__ param, const T* __restrict__ grad,
                                  T* __restrict__ m, T* __restrict__ v, T* __restrict__ count, AdamStep a) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, off = 0, stride = 1;
    for (int d = box.rank - 1; d >= 0; --d) {
      off += (rest % box.extent[d]) * stride;
      rest /= box.extent[d];
      stride *= box.shape[d];
    }
    const double c = static_cast<double>(count[off]) + 1.0;
    count[off] = static_cast<T>(c);
    const double bc1 = 1.0 - pow(a.beta1, c), sqrt_bc2 = sqrt(1.0 - pow(a.beta2, c));
    adam_update_element<T>(param[off], grad[off], m[off], v[off], a, bc1, sqrt_bc2);
  }
}

}  // namespace

void slice_adam_update(DType dtype, int rank, const int64_t* shape, const int64_t* extent, void* param,
                       const void* grad, void* exp_avg, void* exp_avg_sq, void* step_count, const AdamStep& a) {
  NEURN_CHECK(rank >= 0 && rank <= kMaxBoxRank, "SliceAdam (CUDA): rank ", rank, " above ", kMaxBoxRank);
  Box box{rank, {}, {}};
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) {
    NEURN_CHECK(extent[d] >= 0 && extent[d] <= shape[d], "SliceAdam (CUDA): extent ", extent[d], " of axis ", d,
                " outside 0..", shape[d]);
    box.shape[d] = shape[d], box.extent[d] = extent[d];
    n *= extent[d];
  }
  if (n == 0) return;
  DeviceGuard on_param(device_of(param));  // nothing was allocated before an update
  dispatch_real(dtype, "SliceAdam", [&](auto z) {
    using T = decltype(z);
    slice_adam_kernel<T><<<grid_for(n), 256, 0, stream()>>>(n, box, static_cast<T*>(param),
                                                            static_cast<const T*>(grad), static_cast<T*>(exp_avg),
                                                            static_cast<T*>(exp_avg_sq), static_cast<T*>(step_count), a);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void sgd_update(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buf, const SgdStep& s) {
  if (n == 0) return;
  NEURN_CHECK(s.momentum == 0.0 || momentum_buf, "sgd (CUDA): momentum ", s.momentum, " needs a momentum buffer");
  DeviceGuard on_param(device_of(param));  // nothing was allocated before an update
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
  DeviceGuard on_param(device_of(param));  // nothing was allocated before an update
  dispatch_real(dtype, a.decoupled ? "adamw" : "adam", [&](auto z) {
    using T = decltype(z);
    adam_kernel<T><<<grid_for(n), 256, 0, stream()>>>(n, static_cast<T*>(param), static_cast<const T*>(grad),
                                                      static_cast<T*>(exp_avg), static_cast<T*>(exp_avg_sq), a, bc1,
                                                      sqrt_bc2);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace neurn::cuda
