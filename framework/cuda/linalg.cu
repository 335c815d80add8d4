// Matrix products over cuBLAS. cuBLAS is column-major: a row-major C (m, n)
// is a column-major C^T (n, m), and C^T = op(B)^T op(A)^T, so the row-major
// product is the column-major one with the operands (and m, n) swapped.
// Registered in the tables of framework/ops/linalg_kernels.h.
#include <cuda_bf16.h>

#include <limits>

#include "framework/cuda/cuda_autocast.h"
#include "framework/cuda/cuda_check.h"
#include "framework/ops/linalg_kernels.h"

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
  // An operand that is a whole weight (an optimizer's parameter) comes from
  // autocast's cache, converted once per optimizer step (cuda_autocast.h).
  const void* a16 = autocast_weight_bf16(a, na);
  const void* b16 = autocast_weight_bf16(b, nb);
  DeviceBuffer a_buf(a16 ? 0 : static_cast<size_t>(na) * sizeof(__nv_bfloat16));
  DeviceBuffer b_buf(b16 ? 0 : static_cast<size_t>(nb) * sizeof(__nv_bfloat16));
  if (!a16) convert(a, DType::Float32, a_buf.get(), DType::BFloat16, na), a16 = a_buf.get();
  if (!b16) convert(b, DType::Float32, b_buf.get(), DType::BFloat16, nb), b16 = b_buf.get();
  NEURN_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, op_b, op_a, in, im, ik, &fa, b16, CUDA_R_16BF, ildb, stride_b,
                                                a16, CUDA_R_16BF, ilda, stride_a, &fb, c, CUDA_R_32F, ildc,
                                                stride_c, ibatch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void gemm_cuda(const GemmArgs& g, const Tensor& a, const Tensor& b, const Tensor& c) {
  gemm(c.dtype(), g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, a.raw_data(), g.lda, g.stride_a, b.raw_data(), g.ldb,
       g.stride_b, g.beta, c.raw_data(), g.ldc, g.stride_c, g.batch);
}

template <typename T>
__global__ void fill_rows_grid(const T* __restrict__ bias, T* __restrict__ y, int64_t n, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = bias[i % n];
}

void fill_rows_cuda(const Tensor& bias, const Tensor& y) {
  const int64_t n = bias.numel(), total = y.numel();
  if (total == 0) return;
  dispatch_real(y.dtype(), "linear (bias)", [&](auto z) {
    using T = decltype(z);
    fill_rows_grid<T><<<grid_for(total), 256, 0, stream()>>>(static_cast<const T*>(bias.raw_data()),
                                                             static_cast<T*>(y.raw_data()), n, total);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

// db (n) = the column sums of g (rows, n): one thread per column, the rows in
// order (consecutive threads read consecutive addresses), in T as the CPU
// loop sums; no atomics, so the same bits on every run. Not a GEMM with a
// vector of ones: under bf16 autocast that would round g to bfloat16.
template <typename T>
__global__ void sum_rows_grid(const T* __restrict__ g, T* __restrict__ db, int64_t rows, int64_t n) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T acc = T(0);
    for (int64_t r = 0; r < rows; ++r) acc += g[r * n + j];
    db[j] = acc;
  }
}

void sum_rows_cuda(const Tensor& g, const Tensor& db) {
  const int64_t n = db.numel(), rows = g.numel() / n;
  dispatch_real(g.dtype(), "linear backward (bias)", [&](auto z) {
    using T = decltype(z);
    sum_rows_grid<T><<<grid_for(n), 256, 0, stream()>>>(static_cast<const T*>(g.raw_data()),
                                                        static_cast<T*>(db.raw_data()), rows, n);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

NEURN_REGISTER_KERNEL(::neurn::gemm_kernel, DeviceType::CUDA, gemm_cuda);
NEURN_REGISTER_KERNEL(::neurn::fill_rows_kernel, DeviceType::CUDA, fill_rows_cuda);
NEURN_REGISTER_KERNEL(::neurn::sum_rows_kernel, DeviceType::CUDA, sum_rows_cuda);

}  // namespace neurn::cuda
