// resnest50, ghostnet, proxylessnas and midas against PyTorch twins of their
// authors' definitions (tests/models/others_torch_reference.py: none of the
// four is in torchvision): random weights and BN statistics saved with the
// authors' state-dict keys load strictly into the neurn models; the eval
// outputs on a (2, 3, 64, 64) input, and a training step's output and
// parameter gradients, agree in float64. Runs where
// /usr/bin/python3 imports torch and torchvision; skips visibly otherwise.
// The reference files are made once per version of the script and kept in the
// temp directory.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "framework/serialize/safetensors.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "reference_files.h"
#include "skip.h"

using namespace neurn;
namespace fs = std::filesystem;

namespace {

// max |a - b| / max |b|
double rel_error(const Tensor& got, const Tensor& want) { return neurn::testing::rel_error(got, want, 1e-300); }

const std::string& others_reference_dir() {
  static const std::string dir = neurn::testing::python_reference_dir("others_torch_reference.py", "neurn-others-torch-ref-");
  return dir;
}


void check_against_torch(const std::string& name) {
  const std::string dir = others_reference_dir();
  ModelOptions o;
  o.num_classes = 10;
  o.input_size = 64;
  o.dropout = 0.0;  // the twins have no dropout (ghostnet's 0.2 is off)
  ModulePtr model;
  {
    DeferInit defer;  // every tensor is loaded below
    model = build_model(name, o);
  }
  model->to(DType::Float64);
  LoadReport rep = load_state_file(*model, dir + "/" + name + ".weights.safetensors");  // strict
  INFO(rep.str());
  CHECK(rep.ok());
  NamedTensors io = load_safetensors(dir + "/" + name + ".io.safetensors");
  Tensor x = find_tensor(io, "input", name + ".io");
  Tensor want = find_tensor(io, "eval_output", name + ".io");
  model->eval();
  {
    NoGradGuard no_grad;
    Tensor y = (*model)(x);
    REQUIRE(y.shape() == want.shape());
    double e = rel_error(y, want);
    MESSAGE(name << ": float64 eval output relative error vs PyTorch " << e);
    CHECK(e < 1e-10);
  }
  // The training step: batch statistics, L = sum(y * R), every parameter's gradient.
  model->train();
  Tensor y = (*model)(x);
  CHECK(rel_error(y, find_tensor(io, "train_output", name + ".io")) < 1e-10);
  sum(mul(y, find_tensor(io, "projection", name + ".io"))).backward();
  double largest = 0;
  for (auto& [k, t] : io)
    if (k.rfind("grad.", 0) == 0)
      for (double v : t.to_vector<double>()) largest = std::max(largest, std::abs(v));
  double worst = 0;
  int compared = 0;
  for (auto& [pname, p] : model->named_parameters()) {
    INFO(pname);
    bool in_ref = false;
    for (auto& [k, t] : io) in_ref = in_ref || k == "grad." + pname;
    // a parameter without a reference gradient (never used) has none here either
    CHECK(p.grad().defined() == in_ref);
    if (!in_ref || !p.grad().defined()) continue;
    Tensor want_g = find_tensor(io, "grad." + pname, name + ".io");
    auto g = p.grad().to_vector<double>(), w = want_g.to_vector<double>();
    REQUIRE(g.size() == w.size());
    // Some gradients are zero in exact arithmetic (a bias followed by a training-mode BN, as
    // split attention's fc1.bias): both sides then hold rounding noise, measured against 1e-6 of
    // the largest gradient; a wrong gradient is off by its own size.
    double diff = 0, scale = 1e-6 * largest;
    for (size_t i = 0; i < g.size(); ++i) diff = std::max(diff, std::abs(g[i] - w[i])), scale = std::max(scale, std::abs(w[i]));
    worst = std::max(worst, diff / scale);
    ++compared;
  }
  MESSAGE(name << ": training step, " << compared << " parameter gradients, worst relative error " << worst);
  CHECK(compared > 0);
  CHECK(worst < 1e-6);
}

}  // namespace

#define SKIP_UNLESS_TORCH neurn::testing::skip_unless(neurn::testing::have_torch(), neurn::testing::kNoTorch)

TEST_CASE("resnest50 against its PyTorch twin (float64 eval)" * SKIP_UNLESS_TORCH) { check_against_torch("resnest50"); }
TEST_CASE("ghostnet against its PyTorch twin (float64 eval)" * SKIP_UNLESS_TORCH) { check_against_torch("ghostnet"); }
TEST_CASE("proxylessnas against its PyTorch twin (float64 eval)" * SKIP_UNLESS_TORCH) {
  check_against_torch("proxylessnas");
}
TEST_CASE("midas against its PyTorch twin (float64 eval)" * SKIP_UNLESS_TORCH) { check_against_torch("midas"); }
