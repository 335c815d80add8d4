#pragma once
// Matrix products over OpenBLAS (CPU) and cuBLAS (CUDA).
#include "framework/tensor.h"

namespace neurn {

// a (..., M, K) @ b (..., K, N) -> (..., M, N); batch axes broadcast; a 1-D b
// or a is treated as a vector as in NumPy.
Tensor matmul(const Tensor& a, const Tensor& b);
// x (..., in) , weight (out, in), bias (out) or undefined -> (..., out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

}  // namespace neurn
