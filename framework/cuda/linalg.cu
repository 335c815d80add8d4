// Matrix products over cuBLAS. cuBLAS is column-major: a row-major C (m, n)
// is a column-major C^T (n, m), and C^T = op(B)^T op(A)^T, so the row-major
// product is the column-major one with the operands (and m, n) swapped.
#include <cuda_bf16.h>

#include <limits>

#include "framework/cuda/cuda_autocast.h"
#include "framework/cuda/cuda_check.h"
#include "framework/cuda/cuda_linalg.h"

namespace neurn::cuda {

namespace {

int to_int(int64_t v, const char* what) {
  NEURN_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(), "gemm: ", what, " = ", v,
              " does not fit cuBLAS's 32-bit sizes");
  return static_cast<int>(v);
}

// Elements spanned by `batch` row-major matrices of `rows` rows with leading
// dimension ld, `stride` apart (0: one matrix).
int64_t extent(int64_t rows, int64_t ld, int64_t stride, int64_t batch) {
  int64_t one = rows * ld;
  return stride == 0 ? one : stride * (batch - 1) + one;
}

}  // namespace

void gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
          int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, double beta, void* c,
          int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  NEURN_CHECK(stride_c != 0 || batch == 1, "gemm: ", batch, " products into one output (stride_c = 0)");
  int im = to_int(m, "m"), in = to_int(n, "n"), ik = to_int(k, "k");
  int ilda = to_int(std::max<int64_t>(lda, 1), "lda"), ildb = to_int(std::max<int64_t>(ldb, 1), "ldb");
  int ildc = to_int(std::max<int64_t>(ldc, 1), "ldc"), ibatch = to_int(batch, "batch");
  cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasHandle_t h = cublas();
  if (dtype == DType::Float64) {
    NEURN_CUBLAS_CHECK(cublasDgemmStridedBatched(h, op_b, op_a, in, im, ik, &alpha, static_cast<const double*>(b),
                                                 ildb, stride_b, static_cast<const double*>(a), ilda, stride_a, &beta,
                                                 static_cast<double*>(c), ildc, stride_c, ibatch));
    return;
  }
  require_float32(dtype, "gemm");
  float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
  if (!autocast_bf16() || k == 0) {
    NEURN_CUBLAS_CHECK(cublasSgemmStridedBatched(h, op_b, op_a, in, im, ik, &fa, static_cast<const float*>(b), ildb,
                                                 stride_b, static_cast<const float*>(a), ilda, stride_a, &fb,
                                                 static_cast<float*>(c), ildc, stride_c, ibatch));
    return;
  }
  // Autocast: bf16 operands, float32 accumulation and output.
  int64_t na = extent(trans_a ? k : m, lda, stride_a, batch), nb = extent(trans_b ? n : k, ldb, stride_b, batch);
  DeviceBuffer a16(static_cast<size_t>(na) * sizeof(__nv_bfloat16)), b16(static_cast<size_t>(nb) * sizeof(__nv_bfloat16));
  convert(a, DType::Float32, a16.get(), DType::BFloat16, na);
  convert(b, DType::Float32, b16.get(), DType::BFloat16, nb);
  NEURN_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, op_b, op_a, in, im, ik, &fa, b16.get(), CUDA_R_16BF, ildb, stride_b,
                                                a16.get(), CUDA_R_16BF, ilda, stride_a, &fb, c, CUDA_R_32F, ildc,
                                                stride_c, ibatch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace neurn::cuda
