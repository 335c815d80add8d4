#pragma once
// Fake quantization: values rounded to a uniform integer grid and kept in
// floating point, so a network trains at the bit width it will run at
// (SPOS's mixed-precision search, Guo et al. 2019, section 3.4).
//
//   y = clamp(round(x / scale), qmin, qmax) * scale
//
// round is half away from zero (the same on the CPU and in the CUDA kernel).
// Backward, the straight-through estimator (Bengio et al. 2013, as used by
// DoReFa-Net and the SPOS paper): rounding is treated as the identity, so
//   dx = dy  where qmin * scale <= x <= qmax * scale,  0 outside,
// which is exactly the gradient of clamp(x, qmin * scale, qmax * scale).
// The scale (the range) is a constant of the op: no gradient flows into it.
// Any shape; float32 or float64; CPU and CUDA.
#include "framework/tensor.h"

namespace neurn {

Tensor fake_quantize(const Tensor& x, double scale, int64_t qmin, int64_t qmax);

// Per-tensor ranges from the data (taken without gradient), bits in 2..16;
// bits >= 32 returns x itself (full precision); an all-zero x (unsigned: no positive
// value) comes back unchanged, its gradient passed through. The range stays on
// the device: the kernels read it there (no copy to the host).
//   signed, symmetric (weights):        scale = max|x| / (2^(bits-1) - 1), q in +-(2^(bits-1) - 1)
//   unsigned (activations after ReLU):  scale = max(x) / (2^bits - 1),     q in [0, 2^bits - 1]
Tensor fake_quantize_symmetric(const Tensor& x, int bits);
Tensor fake_quantize_unsigned(const Tensor& x, int bits);

}  // namespace neurn
