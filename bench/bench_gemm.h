#pragma once
// The machine's sgemm rate (bench/bench_gemm.cpp), shared with the
// training-step benchmark.
#include <cstdint>

namespace neurn::cli {

// GFLOP/s of one n x n x n cblas_sgemm, best of `reps`.
double sgemm_gflops(int64_t n, int64_t reps);
// The best of sgemm_gflops over n = 256, 512, 1024, 2048 (printed per size when `print`).
double sgemm_peak_gflops(int64_t reps, bool print);

}  // namespace neurn::cli
