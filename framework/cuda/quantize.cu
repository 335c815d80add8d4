// Fake quantization on CUDA: one thread per element, the same arithmetic as
// the CPU loop (framework/ops/quantize.h).
#include "framework/cuda/cuda_check.h"
#include "framework/cuda/cuda_quantize.h"
#include "framework/ops/quantize_math.h"

namespace neurn::cuda {
namespace {

template <typename T>
__global__ void fake_quantize_forward_kernel(const T* x, T* y, int64_t n, double scale, double qmin, double qmax) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = quantize_value(x[i], scale, qmin, qmax);
}

template <typename T>
__global__ void fake_quantize_backward_kernel(const T* x, const T* dy, T* dx, int64_t n, double lo, double hi) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dx[i] = straight_through(x[i], dy[i], lo, hi);
}

}  // namespace

void fake_quantize_forward(const void* x, void* y, int64_t n, bool double_data, double scale, int64_t qmin,
                           int64_t qmax) {
  if (n == 0) return;
  if (double_data)
    fake_quantize_forward_kernel<<<grid_for(n), 256, 0, stream()>>>(static_cast<const double*>(x),
                                                                     static_cast<double*>(y), n, scale,
                                                                     static_cast<double>(qmin), static_cast<double>(qmax));
  else
    fake_quantize_forward_kernel<<<grid_for(n), 256, 0, stream()>>>(static_cast<const float*>(x),
                                                                     static_cast<float*>(y), n, scale,
                                                                     static_cast<double>(qmin), static_cast<double>(qmax));
  NEURN_CUDA_CHECK_LAUNCH();
}

void fake_quantize_backward(const void* x, const void* dy, void* dx, int64_t n, bool double_data, double lo,
                            double hi) {
  if (n == 0) return;
  if (double_data)
    fake_quantize_backward_kernel<<<grid_for(n), 256, 0, stream()>>>(
        static_cast<const double*>(x), static_cast<const double*>(dy), static_cast<double*>(dx), n, lo, hi);
  else
    fake_quantize_backward_kernel<<<grid_for(n), 256, 0, stream()>>>(
        static_cast<const float*>(x), static_cast<const float*>(dy), static_cast<float*>(dx), n, lo, hi);
  NEURN_CUDA_CHECK_LAUNCH();
}

}  // namespace neurn::cuda
