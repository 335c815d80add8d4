// The torchvision families of the registry (issue 20): vgg11, vgg16,
// resnet101, resnet152, wide_resnet50_2, resnext50_32x4d, resnet50_ssl,
// densenet169, densenet201, squeezenet (1.0), googlenet, fcn_resnet101 and
// deeplabv3_resnet101 on the meta device: parameter counts at 1000 classes
// (21 for the segmentation models, with and without the auxiliary head)
// against torchvision 0.14's sum(p.numel() for p in model.parameters()),
// layer counts and FLOPs against torchvision's published figures, the
// dilated backbone's resolution, and the auxiliary head's logits. State
// keys: test_models_meta.cpp (tests/models/torchvision_keys.txt); forward
// and backward at the minimum input: test_models_train.cpp; outputs against
// PyTorch: test_torch_reference.cpp.
#include <doctest/doctest.h>

#include <map>

#include "gradcheck.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "models/resnet.h"
#include "models/segmentation.h"

using namespace neurn;
using namespace neurn::testing;

namespace {
ModelOptions reference_options(const std::string& name) {
  const ModelInfo& info = model_info(name);
  ModelOptions o;
  o.num_classes = info.reference_classes;
  o.input_size = info.reference_input_size;
  return o;
}
int64_t meta_params(const std::function<ModulePtr()>& build) {
  ParamScope meta({.device = Device::meta()});
  return build()->num_parameters();
}
std::map<std::string, int> count_tokens(const std::vector<std::string>& tokens) {
  std::map<std::string, int> c;
  for (auto& t : tokens) ++c[t];
  return c;
}
}  // namespace

TEST_CASE("torchvision families: parameter counts equal torchvision's (meta device)") {
  const std::pair<const char*, int64_t> counts[] = {
      {"vgg11", 132'863'336},          {"vgg16", 138'357'544},          {"resnet101", 44'549'160},
      {"resnet152", 60'192'808},       {"wide_resnet50_2", 68'883'240}, {"resnext50_32x4d", 25'028'904},
      {"resnet50_ssl", 25'557'032},    {"densenet169", 14'149'480},     {"densenet201", 20'013'928},
      {"squeezenet1_0", 1'248'424},    {"googlenet", 6'624'904},
      // with the auxiliary head, as the registry builds them (torchvision's aux_loss=True)
      {"fcn_resnet101", 54'314'346},   {"deeplabv3_resnet101", 60'996'202},
  };
  for (auto& [name, want] : counts) {
    INFO(std::string(name));
    ModelTrace t = trace_model(name, reference_options(name));
    CHECK(t.params == want);
  }
  CHECK(model_info("fcn_resnet101").reference_classes == 21);
  CHECK(model_info("deeplabv3_resnet101").reference_classes == 21);
  // without the auxiliary head (torchvision's aux_loss=False)
  ModelOptions voc = reference_options("fcn_resnet101");
  CHECK(meta_params([&] { return build_fcn_resnet101(voc, false); }) == 51'949'141);
  CHECK(meta_params([&] { return build_deeplabv3_resnet101(voc, false); }) == 58'630'997);
  CHECK(meta_params([&] { return build_fcn_resnet101(voc, true); }) == 54'314'346);
  CHECK(meta_params([&] { return build_deeplabv3_resnet101(voc, true); }) == 60'996'202);
}

TEST_CASE("torchvision families: names, aliases, families and tasks") {
  CHECK(canonical_model_name("squeezenet1_0") == "squeezenet");
  CHECK(model_info("resnet50_ssl").family == "ResNet");
  CHECK(model_info("resnet50_ssl").reference.find("Yalniz") != std::string::npos);
  CHECK(model_info("fcn_resnet101").task == "segmentation");
  CHECK(model_info("deeplabv3_resnet101").task == "segmentation");
  CHECK(model_info("googlenet").task == "classification");
  // resnet50_ssl is resnet50's architecture: the same keys and shapes in the same order
  ParamScope meta({.device = Device::meta()});
  auto a = build_model("resnet50_ssl", {})->state_dict();
  auto b = build_model("resnet50", {})->state_dict();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.shape() == b[i].second.shape());
  }
}

TEST_CASE("torchvision families: layer counts and FLOPs at 224 against torchvision's published cost") {
  struct Expect {
    const char* name;
    std::map<std::string, int> tokens;
    double gflops;  // torchvision 0.14's documented GFLOPS (multiply-adds) x 2, to 10%
  };
  const std::vector<Expect> cases = {
      {"vgg11", {{"Conv", 8}, {"Linear", 3}, {"MaxPool", 5}}, 2 * 7.61},
      {"vgg16", {{"Conv", 13}, {"Linear", 3}, {"MaxPool", 5}}, 2 * 15.47},
      {"resnet101", {{"Conv", 104}, {"BatchNorm", 104}, {"Add", 33}}, 2 * 7.80},
      {"resnet152", {{"Conv", 155}, {"BatchNorm", 155}, {"Add", 50}}, 2 * 11.51},
      {"wide_resnet50_2", {{"Conv", 53}, {"Add", 16}}, 2 * 11.40},
      // the 16 grouped 3x3 convolutions are a different layer for the aligner
      {"resnext50_32x4d", {{"Conv", 37}, {"GroupConv", 16}, {"Add", 16}}, 2 * 4.23},
      {"densenet169", {{"Conv", 168}, {"BatchNorm", 169}, {"Concat", 82}}, 2 * 3.36},
      {"densenet201", {{"Conv", 200}, {"BatchNorm", 201}, {"Concat", 98}}, 2 * 4.29},
      // 2 + 8 x 3 convolutions, ReLU after each, 3 max pools
      {"squeezenet", {{"Conv", 26}, {"ReLU", 26}, {"MaxPool", 3}, {"Concat", 8}}, 2 * 0.82},
      // 3 stem convolutions + 9 blocks x 6; 4 stage pools + one per block
      {"googlenet", {{"Conv", 57}, {"BatchNorm", 57}, {"MaxPool", 13}, {"Concat", 9}, {"Linear", 1}}, 2 * 1.50},
  };
  for (auto& c : cases) {
    INFO(std::string(c.name));
    ModelOptions o;
    o.num_classes = 1000;
    o.input_size = 224;
    ModelTrace t = trace_model(c.name, o);
    CHECK(t.output_shape == Shape{1, 1000});
    auto counts = count_tokens(t.tokens);
    for (auto& [tok, n] : c.tokens) CHECK_MESSAGE(counts[tok] == n, tok, " ", counts[tok]);
    CHECK(t.flops / 1e9 > c.gflops * 0.9);
    CHECK(t.flops / 1e9 < c.gflops * 1.1);
    MESSAGE(std::string(c.name) << ": " << t.flops / 1e9 << " GFLOPs at 224 (torchvision " << c.gflops / 2 << " G multiply-adds)");
  }
}

TEST_CASE("segmentation models: FLOPs at 520 against torchvision's published cost") {
  // torchvision's GFLOPS (multiply-adds at 520x520: 232.74 FCN, 258.74 DeepLabV3) include the auxiliary
  // head; the meta trace runs in eval, where neurn skips it (about 10 G multiply-adds: its 3x3
  // convolution 1024 -> 256 on the 65x65 map), so the trace is 4% under the published figure
  const std::pair<const char*, double> cases[] = {{"fcn_resnet101", 232.74}, {"deeplabv3_resnet101", 258.74}};
  for (auto& [name, published] : cases) {
    INFO(std::string(name));
    ModelTrace t = trace_model(name, reference_options(name));
    CHECK(t.output_shape == Shape{1, 21, 520, 520});
    const double aux_macs = 9.0 * 1024 * 256 * 65 * 65 + 256.0 * 21 * 65 * 65;
    double macs = t.flops / 2.0 + aux_macs;
    CHECK(macs / 1e9 > published * 0.98);
    CHECK(macs / 1e9 < published * 1.02);
    MESSAGE(std::string(name) << ": " << t.flops / 1e9 << " GFLOPs at 520 in eval (torchvision " << published
                 << " G multiply-adds with the auxiliary head)");
  }
}

TEST_CASE("segmentation models: dilated ResNet-101 at output stride 8, out at the input's size") {
  for (const char* name : {"fcn_resnet101", "deeplabv3_resnet101"}) {
    INFO(std::string(name));
    ModelOptions o = reference_options(name);
    o.input_size = 64;
    ModelTrace t = trace_model(name, o);
    CHECK(t.output_shape == Shape{1, 21, 64, 64});
    auto counts = count_tokens(t.tokens);
    CHECK(counts["Upsample"] == (std::string(name) == "deeplabv3_resnet101" ? 2 : 1));  // eval: no auxiliary head
  }
  // the backbone keeps 1/8: layer3 and layer4 at 8x8 for a 64x64 input, their 3x3 convolutions dilated 2 and 4
  ParamScope meta({.device = Device::meta()});
  ResNetParts p = build_resnet_parts({.blocks = {3, 4, 23, 3}, .replace_stride_with_dilation = {false, true, true}}, 3);
  Tensor x = zeros({1, 3, 64, 64}, {.device = Device::meta()});
  Tensor y = (*p.maxpool)((*p.relu)((*p.bn1)((*p.conv1)(x))));
  y = (*p.layers[1])((*p.layers[0])(y));
  CHECK(y.shape() == Shape{1, 512, 8, 8});
  y = (*p.layers[2])(y);
  CHECK(y.shape() == Shape{1, 1024, 8, 8});
  y = (*p.layers[3])(y);
  CHECK(y.shape() == Shape{1, 2048, 8, 8});
  auto conv_spec = [&](int stage, size_t block) {
    auto b = (*p.layers[stage])[block];
    for (auto& [n, c] : b->children())
      if (n == "conv2") return dynamic_cast<Conv2d&>(*c).spec();
    FAIL("no conv2");
    return Conv2dSpec{};
  };
  // torchvision's _make_layer: the first block of a dilated stage keeps the previous dilation
  CHECK(conv_spec(2, 0).dilation == std::array<int64_t, 2>{1, 1});
  CHECK(conv_spec(2, 1).dilation == std::array<int64_t, 2>{2, 2});
  CHECK(conv_spec(2, 1).padding == std::array<int64_t, 2>{2, 2});
  CHECK(conv_spec(3, 0).dilation == std::array<int64_t, 2>{2, 2});
  CHECK(conv_spec(3, 2).dilation == std::array<int64_t, 2>{4, 4});
  CHECK(conv_spec(3, 0).stride == std::array<int64_t, 2>{1, 1});
  // and the plain ResNet-101 strides instead
  ResNetParts plain = build_resnet_parts({.blocks = {3, 4, 23, 3}}, 3);
  for (auto& [n, c] : (*plain.layers[3])[0]->children())
    if (n == "conv2") CHECK(dynamic_cast<Conv2d&>(*c).spec().stride == std::array<int64_t, 2>{2, 2});
  CHECK_THROWS_CONTAINING(build_resnet_parts({.blocks = {3, 4, 6}}, 3), "expected 4 stages, got 3");
}

TEST_CASE("segmentation models: the auxiliary head's logits after a training-mode forward") {
  Generator gen(3);
  ModelOptions o;
  o.num_classes = 5;
  ModulePtr m;
  {
    ParamScope scope({}, &gen);
    m = build_deeplabv3_resnet101(o, true);
  }
  Tensor x = randn({2, 3, 32, 32}, {}, &gen);
  m->train();
  Tensor out = (*m)(x);
  CHECK(out.shape() == Shape{2, 5, 32, 32});
  Tensor aux = segmentation_aux_logits(*m);
  REQUIRE(aux.defined());
  CHECK(aux.shape() == Shape{2, 5, 32, 32});
  // torchvision's recipe: loss = out loss + 0.5 aux loss; the aux head learns only from the second
  Tensor loss = mean(square(out)) + 0.5 * mean(square(aux));
  loss.backward();
  for (auto& [name, p] : m->named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
  }
  m->eval();
  {
    NoGradGuard ng;
    (*m)(x);
  }
  CHECK(!segmentation_aux_logits(*m).defined());
  ParamScope meta({.device = Device::meta()});
  CHECK(!segmentation_aux_logits(*build_model("vgg11", o)).defined());  // not a segmentation model
}
