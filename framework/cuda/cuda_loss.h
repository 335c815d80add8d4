#pragma once
// CUDA launchers of softmax, the losses and dropout (framework/ops/loss.cpp
// calls them for tensors on a cuda device; a .cu file of the CUDA backend
// implements them). All pointers are device pointers to contiguous buffers;
// dtype (Float32 or Float64) is that of every floating buffer.
#include <cstdint>

#include "framework/dtype.h"

namespace neurn::cuda {

// Softmax (or log-softmax when `log`) of x viewed as (outer, dim, inner)
// along the middle axis: y[o, :, i] = softmax(x[o, :, i]). Numerically
// stable: subtract the maximum of each slice before exp.
void softmax_forward(DType dtype, const void* x, void* y, int64_t outer, int64_t dim, int64_t inner, bool log);
// Its backward from the output y and dL/dy g, per slice:
//   softmax:     dx = y * (g - sum(g * y))
//   log_softmax: dx = g - exp(y) * sum(g)
void softmax_backward(DType dtype, const void* y, const void* g, void* dx, int64_t outer, int64_t dim, int64_t inner,
                      bool log);

// The first i with target[i] outside [0, c), or -1 when every target is a
// class index; *value gets that target. Synchronizes the stream (the losses'
// front functions call it so a bad target is an error, as on the CPU, and
// not a silent NaN).
int64_t first_target_out_of_range(const int64_t* target, int64_t n, int64_t c, int64_t* value);

// Cross entropy of logits (n, c) with int64 targets (n) and label smoothing
// eps, per row i:  lse_i = log sum_j exp(x_ij)   (stored in lse, n values)
//   loss_i = lse_i - (1 - eps) x_{i, t_i} - (eps / c) sum_j x_ij
// A target outside [0, c) gives a NaN loss for its row.
void cross_entropy_forward(DType dtype, const void* logits, const int64_t* target, void* loss, void* lse, int64_t n,
                           int64_t c, double label_smoothing);
// dx_ij = scale * grad[i * grad_stride] * (exp(x_ij - lse_i) - eps / c - (1 - eps) [j == t_i]).
// grad_stride is 0 for a scalar upstream gradient (mean/sum), 1 for per-row.
void cross_entropy_backward(DType dtype, const void* logits, const int64_t* target, const void* lse, const void* grad,
                            int64_t grad_stride, double scale, void* dx, int64_t n, int64_t c, double label_smoothing);

// loss_i = -log_probs[i, t_i] for log_probs (n, c); NaN for a target outside [0, c).
void nll_loss_forward(DType dtype, const void* log_probs, const int64_t* target, void* loss, int64_t n, int64_t c);
// dx (n, c) is overwritten: -scale * grad[i * grad_stride] at (i, t_i), 0 elsewhere.
void nll_loss_backward(DType dtype, const int64_t* target, const void* grad, int64_t grad_stride, double scale,
                       void* dx, int64_t n, int64_t c);

// Inverted dropout of n values: element i is kept when
// counter_uniform(seed, offset + i) >= p (framework/random.h, so the CPU and
// the GPU draw the same mask) and then scaled by `scale` (1 / (1 - p), or 0
// when p == 1); dropped elements become 0. The backward applies the same mask
// and scale to g; the mask is recomputed from (seed, offset), never stored.
void dropout_forward(DType dtype, const void* x, void* y, int64_t n, double p, double scale, uint64_t seed,
                     uint64_t offset);
void dropout_backward(DType dtype, const void* g, void* dx, int64_t n, double p, double scale, uint64_t seed,
                      uint64_t offset);

}  // namespace neurn::cuda
