// Every registry entry, with no list to edit: built at its minimum input (at
// least 32x32), a real forward and backward on the CPU at batch 2 (finite
// loss, logits of the right shape, every parameter gets a finite gradient),
// and a non-empty layer trace with positive FLOPs on the meta device. BN
// running statistics move in training and stay in eval.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "gradcheck.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "models/segmentation.h"

using namespace neurn;

TEST_CASE("every registry model traces and trains one step on the CPU at its minimum input, batch 2") {
  auto models = list_models();
  CHECK(models.size() >= 7);
  // NEURN_TEST_MODELS=a,b runs only those entries (a model's own failures, quickly)
  const char* only = std::getenv("NEURN_TEST_MODELS");
  for (const ModelInfo& info : models) {
    const std::string& name = info.name;
    if (only && *only && ("," + std::string(only) + ",").find("," + name + ",") == std::string::npos) continue;
    INFO(name);
    ModelOptions o;
    o.input_size = std::max<int64_t>(32, info.min_input_size);
    ModelTrace trace = trace_model(name, o);
    CHECK(!trace.tokens.empty());
    CHECK(trace.flops > 0);
    // classifiers give (1, classes); dense models a map at the input's size
    const bool dense = info.task != "classification";
    if (info.task == "classification") CHECK(trace.output_shape == Shape{1, 10});
    // (U-Net's valid convolutions make its map smaller than the input)
    if (dense) {
      REQUIRE(trace.output_shape.size() == 4);
      CHECK(trace.output_shape[0] == 1);
      CHECK(trace.output_shape[1] == (info.task == "depth" ? 1 : 10));
    }
    Generator gen(7);
    ModulePtr model;
    {
      ParamScope scope({}, &gen);
      model = build_model(name, o);
    }
    // every kernel was drawn (the builders defer the default init and redraw), except those the
    // reference starts at zero on purpose: torchvision's ViT class token and head
    auto zero_by_design = [&](const std::string& pname) {
      return info.family == "ViT" && (pname == "class_token" || pname == "heads.head.weight");
    };
    for (auto& [pname, p] : model->named_parameters())
      if (p.dim() >= 2 && !zero_by_design(pname)) CHECK_MESSAGE(sum(square(p)).item() > 0, pname, " is all zeros");
    // One training step in `dtype`; counts the parameters without a gradient
    // and those whose gradient is not finite.
    struct StepResult {
      double loss = 0, total = 0;
      int64_t missing = 0, nonfinite = 0;
      std::string first_missing;
    };
    auto step = [&](DType dtype) {
      StepResult r;
      model->to(dtype);
      model->zero_grad();
      model->train();
      Generator data_gen(11);
      Tensor x = randn({2, 3, o.input_size, o.input_size}, {dtype}, &data_gen);
      Tensor target = from_vector<int64_t>({3, 8}, {2});
      Tensor logits = (*model)(x);
      Tensor loss;
      if (dense) {
        REQUIRE(logits.dim() == 4);
        loss = mean(square(logits));  // a loss that reaches every output value
        // an auxiliary head (fcn_resnet101, deeplabv3_resnet101) learns from its own loss, as in torchvision's recipe
        if (Tensor aux = segmentation_aux_logits(*model); aux.defined()) loss = loss + 0.5 * mean(square(aux));
      } else {
        REQUIRE(logits.shape() == Shape{2, 10});
        loss = cross_entropy(logits, target);
      }
      r.loss = loss.item();
      loss.backward();
      for (auto& [pname, p] : model->named_parameters()) {
        Tensor g = p.grad();
        if (!g.defined()) {
          // MiDaS builds refinenet4.resConfUnit1 (the released weights hold it) but its forward never calls it
          if (info.name == "midas" && pname.rfind("scratch.refinenet4.resConfUnit1.", 0) == 0) continue;
          if (r.first_missing.empty()) r.first_missing = pname;
          ++r.missing;
          continue;
        }
        CHECK(g.shape() == p.shape());
        double sq = sum(square(g)).item();
        if (!std::isfinite(sq)) ++r.nonfinite;
        r.total += sq;
      }
      return r;
    };
    StepResult r = step(DType::Float32);
    // At batch 2 a batch norm over 1x1 maps sees two values per channel; when
    // they nearly agree its backward scales by 1/sqrt(eps), and thirty such
    // layers (EfficientNet-B4 at 32x32) can overflow float32. That is the
    // arithmetic, not the wiring: the same step in float64 must be finite.
    if (r.nonfinite > 0 || !std::isfinite(r.loss)) {
      MESSAGE(name, ": float32 step overflowed (", r.nonfinite, " gradients), checked again in float64");
      r = step(DType::Float64);
    }
    CHECK(std::isfinite(r.loss));
    CHECK(r.loss > 0);
    int64_t missing = r.missing, nonfinite = r.nonfinite;
    double total = r.total;
    std::string first_missing = r.first_missing;
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
