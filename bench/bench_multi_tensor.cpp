// `neurn bench multi-tensor`: one optimizer step over the parameters of a
// registry model (default resnet50), with multi-tensor apply (all parameters
// in one threaded loop on the CPU, one launch on CUDA) and per parameter (one
// loop or launch each), so the choice of the default is measured, not
// assumed (framework/optim/multi_tensor.h, docs/cuda.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "experiments/cli/cli.h"
#include "framework/ops.h"
#include "framework/optim/optim.h"
#include "layers/module.h"
#include "models/registry.h"

namespace neurn::cli {
namespace {

using Clock = std::chrono::steady_clock;

int bench_multi_tensor(const Flags& f) {
  const std::string model = f.get("model", "resnet50");
  const int64_t reps = f.get_int("reps", 20);
  NEURN_CHECK(reps >= 1, "bench multi-tensor: --reps must be >= 1, got ", reps);
  const Device device = Device::parse(f.get("device", "cpu"));
  ModulePtr m = build_model(model, ModelOptions{});
  m->to(device);
  std::vector<Tensor> params = m->parameters();
  Generator gen(1);
  int64_t n = 0;
  for (Tensor& p : params) {
    p.set_grad(randn(p.shape(), {p.dtype()}, &gen).to(device));
    n += p.numel();
  }
  std::printf("model=%s parameters=%lld tensors=%zu device=%s\n", model.c_str(), static_cast<long long>(n),
              params.size(), device.str().c_str());
  auto sync = [&] {
    if (!device.is_cpu()) (void)params.front().cpu();  // waits for the device's stream
  };
  // The two modes alternate step by step (same parameters, tiny learning
  // rates), so a change in the machine's load hits both alike.
  for (int kind = 0; kind < 2; ++kind) {
    std::unique_ptr<Optimizer> opts[2];
    for (int mode = 0; mode < 2; ++mode) {
      if (kind == 0) opts[mode] = std::make_unique<Sgd>(params, SgdOptions{.lr = 1e-6, .momentum = 0.9, .weight_decay = 5e-4});
      else opts[mode] = std::make_unique<Adam>(params, AdamOptions{.lr = 1e-8});
      opts[mode]->set_multi_tensor(mode == 0);
      opts[mode]->step();  // allocates the state
    }
    sync();
    std::vector<double> ms[2];
    for (int64_t r = 0; r < reps; ++r)
      for (int mode = 0; mode < 2; ++mode) {
        auto t0 = Clock::now();
        opts[mode]->step();
        sync();
        ms[mode].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    for (int mode = 0; mode < 2; ++mode) {
      std::sort(ms[mode].begin(), ms[mode].end());
      const double med = ms[mode][ms[mode].size() / 2];
      std::printf("%s_%s_step_ms=%.3f (%.2f ns per parameter)\n", kind == 0 ? "sgd_momentum" : "adam",
                  mode == 0 ? "multi_tensor" : "per_parameter", med, med * 1e6 / static_cast<double>(n));
    }
  }
  return 0;
}

Register reg{{
    .name = "bench multi-tensor",
    .summary = "optimizer step over a model's parameters: multi-tensor apply against per-parameter loops",
    .flags = {text("model", "NAME", "(resnet50)"), integer("reps", "N", "(20)"), text("device", "cpu|cuda", "(cpu)")},
    .details = "Median time of one optimizer step (SGD momentum 0.9 with weight decay, Adam) over every parameter of "
               "--model (a registry name, built with its defaults), with all parameters of a device in one loop "
               "(multi_tensor, the default) and one loop per parameter (per_parameter), the two alternating step by "
               "step.",
    .fn = bench_multi_tensor}};

}  // namespace
}  // namespace neurn::cli
