#pragma once
// The kernels of softmax, the losses and dropout (framework/dispatch.h). The
// front functions in loss.cpp check and allocate every output with its final
// shape; the CPU kernels sit beside them, the CUDA ones in
// framework/cuda/loss.cu. The row math both share is framework/ops/softmax_math.h.
#include <cstdint>

#include "framework/dispatch.h"
#include "framework/tensor.h"

namespace neurn {

// x, y viewed as (outer, dim, inner): y[o, :, i] = softmax (or log_softmax) of x[o, :, i].
NEURN_DECLARE_KERNEL(softmax_kernel, void(const Tensor& x, const Tensor& y, int64_t outer, int64_t dim, int64_t inner,
                                          bool log_out));
// dx from the forward's output y and dL/dy g (softmax_math.h's formulas).
NEURN_DECLARE_KERNEL(softmax_backward_kernel, void(const Tensor& y, const Tensor& g, const Tensor& dx, int64_t outer,
                                                   int64_t dim, int64_t inner, bool log_out));
// The first i with target[i] (int64, n) outside [0, c), -1 when none; *value
// gets that target. On CUDA it synchronises (one flag comes back), so that a
// bad target is an error as on the CPU and not a silent NaN.
NEURN_DECLARE_KERNEL(target_check_kernel, int64_t(const Tensor& target, int64_t c, int64_t* value));
// rows (n) = -log_probs[i, t_i] for log_probs (n, c).
NEURN_DECLARE_KERNEL(nll_forward_kernel, void(const Tensor& log_probs, const Tensor& target, const Tensor& rows));
// dx (n, c) = -scale * grad[i * grad_stride] at (i, t_i), 0 elsewhere.
NEURN_DECLARE_KERNEL(nll_backward_kernel, void(const Tensor& target, const Tensor& grad, int64_t grad_stride,
                                               double scale, const Tensor& dx));
// Per row of logits (n, c): lse_i = log sum_j exp(x_ij),
// rows_i = lse_i - (1 - eps) x_{i, t_i} - (eps / c) sum_j x_ij.
NEURN_DECLARE_KERNEL(cross_entropy_forward_kernel, void(const Tensor& logits, const Tensor& target, const Tensor& rows,
                                                        const Tensor& lse, double label_smoothing));
// dx_ij = scale * grad[i * grad_stride] * (exp(x_ij - lse_i) - eps / c - (1 - eps) [j == t_i]).
NEURN_DECLARE_KERNEL(cross_entropy_backward_kernel, void(const Tensor& logits, const Tensor& target, const Tensor& lse,
                                                         const Tensor& grad, int64_t grad_stride, double scale,
                                                         const Tensor& dx, double label_smoothing));
// out_i = src_i * scale when counter_uniform(seed, offset + i) >= p, else 0
// (framework/random.h: the CPU and the GPU draw the same mask). Forward and
// backward are this same map.
NEURN_DECLARE_KERNEL(dropout_kernel, void(const Tensor& src, const Tensor& out, double p, double scale, uint64_t seed,
                                          uint64_t offset));

}  // namespace neurn
