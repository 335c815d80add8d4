// The backbones on the meta device: parameter counts against the reference
// implementations, output shapes at 32x32 and 224x224, layer sequences,
// FLOPs, state keys against torchvision's, and the registry's checks.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "gradcheck.h"
#include "layers/layers.h"
#include "models/registry.h"

using namespace neurn;

namespace {
ModelOptions imagenet() {
  ModelOptions o;
  o.num_classes = 1000;
  o.input_size = 224;
  return o;
}
std::map<std::string, int> count_tokens(const std::vector<std::string>& tokens) {
  std::map<std::string, int> c;
  for (auto& t : tokens) ++c[t];
  return c;
}
}  // namespace

TEST_CASE("parameter counts at 1000 classes equal the references (meta device, no memory)") {
  // torchvision: sum(p.numel() for p in model.parameters())
  CHECK(trace_model("vgg19", imagenet()).params == 143'667'240);
  CHECK(trace_model("resnet50", imagenet()).params == 25'557'032);
  CHECK(trace_model("densenet121", imagenet()).params == 7'978'856);
  CHECK(trace_model("mobilenet_v2", imagenet()).params == 3'504'872);
  // Keras model.count_params(): weights plus BN moving mean and variance
  ModelTrace r2 = trace_model("resnet50v2", imagenet());
  CHECK(r2.total_params == 25'613'800);
  CHECK(r2.params == 25'568'360);  // Keras "Trainable params"
  ModelTrace mb = trace_model("mobilenet", imagenet());
  CHECK(mb.total_params == 4'253'864);
  CHECK(mb.params == 4'231'976);
  // width multipliers (torchvision mobilenet_v2(width_mult=0.5 / 1.4))
  ModelOptions w = imagenet();
  w.width = 0.5;
  CHECK(trace_model("mobilenet_v2", w).params == 1'968'680);
  w.width = 1.4;
  CHECK(trace_model("mobilenet_v2", w).params == 6'108'776);
}

TEST_CASE("output shapes at 224x224 and 32x32, layer sequences and FLOPs") {
  struct Expect {
    const char* name;
    std::map<std::string, int> tokens;  // counts of some layer types
    double gflops_224;                  // published multiply-adds x 2, to 10%
  };
  // multiply-adds: VGG19 19.6 G, ResNet50 4.1 G, DenseNet121 2.9 G, MobileNet 0.57 G, MobileNetV2 0.30 G
  std::vector<Expect> cases = {
      {"vgg19", {{"Conv", 16}, {"Linear", 3}, {"MaxPool", 5}, {"ReLU", 18}}, 39.2},
      {"resnet50", {{"Conv", 53}, {"BatchNorm", 53}, {"Add", 16}, {"ReLU", 49}}, 8.2},
      {"resnet50v2", {{"Conv", 53}, {"BatchNorm", 49}, {"Add", 16}, {"ZeroPad", 18}}, 7.0},
      {"densenet121", {{"Conv", 120}, {"BatchNorm", 121}, {"Concat", 58}, {"AvgPool", 3}}, 5.7},
      {"mobilenet", {{"Conv", 15}, {"DepthwiseConv", 13}, {"ReLU6", 27}, {"ZeroPad", 4}}, 1.14},
      {"mobilenet_v2", {{"Conv", 35}, {"DepthwiseConv", 17}, {"Add", 10}, {"ReLU6", 35}}, 0.60},
      {"digits_convnet", {{"Conv", 2}, {"Linear", 3}, {"MaxPool", 2}, {"ReLU", 4}}, 0},
  };
  for (auto& c : cases) {
    INFO(c.name);
    ModelTrace big = trace_model(c.name, imagenet());
    CHECK(big.output_shape == Shape{1, 1000});
    ModelTrace small = trace_model(c.name, {});  // 10 classes, 32x32
    CHECK(small.output_shape == Shape{1, 10});
    auto counts = count_tokens(small.tokens);
    for (auto& [tok, n] : c.tokens) CHECK_MESSAGE(counts[tok] == n, tok);
    CHECK(small.tokens == big.tokens);  // the same layers at either size
    if (c.gflops_224 > 0) {
      CHECK(big.flops / 1e9 > c.gflops_224 * 0.95);
      CHECK(big.flops / 1e9 < c.gflops_224 * 1.1);
    }
    CHECK(small.flops > 0);
    CHECK(small.flops < big.flops);
  }
  // digits ConvNet: 3200 inputs to the first fully connected layer at 32x32
  ModelTrace d = trace_model("digits_convnet", {});
  CHECK(d.params ==
        (3 * 64 * 25 + 64) + (64 * 128 * 25 + 128) + (3200 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 10 + 10));
  CHECK(d.tokens == std::vector<std::string>{"Conv", "ReLU", "MaxPool", "Conv", "ReLU", "MaxPool", "Flatten", "Linear",
                                             "ReLU", "Linear", "ReLU", "Linear"});
}

TEST_CASE("state keys and shapes equal torchvision's state_dict()") {
  // tests/models/torchvision_keys.txt: written by `torch_reference.py keys` from torchvision 0.14
  std::ifstream f(std::string(NEURN_SOURCE_DIR) + "/tests/models/torchvision_keys.txt");
  REQUIRE(f.good());
  std::map<std::string, std::set<std::string>> want;  // model -> "key shape"
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string model, key, shape;
    is >> model >> key >> shape;
    want[model].insert(key + " " + shape);
  }
  // + shufflenet_v2_x1_0 (an alias of shufflenet_v2), efficientnet_b0, inception_v3, vit_b_16, and the
  // torchvision families of issue 20 (test_registry_torchvision.cpp)
  REQUIRE(want.size() >= 8);
  CHECK(want["resnet50"].size() == 320);
  CHECK(want["densenet121"].size() == 727);
  for (auto& [name, keys] : want) {
    INFO(name);
    ParamScope meta({.device = Device::meta()});
    ModelOptions o = imagenet();
    o.num_classes = model_info(name).reference_classes;  // 21 for the segmentation models
    ModulePtr m = build_model(name, o);
    std::set<std::string> got;
    for (auto& [k, t] : m->state_dict()) {
      std::string s;
      for (size_t i = 0; i < t.shape().size(); ++i) s += (i ? "," : "") + std::to_string(t.shape()[i]);
      got.insert(k + " " + s);
    }
    std::vector<std::string> only_ours, only_theirs;
    for (auto& k : got)
      if (!keys.count(k)) only_ours.push_back(k);
    for (auto& k : keys)
      if (!got.count(k)) only_theirs.push_back(k);
    INFO("first key only in neurn: " << (only_ours.empty() ? "-" : only_ours[0]));
    INFO("first key only in torchvision: " << (only_theirs.empty() ? "-" : only_theirs[0]));
    CHECK(only_ours.empty());
    CHECK(only_theirs.empty());
  }
}

TEST_CASE("registry: listing, metadata and option checks") {
  auto models = list_models();
  std::set<std::string> names;
  for (auto& m : models) names.insert(m.name);
  for (const char* n :
       {"digits_convnet", "vgg19", "resnet50", "resnet50v2", "densenet121", "mobilenet", "mobilenet_v2"})
    CHECK(names.count(n) == 1);
  CHECK(model_info("mobilenet_v2").has_width);
  CHECK(model_info("resnet50").family == "ResNet");
  // aliases resolve to one entry and are not listed twice
  CHECK(has_model("mobilenetv2"));
  CHECK(canonical_model_name("mobilenetv2") == "mobilenet_v2");
  CHECK(names.count("mobilenetv2") == 0);
  CHECK(model_info("resnet50_v2").name == "resnet50v2");
  CHECK_THROWS_CONTAINING(build_model("resnet51"), "unknown model 'resnet51'; known models: ");
  ModelOptions o;
  o.input_size = 16;
  CHECK_THROWS_CONTAINING(build_model("resnet50", o),
                          "resnet50 needs inputs of at least 32x32 pixels, got input_size 16");
  o = {};
  o.width = 0.5;
  CHECK_THROWS_CONTAINING(build_model("vgg19", o), "vgg19 has no width multiplier");
  o = {};
  o.dropout = 1.5;
  CHECK_THROWS_CONTAINING(build_model("vgg19", o), "dropout must be in [0, 1)");

  // a model registered at run time (as NAS or a test would)
  register_model({"tiny_test_net", "Test", "none", "one linear layer", 1, false}, [](const ModelOptions& mo) {
    auto s = std::make_shared<Sequential>();
    s->emplace<Flatten>();
    s->emplace<Linear>(mo.in_channels * mo.input_size * mo.input_size, mo.num_classes);
    return s;
  });
  ModelOptions t;
  t.input_size = 4;
  CHECK(trace_model("tiny_test_net", t).params == 3 * 16 * 10 + 10);
}

TEST_CASE("the front hook puts a module in front without renaming the model's keys") {
  ParamScope meta({.device = Device::meta()});
  ModelOptions o;
  o.front = [] { return std::make_shared<BatchNorm2d>(3); };  // any shape-keeping module
  ModulePtr plain = build_model("resnet50");
  ModulePtr fronted = build_model("resnet50", o);
  auto a = plain->state_dict(), b = fronted->state_dict();
  std::set<std::string> ka, kb;
  for (auto& [k, t] : a) ka.insert(k);
  for (auto& [k, t] : b) kb.insert(k);
  CHECK(kb.count("front.weight") == 1);
  CHECK(kb.count("front.running_mean") == 1);
  CHECK(kb.count("conv1.weight") == 1);
  CHECK(kb.size() == ka.size() + 5);
  ModelTrace tr = trace_model(*fronted, {1, 3, 32, 32});
  REQUIRE(tr.tokens.size() > 2);
  CHECK(tr.tokens[0] == "BatchNorm");  // the front first
  CHECK(tr.tokens[1] == "Conv");
  CHECK(tr.output_shape == Shape{1, 10});
  o.front = [] { return ModulePtr(); };
  CHECK_THROWS_CONTAINING(build_model("resnet50", o), "front returned no module");
}

TEST_CASE("trace_model refuses a model that is not on the meta device") {
  ModulePtr m = build_model("digits_convnet");
  CHECK_THROWS_CONTAINING(trace_model(*m, {1, 3, 32, 32}), "must live on the meta device");
}
