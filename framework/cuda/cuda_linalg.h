#pragma once
// CUDA launcher of the matrix products (framework/ops/linalg.cpp calls it for
// tensors on a cuda device; a .cu file of the CUDA backend implements it over
// cuBLAS). All pointers are device pointers.
#include <cstdint>

#include "framework/dtype.h"

namespace neurn::cuda {

// Row-major strided-batched GEMM, the contract of cblas_?gemm with
// CblasRowMajor applied to `batch` matrices: for i in [0, batch)
//   C_i = alpha * op(A_i) @ op(B_i) + beta * C_i
// with A_i = a + i * stride_a, B_i = b + i * stride_b, C_i = c + i * stride_c
// (strides in elements; 0 reuses one matrix for every i, never for c).
// op(A_i) is (m, k): A_i is stored (m, k) with leading dimension lda, or
// (k, m) when trans_a; likewise op(B_i) is (k, n). C_i is (m, n), leading
// dimension ldc. dtype is Float32 or Float64 (float32 may use TF32 tensor
// cores only if the implementation documents it).
void gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
          int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, double beta, void* c,
          int64_t ldc, int64_t stride_c, int64_t batch);

}  // namespace neurn::cuda
