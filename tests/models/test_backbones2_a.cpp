// Backbones II, part A: efficientnet_b0, inception_v3 and shufflenet (v1)
// on the meta device (parameter counts at 1000 classes against the
// references, output shapes, layer sequences, FLOPs against the published
// figures), the auxiliary head of Inception v3, the stochastic depth layer
// (float64 gradient check, schedule) and ShuffleNet's count derived from
// its architecture. State keys: test_models_meta.cpp; forward and backward
// at the minimum input: test_models_train.cpp (every registry entry); the
// comparison with PyTorch: test_torch_reference.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "gradcheck.h"
#include "layers/layers.h"
#include "models/backbones.h"
#include "models/registry.h"

using namespace neurn;
using namespace neurn::testing;

namespace {
ModelOptions imagenet(int64_t size = 224) {
  ModelOptions o;
  o.num_classes = 1000;
  o.input_size = size;
  return o;
}
std::map<std::string, int> count_tokens(const std::vector<std::string>& tokens) {
  std::map<std::string, int> c;
  for (auto& t : tokens) ++c[t];
  return c;
}
int64_t meta_params(const std::function<ModulePtr()>& build) {
  ParamScope meta({.device = Device::meta()});
  return build()->num_parameters();
}
}  // namespace

TEST_CASE("backbones II a: parameter counts at 1000 classes equal the references") {
  // torchvision 0.14: sum(p.numel() for p in model.parameters())
  CHECK(trace_model("efficientnet_b0", imagenet()).params == 5'288'548);
  CHECK(trace_model("inception_v3", imagenet(299)).params == 23'834'568);
  CHECK(meta_params([] { return build_inception_v3(imagenet(299), true); }) == 27'161'264);
  // ShuffleNet v1 g = 3, 1.0x, classifier without bias (megvii-model/ShuffleNet-Series)
  CHECK(trace_model("shufflenet", imagenet()).params == 1'864'728);
  // B1-B7 are the same definition with torchvision's coefficients (registered as efficientnet_b1..b7:
  // tests/models/test_registry_keras.cpp pins them by name too)
  const struct {
    double width, depth;
    int64_t params;
  } scaled[] = {{1.0, 1.1, 7'794'184},  {1.1, 1.2, 9'109'994},  {1.2, 1.4, 12'233'232}, {1.4, 1.8, 19'341'616},
                {1.6, 2.2, 30'389'784}, {1.8, 2.6, 43'040'704}, {2.0, 3.1, 66'347'960}};
  for (auto& s : scaled) {
    INFO("width " << s.width << ", depth " << s.depth);
    CHECK(meta_params([&] { return build_efficientnet({.width = s.width, .depth = s.depth}, imagenet()); }) ==
          s.params);
  }
}

TEST_CASE("backbones II a: ShuffleNet's count follows from its architecture") {
  // Counted here from the design, independently of the module code: per unit
  // a 1x1 group conv in -> out/4 (not grouped in the very first unit), BN, a
  // 3x3 depthwise, BN, a 1x1 group conv out/4 -> out (out - in with stride
  // 2, the rest comes from the pooled shortcut), BN.
  auto count = [](int64_t g, std::array<int64_t, 3> ch, int64_t classes) {
    int64_t n = 3 * 24 * 9 + 2 * 24;  // first conv (no bias) and its BN
    int64_t in = 24;
    const int64_t repeats[3] = {4, 8, 4};
    for (int s = 0; s < 3; ++s)
      for (int64_t i = 0; i < repeats[s]; ++i) {
        int64_t out = ch[s], mid = out / 4, outputs = i == 0 ? out - in : out;
        int64_t g1 = s == 0 && i == 0 ? 1 : g;
        n += in / g1 * mid + 2 * mid + 9 * mid + 2 * mid + mid / g * outputs + 2 * outputs;
        in = out;
      }
    return n + in * classes;  // classifier without bias
  };
  CHECK(count(3, {240, 480, 960}, 1000) == 1'864'728);
  CHECK(trace_model("shufflenet", imagenet()).params == count(3, {240, 480, 960}, 1000));
  CHECK(trace_model("shufflenet", {}).params == count(3, {240, 480, 960}, 10));
  // the paper's other group counts (Table 1), same builder
  CHECK(meta_params([] { return build_shufflenet_v1(8, imagenet()); }) == count(8, {384, 768, 1536}, 1000));
  CHECK(meta_params([] { return build_shufflenet_v1(1, imagenet()); }) == count(1, {144, 288, 576}, 1000));
  CHECK_THROWS_CONTAINING(build_shufflenet_v1(5, {}), "shufflenet: groups must be 1, 2, 3, 4 or 8");
}

TEST_CASE("backbones II a: output shapes, layer sequences and FLOPs") {
  // The token a grouped (not depthwise) convolution records; the trace
  // vocabulary may give it its own name, so this is the one place it is asked.
  std::string group_conv;
  {
    ParamScope meta({.device = Device::meta()});
    group_conv = Conv2d(6, 6, 1, 1, 0, 1, 3, false).type();
  }
  struct Expect {
    const char* name;
    int64_t ref_size, min_size;
    std::map<std::string, int> tokens;
    // published multiply-adds x 2 at the reference size, and the tolerance
    // (the trace also counts the element-wise work: BN, activations, SE)
    double gflops, tol;
  };
  // multiply-adds: EfficientNet-B0 0.39 G (Tan & Le 2019, Table 2), Inception
  // v3 5.7 G at 299 (torchvision's model card: 5.71 GFLOPS), ShuffleNet 1x g=3
  // 140 M (Zhang et al. 2018, Table 2)
  std::vector<Expect> cases = {
      {"efficientnet_b0",
       224,
       32,
       {{"Conv", 65},
        {"DepthwiseConv", 16},
        {"BatchNorm", 49},
        {"SiLU", 49},
        {"Sigmoid", 16},
        {"Multiply", 16},
        {"Add", 9},
        {"StochasticDepth", 9}},
       0.78,
       0.1},
      {"inception_v3",
       299,
       75,
       {{"Conv", 94}, {"BatchNorm", 94}, {"ReLU", 94}, {"Concat", 15}, {"MaxPool", 4}, {"AvgPool", 9}, {"Linear", 1}},
       11.42,
       0.1},
      {"shufflenet",
       224,
       32,
       {{"DepthwiseConv", 16}, {"BatchNorm", 49}, {"ChannelShuffle", 16}, {"Add", 13}, {"Concat", 3}, {"AvgPool", 3}},
       0.28,
       0.1},
  };
  for (auto& c : cases) {
    const std::string name = c.name;
    INFO(name);
    CHECK(model_info(c.name).min_input_size == c.min_size);
    ModelTrace big = trace_model(c.name, imagenet(c.ref_size));
    CHECK(big.output_shape == Shape{1, 1000});
    ModelOptions small_opt;
    small_opt.input_size = c.min_size;
    ModelTrace small = trace_model(c.name, small_opt);
    CHECK(small.output_shape == Shape{1, 10});
    CHECK(small.tokens == big.tokens);
    auto counts = count_tokens(big.tokens);
    for (auto& [tok, n] : c.tokens) CHECK_MESSAGE(counts[tok] == n, tok << ": " << counts[tok]);
    double g = static_cast<double>(big.flops) / 1e9;
    MESSAGE(name << ": " << g << " GFLOPs at " << c.ref_size << "x" << c.ref_size << ", published " << c.gflops);
    CHECK(g > c.gflops * 0.95);
    CHECK(g < c.gflops * (1 + c.tol));
    CHECK(small.flops > 0);
    CHECK(small.flops < big.flops);
  }
  // ShuffleNet's 1x1 convolutions: grouped in every unit but the first one's entry
  auto sc = count_tokens(trace_model("shufflenet", {}).tokens);
  if (group_conv == "Conv")
    CHECK(sc["Conv"] == 33);
  else
    CHECK((sc["Conv"] == 2 && sc[group_conv] == 31));
  // Inception v3 rejects inputs below 75x75, naming the model
  ModelOptions tiny;
  tiny.input_size = 64;
  CHECK_THROWS_CONTAINING(build_model("inception_v3", tiny), "inception_v3 needs inputs of at least 75x75");
}

TEST_CASE("backbones II a: inception_v3's auxiliary head") {
  std::vector<std::string> aux_keys;
  {
    ParamScope meta({.device = Device::meta()});
    ModulePtr m = build_inception_v3(imagenet(299), true);
    for (auto& [k, t] : m->state_dict())
      if (k.rfind("AuxLogits.", 0) == 0) aux_keys.push_back(k);
    ModulePtr plain = build_inception_v3(imagenet(299), false);
    CHECK(m->state_dict().size() == plain->state_dict().size() + aux_keys.size());
  }
  // torchvision's: conv0 and conv1 (conv weight and 5 BN tensors each), fc weight and bias
  CHECK(aux_keys.size() == 14);
  CHECK(std::count(aux_keys.begin(), aux_keys.end(), "AuxLogits.conv1.conv.weight") == 1);
  CHECK(std::count(aux_keys.begin(), aux_keys.end(), "AuxLogits.fc.bias") == 1);

  // A real training step at 299x299 (the size the head needs), batch 2: the
  // auxiliary logits exist in training only, and a loss on them reaches the head.
  Generator gen(11);
  ModulePtr model;
  {
    ParamScope scope({}, &gen);
    model = build_inception_v3({.num_classes = 10, .input_size = 299}, true);
  }
  Tensor x = randn({2, 3, 299, 299}, {}, &gen);
  Tensor target = from_vector<int64_t>({3, 8}, {2});
  model->train();
  Tensor logits = (*model)(x);
  REQUIRE(logits.shape() == Shape{2, 10});
  Tensor aux = inception_v3_aux_logits(*model);
  REQUIRE(aux.defined());
  CHECK(aux.shape() == Shape{2, 10});
  Tensor loss = add(cross_entropy(logits, target), mul(cross_entropy(aux, target), 0.4));
  loss.backward();
  for (auto& [n, p] : model->named_parameters()) {
    INFO(n);
    REQUIRE(p.grad().defined());
    if (n == "AuxLogits.fc.weight" || n == "AuxLogits.conv0.conv.weight") CHECK(sum(square(p.grad())).item() > 0);
  }
  model->eval();
  {
    NoGradGuard no_grad;
    CHECK((*model)(x).shape() == Shape{2, 10});
  }
  CHECK(!inception_v3_aux_logits(*model).defined());
  CHECK_THROWS_CONTAINING(inception_v3_aux_logits(*build_model("shufflenet")), "not an Inception v3");
}

TEST_CASE("stochastic depth: per-sample mask, identity in eval, float64 gradient") {
  // each sample is all kept (times 1 / (1 - p)) or all dropped
  Generator g(5);
  StochasticDepth sd(0.5, &g);
  sd.train();
  Tensor x = ones({64, 2, 3, 3});
  auto y = sd(x).to_vector<float>();
  int kept = 0;
  for (int n = 0; n < 64; ++n) {
    float first = y[n * 18];
    CHECK((first == 0.0f || first == 2.0f));
    for (int i = 1; i < 18; ++i) CHECK(y[n * 18 + i] == first);
    kept += first != 0.0f;
  }
  CHECK(kept > 16);  // 32 expected; the generator is fixed, so this is deterministic
  CHECK(kept < 48);
  sd.eval();
  CHECK(sd(x).to_vector<float>() == x.to_vector<float>());
  StochasticDepth all(1.0, &g);
  all.train();
  CHECK(sum(all(x)).item() == 0.0);
  CHECK_THROWS_CONTAINING(StochasticDepth(1.5), "StochasticDepth: p must be in [0, 1], got 1.5");
  // the gradient is the forward's mask (same generator state on every call)
  OpFn f = [](const std::vector<Tensor>& in) {
    Generator gen(2025);
    StochasticDepth layer(0.3, &gen);
    layer.train();
    return layer(in[0]);
  };
  std::vector<Tensor> inputs{leaf({6, 2, 2, 3}, 301)};
  auto r = gradcheck(f, inputs);
  INFO(r.message);
  CHECK(r.ok);
  CHECK(accumulates(f, {leaf({6, 2, 2, 3}, 302)}));
}

TEST_CASE("efficientnet_b0: torchvision's stochastic depth schedule, off in eval") {
  ParamScope meta({.device = Device::meta()});
  ModulePtr m = build_model("efficientnet_b0", imagenet());
  std::map<std::string, double> p;
  m->apply([&](const std::string& name, Module& mod) {
    if (auto* s = dynamic_cast<StochasticDepth*>(&mod)) p[name] = s->p();
  });
  // 0.2 * block index / 16 blocks
  CHECK(p.size() == 16);
  CHECK(p["features.1.0.stochastic_depth"] == 0.0);
  CHECK(p["features.2.0.stochastic_depth"] == doctest::Approx(0.0125));
  CHECK(p["features.6.3.stochastic_depth"] == doctest::Approx(0.175));
  CHECK(p["features.7.0.stochastic_depth"] == doctest::Approx(0.1875));
}
