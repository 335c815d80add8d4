// A real forward and backward on the CPU for every backbone at 32x32, batch 2:
// finite loss, logits of the right shape, every parameter gets a finite
// gradient; BN running statistics move in training and stay in eval.
#include <doctest/doctest.h>

#include <cmath>

#include "gradcheck.h"
#include "layers/layers.h"
#include "models/registry.h"

using namespace neurn;

TEST_CASE("every model trains one step on the CPU at 32x32, batch 2") {
  for (const char* name :
       {"digits_convnet", "vgg19", "resnet50", "resnet50v2", "densenet121", "mobilenet", "mobilenet_v2"}) {
    INFO(name);
    Generator gen(7);
    ModulePtr model;
    {
      ParamScope scope({}, &gen);
      model = build_model(name);
    }
    // every kernel was drawn (the builders defer the default init and redraw)
    for (auto& [pname, p] : model->named_parameters())
      if (p.dim() >= 2) CHECK_MESSAGE(sum(square(p)).item() > 0, pname, " is all zeros");
    model->train();
    Tensor x = randn({2, 3, 32, 32}, {}, &gen);
    Tensor target = from_vector<int64_t>({3, 8}, {2});
    Tensor logits = (*model)(x);
    REQUIRE(logits.shape() == Shape{2, 10});
    Tensor loss = cross_entropy(logits, target);
    double l = loss.item();
    CHECK(std::isfinite(l));
    CHECK(l > 0);
    loss.backward();
    int64_t missing = 0, nonfinite = 0;
    double total = 0;
    std::string first_missing;
    for (auto& [pname, p] : model->named_parameters()) {
      Tensor g = p.grad();
      if (!g.defined()) {
        if (first_missing.empty()) first_missing = pname;
        ++missing;
        continue;
      }
      CHECK(g.shape() == p.shape());
      double s = sum(square(g)).item();
      if (!std::isfinite(s)) ++nonfinite;
      total += s;
    }
    INFO("first parameter without a gradient: " << first_missing);
    CHECK(missing == 0);
    CHECK(nonfinite == 0);
    CHECK(total > 0);
  }
}

TEST_CASE("BN running statistics update in training only") {
  ModulePtr model = build_model("mobilenet_v2");
  Tensor x = randn({2, 3, 32, 32});
  Tensor rm;
  for (auto& [n, b] : model->named_buffers())
    if (n == "features.0.1.running_mean") rm = b;
  REQUIRE(rm.defined());
  auto before = rm.to_vector<float>();
  model->eval();
  {
    NoGradGuard ng;
    (*model)(x);
  }
  CHECK(rm.to_vector<float>() == before);
  model->train();
  {
    NoGradGuard ng;
    (*model)(x);
  }
  CHECK(rm.to_vector<float>() != before);
}
