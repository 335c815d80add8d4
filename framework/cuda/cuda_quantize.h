#pragma once
// CUDA launchers of fake quantization (contract in framework/ops/quantize.h).
// Raw device pointers; float32 or float64 (double_data). Only compiled and
// called when NEURN_WITH_CUDA is defined.
#include <cstdint>

namespace neurn::cuda {

void fake_quantize_forward(const void* x, void* y, int64_t n, bool double_data, double scale, int64_t qmin,
                           int64_t qmax);
// dx = dy where lo <= x <= hi, else 0
void fake_quantize_backward(const void* x, const void* dy, void* dx, int64_t n, bool double_data, double lo,
                            double hi);

}  // namespace neurn::cuda
