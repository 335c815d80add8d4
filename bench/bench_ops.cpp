// `neurn bench ops`: forward and backward time of the non-convolution ops of
// the CNN backbones (batch norm in training, max and average pooling, relu,
// concat) at the shapes ResNet50, DenseNet121 (32x32) and Inception v3 (75x75)
// run them with a batch of 64. Every case goes through the public op and
// autograd (what a training step calls); bench/ops_torch.py runs the same
// cases, by the same names, in PyTorch and prints both side by side. Each
// figure is the minimum over the reps: on a machine shared with other jobs
// the fastest run is the one least disturbed by them.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "experiments/cli/cli.h"
#include "framework/ops.h"
#include "framework/ops/parallel_cpu.h"

namespace neurn::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct OpCase {
  std::string name;
  // Builds the inputs (leaves with requires_grad) and returns a forward.
  std::function<std::function<Tensor()>(Generator&)> make;
};

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

Tensor leaf(const Shape& s, Generator& gen) { return randn(s, {}, &gen).requires_grad_(); }

OpCase bn_case(int64_t C, int64_t H) {
  const Shape s{64, C, H, H};
  return {"batch_norm " + shape_str(s), [s, C](Generator& gen) -> std::function<Tensor()> {
            Tensor x = leaf(s, gen), w = leaf({C}, gen), b = leaf({C}, gen);
            Tensor rm = zeros({C}), rv = ones({C});
            return [=] { return batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5); };
          }};
}

OpCase pool_case(bool max, int64_t C, int64_t H, int64_t k, int64_t s, int64_t p) {
  const Shape sh{64, C, H, H};
  std::string name = std::string(max ? "max_pool2d " : "avg_pool2d ") + shape_str(sh) + " k" + std::to_string(k) +
                     " s" + std::to_string(s) + " p" + std::to_string(p);
  return {name, [=](Generator& gen) -> std::function<Tensor()> {
            Tensor x = leaf(sh, gen);
            Pool2dOptions o;
            o.kernel = {k, k}, o.stride = {s, s}, o.padding = {p, p};
            return [=] { return max ? max_pool2d(x, o) : avg_pool2d(x, o); };
          }};
}

OpCase relu_case(int64_t C, int64_t H) {
  const Shape s{64, C, H, H};
  return {"relu " + shape_str(s), [s](Generator& gen) -> std::function<Tensor()> {
            Tensor x = leaf(s, gen);
            return [=] { return relu(x); };
          }};
}

// DenseNet's concat of the block input with `pieces` 32-channel growths.
OpCase concat_case(int64_t C0, int64_t pieces, int64_t H) {
  return {"concat " + std::to_string(C0) + "+" + std::to_string(pieces) + "x32 (64, _, " + std::to_string(H) + ", " +
              std::to_string(H) + ")",
          [=](Generator& gen) -> std::function<Tensor()> {
            std::vector<Tensor> xs{leaf({64, C0, H, H}, gen)};
            for (int64_t i = 0; i < pieces; ++i) xs.push_back(leaf({64, 32, H, H}, gen));
            return [=] { return concat(xs, 1); };
          }};
}

std::vector<OpCase> cases() {
  return {
      // ResNet50 at 32x32
      bn_case(64, 16), bn_case(256, 8), bn_case(128, 4), bn_case(1024, 2), bn_case(2048, 1),
      // DenseNet121 at 32x32
      bn_case(128, 8), bn_case(128, 2),
      // Inception v3 at 75x75
      bn_case(64, 35), bn_case(32, 37), bn_case(192, 3), bn_case(192, 15), bn_case(80, 17), bn_case(768, 7),
      // DenseNet121's block 2 at 32x32
      bn_case(512, 4),
      pool_case(true, 64, 16, 3, 2, 1),   // ResNet50 / DenseNet121 stem
      pool_case(true, 64, 35, 3, 2, 0),   // Inception v3 stem
      pool_case(true, 192, 15, 3, 2, 0),  // Inception v3 stem
      pool_case(true, 288, 7, 3, 2, 0),   // Inception v3 Mixed_6a
      pool_case(true, 64, 32, 2, 2, 0),   // VGG-style 2x2
      pool_case(true, 64, 28, 2, 2, 0),   // the digits ConvNet's first pool
      pool_case(true, 128, 10, 2, 2, 0),  // and its second
      pool_case(false, 192, 7, 3, 1, 1),  // Inception v3 Mixed_5b
      pool_case(false, 768, 3, 3, 1, 1),  // Inception v3 Mixed_6b-e
      pool_case(false, 128, 8, 2, 2, 0),  // DenseNet121 transition
      relu_case(256, 8), relu_case(64, 35),
      concat_case(64, 6, 8), concat_case(512, 15, 2),
  };
}

int bench_ops(const Flags& f) {
  const int64_t reps = f.get_int("reps", 15);
  const std::string only = f.get("filter", "");
  NEURN_CHECK(reps >= 1, "bench ops: --reps must be >= 1, got ", reps);
  std::printf("threads=%d batch=64 float32, best of %lld after one warm-up\n", cpu::num_threads(),
              static_cast<long long>(reps));
  Generator gen(1);
  for (const OpCase& c : cases()) {
    if (!only.empty() && c.name.find(only) == std::string::npos) continue;
    std::function<Tensor()> fwd = c.make(gen);
    Tensor y0 = fwd();
    const Tensor dy = randn(y0.shape(), {}, &gen);
    // Wall time, and the process's CPU time (all threads): on a loaded
    // machine the CPU time is the steadier measure of the work done.
    std::vector<double> tf, tb, cf, cb;
    for (int64_t r = 0; r <= reps; ++r) {
      const double c0 = cpu_ms();
      auto t0 = Clock::now();
      Tensor y = fwd();
      auto t1 = Clock::now();
      const double c1 = cpu_ms();
      y.backward(dy);
      auto t2 = Clock::now();
      const double c2 = cpu_ms();
      if (r == 0) continue;  // warm-up
      tf.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      tb.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
      cf.push_back(c1 - c0), cb.push_back(c2 - c1);
    }
    auto best = [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); };
    std::printf("case=%-46s fwd_ms=%8.3f bwd_ms=%8.3f cpu_fwd_ms=%8.3f cpu_bwd_ms=%8.3f\n", c.name.c_str(), best(tf),
                best(tb), best(cf), best(cb));
  }
  return 0;
}

Register reg{{
    .name = "bench ops",
    .summary = "forward/backward time of batch norm, pooling, relu and concat at the backbones' shapes",
    .flags = {integer("reps", "N", "(15)"), text("filter", "TEXT", "(only the cases whose name contains it)")},
    .details = "Best (minimum) forward and backward time (ms, wall and process CPU time) of the public ops with autograd, batch 64 float32: batch "
               "norm in training at ResNet50/DenseNet121 (32x32) and Inception v3 (75x75) shapes, max and average "
               "pooling, relu and DenseNet's concat. Gradients accumulate into the leaves' .grad across reps (as in "
               "a step with no zero_grad; the accumulation is in the backward time). bench/ops_torch.py runs the "
               "same cases in PyTorch.",
    .fn = bench_ops}};

}  // namespace
}  // namespace neurn::cli
