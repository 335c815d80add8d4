#pragma once
// CPU kernels of conv2d (framework/ops/conv_cpu.cpp), float and double.
//
// General case: the input patches of a chunk of B images are unrolled into
// col (C_in kH kW, B H_out W_out) (im2col) and each group is one OpenBLAS gemm
// (C_out/g, K) x (K, B P). Chunks of several images make the gemm wide enough
// to run near peak when the output planes are small (deep layers); a chunk of
// one image writes the gemm result straight into y. With several cores the
// threads split the batch, each running single-threaded gemms. Backward recomputes
// the columns chunk by chunk instead of keeping them from the forward pass:
// the unrolled input of a whole batch is large, and rebuilding it is cheap
// next to the gemms. Channels that read one input channel each (depthwise)
// use direct loops instead.
#include <cstdint>

namespace neurn::cpu {

struct ConvGeom {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input (N, C, H, W)
  int64_t Cout = 0, kh = 1, kw = 1;    // weight (Cout, C / groups, kh, kw)
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  int64_t Ho = 0, Wo = 0;              // output (N, Cout, Ho, Wo)

  int64_t Cg() const { return C / groups; }     // input channels per group
  int64_t Og() const { return Cout / groups; }  // output channels per group
  int64_t P() const { return Ho * Wo; }
  int64_t K() const { return Cg() * kh * kw; }  // gemm inner size per group
};

// y (N, Cout, Ho, Wo) = conv(x, w) + bias; bias may be null.
template <typename T>
void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);

// Overwrites whichever of dx (like x), dw (like w), db (Cout) is not null.
template <typename T>
void conv2d_backward(const ConvGeom& g, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);

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

// Thin typed wrappers of cblas_?gemm (row-major), shared with other CPU ops.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

}  // namespace neurn::cpu
