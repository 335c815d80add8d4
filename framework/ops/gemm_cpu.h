#pragma once
// Matrix products on the CPU (framework/ops/gemm_cpu.cpp): thin wrappers of
// OpenBLAS's cblas_?gemm and a version split over neurn's thread pool, shared
// by conv2d, linear and the other CPU kernels.
#include <cstdint>

namespace neurn::cpu {

// C (M, N) = alpha op(A) op(B) + beta C, split over the thread pool by rows
// of C or by its columns (whichever makes the threads repeat the smaller
// operand), each piece a single-threaded OpenBLAS gemm; a product too small
// to split is one single-threaded gemm. On few cores this beats OpenBLAS's own
// threads, which spin (sched_yield) between calls and then compete with the
// pool's threads. Called from inside a pool task it runs as one gemm on that
// thread. Subnormal operands and results count as zero (denormals_cpu.h).
void parallel_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void parallel_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                   int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// How many pieces parallel_gemm cuts a split of `extent` rows (or columns)
// into on `threads` threads: up to kGemmPiecesPerThread per thread, each of at
// least kGemmMinPieceExtent rows, never fewer than threads.
inline constexpr int64_t kGemmPiecesPerThread = 2;
inline constexpr int64_t kGemmMinPieceExtent = 256;
int64_t gemm_pieces(int64_t extent, int64_t threads);

// Thin typed wrappers of cblas_?gemm (row-major), shared with other CPU ops.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

}  // namespace neurn::cpu
