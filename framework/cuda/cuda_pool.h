#pragma once
// CUDA launchers of pooling and upsampling (implemented by the CUDA backend in
// framework/cuda/*.cu, over cuDNN where it has the op). The front functions in
// framework/ops/pool.cpp validate the arguments, resolve a stride of 0 to the
// kernel and allocate the outputs; y's shape already holds the output size
// (ceil_mode applied). Backward launchers overwrite dx (no accumulation).
// The semantics are PyTorch's, which the CPU kernels implement:
// - windows start at o * stride - padding; padding never wins a max and,
//   with count_include_pad, counts in the average's divisor up to the padded
//   border (the ceil-mode overhang beyond it never counts);
// - max backward sends each output's gradient to the first maximal element of
//   its window in row-major order;
// - adaptive windows: start = floor(i H / out), end = ceil((i + 1) H / out);
// - upsample: the taps of framework/ops/upsample_math.h (nearest; bilinear
//   with align_corners false or true), the same code the CPU runs.
#include "framework/ops/pool.h"
#include "framework/tensor.h"

namespace neurn::cuda {

// x (N, C, H, W) -> y (N, C, H_out, W_out)
void max_pool2d_forward(const Tensor& x, const Tensor& y, const Pool2dOptions& opt);
void max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                         const Pool2dOptions& opt);
void avg_pool2d_forward(const Tensor& x, const Tensor& y, const Pool2dOptions& opt);
// dy (N, C, H_out, W_out) -> dx (N, C, H, W)
void avg_pool2d_backward(const Tensor& dy, const Tensor& dx, const Pool2dOptions& opt);
void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& y);
void adaptive_avg_pool2d_backward(const Tensor& dy, const Tensor& dx);
void upsample_forward(const Tensor& x, const Tensor& y, UpsampleMode mode, bool align_corners);
void upsample_backward(const Tensor& dy, const Tensor& dx, UpsampleMode mode, bool align_corners);

}  // namespace neurn::cuda
