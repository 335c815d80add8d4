#pragma once
// CUDA launchers of the NeuRN op (framework/cuda/neurn.cu); the contract is in
// framework/ops/neurn.h. Raw device pointers, float32 data, row-major
// (N, C, H, W). Only compiled and called when NEURN_WITH_CUDA is defined.
#include <cstddef>
#include <cstdint>

namespace neurn::cuda {

struct NeuRNGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t r = 1;                 // k / 2
  int padding = 0;               // 0 valid, 1 zero, 2 reflect (NeuRNPadding order)
  int64_t planes_per_group = 1;  // C (image scope), 1 (channel), N * C (batch)
  int64_t groups = 1;            // N * C / planes_per_group
  double eps = 1e-6;
};

// Doubles of scratch the launchers need (the same for forward and backward).
size_t neurn_scratch_doubles(const NeuRNGeometry& g);

// x, out: (N, C, H, W). mean (N, C, H, W) may be null: the patch means (of the
// shifted plane) the backward needs. shift (N * C): each plane's mean, which is
// subtracted before summing. group_max (groups): c, the scope maximum of sigma;
// group_arg (groups): flat index of its first occurrence.
void neurn_forward(const NeuRNGeometry& g, const float* x, float* out, float* mean, double* shift, double* group_max,
                   int64_t* group_arg, double* scratch);

// dx (N, C, H, W) = dL/dx given grad_out = dL/dout and what the forward saved.
void neurn_backward(const NeuRNGeometry& g, const float* x, const float* out, const float* mean, const double* shift,
                    const double* group_max, const int64_t* group_arg, const float* grad_out, float* dx,
                    double* scratch);

}  // namespace neurn::cuda
