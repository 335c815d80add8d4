// neurn against PyTorch on the same weights and input: torchvision's vgg19,
// resnet50, densenet121, mobilenet_v2, shufflenet_v2_x1_0, efficientnet_b0,
// inception_v3, vit_b_16 and the torchvision families of issue 20 (vgg11 ...
// deeplabv3_resnet101; the list: MODELS in torch_reference.py) with random weights (BN statistics
// too), saved as safetensors by tests/models/torch_reference.py, load into
// the neurn models without renaming; eval outputs, and a training step's
// output, loss, gradients and BN running statistics, agree within 1e-4
// relative (max |neurn - torch| / max |torch| per tensor; for gradients the
// denominator is at least 1e-6 of the largest gradient, since some are zero
// in exact arithmetic: a BN bias followed by another batch norm). Inputs
// (2, 3, 64, 64) (32x32 for VGG19, 107x107 for Inception v3); dropout and
// stochastic depth are off in the training step; the eval output is compared in float32,
// every training step in float64, where no ReLU or max-pool tie can flip with
// the kernels a processor picks: see torch_reference.py.
// Runs where /usr/bin/python3 imports torch and torchvision; says it skipped
// otherwise. The reference files are made once per version of the script
// and kept in the temp directory.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gradcheck.h"
#include "skip.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "reference_files.h"

using namespace neurn;
namespace fs = std::filesystem;

using neurn::testing::rel_error;

namespace {


// The directory of reference files, made on first use.
const std::string& reference_dir() {
  static const std::string dir = neurn::testing::python_reference_dir("torch_reference.py", "neurn-torch-ref-", "reference");
  return dir;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}


// Where /usr/bin/python3 lacks torch or torchvision (apt-get install python3-torch python3-torchvision).
#define SKIP_UNLESS_TORCH neurn::testing::skip_unless(neurn::testing::have_torch(), neurn::testing::kNoTorch)

void check_against_torch(const std::string& name) {
  const double tol = 1e-4;
  std::string dir = reference_dir();
  ModelOptions o;
  o.dropout = 0.0;  // the reference's training step runs with dropout off
  o.input_size = std::max<int64_t>(o.input_size, model_info(name).min_input_size);  // inception_v3: 75
  ModulePtr model;
  {
    DeferInit defer;  // every tensor is loaded below
    model = build_model(name, o);
  }
  // and with stochastic depth off (efficientnet_b0)
  model->apply([](const std::string&, Module& m) {
    if (auto* sd = dynamic_cast<StochasticDepth*>(&m)) sd->set_p(0.0);
  });
  LoadReport rep = load_state_file(*model, dir + "/" + name + ".weights.safetensors");  // strict
  CHECK(rep.ok());
  NamedTensors io = load_safetensors(dir + "/" + name + ".io.safetensors");
  std::string src = name + ".io";
  Tensor x = find_tensor(io, "input", src);

  model->eval();
  {
    NoGradGuard no_grad;
    Tensor y = (*model)(x);
    double e = rel_error(y, find_tensor(io, "eval_output", src));
    INFO("eval output relative error " << e);
    CHECK(e < tol);
    MESSAGE(name << ": eval output relative error " << e);
  }
  bool has_training_step = false;  // torch_reference.py's EVAL_ONLY models have none
  for (auto& [k, t] : io) has_training_step = has_training_step || k == "train_output";
  if (!has_training_step) return;

  DType train_dtype = find_tensor(io, "train_output", src).dtype();
  model->to(train_dtype);
  x = x.to(train_dtype);
  model->train();
  Tensor y = (*model)(x);
  Tensor loss = cross_entropy(y, from_vector<int64_t>({1, 7}, {2}));
  CHECK(rel_error(y, find_tensor(io, "train_output", src)) < tol);
  CHECK(rel_error(loss, find_tensor(io, "loss", src)) < tol);
  loss.backward();
  double largest = 0;  // the largest gradient value of the reference
  for (auto& [k, t] : io)
    if (k.rfind("grad.", 0) == 0 || k.rfind("gradhead.", 0) == 0) largest = std::max(largest, max_abs(t));
  double floor = 1e-6 * largest;
  int compared = 0;
  double worst = 0;
  std::string worst_name;
  for (auto& [pname, p] : model->named_parameters()) {
    Tensor g = p.grad();
    REQUIRE_MESSAGE(g.defined(), pname, " has no gradient");
    double e;
    bool full = false;
    for (auto& [k, t] : io) full = full || k == "grad." + pname;
    if (full) {
      e = rel_error(g, find_tensor(io, "grad." + pname, src), floor);
    } else {  // a huge tensor: its first 65536 values and its norm
      Tensor head = find_tensor(io, "gradhead." + pname, src);
      Tensor mine = slice(flatten(g, 0, -1), 0, 0, head.numel());
      e = std::max(rel_error(mine, head, floor), rel_error(sqrt(sum(square(g.to(DType::Float64)))).reshape({}),
                                                           find_tensor(io, "gradnorm." + pname, src)));
    }
    if (e > worst) worst = e, worst_name = pname;
    ++compared;
  }
  INFO("worst gradient: " << worst_name << ", relative error " << worst);
  CHECK(worst < tol);
  MESSAGE(name << ": training step in " << std::string(dtype_name(train_dtype)) << ", worst gradient relative error "
               << worst << " (" << worst_name << ")");
  CHECK(compared == static_cast<int>(model->named_parameters().size()));
  int buffers = 0;
  for (auto& [bname, b] : model->named_buffers()) {
    if (!is_floating(b.dtype())) continue;
    double e = rel_error(b, find_tensor(io, "after." + bname, src));
    INFO(bname);
    CHECK(e < tol);
    ++buffers;
  }
  CHECK(((buffers > 0) == (name != "vgg19" && name != "vit_b_16" && name != "squeezenet1_0")));  // those have no BN
}

}  // namespace

TEST_CASE("vgg19 equals torchvision's on the same weights" * SKIP_UNLESS_TORCH) { check_against_torch("vgg19"); }
TEST_CASE("resnet50 equals torchvision's on the same weights" * SKIP_UNLESS_TORCH) { check_against_torch("resnet50"); }
TEST_CASE("densenet121 equals torchvision's on the same weights" * SKIP_UNLESS_TORCH) { check_against_torch("densenet121"); }
TEST_CASE("mobilenet_v2 equals torchvision's on the same weights" * SKIP_UNLESS_TORCH) { check_against_torch("mobilenet_v2"); }
TEST_CASE("shufflenet_v2 equals torchvision's on the same weights" * SKIP_UNLESS_TORCH) { check_against_torch("shufflenet_v2_x1_0"); }
TEST_CASE("efficientnet_b0 equals torchvision's on the same weights" * SKIP_UNLESS_TORCH) { check_against_torch("efficientnet_b0"); }
TEST_CASE("inception_v3 equals torchvision's on the same weights" * SKIP_UNLESS_TORCH) { check_against_torch("inception_v3"); }
// weights made at 224 loaded at 32: the position embedding resampled by load_state (and by resample_vit in torch)
TEST_CASE("vit_b_16 equals torchvision's on the same weights" * SKIP_UNLESS_TORCH) { check_against_torch("vit_b_16"); }
// The torchvision families of issue 20: eval output only for the large ones and the segmentation
// models ("out", at 64x64) and EfficientNet B1-B7; squeezenet1_0, googlenet and resnext50_32x4d also a
// float64 training step.
TEST_CASE("torchvision families equal torchvision's on the same weights" * SKIP_UNLESS_TORCH) {
  for (const char* name : {"vgg11", "vgg16", "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d",
                           "densenet169", "densenet201", "squeezenet1_0", "googlenet", "fcn_resnet101",
                           "deeplabv3_resnet101", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
                           "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7"}) {
    INFO(std::string(name));
    check_against_torch(name);
  }
}
