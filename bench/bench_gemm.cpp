// `neurn bench gemm`: the single-precision GEMM rate this machine reaches
// through OpenBLAS (cblas_sgemm), the yardstick for how much of the machine a
// training step uses (`neurn bench train-step --vs-gemm`). Square products of
// a few sizes, each timed as the best of --reps runs after one warm-up, with
// OpenBLAS's own threads (OPENBLAS_NUM_THREADS).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "bench/bench_gemm.h"
#include "experiments/cli/cli.h"
#include "framework/error.h"
#include "framework/random.h"

namespace neurn::cli {

double sgemm_gflops(int64_t n, int64_t reps) {
  std::vector<float> a(static_cast<size_t>(n * n)), b(a.size()), c(a.size());
  Generator gen(1);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(gen.uniform() - 0.5);
    b[i] = static_cast<float>(gen.uniform() - 0.5);
  }
  const int ni = static_cast<int>(n);
  auto run = [&]() {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, ni, ni, 1.0f, a.data(), ni, b.data(), ni, 0.0f, c.data(),
                ni);
  };
  run();  // warm-up: page faults, OpenBLAS's thread start
  double best = 1e30;
  for (int64_t r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / best / 1e9;
}

double sgemm_peak_gflops(int64_t reps, bool print) {
  double peak = 0;
  for (int64_t n : {256, 512, 1024, 2048}) {
    double g = sgemm_gflops(n, n >= 2048 ? std::max<int64_t>(1, reps / 2) : reps);
    if (print) std::printf("sgemm %4ld x %4ld x %4ld: %.1f GFLOP/s\n", static_cast<long>(n), static_cast<long>(n),
                           static_cast<long>(n), g);
    peak = std::max(peak, g);
  }
  return peak;
}

namespace {

int bench_gemm(const Flags& f) {
  const int64_t reps = f.get_int("reps", 5);
  NEURN_CHECK(reps >= 1, "bench gemm: --reps must be at least 1, got ", reps);
  double peak = sgemm_peak_gflops(reps, true);
  std::printf("sgemm_peak_gflops=%.1f\n", peak);
  return 0;
}

Register reg{{
    .name = "bench gemm",
    .summary = "the single-precision GEMM rate of this machine (OpenBLAS sgemm, GFLOP/s)",
    .flags = {integer("reps", "N", "(5)")},
    .details = "Times cblas_sgemm on square matrices of 256 to 2048 (best of --reps after a warm-up) with "
               "OPENBLAS_NUM_THREADS threads. The last line is sgemm_peak_gflops=<G>, the best of them: the "
               "yardstick of `neurn bench train-step --vs-gemm`.",
    .fn = bench_gemm}};

}  // namespace
}  // namespace neurn::cli
