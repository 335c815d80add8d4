// The Keras Applications families of the registry on the meta device: every
// count pinned against Keras's model.count_params() (the "Total params" of
// model.summary(): weights plus the batch norms' moving mean and variance;
// ModelTrace::total_params) at 1000 classes, as issue 20 lists them, and the
// trainable counts (ModelTrace::params) where a reference gives them.
#include <doctest/doctest.h>

#include <set>

#include "gradcheck.h"
#include "layers/layers.h"
#include "models/keras_init.h"
#include "models/registry.h"

using namespace neurn;
using neurn::testing::gradcheck;
using neurn::testing::leaf;

namespace {

ModelOptions imagenet(int64_t size) {
  ModelOptions o;
  o.num_classes = 1000;
  o.input_size = size;
  return o;
}

// Batch-norm channels of a traced model: (total - trainable) / 2 when the
// only floating buffers are the moving mean and variance.
int64_t bn_channels(const ModelTrace& t) { return (t.total_params - t.params) / 2; }

}  // namespace

TEST_CASE("Keras ResNet v1 (resnet50/101/152_keras): Keras's totals") {
  // totals: issue 20 (ResNet50's from Keras's summary); trainable: Keras's summaries
  struct Case {
    const char* name;
    int64_t total, trainable;
  } cases[] = {
      {"resnet50_keras", 25'636'712, 25'583'592},
      {"resnet101_keras", 44'707'176, 44'601'832},
      {"resnet152_keras", 60'419'944, 60'268'520},
  };
  for (auto& c : cases) {
    INFO(c.name);
    ModelTrace t = trace_model(c.name, imagenet(224));
    CHECK(t.total_params == c.total);
    CHECK(t.params == c.trainable);
    CHECK(t.output_shape == Shape{1, 1000});
  }
  // Keras's layout differs from torchvision's: biases on every convolution
  // (torchvision: none), so the same depth has more trainable parameters.
  // ResNet50: torchvision 25,557,032; Keras adds the conv biases (one per output
  // channel of each of the 53 convolutions: 26,560 values).
  CHECK(trace_model("resnet50_keras", imagenet(224)).params == 25'557'032 + 26'560);
  CHECK(canonical_model_name("resnet101_v1_keras") == "resnet101_keras");
}

TEST_CASE("Keras ResNetV2 (resnet101v2, resnet152v2): one builder, Keras's totals") {
  CHECK(trace_model("resnet50v2", imagenet(224)).total_params == 25'613'800);
  CHECK(trace_model("resnet101v2", imagenet(224)).total_params == 44'675'560);
  CHECK(trace_model("resnet152v2", imagenet(224)).total_params == 60'380'648);
  // Keras's "Trainable params"
  CHECK(trace_model("resnet101v2", imagenet(224)).params == 44'577'896);
  CHECK(trace_model("resnet152v2", imagenet(224)).params == 60'236'904);
  CHECK(canonical_model_name("resnet152_v2") == "resnet152v2");
}

TEST_CASE("Keras InceptionV3 (inceptionv3) and torchvision's inception_v3 are distinct entries") {
  ModelTrace k = trace_model("inceptionv3", imagenet(299));
  CHECK(k.total_params == 23'851'784);
  // 94 batch norms without scale: trainable = total - 2 x their channels
  CHECK(k.params == k.total_params - 2 * bn_channels(k));
  CHECK(k.params == 23'817'352);  // Keras's "Trainable params"
  CHECK(k.output_shape == Shape{1, 1000});
  std::map<std::string, int> tokens;
  for (auto& tok : k.tokens) ++tokens[tok];
  CHECK(tokens["Conv"] == 94);
  CHECK(tokens["BatchNorm"] == 94);
  CHECK(tokens["ReLU"] == 94);
  CHECK(tokens["Concat"] == 11 + 4);  // mixed0-10 and mixed9_0/1's two split branches each
  // the torchvision model keeps its own name and count
  CHECK(canonical_model_name("inceptionv3") == "inceptionv3");
  CHECK(canonical_model_name("inception_v3") == "inception_v3");
  CHECK(trace_model("inception_v3", imagenet(299)).params == 23'834'568);
  CHECK(model_info("inceptionv3").reference_input_size == 299);
  CHECK(model_info("inceptionv3").min_input_size == 75);
  CHECK_THROWS_CONTAINING(trace_model("inceptionv3", imagenet(74)), "inceptionv3");
  // Keras's layer names, numbered as a fresh session numbers them
  ModulePtr m;
  {
    ParamScope meta({.device = Device::meta()});
    m = build_model("inceptionv3", imagenet(299));
  }
  std::set<std::string> keys;
  for (auto& [n, t] : m->state_dict()) keys.insert(n);
  for (const char* key : {"conv2d.weight", "batch_normalization.bias", "batch_normalization.running_var",
                          "conv2d_93.weight", "batch_normalization_93.running_mean", "predictions.weight"})
    CHECK_MESSAGE(keys.count(key) == 1, key);
  CHECK(keys.count("conv2d_94.weight") == 0);
  CHECK(keys.count("batch_normalization.weight") == 0);  // scale=False: no gamma
}

TEST_CASE("Keras InceptionResNetV2 (inceptionresnetv2)") {
  ModelTrace t = trace_model("inceptionresnetv2", imagenet(299));
  CHECK(t.total_params == 55'873'736);
  CHECK(t.params == 55'813'192);  // Keras's "Trainable params"
  CHECK(t.output_shape == Shape{1, 1000});
  std::map<std::string, int> tokens;
  for (auto& tok : t.tokens) ++tokens[tok];
  // 10 + 20 + 10 residual blocks; conv2d_bn units: stem 5, mixed_5b 7,
  // block35 6 each, mixed_6a 4, block17 4, mixed_7a 7, block8 4, conv_7b 1
  CHECK(tokens["Add"] == 40);
  const int units = 5 + 7 + 10 * 6 + 4 + 20 * 4 + 7 + 10 * 4 + 1;
  CHECK(tokens["BatchNorm"] == units);
  CHECK(tokens["Conv"] == units + 40);  // and the 40 biased projections without BN
  CHECK(tokens["ReLU"] == units + 39);  // block8_10 has no activation
  CHECK(model_info("inceptionresnetv2").reference_input_size == 299);
  CHECK(canonical_model_name("inception_resnet_v2") == "inceptionresnetv2");
  ModulePtr m;
  {
    ParamScope meta({.device = Device::meta()});
    m = build_model("inceptionresnetv2", imagenet(299));
  }
  std::set<std::string> keys;
  for (auto& [n, t2] : m->state_dict()) keys.insert(n);
  for (const char* key : {"conv2d.weight", "block35_1_conv.bias", "block17_20_conv.weight", "block8_10_conv.bias",
                          "conv_7b.weight", "conv_7b_bn.bias", "predictions.bias"})
    CHECK_MESSAGE(keys.count(key) == 1, key);
  CHECK(keys.count("conv2d_" + std::to_string(units - 2) + ".weight") == 1);  // conv_7b is named: units - 1 auto names
  CHECK(keys.count("conv2d_" + std::to_string(units - 1) + ".weight") == 0);
}

TEST_CASE("Keras NASNetLarge (nasnetlarge): the NASNet-A builder at 6 @ 4032") {
  ModelTrace t = trace_model("nasnetlarge", imagenet(331));
  CHECK(t.total_params == 88'949'818);
  CHECK(t.params == 88'753'150);  // Keras's "Trainable params"
  CHECK(t.output_shape == Shape{1, 1000});
  CHECK(model_info("nasnetlarge").reference_input_size == 331);
  // the same builder gives NASNetMobile
  CHECK(trace_model("nasnetmobile", imagenet(224)).total_params == 5'326'716);
  // 22 cells (stem_1, stem_2, 18 normal, reduce_6, reduce_12), one Concat
  // each, and one in each factorised-reduction adjust (the cells whose p has
  // the larger map: stem_2, cell 0, cells 7 and 13)
  std::map<std::string, int> tokens;
  for (auto& tok : t.tokens) ++tokens[tok];
  CHECK(tokens["Concat"] == 22 + 4);
  // separable blocks (2 separable convs each): normal 5, reduction 5
  CHECK(tokens["SeparableConv"] == 2 * 5 * 22);
}

TEST_CASE("EfficientNet B0-B7: one definition, torchvision's trainable counts and Keras's totals") {
  // torchvision 0.14: sum(p.numel() for p in efficientnet_bN().parameters());
  // Keras: EfficientNetBN().count_params(), which also counts its input
  // Normalization layer's mean (3), variance (3) and count (1): 7 values that
  // neurn does not have (the trainer normalizes the input), so our total with
  // the BN statistics is Keras's minus 7.
  struct Case {
    int b;
    int64_t torchvision, keras, resolution;
  } cases[] = {{0, 5'288'548, 5'330'571, 224},     {1, 7'794'184, 7'856'239, 240},
               {2, 9'109'994, 9'177'569, 260},     {3, 12'233'232, 12'320'535, 300},
               {4, 19'341'616, 19'466'823, 380},   {5, 30'389'784, 30'562'527, 456},
               {6, 43'040'704, 43'265'143, 528},   {7, 66'347'960, 66'658'687, 600}};
  constexpr int64_t kKerasNormalization = 3 + 3 + 1;
  for (auto& c : cases) {
    std::string name = "efficientnet_b" + std::to_string(c.b);
    INFO(name);
    // the counts do not depend on the input size; trace at a small one
    ModelTrace t = trace_model(name, imagenet(64));
    CHECK(t.params == c.torchvision);
    CHECK(t.total_params == c.keras - kKerasNormalization);
    CHECK(model_info(name).reference_input_size == c.resolution);
    CHECK(model_info(name).family == "EfficientNet");
    CHECK(canonical_model_name("efficientnetb" + std::to_string(c.b)) == name);
  }
}

TEST_CASE("BatchNorm2dNoScale (Keras scale=False): beta only, float64 gradients, eval statistics") {
  ParamScope scope({.dtype = DType::Float64});
  BatchNorm2dNoScale bn(3);
  std::vector<std::string> names;
  for (auto& [n, t] : bn.state_dict()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"bias", "running_mean", "running_var", "num_batches_tracked"});
  CHECK(bn.type() == "BatchNorm");
  Generator g(3);
  bn.param("bias").copy_(rand({3}, {DType::Float64}, &g));
  Tensor x = leaf({2, 3, 3, 2}, 11);
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return bn(in[0]); }, {x, bn.param("bias")}));
  // training normalizes each channel to mean beta, variance 1 (no gamma)
  Tensor y = bn(x);
  std::vector<double> yv = y.to_vector<double>(), b = bn.param("bias").to_vector<double>();
  for (int c = 0; c < 3; ++c) {
    double s = 0, s2 = 0;
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 6; ++i) {
        double v = yv[static_cast<size_t>((n * 3 + c) * 6 + i)] - b[static_cast<size_t>(c)];
        s += v;
        s2 += v * v;
      }
    CHECK(s / 12 == doctest::Approx(0.0).epsilon(1e-12).scale(1));
    CHECK(s2 / 12 == doctest::Approx(1.0).epsilon(1e-2));  // eps 1e-3 in the denominator
  }
  // eval: (x - mean) / sqrt(var + eps) + beta with the running statistics
  bn.eval();
  bn.buffer("running_mean").copy_(full({3}, 0.5, {DType::Float64}));
  bn.buffer("running_var").copy_(full({3}, 4.0, {DType::Float64}));
  Tensor e = bn(x);
  double want = (x.to_vector<double>()[7] - 0.5) / std::sqrt(4.0 + 1e-3) + b[1];  // element 7: channel 1
  CHECK(e.to_vector<double>()[7] == doctest::Approx(want).epsilon(1e-12));
  CHECK_THROWS_CONTAINING(bn(leaf({2, 4, 2, 2}, 1)), "BatchNorm2dNoScale(3)");
}

TEST_CASE("Keras families: FLOPs at the reference input against the published multiply-adds (x 2, to 10%)") {
  // ModelTrace::flops counts a multiply-add as 2. Published multiply-adds:
  // NASNet-A (6 @ 4032) 23.8 G at 331 (Zoph et al. 2018, Table 2; Keras's
  // nasnet.py table); EfficientNet-B0..B7 0.39, 0.70, 1.0, 1.8, 4.2, 9.9, 19,
  // 37 G (Tan & Le 2019, Table 2, "FLOPs" there being multiply-adds) at
  // 224 ... 600.
  struct Case {
    const char* name;
    double gmacs;
  } cases[] = {{"nasnetlarge", 23.8},     {"efficientnet_b0", 0.39}, {"efficientnet_b1", 0.70},
               {"efficientnet_b2", 1.0},  {"efficientnet_b3", 1.8},  {"efficientnet_b4", 4.2},
               {"efficientnet_b5", 9.9},  {"efficientnet_b6", 19.0}, {"efficientnet_b7", 37.0}};
  for (auto& c : cases) {
    INFO(c.name);
    ModelTrace t = trace_model(c.name, imagenet(model_info(c.name).reference_input_size));
    double gmacs = static_cast<double>(t.flops) / 2e9;
    MESSAGE(std::string(c.name) << ": " << gmacs << " G multiply-adds at " << model_info(c.name).reference_input_size);
    CHECK(gmacs > c.gmacs * 0.9);
    CHECK(gmacs < c.gmacs * 1.1);
  }
}
