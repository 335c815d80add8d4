// `neurn bench optim`: the cost of one optimizer step (SGD with momentum,
// Adam, AdamW) over a given number of float32 parameters, and of the fully
// connected layers of the digits ConvNet (linear forward + backward), the two
// parts of a training step that are neither convolution nor data.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "experiments/cli/cli.h"
#include "framework/ops.h"
#include "framework/optim/optim.h"

namespace neurn::cli {
namespace {

using Clock = std::chrono::steady_clock;

// The median over `reps` runs of fn, in milliseconds.
double median_ms(int64_t reps, const std::function<void()>& fn) {
  std::vector<double> ms;
  for (int64_t i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int bench_optim(const Flags& f) {
  const int64_t n = f.get_int("params", 4000000), batch = f.get_int("batch-size", 64), reps = f.get_int("reps", 10);
  NEURN_CHECK(n >= 1 && batch >= 1 && reps >= 1, "bench optim: need --params, --batch and --reps >= 1, got ", n, ", ",
              batch, ", ", reps);
  Device device = Device::parse(f.get("device", "cpu"));
  Generator gen(1);
  auto sync = [&](const Tensor& t) {
    if (!device.is_cpu()) (void)t.cpu();  // waits for the device
  };

  double adam_ms = 0;
  for (int kind = 0; kind < 3; ++kind) {
    Tensor p = randn({n}, {DType::Float32}, &gen).to(device);
    p.requires_grad_();
    p.set_grad(randn({n}, {DType::Float32}, &gen).to(device));
    std::unique_ptr<Optimizer> opt;
    const char* name = "";
    if (kind == 0) {
      opt = std::make_unique<Sgd>(std::vector<Tensor>{p}, SgdOptions{.lr = 0.01, .momentum = 0.9});
      name = "sgd_momentum";
    } else if (kind == 1) {
      opt = std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions{});
      name = "adam";
    } else {
      opt = std::make_unique<AdamW>(std::vector<Tensor>{p}, AdamWOptions{});
      name = "adamw";
    }
    opt->step();  // allocates the state
    sync(p);
    double ms = median_ms(reps, [&] {
      opt->step();
      sync(p);
    });
    if (kind == 1) adam_ms = ms;
    std::printf("%s_step_ms=%.3f (%.2f ns per parameter)\n", name, ms, ms * 1e6 / static_cast<double>(n));
  }

  const int64_t dims[4] = {3200, 1024, 1024, 10};
  double total = 0;
  for (int l = 0; l < 3; ++l) {
    Tensor x = randn({batch, dims[l]}, {DType::Float32}, &gen).to(device);
    Tensor w = randn({dims[l + 1], dims[l]}, {DType::Float32}, &gen).to(device);
    Tensor b = randn({dims[l + 1]}, {DType::Float32}, &gen).to(device);
    x.requires_grad_();
    w.requires_grad_();
    b.requires_grad_();
    Tensor g = randn({batch, dims[l + 1]}, {DType::Float32}, &gen).to(device);
    auto run = [&] {
      x.zero_grad();
      w.zero_grad();
      b.zero_grad();
      linear(x, w, b).backward(g);
      sync(w.grad());
    };
    run();
    double ms = median_ms(reps, run);
    double gflop = 3.0 * 2.0 * static_cast<double>(batch * dims[l] * dims[l + 1]) * 1e-9;
    std::printf("linear_%lld_%lld_fwd_bwd_ms=%.3f (%.1f GFLOP/s)\n", static_cast<long long>(dims[l]),
                static_cast<long long>(dims[l + 1]), ms, gflop / (ms * 1e-3));
    total += ms;
  }
  std::printf("fc_layers_fwd_bwd_ms=%.3f\n", total);

  // Attention-sized batched products: (batch * 3 heads, 65 tokens, 64) @ (.., 64, 65).
  {
    Tensor q = randn({batch * 3, 65, 64}, {DType::Float32}, &gen).to(device);
    Tensor k = randn({batch * 3, 64, 65}, {DType::Float32}, &gen).to(device);
    q.requires_grad_();
    k.requires_grad_();
    Tensor g = randn({batch * 3, 65, 65}, {DType::Float32}, &gen).to(device);
    auto run = [&] {
      q.zero_grad();
      k.zero_grad();
      matmul(q, k).backward(g);
      sync(k.grad());
    };
    run();
    double ms = median_ms(reps, run);
    double gflop = 3.0 * 2.0 * static_cast<double>(batch * 3 * 65 * 65 * 64) * 1e-9;
    std::printf("batched_matmul_%lldx65x64x65_fwd_bwd_ms=%.3f (%.1f GFLOP/s)\n",
                static_cast<long long>(batch * 3), ms, gflop / (ms * 1e-3));
  }
  std::printf("adam_params_per_second=%.0f\n", static_cast<double>(n) / (adam_ms * 1e-3));
  return 0;
}

Register reg{{
    .name = "bench optim",
    .summary = "optimizer step and fully connected layer throughput",
    .flags = {integer("params", "N", "(4000000)"), integer("batch-size", "N", "(64)"), integer("reps", "N", "(10)"),
              text("device", "cpu|cuda", "(cpu)")},
    .details = "Median time of one optimizer step (SGD momentum 0.9, Adam, AdamW) over --params float32 values, and "
               "of linear forward + backward for the fully connected layers of the digits ConvNet (3200-1024, "
               "1024-1024, 1024-10) at --batch-size rows, and of an attention-sized batched matmul (--batch-size x "
               "3 heads, 65 tokens, 64 features). The last line is adam_params_per_second=<N>.",
    .fn = bench_optim}};

}  // namespace
}  // namespace neurn::cli
