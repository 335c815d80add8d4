// Every model on CUDA against the CPU on the same weights: the eval-mode
// output and the gradients of an eval-mode backward (BN on its running
// statistics, so the comparison is well conditioned at batch 2), and a
// training-mode step that updates the BN statistics and num_batches_tracked
// on the device. Skipped, with a message, where no CUDA device is present.
#include <doctest/doctest.h>

#include <algorithm>

#include <cmath>

#include "gradcheck.h"
#include "skip.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "reference_files.h"

using namespace neurn;

using neurn::testing::rel_error;

TEST_CASE("models on CUDA equal the CPU (eval forward and backward, a training step)" *
          neurn::testing::skip_unless(neurn::testing::have_cuda(), neurn::testing::no_cuda_reason())) {
  for (const ModelInfo& info : list_models()) {  // every registry entry
    const std::string& name = info.name;
    const int64_t size = std::max<int64_t>(32, info.min_input_size);
    INFO(name);
    Generator gen(5);
    ModulePtr cpu_model, gpu_model;
    {
      ParamScope s({}, &gen);
      cpu_model = build_model(name, ModelOptions{.input_size = size});
    }
    {
      ParamScope s({.device = Device::cuda()});
      DeferInit defer;
      gpu_model = build_model(name, ModelOptions{.input_size = size});
    }
    load_state(*gpu_model, cpu_model->state_dict());  // strict; copies to the device
    Tensor x = randn({2, 3, size, size}, {}, &gen);
    Tensor target = from_vector<int64_t>({2, 9}, {2});
    cpu_model->eval();
    gpu_model->eval();
    Tensor yc = (*cpu_model)(x);
    Tensor yg = (*gpu_model)(x.to(Device::cuda()));
    CHECK(yg.device().is_cuda());
    CHECK(rel_error(yg.cpu(), yc) < 1e-4);
    cross_entropy(yc, target).backward();
    cross_entropy(yg, target.to(Device::cuda())).backward();
    auto pc = cpu_model->named_parameters(), pg = gpu_model->named_parameters();
    REQUIRE(pc.size() == pg.size());
    double largest = 0;
    for (auto& [n, p] : pc) largest = std::max(largest, max(abs(p.grad())).item());
    double worst = 0;
    std::string worst_name;
    for (size_t i = 0; i < pc.size(); ++i) {
      REQUIRE_MESSAGE(pg[i].second.grad().defined(), pg[i].first, " has no gradient on CUDA");
      double e = rel_error(pg[i].second.grad().cpu(), pc[i].second.grad(), 1e-6 * largest);
      if (e > worst) worst = e, worst_name = pc[i].first;
    }
    INFO("worst gradient " << worst_name << ": " << worst);
    CHECK(worst < 1e-4);

    // training mode on the device: finite loss, BN statistics move on the device
    gpu_model->train();
    Tensor loss = cross_entropy((*gpu_model)(x.to(Device::cuda())), target.to(Device::cuda()));
    CHECK(std::isfinite(loss.item()));
    for (auto& [n, b] : gpu_model->named_buffers()) {
      CHECK(b.device().is_cuda());
      if (n.size() > 19 && n.compare(n.size() - 19, 19, "num_batches_tracked") == 0) CHECK(b.item() == 1);
    }
  }
}
