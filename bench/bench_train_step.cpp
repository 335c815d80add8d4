// `neurn bench train-step`: training throughput of a registry model on one
// fixed synthetic batch (random images and labels), so the figure measures
// the engine (forward, cross entropy, backward, Adam) and not the data
// pipeline. bench/train_step_torch.py runs the same network in PyTorch and
// prints the ratio.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <cblas.h>

#include "bench/bench_gemm.h"
#include "experiments/cli/cli.h"
#include "framework/blas_env.h"
#include "framework/flops.h"
#include "framework/io/atomic_file.h"
#include "framework/ops.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/optim/adam.h"
#include "framework/profiler.h"
#include "layers/init.h"
#include "models/registry.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_device.h"
#endif

namespace neurn::cli {
namespace {

using Clock = std::chrono::steady_clock;

int bench_train_step(const Flags& f) {
  const std::string name = f.get("model", "digits_convnet");
  const int64_t batch = f.get_int("batch-size", 64), steps = f.get_int("steps", 20), warmup = f.get_int("warmup", 3);
  NEURN_CHECK(batch >= 1 && steps >= 1 && warmup >= 0, "bench train-step: need --batch >= 1, --steps >= 1 and "
              "--warmup >= 0, got ", batch, ", ", steps, ", ", warmup);
  Device device = Device::parse(f.get("device", "cpu"));
  ModelOptions mo;
  mo.input_size = f.get_int("image-size", 32);
  mo.in_channels = f.get_int("channels", 3);
  mo.num_classes = f.get_int("classes", 10);
  Generator gen(static_cast<uint64_t>(f.get_int("seed", 1)));

  ModulePtr model;
  {
    ParamScope scope({DType::Float32, device}, &gen);
    model = build_model(name, mo);
  }
  model->train();
  Adam opt(model->parameters(), AdamOptions{});
  Tensor x = randn({batch, mo.in_channels, mo.input_size, mo.input_size}, {DType::Float32}, &gen).to(device);
  Tensor y = randint(0, mo.num_classes, {batch}, &gen).to(device);

  auto step = [&]() {
    opt.zero_grad();
    Tensor loss = cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
    return loss;
  };
  // The work of a step, by the usual convention: the forward's FLOPs (as the
  // ops count them) times 3, since the backward of a convolution or a linear
  // layer costs two products of the forward's size (the data and the weight
  // gradients). It slightly overstates the work where backward skips a data
  // gradient (the first layer), so the rate below is an upper estimate.
  int64_t forward_flops = 0;
  {
    NoGradGuard no_grad;
    FlopCounter fc;
    (void)model->forward(x);
    forward_flops = fc.flops();
  }
  double first_loss = 0;
  for (int64_t i = 0; i < warmup; ++i) {
    double l = step().item();  // item() also waits for a device to finish
    if (i == 0) first_loss = l;
  }
#ifdef NEURN_WITH_CUDA
  if (device.is_cuda()) cuda::reset_peak_memory_stats(device.index);  // the peak of the timed steps
#endif
  std::vector<double> ms;
  Tensor loss;
  auto t0 = Clock::now();
  for (int64_t i = 0; i < steps; ++i) {
    auto s0 = Clock::now();
    loss = step();
    if (!device.is_cpu()) loss.item();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s0).count());
  }
  double last_loss = loss.item();
  double total = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  std::printf("model %s, batch %ld, %ld steps after %ld warm-up on %s: %.2f s, step median %.1f ms (min %.1f, max %.1f)\n",
              name.c_str(), static_cast<long>(batch), static_cast<long>(steps), static_cast<long>(warmup),
              device.str().c_str(), total, sorted[sorted.size() / 2], sorted.front(), sorted.back());
  if (warmup > 0) std::printf("loss %.4f at the first step, %.4f at the last\n", first_loss, last_loss);
#ifdef NEURN_WITH_CUDA
  if (device.is_cuda()) {
    cuda::MemoryStats st = cuda::memory_stats(device.index);
    std::printf("%s\n", cuda::memory_summary(device.index).c_str());
    std::printf("peak_memory_bytes=%zu\n", st.peak_allocated);
  }
#endif
  const double step_gflops = 3.0 * static_cast<double>(forward_flops) * static_cast<double>(steps) / total / 1e9;
  std::printf("forward %.3f GFLOP per batch; step rate %.1f GFLOP/s (3 x forward FLOPs per step)\n",
              static_cast<double>(forward_flops) / 1e9, step_gflops);
  if (device.is_cpu()) {
    const BlasCore core = blas_core();
    std::printf("openblas_kernels=%s%s%s\n", core.chosen.c_str(), core.suggested.empty() ? "" : " (the CPU has ",
                core.suggested.empty() ? "" : (core.suggested + "'s: OPENBLAS_CORETYPE chose narrower ones)").c_str());
  }
  if (f.has("vs-gemm") && device.is_cpu()) {
    // The yardstick runs on as many cores as the step (NEURN_NUM_THREADS),
    // whatever OPENBLAS_NUM_THREADS says: the step's own products run on
    // neurn's pool, so OPENBLAS_NUM_THREADS=1 (what the backbone benchmark
    // sets) would otherwise measure one core against a step on all of them.
    const int threads = cpu::num_threads(), blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    const double peak = sgemm_peak_gflops(3, false);
    openblas_set_num_threads(blas_threads);
    std::printf("sgemm peak %.1f GFLOP/s on %d threads (bench gemm): the step runs at %.0f%% of it\n", peak, threads,
                100.0 * step_gflops / peak);
    std::printf("fraction_of_sgemm=%.3f\n", step_gflops / peak);
  }
  if (f.has("profile") || f.has("profile-json")) {
    // Separate steps, after the timed ones, so the profiler's own cost
    // (and on CUDA its wait after every kernel) stays out of the figure above.
    Profiler prof;
    for (int64_t i = 0; i < steps; ++i) {
      loss = step();
      if (!device.is_cpu()) loss.item();
    }
    ProfileReport rep = prof.stop();
    std::printf("profile of %ld more steps (self time: a scope's time less the scopes inside it):\n%s",
                static_cast<long>(steps), rep.table(static_cast<size_t>(f.get_int("profile-top", 25))).c_str());
    if (f.has("profile-json")) io::write_file_atomic(f.get("profile-json"), rep.json() + "\n");
  }
  std::printf("images_per_second=%.1f\n", static_cast<double>(batch * steps) / total);
  return 0;
}

Register reg{{
    .name = "bench train-step",
    .summary = "training-step throughput of a registry model (images/s) on a synthetic batch",
    .flags = {text("model", "NAME", "(digits_convnet)"), integer("batch-size", "N", "(64)"), integer("steps", "N", "(20)"),
              integer("warmup", "N", "(3)"), integer("image-size", "S", "(32)"), integer("channels", "C", "(3)"),
              integer("classes", "N", "(10)"), text("device", "cpu|cuda", "(cpu)"), integer("seed", "N", "(1)"),
              on_off("vs-gemm", "also time sgemm (bench gemm) and print the step's share of its rate"),
              on_off("profile", "then profile as many steps again: time per kernel table, backward node and optimizer"),
              integer("profile-top", "N", "rows of the profile table (25)"),
              text("profile-json", "FILE", "also write the profile as JSON")},
    .details = "Times training steps (forward, cross entropy, backward, Adam lr 1e-3) on one synthetic batch. CPU "
               "threads: OpenBLAS takes OPENBLAS_NUM_THREADS, the other kernels NEURN_NUM_THREADS (default: all "
               "cores). It prints the step's FLOP rate (3 x the forward's FLOPs per step) and, with --vs-gemm, that "
               "rate as a fraction of the machine's sgemm rate (square products on NEURN_NUM_THREADS threads, "
               "whatever OPENBLAS_NUM_THREADS says). The last line is images_per_second=<N>.",
    .fn = bench_train_step}};

}  // namespace
}  // namespace neurn::cli
