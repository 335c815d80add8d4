// SliceAdam on CUDA (framework/cuda/optim.cu, slice_adam_update) against the
// CPU loop: float64, boxes that change per step, the state on the device.
// Skips visibly without a CUDA device (this machine has none: the case has
// compiled with -DNEURN_CUDA=AUTO, it has not run here).
#include <doctest/doctest.h>

#include <cmath>

#include "framework/ops.h"
#include "nas/autoformer/slice_adam.h"
#include "skip.h"

using namespace neurn;
using namespace neurn::autoformer;
using neurn::testing::have_cuda;
using neurn::testing::no_cuda_reason;
using neurn::testing::skip_unless;

namespace {

struct Run {
  std::vector<std::vector<double>> params, states;
  bool state_on_device = true;
};

Run run_slice_adam(Device d) {
  Generator gen(5);
  std::vector<Shape> shapes = {{7, 5}, {3, 4, 6}, {9}, {1, 30, 16}};
  std::vector<Tensor> params;
  for (const auto& s : shapes) {
    Tensor p = randn(s, {DType::Float64}, &gen).to(d);
    p.requires_grad_();
    params.push_back(p);
  }
  std::vector<Tensor> weights;
  for (const auto& s : shapes) weights.push_back(randn(s, {DType::Float64}, &gen).to(d));
  SliceAdam opt(params, AdamOptions{.lr = 0.05, .weight_decay = 1e-3});
  // boxes per step (the last parameter whole on step 2: no box given)
  std::vector<std::vector<Shape>> boxes = {{{7, 5}, {3, 4, 6}, {9}, {1, 30, 16}},
                                           {{4, 2}, {2, 4, 3}, {5}, {1, 30, 8}},
                                           {{7, 3}, {1, 2, 6}, {9}, {}},
                                           {{2, 5}, {3, 1, 1}, {1}, {1, 12, 16}}};
  for (size_t step = 0; step < boxes.size(); ++step) {
    opt.zero_grad();
    Tensor loss = full({}, 0.0, {DType::Float64, d});
    for (size_t i = 0; i < params.size(); ++i) loss = add(loss, sum(mul(square(params[i]), weights[i])));
    loss.backward();
    std::vector<ActiveSlice> active;
    for (size_t i = 0; i < params.size(); ++i)
      if (!boxes[step][i].empty()) active.push_back({params[i], boxes[step][i]});
    opt.set_active(active);
    opt.step();
  }
  Run r;
  for (auto& p : params) r.params.push_back(p.cpu().to_vector<double>());
  for (auto& [k, t] : opt.state_dict()) {
    if (t.numel() <= 1) continue;  // step counters, group fields
    r.state_on_device = r.state_on_device && t.device() == d;
    r.states.push_back(t.cpu().to_vector<double>());
  }
  return r;
}

}  // namespace

TEST_CASE("cuda: SliceAdam on the device equals the CPU loop (float64, changing boxes)" *
          skip_unless(have_cuda(), no_cuda_reason())) {
  Run cpu = run_slice_adam(Device::cpu());
  Run gpu = run_slice_adam(Device::cuda());
  CHECK(gpu.state_on_device);  // exp_avg, exp_avg_sq and step_count never left the device
  REQUIRE(cpu.params.size() == gpu.params.size());
  REQUIRE(cpu.states.size() == gpu.states.size());
  REQUIRE(cpu.states.size() == 12);
  double worst = 0;
  auto cmp = [&](const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / (1.0 + std::abs(a[i])));
  };
  for (size_t i = 0; i < cpu.params.size(); ++i) cmp(cpu.params[i], gpu.params[i]);
  for (size_t i = 0; i < cpu.states.size(); ++i) cmp(cpu.states[i], gpu.states[i]);
  MESSAGE("SliceAdam CPU vs CUDA, float64: largest relative difference ", worst);
  // pow on the device may differ from glibc's in the last bit of a bias correction
  CHECK(worst < 1e-12);
}

TEST_CASE("SliceAdam: the CPU run of the CUDA case leaves elements outside every box untouched") {
  // the CPU half of the comparison above, checked on its own so that it runs everywhere:
  // parameter 0's element (6, 4) lies only in step 1's box; (6, 4) of step_count is then 1
  Run cpu = run_slice_adam(Device::cpu());
  REQUIRE(cpu.states.size() == 12);
  // states in the order of state_dict: per parameter exp_avg, exp_avg_sq, step_count
  const auto& count0 = cpu.states[2];
  CHECK(count0[6 * 5 + 4] == 1.0);
  CHECK(count0[0] == 4.0);      // (0, 0): in every box
  CHECK(count0[1 * 5 + 4] == 2.0);  // (1, 4): steps 1 and 4
  const auto& count3 = cpu.states[11];
  CHECK(count3[29 * 16 + 15] == 2.0);  // (0, 29, 15): step 1 and the whole update of step 3
}
