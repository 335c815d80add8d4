// `neurn bench elementwise`: throughput of the element-wise and reduction
// loops (add, mul, relu, broadcast add, sum over each axis, softmax) on
// 64 MiB float32 tensors, beside the memory bandwidth this machine shows for
// a plain copy (memcpy on one thread, and split over the threads of the
// pool). bench/elementwise_torch.py runs the same cases in PyTorch and prints
// both side by side.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "experiments/cli/cli.h"
#include "framework/ops.h"
#include "framework/ops/parallel_cpu.h"

namespace neurn::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The best of `reps` runs after one warm-up (first touch of the output pages,
// pool start-up): on a machine shared with other jobs the minimum is the run
// least disturbed by them, the median mostly measures the neighbours.
double best_ms(int64_t reps, const std::function<void()>& fn) {
  fn();
  double best = 1e300;
  for (int64_t i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  return best;
}

// One result line: name, milliseconds, bytes moved (read + written, each
// element once), GB/s.
void report(const char* name, double ms, double bytes) {
  std::printf("%-22s ms=%8.3f bytes=%.0f GBps=%6.2f\n", name, ms, bytes, bytes / (ms * 1e-3) * 1e-9);
}

int bench_elementwise(const Flags& f) {
  const int64_t rows = f.get_int("rows", 4096), cols = f.get_int("cols", 4096), reps = f.get_int("reps", 11);
  NEURN_CHECK(rows >= 1 && cols >= 1 && reps >= 1, "bench elementwise: need --rows, --cols and --reps >= 1, got ",
              rows, ", ", cols, ", ", reps);
  const double n = static_cast<double>(rows * cols), b = 4.0 * n;  // float32 bytes of one tensor
  std::printf("threads=%d shape=(%lld, %lld) tensor_MiB=%.1f\n", cpu::num_threads(), static_cast<long long>(rows),
              static_cast<long long>(cols), b / (1 << 20));

  // The bandwidth yardstick: copy one tensor's bytes, read + write counted.
  {
    std::vector<char> src(static_cast<size_t>(b), 1), dst(static_cast<size_t>(b), 0);
    double one = best_ms(reps, [&] { std::memcpy(dst.data(), src.data(), src.size()); });
    report("memcpy_1_thread", one, 2 * b);
    const int64_t chunk = 1 << 20;
    const int64_t chunks = (static_cast<int64_t>(src.size()) + chunk - 1) / chunk;
    double all = best_ms(reps, [&] {
      cpu::run_on_threads(cpu::num_threads(), [&](int64_t t) {
        for (int64_t c = t; c < chunks; c += cpu::num_threads()) {
          size_t off = static_cast<size_t>(c * chunk);
          std::memcpy(dst.data() + off, src.data() + off, std::min<size_t>(chunk, src.size() - off));
        }
      });
    });
    report("memcpy_all_threads", all, 2 * b);
  }

  NoGradGuard no_grad;
  Generator gen(1);
  Tensor x = randn({rows, cols}, {DType::Float32}, &gen);
  Tensor y = randn({rows, cols}, {DType::Float32}, &gen);
  Tensor row = randn({1, cols}, {DType::Float32}, &gen);
  Tensor col = randn({rows, 1}, {DType::Float32}, &gen);
  Tensor out;
  report("add", best_ms(reps, [&] { out = add(x, y); }), 3 * b);
  report("mul", best_ms(reps, [&] { out = mul(x, y); }), 3 * b);
  report("relu", best_ms(reps, [&] { out = relu(x); }), 2 * b);
  report("add_row_broadcast", best_ms(reps, [&] { out = add(x, row); }), 2 * b);
  report("add_col_broadcast", best_ms(reps, [&] { out = add(x, col); }), 2 * b);
  report("sum_axis0", best_ms(reps, [&] { out = sum(x, {0}); }), b);
  report("sum_axis1", best_ms(reps, [&] { out = sum(x, {1}); }), b);
  report("sum_all", best_ms(reps, [&] { out = sum(x); }), b);
  report("softmax_last_axis", best_ms(reps, [&] { out = softmax(x, -1); }), 2 * b);
  return 0;
}

Register reg{{
    .name = "bench elementwise",
    .summary = "element-wise and reduction throughput against the machine's copy bandwidth",
    .flags = {integer("rows", "N", "(4096)"), integer("cols", "N", "(4096)"), integer("reps", "N", "(11)")},
    .details = "Best time of --reps runs (after one warm-up) of add, mul, relu, broadcast adds of a row and a column, sum over "
               "axis 0, axis 1 and all, and softmax over the last axis, on float32 tensors of --rows x --cols "
               "(default 64 MiB), with the bytes each reads and writes and the GB/s that makes; first, memcpy of "
               "the same size on one thread and split over the pool's threads (read + write counted), the "
               "machine's bandwidth yardstick. NEURN_NUM_THREADS sets the threads. bench/elementwise_torch.py "
               "prints these beside PyTorch's.",
    .fn = bench_elementwise}};

}  // namespace
}  // namespace neurn::cli
