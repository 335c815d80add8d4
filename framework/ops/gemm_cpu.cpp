#include "framework/ops/gemm_cpu.h"

#include <cblas.h>

#include <algorithm>

#include "framework/ops/denormals_cpu.h"
#include "framework/ops/parallel_cpu.h"

namespace neurn::cpu {

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(M),
              static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta,
              C, static_cast<int>(ldc));
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(M),
              static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta,
              C, static_cast<int>(ldc));
}

int64_t gemm_pieces(int64_t extent, int64_t threads) {
  const int64_t blocks = (extent + 15) / 16;
  return std::clamp<int64_t>(std::min(blocks, extent / kGemmMinPieceExtent), threads, threads * kGemmPiecesPerThread);
}

namespace {

template <typename T>
void parallel_gemm_impl(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                        const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  constexpr int64_t kMinFlopsPerThread = int64_t{4} << 20;
  const int64_t threads = std::min<int64_t>(num_threads(), 2 * M * N * K / kMinFlopsPerThread);
  // Each thread packs its share of one operand and the whole of the other:
  // splitting C's rows repeats op(B) (K x N) on every thread, splitting its
  // columns repeats op(A) (M x K). Repeat the smaller one, as long as every
  // thread gets at least a block of micro-kernel height (16).
  const bool rows_fit = M >= 16 * threads, cols_fit = N >= 16 * threads;
  const bool by_rows = rows_fit && (!cols_fit || N <= M);
  const int64_t extent = by_rows ? M : N;
  if (in_parallel_region()) {  // a task of the pool: its thread's share of the work
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  SingleThreadedBlas single;  // never OpenBLAS's threads, even for one piece
  if (threads <= 1 || extent < 2 * threads) {
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Pieces: blocks of whole multiples of 16 rows (or columns), claimed by the
  // threads as they come free, so a thread whose core is taken for a while by
  // another process leaves its later pieces to the others. Each piece repacks
  // the repeated operand (OpenBLAS packs it once per call), so a piece keeps
  // at least kGemmMinPieceExtent rows (columns), 2 x that many flops per
  // repacked element: with 64-row pieces a 128 x 1024 x 4096 product whose
  // op(B) is repeated ran at 0.7x of two pieces (docs/engine-bench.md).
  const int64_t blocks = (extent + 15) / 16;
  const int64_t pieces = gemm_pieces(extent, threads);
  run_on_threads(pieces, [&](int64_t t) {
    int64_t per = blocks / pieces, extra = blocks % pieces;
    int64_t b0 = t * per + std::min(t, extra), b1 = b0 + per + (t < extra ? 1 : 0);
    int64_t lo = std::min(b0 * 16, extent), hi = std::min(b1 * 16, extent);
    if (lo >= hi) return;
    if (by_rows) {  // rows [lo, hi) of C and of op(A)
      gemm(ta, tb, hi - lo, N, K, alpha, ta ? A + lo : A + lo * lda, lda, B, ldb, beta, C + lo * ldc, ldc);
    } else {  // columns [lo, hi) of C and of op(B)
      gemm(ta, tb, M, hi - lo, K, alpha, A, lda, tb ? B + lo * ldb : B + lo, ldb, beta, C + lo, ldc);
    }
  });
}

}  // namespace

void parallel_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  FlushDenormals flush;
  parallel_gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void parallel_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
                   const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  FlushDenormals flush;
  parallel_gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace neurn::cpu
