#pragma once
// The kernels of the matrix products (framework/dispatch.h): one row-major
// strided-batched GEMM, which matmul, linear and the batched products of
// linalg.cpp all reduce to, and linear's two bias loops. CPU kernels
// (OpenBLAS) are registered in linalg.cpp, CUDA ones (cuBLAS) in
// framework/cuda/linalg.cu.
#include <cstdint>

#include "framework/dispatch.h"
#include "framework/tensor.h"

namespace neurn {

// The contract of cblas_?gemm with CblasRowMajor applied to `batch` matrices:
// for i in [0, batch)  C_i = alpha op(A_i) @ op(B_i) + beta C_i, with
// A_i = a + i stride_a, B_i = b + i stride_b, C_i = c + i stride_c (elements
// from each tensor's first element; a stride 0 reuses one matrix, never for
// c). op(A_i) is (m, k): A_i stored (m, k) with leading dimension lda, or
// (k, m) when trans_a; op(B_i) is (k, n) likewise; C_i (m, n), leading
// dimension ldc. With k == 0, C_i = beta C_i (C may be uninitialised when
// beta == 0). float32 or float64.
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  int64_t batch = 1;
  double alpha = 1.0, beta = 0.0;
};

NEURN_DECLARE_KERNEL(gemm_kernel, void(const GemmArgs& g, const Tensor& a, const Tensor& b, const Tensor& c));
// y (rows, n) = bias (n) in every row: where linear's GEMM (beta = 1) starts.
NEURN_DECLARE_KERNEL(fill_rows_kernel, void(const Tensor& bias, const Tensor& y));
// db (n) = the sum over the rows of g (rows, n): linear's bias gradient.
NEURN_DECLARE_KERNEL(sum_rows_kernel, void(const Tensor& g, const Tensor& db));

}  // namespace neurn
