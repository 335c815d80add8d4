// The models that need the new ops (transposed convolution, instance norm,
// recurrence over time steps): parameter counts pinned against their
// references, output sizes, state keys as the authors', and the unrolled
// traces; resnet50_ibn_a and cornet_s against PyTorch builds of their
// authors' definitions (tests/models/torch_ibn_cornet.py; skipped, visibly,
// without torch). Each also runs in test_models_train's registry-wide case.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "framework/ops/instance_norm.h"
#include "gradcheck.h"
#include "skip.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "reference_files.h"

using namespace neurn;
namespace fs = std::filesystem;

namespace {

int64_t count(const std::vector<std::string>& tokens, const std::string& t) {
  return std::count(tokens.begin(), tokens.end(), t);
}

std::set<std::string> keys_of(const std::string& name, const ModelOptions& o) {
  ParamScope meta({.device = Device::meta()});
  ModulePtr m = build_model(name, o);
  std::set<std::string> keys;
  for (auto& [k, t] : m->state_dict()) keys.insert(k);
  return keys;
}

}  // namespace

TEST_CASE("unet: Ronneberger et al. 2015 parameter count, 572 -> 388, smallest input 188") {
  ModelOptions o;
  o.in_channels = 1;  // the paper's gray-scale input
  o.num_classes = 2;
  o.input_size = 572;
  ModelTrace t = trace_model("unet", o);
  CHECK(t.params == 31030658);
  CHECK(t.output_shape == Shape{1, 2, 388, 388});  // the paper's Fig. 1
  CHECK(count(t.tokens, "ConvTranspose") == 4);
  CHECK(count(t.tokens, "Conv") == 19);  // 18 valid 3x3 and the 1x1 head
  CHECK(count(t.tokens, "Cropping") == 4);
  CHECK(count(t.tokens, "Concat") == 4);
  CHECK(count(t.tokens, "MaxPool") == 4);
  o.in_channels = 3;  // what `neurn models` counts: 2 x 64 x 9 more in the first convolution
  CHECK(trace_model("unet", o).params == 31030658 + 2 * 64 * 9);
  // 16 b + 124 -> 16 b - 60: b = 4 at the smallest input
  o.input_size = 188;
  CHECK(trace_model("unet", o).output_shape == Shape{1, 2, 4, 4});
  CHECK(model_info("unet").min_input_size == 188);
  CHECK(model_info("unet").task == "segmentation");
  CHECK(model_info("unet").reference_classes == 2);
  CHECK(model_info("unet").reference_input_size == 572);
  // below it a decoder level would be empty; the builder refuses it
  o.input_size = 187;
  CHECK_THROWS_CONTAINING(trace_model("unet", o), "188");
  o.input_size = 188;
  auto keys = keys_of("unet", o);
  for (const char* k : {"down1.0.weight", "down4.2.bias", "bottom.0.weight", "upconv4.weight", "upconv1.bias",
                        "up4.0.weight", "up1.2.weight", "head.weight", "head.bias"})
    CHECK_MESSAGE(keys.count(k) == 1, k);
}

TEST_CASE("resnet50_ibn_a: the authors' count, keys and IBN placement") {
  ModelOptions o;
  o.num_classes = 1000;
  o.input_size = 224;
  ModelTrace t = trace_model("resnet50_ibn_a", o);
  CHECK(t.params == 25557032);
  CHECK(t.output_shape == Shape{1, 1000});
  // layer1-3 (3 + 4 + 6 bottlenecks): one instance norm each; layer4 none
  CHECK(count(t.tokens, "InstanceNorm") == 13);
  CHECK(count(t.tokens, "BatchNorm") == 1 + 3 * 16 + 4);  // stem; bn1 (or its BN half), bn2, bn3; 4 downsamples
  auto keys = keys_of("resnet50_ibn_a", o);
  for (const char* k : {"conv1.weight", "bn1.running_mean", "layer1.0.bn1.IN.weight", "layer1.0.bn1.IN.bias",
                        "layer1.0.bn1.BN.weight", "layer1.0.bn1.BN.running_var", "layer3.5.bn1.IN.weight",
                        "layer4.0.bn1.weight", "layer4.0.bn1.running_mean", "layer2.0.downsample.0.weight",
                        "layer2.0.downsample.1.running_mean", "fc.weight", "fc.bias"})
    CHECK_MESSAGE(keys.count(k) == 1, k);
  // IN has no running statistics (affine=True, track_running_stats=False), layer4 no IBN
  CHECK(keys.count("layer1.0.bn1.IN.running_mean") == 0);
  CHECK(keys.count("layer4.0.bn1.IN.weight") == 0);
  // the halves: 64 -> 32 IN + 32 BN in layer1, 256 -> 128 + 128 in layer3
  ParamScope meta({.device = Device::meta()});
  ModulePtr m = build_model("resnet50_ibn_a", o);
  std::map<std::string, Shape> shapes;
  for (auto& [k, p] : m->state_dict()) shapes[k] = p.shape();
  CHECK(shapes["layer1.0.bn1.IN.weight"] == Shape{32});
  CHECK(shapes["layer1.0.bn1.BN.weight"] == Shape{32});
  CHECK(shapes["layer3.0.bn1.IN.weight"] == Shape{128});
  CHECK(shapes["layer3.0.bn1.BN.running_mean"] == Shape{128});
}

TEST_CASE("resnet50_ibn_a: the IBN layer is instance norm on the first half, batch norm on the rest") {
  Generator g(9);
  ModulePtr m;
  {
    ParamScope scope({.dtype = DType::Float64}, &g);
    ModelOptions o;
    m = build_model("resnet50_ibn_a", o);
  }
  // layer1.0.bn1 sits after conv1 of the first bottleneck: run it on its own
  Module* ibn = nullptr;
  m->apply([&](const std::string& name, Module& mod) {
    if (name == "layer1.0.bn1") ibn = &mod;
  });
  REQUIRE(ibn != nullptr);
  ibn->train();
  Tensor x = rand({2, 64, 4, 5}, {DType::Float64}, &g, -1.0, 2.0);
  Tensor y = (*ibn)(x);
  auto parts = split(x, {32, 32}, 1);
  Tensor want_in = instance_norm(parts[0], {}, {}, {}, {});  // weight 1, bias 0 at init
  Tensor want_bn = batch_norm(parts[1], {}, {}, {}, {}, true);
  auto got = split(y, {32, 32}, 1);
  CHECK(max(abs(sub(got[0], want_in))).item() < 1e-12);
  CHECK(max(abs(sub(got[1], want_bn))).item() < 1e-12);
}

TEST_CASE("cornet_s: count derived from the authors' definition, per-step norms, unrolled trace") {
  ModelOptions o;
  o.num_classes = 1000;
  o.input_size = 224;
  ModelTrace t = trace_model("cornet_s", o);
  // V1 37,528 + V2 2,527,488 + V4 10,012,160 + IT 39,818,240 + decoder 513,000 (models/cornet.cpp)
  CHECK(t.params == 53416616);
  CHECK(t.output_shape == Shape{1, 1000});
  // every time step is in the trace: V2, V4, IT run 2, 4, 2 steps of conv1, conv2, conv3 and a residual add
  CHECK(count(t.tokens, "Add") == 8);
  CHECK(count(t.tokens, "Conv") == 2 + (2 + 3 * 2) + (2 + 3 * 4) + (2 + 3 * 2));  // V1; conv_input, skip, 3 a step
  CHECK(count(t.tokens, "BatchNorm") == 2 + 3 + 3 * 8);           // V1 2; norm_skip per area; 3 per step
  auto keys = keys_of("cornet_s", o);
  for (const char* k : {"V1.conv1.weight", "V1.norm2.running_var", "V2.conv_input.weight", "V2.skip.weight",
                        "V2.norm_skip.weight", "V2.conv2.weight", "V2.norm1_1.running_mean", "V4.norm3_3.weight",
                        "IT.norm2_1.bias", "decoder.linear.weight", "decoder.linear.bias"})
    CHECK_MESSAGE(keys.count(k) == 1, k);
  CHECK(keys.count("V2.norm1_2.weight") == 0);  // V2 has 2 steps
  CHECK(keys.count("V4.norm1_4.weight") == 0);  // V4 has 4
  // 224 -> V1 56 -> V2 28 -> V4 14 -> IT 7; and the smallest input, 32 -> 1 x 1 at IT
  o.input_size = 32;
  CHECK(trace_model("cornet_s", o).output_shape == Shape{1, 1000});
}

namespace {

// The reference files of tests/models/torch_ibn_cornet.py, made once per
// version of the script in the temp directory.
using neurn::testing::rel_error;

const std::string& ibn_cornet_reference_dir() {
  static const std::string dir = neurn::testing::python_reference_dir("torch_ibn_cornet.py", "neurn-torch-ibn-cornet-");
  return dir;
}


}  // namespace

TEST_CASE("resnet50_ibn_a and cornet_s agree with PyTorch builds of the authors' definitions" *
          neurn::testing::skip_unless(neurn::testing::have_torch(), neurn::testing::kNoTorch)) {
  const std::string dir = ibn_cornet_reference_dir();
  for (const std::string name : {"resnet50_ibn_a", "cornet_s"}) {
    INFO(name);
    ModelOptions o;
    o.input_size = 64;
    ModulePtr m = build_model(name, o);
    LoadReport rep = load_state_file(*m, dir + "/" + name + ".weights.safetensors");  // strict: every key, as named
    REQUIRE(rep.ok());
    NamedTensors io = load_safetensors(dir + "/" + name + ".io.safetensors");
    Tensor x = find_tensor(io, "input");
    m->eval();
    Tensor y;
    {
      NoGradGuard ng;
      y = (*m)(x);
    }
    double e_eval = rel_error(y, find_tensor(io, "eval_output"));
    // training mode in float64: batch statistics in every BN, instance statistics in IN
    m->train();
    m->to(DType::Float64);
    Tensor yt;
    {
      NoGradGuard ng;
      yt = (*m)(x.to(DType::Float64));
    }
    double e_train = rel_error(yt, find_tensor(io, "train_output"));
    MESSAGE(name << " vs PyTorch: eval (float32) " << e_eval << ", training mode (float64) " << e_train);
    CHECK(e_eval < 1e-4);
    CHECK(e_train < 1e-10);
  }
}
