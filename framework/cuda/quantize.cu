// Fake quantization on CUDA, registered in the tables of
// framework/ops/quantize_kernels.h: one thread per element over the math of
// framework/ops/quantize_math.h, which the CPU loop runs too. A data-driven
// range is read by each thread from device memory (a one-element tensor the
// front function's max left there), so no value crosses to the host.
#include "framework/cuda/cuda_check.h"
#include "framework/ops/quantize_kernels.h"

namespace neurn::cuda {
namespace {

// The grid from the range in device memory (null: the fixed scale of p).
template <typename T>
__device__ QuantGrid grid_of(const QuantParams& p, const T* range) {
  return quant_grid(p, range ? static_cast<double>(*range) : 0.0);
}

template <typename T>
__global__ void fake_quantize_forward_kernel(QuantParams p, const T* __restrict__ range, const T* __restrict__ x,
                                             T* __restrict__ y, int64_t n) {
  const QuantGrid g = grid_of(p, range);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = g.identity ? x[i] : quantize_value(x[i], g.scale, g.qmin, g.qmax);
}

template <typename T>
__global__ void fake_quantize_backward_kernel(QuantParams p, const T* __restrict__ range, const T* __restrict__ x,
                                              const T* __restrict__ dy, T* __restrict__ dx, int64_t n) {
  const QuantGrid g = grid_of(p, range);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dx[i] = g.identity ? dy[i] : straight_through(x[i], dy[i], g.lo, g.hi);
}

template <typename T>
const T* range_ptr(const Tensor& range) {
  return range.defined() ? static_cast<const T*>(range.raw_data()) : nullptr;
}

void fake_quantize_cuda(const QuantParams& p, const Tensor& range, const Tensor& x, const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x.dtype(), "fake_quantize", [&](auto z) {
    using T = decltype(z);
    fake_quantize_forward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(
        p, range_ptr<T>(range), static_cast<const T*>(x.raw_data()), static_cast<T*>(y.raw_data()), n);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void fake_quantize_backward_cuda(const QuantParams& p, const Tensor& range, const Tensor& x, const Tensor& dy,
                                 const Tensor& dx) {
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x.dtype(), "fake_quantize backward", [&](auto z) {
    using T = decltype(z);
    fake_quantize_backward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(
        p, range_ptr<T>(range), static_cast<const T*>(x.raw_data()), static_cast<const T*>(dy.raw_data()),
        static_cast<T*>(dx.raw_data()), n);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

NEURN_REGISTER_KERNEL(::neurn::fake_quantize_kernel, DeviceType::CUDA, fake_quantize_cuda);
NEURN_REGISTER_KERNEL(::neurn::fake_quantize_backward_kernel, DeviceType::CUDA, fake_quantize_backward_cuda);

}  // namespace neurn::cuda
