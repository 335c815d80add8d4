// ShuffleNet v1 (g = 3, 1.0x) and megvii-model/ShuffleNet-Series' ImageNet
// checkpoints: the key layout written out from megvii's constructors
// (ShuffleNetV1/network.py, blocks.py) equals neurn's state dict; the channel
// shuffle is theirs; a .pth.tar with their layout and patterned values goes
// through scripts/convert_shufflenet_v1_checkpoint.py into the model (skips
// without python3-torch).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "gradcheck.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "skip.h"

using namespace neurn;
namespace fs = std::filesystem;

namespace {

// megvii's names and shapes for group 3, 1.0x, 1000 classes.
std::vector<std::pair<std::string, Shape>> megvii_keys() {
  std::vector<std::pair<std::string, Shape>> k;
  auto bn = [&](const std::string& p, int64_t c) {
    for (const char* f : {"weight", "bias", "running_mean", "running_var"}) k.push_back({p + "." + f, {c}});
    k.push_back({p + ".num_batches_tracked", {}});  // nn.BatchNorm2d's counter
  };
  const int64_t g = 3;
  k.push_back({"first_conv.0.weight", {24, 3, 3, 3}});
  bn("first_conv.1", 24);
  int64_t in = 24, idx = 0;
  const int64_t repeats[3] = {4, 8, 4}, outs[3] = {240, 480, 960};
  for (int s = 0; s < 3; ++s)
    for (int64_t i = 0; i < repeats[s]; ++i, ++idx) {
      int64_t out = outs[s], mid = out / 4, outputs = i == 0 ? out - in : out;
      bool first_group = s == 0 && i == 0;
      std::string p = "features." + std::to_string(idx) + ".";
      k.push_back({p + "branch_main_1.0.weight", {mid, in / (first_group ? 1 : g), 1, 1}});
      bn(p + "branch_main_1.1", mid);
      k.push_back({p + "branch_main_1.3.weight", {mid, 1, 3, 3}});
      bn(p + "branch_main_1.4", mid);
      k.push_back({p + "branch_main_2.0.weight", {outputs, mid / g, 1, 1}});
      bn(p + "branch_main_2.1", outputs);
      in = out;
    }
  k.push_back({"classifier.0.weight", {1000, 960}});
  return k;
}

Tensor pattern(const Shape& shape, size_t key_index) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i % 89) * 0.01 - key_index * 0.001);
  return from_vector<float>(v, shape);
}

ModelOptions imagenet() {
  ModelOptions o;
  o.num_classes = 1000;
  o.input_size = 224;
  return o;
}

}  // namespace

TEST_CASE("shufflenet v1: neurn's keys are megvii's ShuffleNetV1 keys (g = 3, 1.0x) without module.") {
  ParamScope meta({.device = Device::meta()});
  ModulePtr m = build_model("shufflenet", imagenet());
  auto sd = m->state_dict();
  auto want = megvii_keys();
  REQUIRE(sd.size() == want.size());
  std::map<std::string, Shape> ours;  // neurn lists parameters before buffers: compare by name
  for (auto& [k, t] : sd) ours[k] = t.shape();
  for (auto& [k, shape] : want) {
    INFO(k);
    REQUIRE(ours.count(k));
    CHECK(ours[k] == shape);
  }
}

TEST_CASE("shufflenet v1: the channel shuffle is megvii's ((N, C/g, g) -> (N, g, C/g))") {
  // a unit's shuffle over mid = 60 channels in 3 groups: output channel
  // a * 20 + b is input channel b * 3 + a (megvii's reshape + permute)
  ChannelShuffle shuffle(60 / 3);
  std::vector<double> x(60);
  for (int i = 0; i < 60; ++i) x[i] = i;
  auto y = shuffle(from_vector<double>(x, {1, 60, 1, 1})).to_vector<double>();
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 20; ++b) CHECK(y[a * 20 + b] == b * 3 + a);
  // and the model uses it: its first unit's shuffle module holds 240 / 4 / 3 = 20 groups
  ModulePtr m = build_model("shufflenet", imagenet());
  Generator gen(3);
  Tensor img = rand({1, 3, 64, 64}, {}, &gen);
  m->eval();
  CHECK(m->forward(img).shape() == Shape{1, 1000});
}

TEST_CASE("shufflenet v1: a megvii .pth.tar converts and loads (scripts/convert_shufflenet_v1_checkpoint.py)" *
          testing::skip_unless(testing::have_torch(), testing::kNoTorch)) {
  fs::path dir = fs::temp_directory_path() / ("neurn_test_shufflenet_v1_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto keys = megvii_keys();
  {
    std::ofstream f(dir / "keys.txt");
    for (auto& [k, shape] : keys) {
      f << k;
      for (int64_t d : shape) f << " " << d;
      f << "\n";
    }
  }
  std::string src = NEURN_SOURCE_DIR;
  std::string make = "/usr/bin/python3 '" + src + "/tests/models/shufflenet_v1_checkpoint.py' '" +
                     (dir / "keys.txt").string() + "' '" + (dir / "ShuffleNetV1.pth.tar").string() + "'";
  REQUIRE(std::system(make.c_str()) == 0);
  std::string convert = "/usr/bin/python3 '" + src + "/scripts/convert_shufflenet_v1_checkpoint.py' '" +
                        (dir / "ShuffleNetV1.pth.tar").string() + "' '" + (dir / "w.safetensors").string() + "'";
  REQUIRE(std::system(convert.c_str()) == 0);
  ModulePtr m = build_model("shufflenet", imagenet());
  LoadReport r = load_state_file(*m, (dir / "w.safetensors").string(), true);
  CHECK(r.missing.empty());
  CHECK(r.unexpected.empty());
  auto sd = m->state_dict();
  REQUIRE(sd.size() == keys.size());
  std::map<std::string, Tensor> by(sd.begin(), sd.end());
  for (size_t k = 0; k < keys.size(); ++k) {
    INFO(keys[k].first);
    REQUIRE(by.count(keys[k].first));
    if (keys[k].first.find("num_batches_tracked") != std::string::npos)
      CHECK(by[keys[k].first].to(DType::Float64).item() == 7.0);
    else
      CHECK(max(abs(sub(by[keys[k].first], pattern(keys[k].second, k)))).item() == 0.0);
  }
  fs::remove_all(dir);
}
