// `neurn bench gemm`: the single-precision GEMM rate this machine reaches
// through OpenBLAS (cblas_sgemm), the yardstick for how much of the machine a
// training step uses (`neurn bench train-step --vs-gemm`). Square products of
// a few sizes, each timed as the best of --reps runs after one warm-up, with
// OpenBLAS's own threads (OPENBLAS_NUM_THREADS). --shape times the products a
// network makes (what one GEMM reaches at its own shape), with OpenBLAS's
// threads and split over neurn's pool (cpu::parallel_gemm, what conv2d and
// linear run).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_gemm.h"
#include "experiments/cli/cli.h"
#include "framework/error.h"
#include "framework/ops/conv_cpu.h"
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

// One product of --shape: C (m, n) = op(A) (m, k) op(B) (k, n), row-major.
struct ShapeCase {
  int64_t m = 0, n = 0, k = 0;
  bool ta = false, tb = false;
  std::string text;
};

// "MxNxK" or "MxNxK:AB" with A, B each n (as stored) or t (transposed).
ShapeCase parse_shape(const std::string& s) {
  ShapeCase c;
  c.text = s;
  std::string dims = s, ops = "nn";
  if (auto colon = s.find(':'); colon != std::string::npos) {
    dims = s.substr(0, colon);
    ops = s.substr(colon + 1);
  }
  NEURN_CHECK(ops.size() == 2 && (ops[0] == 'n' || ops[0] == 't') && (ops[1] == 'n' || ops[1] == 't'),
              "bench gemm: --shape ", s, ": the operands after ':' must be two of n/t (nn, nt, tn, tt)");
  c.ta = ops[0] == 't';
  c.tb = ops[1] == 't';
  long m = 0, n = 0, k = 0;
  char x1 = 0, x2 = 0, extra = 0;
  std::istringstream in(dims);
  in >> m >> x1 >> n >> x2 >> k;
  NEURN_CHECK(in && x1 == 'x' && x2 == 'x' && !(in >> extra) && m >= 1 && n >= 1 && k >= 1, "bench gemm: --shape ", s,
              " is not MxNxK[:AB] with positive M, N, K (e.g. 128x1100x1600:nn)");
  c.m = m, c.n = n, c.k = k;
  return c;
}

// GFLOP/s of the case, best of `reps` after a warm-up; `pool` runs it through
// cpu::parallel_gemm instead of one OpenBLAS call.
double shape_gflops(const ShapeCase& c, int64_t reps, bool pool) {
  const int64_t ra = c.ta ? c.k : c.m, ca = c.ta ? c.m : c.k, rb = c.tb ? c.n : c.k, cb = c.tb ? c.k : c.n;
  std::vector<float> a(static_cast<size_t>(ra * ca)), b(static_cast<size_t>(rb * cb)), out(static_cast<size_t>(c.m * c.n));
  Generator gen(1);
  for (float& v : a) v = static_cast<float>(gen.uniform() - 0.5);
  for (float& v : b) v = static_cast<float>(gen.uniform() - 0.5);
  auto run = [&]() {
    if (pool) {
      cpu::parallel_gemm(c.ta, c.tb, c.m, c.n, c.k, 1.0f, a.data(), ca, b.data(), cb, 0.0f, out.data(), c.n);
    } else {
      cpu::gemm(c.ta, c.tb, c.m, c.n, c.k, 1.0f, a.data(), ca, b.data(), cb, 0.0f, out.data(), c.n);
    }
  };
  run();
  double best = 1e30;
  for (int64_t r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * static_cast<double>(c.m) * static_cast<double>(c.n) * static_cast<double>(c.k) / best / 1e9;
}

int bench_gemm(const Flags& f) {
  const int64_t reps = f.get_int("reps", 5);
  NEURN_CHECK(reps >= 1, "bench gemm: --reps must be at least 1, got ", reps);
  double peak = sgemm_peak_gflops(reps, true);
  if (f.has("shape")) {
    std::vector<ShapeCase> cases;
    std::istringstream list(f.get("shape"));
    for (std::string item; std::getline(list, item, ',');)
      if (!item.empty()) cases.push_back(parse_shape(item));
    NEURN_CHECK(!cases.empty(), "bench gemm: --shape is empty");
    for (const ShapeCase& c : cases) {
      // The pool first, after a pause: OpenBLAS's threads spin (sched_yield)
      // for about 0.1 s after each threaded call before they sleep, and on
      // few cores they took half the pool's rate while they did (64x1024x3200
      // on 2 cores: 81 against 201 GFLOP/s).
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      const double pool = shape_gflops(c, reps, true), blas = shape_gflops(c, reps, false);
      std::printf("sgemm %s: %.1f GFLOP/s (%.0f%% of peak) OpenBLAS threads, %.1f (%.0f%%) neurn's pool\n",
                  c.text.c_str(), blas, 100.0 * blas / peak, pool, 100.0 * pool / peak);
    }
  }
  std::printf("sgemm_peak_gflops=%.1f\n", peak);
  return 0;
}

Register reg{{
    .name = "bench gemm",
    .summary = "the single-precision GEMM rate of this machine (OpenBLAS sgemm, GFLOP/s)",
    .flags = {integer("reps", "N", "(5)"),
              text("shape", "MxNxK[:AB],...", "also time these products (A, B: n as stored, t transposed; e.g. "
                   "128x1100x1600:nn,1600x1100x128:tn)")},
    .details = "Times cblas_sgemm on square matrices of 256 to 2048 (best of --reps after a warm-up) with "
               "OPENBLAS_NUM_THREADS threads. --shape times each given product both as one OpenBLAS call and split "
               "over neurn's thread pool (cpu::parallel_gemm, NEURN_NUM_THREADS), each as a share of the peak. The "
               "last line is sgemm_peak_gflops=<G>, the best square rate: the yardstick of `neurn bench train-step "
               "--vs-gemm`.",
    .fn = bench_gemm}};

}  // namespace
}  // namespace neurn::cli
