// `neurn bench ew-shapes`: the element-wise work of a CNN training step at the
// shapes DenseNet121 (32x32 input) and ResNet50 run it with a batch of 64:
// relu forward and backward, the residual add and its backward, DenseNet's
// running concat (the block input grown by one 32-channel piece) and its
// backward, and what one loop on the CPU pool costs (an empty
// run_on_threads, and a relu of 64 KB on one and on all threads).
//
// Unlike `neurn bench ops`, the leaves' .grad is reset before every backward,
// as zero_grad does in a training step, so the backward figure is the op's
// own backward (no accumulation into an existing .grad).
// bench/ew_shapes_torch.py runs the same cases in PyTorch.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "experiments/cli/cli.h"
#include "framework/ops.h"
#include "framework/ops/parallel_cpu.h"

namespace neurn::cli {
namespace {

using Clock = std::chrono::steady_clock;

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

struct Case {
  std::string name;
  std::vector<Tensor> leaves;
  std::function<Tensor()> fwd;
};

Tensor leaf(const Shape& s, Generator& gen) { return randn(s, {}, &gen).requires_grad_(); }

Case relu_case(int64_t C, int64_t H, Generator& gen) {
  Tensor x = leaf({64, C, H, H}, gen);
  return {"relu " + shape_str(x.shape()), {x}, [x] { return relu(x); }};
}

Case add_case(int64_t C, int64_t H, Generator& gen) {
  Tensor a = leaf({64, C, H, H}, gen), b = leaf({64, C, H, H}, gen);
  return {"add " + shape_str(a.shape()), {a, b}, [a, b] { return add(a, b); }};
}

Case concat_case(int64_t C, int64_t H, Generator& gen) {
  Tensor a = leaf({64, C, H, H}, gen), b = leaf({64, 32, H, H}, gen);
  return {"concat " + std::to_string(C) + "+32 (64, _, " + std::to_string(H) + ", " + std::to_string(H) + ")",
          {a, b},
          [a, b] { return concat({a, b}, 1); }};
}

void run_case(const Case& c, int64_t reps) {
  Tensor y0 = c.fwd();
  Generator gen(2);
  const Tensor dy = randn(y0.shape(), {}, &gen);
  double tf = 1e300, tb = 1e300, cf = 1e300, cb = 1e300;
  for (int64_t r = 0; r <= reps; ++r) {
    for (Tensor l : c.leaves) l.zero_grad();  // a handle: the leaf's own .grad is reset
    const double c0 = cpu_ms();
    auto t0 = Clock::now();
    Tensor y = c.fwd();
    auto t1 = Clock::now();
    const double c1 = cpu_ms();
    y.backward(dy);
    auto t2 = Clock::now();
    const double c2 = cpu_ms();
    if (r == 0) continue;  // warm-up
    tf = std::min(tf, std::chrono::duration<double, std::milli>(t1 - t0).count());
    tb = std::min(tb, std::chrono::duration<double, std::milli>(t2 - t1).count());
    cf = std::min(cf, c1 - c0), cb = std::min(cb, c2 - c1);
  }
  std::printf("case=%-34s fwd_ms=%8.4f bwd_ms=%8.4f cpu_fwd_ms=%8.4f cpu_bwd_ms=%8.4f\n", c.name.c_str(), tf, tb, cf,
              cb);
}

// The best of reps calls of fn, in microseconds.
double best_us(int64_t reps, const std::function<void()>& fn) {
  fn();
  double best = 1e300;
  for (int64_t i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return best;
}

void pool_overhead(int64_t reps) {
  const int t = cpu::num_threads();
  const double empty = best_us(reps * 20, [&] { cpu::run_on_threads(t, [](int64_t) {}); });
  // A 64 KB relu (16384 floats) split by hand over one and over all threads.
  const int64_t n = 16384;
  std::vector<float> x(n), y(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>((i * 7919) % 13) - 6.0f;
  auto relu_part = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  };
  const double one = best_us(reps * 20, [&] { relu_part(0, n); });
  const double all = best_us(reps * 20, [&] {
    cpu::run_on_threads(t, [&](int64_t k) { relu_part(k * n / t, (k + 1) * n / t); });
  });
  // The same loop when the workers have gone to sleep (1 ms after the last
  // loop, as between two ops of a step that ran inline): the cost of waking them.
  auto cold = [&](const std::function<void()>& fn) {
    double best = 1e300;
    for (int64_t i = 0; i < reps * 5; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      auto t0 = Clock::now();
      fn();
      best = std::min(best, std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    return best;
  };
  const double empty_cold = cold([&] { cpu::run_on_threads(t, [](int64_t) {}); });
  const double all_cold = cold([&] {
    cpu::run_on_threads(t, [&](int64_t k) { relu_part(k * n / t, (k + 1) * n / t); });
  });
  std::printf("pool threads=%d empty_loop_us=%.2f relu_64KB_1_thread_us=%.2f relu_64KB_all_threads_us=%.2f "
              "after_1ms_idle: empty_loop_us=%.2f relu_64KB_all_threads_us=%.2f\n",
              t, empty, one, all, empty_cold, all_cold);
}

int bench_ew_shapes(const Flags& f) {
  const int64_t reps = f.get_int("reps", 20);
  const std::string only = f.get("filter", "");
  NEURN_CHECK(reps >= 1, "bench ew-shapes: --reps must be >= 1, got ", reps);
  std::printf("threads=%d batch=64 float32, best of %lld after one warm-up, .grad reset before each backward\n",
              cpu::num_threads(), static_cast<long long>(reps));
  if (only.empty() || std::string("pool").find(only) != std::string::npos) pool_overhead(reps);
  Generator gen(1);
  std::vector<std::function<Case()>> cases = {
      // DenseNet121 at 32x32: relu1 over the growing block input, relu2 at 128 channels
      [&] { return relu_case(128, 8, gen); }, [&] { return relu_case(256, 8, gen); },
      [&] { return relu_case(256, 4, gen); }, [&] { return relu_case(128, 4, gen); },
      [&] { return relu_case(512, 2, gen); }, [&] { return relu_case(128, 2, gen); },
      [&] { return relu_case(1024, 1, gen); }, [&] { return relu_case(128, 1, gen); },
      // ResNet50 at 32x32 (after the stem: 8x8 ... 1x1) and Inception v3 at 75x75
      [&] { return relu_case(64, 35, gen); },
      [&] { return add_case(256, 8, gen); }, [&] { return add_case(512, 4, gen); },
      [&] { return add_case(1024, 2, gen); }, [&] { return add_case(2048, 1, gen); },
      // DenseNet121's running concat, one layer of each block
      [&] { return concat_case(160, 8, gen); }, [&] { return concat_case(320, 4, gen); },
      [&] { return concat_case(640, 2, gen); }, [&] { return concat_case(800, 1, gen); },
  };
  for (auto& make : cases) {
    Case c = make();
    if (!only.empty() && c.name.find(only) == std::string::npos) continue;
    run_case(c, reps);
  }
  return 0;
}

Register reg{{
    .name = "bench ew-shapes",
    .summary = "relu, add and concat forward/backward at DenseNet121/ResNet50 shapes, and the CPU pool's cost per loop",
    .flags = {integer("reps", "N", "(20)"), text("filter", "TEXT", "(only the cases whose name contains it; 'pool' for "
                                                                     "the pool's figures)")},
    .details = "Best (minimum) forward and backward time (ms, wall and process CPU time) of relu, add and concat through "
               "the public ops with autograd, batch 64 float32, at the shapes of DenseNet121 (32x32 input), ResNet50 "
               "and Inception v3; .grad is reset before every backward (as after zero_grad), so the backward is the "
               "op's own. The pool line: an empty loop on all threads, and a 64 KB relu on one and on all threads "
               "(microseconds). bench/ew_shapes_torch.py runs the same cases in PyTorch.",
    .fn = bench_ew_shapes}};

}  // namespace
}  // namespace neurn::cli
