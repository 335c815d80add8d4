// `neurn bench peak-memory`: the memory of training steps of a registry model
// on the CPU (default: ResNet50 at 32x32, batch 64, SGD with momentum), as
//   - the tensor allocator's own count (host_memory_stats(): bytes of tensor
//     storage in use), at the start of a step, after the forward (what the
//     graph keeps for backward), and the most during the step;
//   - the process's resident set: VmRSS before the first step and the peak
//     (VmHWM, the same figure as getrusage's ru_maxrss) after the steps.
// bench/peak_memory_torch.py runs the same step in PyTorch and prints both.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "experiments/cli/cli.h"
#include "framework/ops.h"
#include "framework/optim/sgd.h"
#include "layers/init.h"
#include "models/registry.h"

namespace neurn::cli {
namespace {

// A field of /proc/self/status in kB ("VmRSS", "VmHWM"); -1 if absent.
long proc_status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size() + 1, key + ":") == 0) return std::stol(line.substr(key.size() + 1));
  return -1;
}

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

int bench_peak_memory(const Flags& f) {
  const std::string name = f.get("model", "resnet50");
  const int64_t batch = f.get_int("batch-size", 64), steps = f.get_int("steps", 2);
  NEURN_CHECK(batch >= 1 && steps >= 1, "bench peak-memory: need --batch-size >= 1 and --steps >= 1, got ", batch,
              " and ", steps);
  ModelOptions mo;
  mo.input_size = f.get_int("image-size", 32);
  mo.in_channels = 3;
  mo.num_classes = f.get_int("classes", 10);
  Generator gen(static_cast<uint64_t>(f.get_int("seed", 1)));
  ModulePtr model;
  {
    ParamScope scope({DType::Float32, Device::cpu()}, &gen);
    model = build_model(name, mo);
  }
  model->train();
  Sgd opt(model->parameters(), SgdOptions{.lr = 0.01, .momentum = 0.9});
  Tensor x = randn({batch, mo.in_channels, mo.input_size, mo.input_size}, {DType::Float32}, &gen);
  Tensor y = randint(0, mo.num_classes, {batch}, &gen);

  const long rss_before_kb = proc_status_kb("VmRSS");
  std::printf("model %s, batch %ld, %ldx%ld, %ld SGD steps (momentum 0.9) on the CPU\n", name.c_str(),
              static_cast<long>(batch), static_cast<long>(mo.input_size), static_cast<long>(mo.input_size),
              static_cast<long>(steps));
  size_t overall_peak = 0;
  for (int64_t i = 0; i < steps; ++i) {
    opt.zero_grad();
    reset_host_peak_memory();
    const size_t at_start = host_memory_stats().allocated;
    Tensor loss = cross_entropy(model->forward(x), y);
    const HostMemoryStats after_forward = host_memory_stats();
    loss.backward();
    opt.step();
    const HostMemoryStats end = host_memory_stats();
    overall_peak = std::max(overall_peak, end.peak);
    std::printf("step %ld: loss %.4f; tensors %.1f MiB at the start, %.1f MiB after the forward (%.1f MiB kept for "
                "backward), peak %.1f MiB (%.1f MiB above the start; forward's peak %.1f MiB), %.1f MiB at the end\n",
                static_cast<long>(i), loss.item(), mib(at_start), mib(after_forward.allocated),
                mib(static_cast<double>(after_forward.allocated) - at_start), mib(end.peak),
                mib(static_cast<double>(end.peak) - at_start), mib(after_forward.peak), mib(end.allocated));
  }
  const long hwm_kb = proc_status_kb("VmHWM");
  std::printf("process: VmRSS %.1f MiB before the first step, peak VmHWM %.1f MiB (%.1f MiB above)\n",
              rss_before_kb / 1024.0, hwm_kb / 1024.0, (hwm_kb - rss_before_kb) / 1024.0);
  std::printf("peak_tensor_bytes=%zu\n", overall_peak);
  std::printf("peak_rss_kb=%ld\n", hwm_kb);
  return 0;
}

Register reg{{
    .name = "bench peak-memory",
    .summary = "peak memory of CPU training steps of a registry model (tensor allocator and process RSS)",
    .flags = {text("model", "NAME", "(resnet50)"), integer("batch-size", "N", "(64)"), integer("steps", "N", "(2)"),
              integer("image-size", "S", "(32)"), integer("classes", "N", "(10)"), integer("seed", "N", "(1)")},
    .details = "Runs --steps training steps (forward, cross entropy, backward, SGD lr 0.01 momentum 0.9) on one "
               "synthetic batch and prints, per step, the bytes of tensor storage in use at the start, after the "
               "forward and at the peak (framework/tensor.h host_memory_stats), then the process's peak resident "
               "set (VmHWM). The last lines are peak_tensor_bytes=<N> and peak_rss_kb=<N>. "
               "bench/peak_memory_torch.py runs the same in PyTorch.",
    .fn = bench_peak_memory}};

}  // namespace
}  // namespace neurn::cli
