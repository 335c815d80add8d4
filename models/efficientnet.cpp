// EfficientNet (Tan & Le, "EfficientNet: Rethinking Model Scaling for
// Convolutional Neural Networks", 2019), identical to torchvision's
// models.efficientnet_b0: modules, state keys (features.0.0.weight,
// features.2.0.block.1.0.weight, features.2.0.block.2.fc1.bias,
// classifier.1.weight, ...), stochastic depth schedule and init.
// 5,288,548 parameters at 1000 classes.
//
// One definition for the family: B1-B7 are B0's stages with channels times a
// width coefficient (rounded to multiples of 8) and repeats times a depth
// coefficient (rounded up), trained at a larger resolution (EfficientNetScale
// in models/backbones.h), identical to torchvision's efficientnet_b1..b7
// (B5-B7 with BN eps 1e-3, momentum 0.01). Trainable parameters at 1000
// classes (torchvision 0.14's models, counted there): B0 5,288,548, B1
// 7,794,184, B2 9,109,994, B3 12,233,232, B4 19,341,616, B5 30,389,784, B6
// 43,040,704, B7 66,347,960. Keras's EfficientNetB0-B7 are the same networks:
// their model.count_params() (B0 5,330,571 ... B7 66,658,687) is our total
// with the BN moving statistics plus the 7 values of Keras's input
// Normalization layer (mean and variance of 3 channels, and a count), which
// neurn does not have (the trainer normalizes the input).
#include <cmath>

#include "layers/layers.h"
#include "layers/stochastic_depth.h"
#include "models/backbones.h"

namespace neurn {

namespace {

// torchvision's _make_divisible (as in mobilenet_v2.cpp): the nearest
// multiple of 8, never more than 10% below v.
int64_t make_divisible(double v, int64_t divisor = 8) {
  int64_t n = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(n) < 0.9 * v) n += divisor;
  return n;
}

// torchvision's Conv2dNormActivation: "0" conv (no bias), "1" BN, "2" SiLU
// (left out for the linear projection).
std::shared_ptr<Sequential> conv_bn(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                                    bool silu, const EfficientNetScale& scale) {
  auto s = std::make_shared<Sequential>();
  s->emplace<Conv2d>(in, out, kernel, stride, (kernel - 1) / 2, 1, groups, false);
  s->emplace<BatchNorm2d>(out, scale.bn_eps, scale.bn_momentum);
  if (silu) s->emplace<SiLU>();
  return s;
}

// One stage of B0: expansion ratio, kernel, stride of its first block,
// input and output channels, blocks.
struct MBConvStage {
  int64_t expand, kernel, stride, in, out, layers;
};
const MBConvStage kB0Stages[7] = {{1, 3, 1, 32, 16, 1},   {6, 3, 2, 16, 24, 2},   {6, 5, 2, 24, 40, 2},
                                  {6, 3, 2, 40, 80, 3},   {6, 5, 1, 80, 112, 3},  {6, 5, 2, 112, 192, 4},
                                  {6, 3, 1, 192, 320, 1}};

// Mobile inverted bottleneck with squeeze-and-excitation: 1x1 expansion
// (unless the ratio is 1), kxk depthwise, SE squeezing to a quarter of the
// block's input channels, linear 1x1 projection; the residual branch goes
// through stochastic depth when the shortcut exists. Children "block" and
// "stochastic_depth", as torchvision's MBConv.
class MBConv : public Module {
 public:
  MBConv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t expand, double sd_prob,
         const EfficientNetScale& scale)
      : use_residual_(stride == 1 && in == out) {
    int64_t hidden = make_divisible(static_cast<double>(in * expand));
    block_ = register_module("block", std::make_shared<Sequential>());
    if (hidden != in) block_->push_back(conv_bn(in, hidden, 1, 1, 1, true, scale));
    block_->push_back(conv_bn(hidden, hidden, kernel, stride, hidden, true, scale));  // depthwise
    block_->push_back(std::make_shared<SqueezeExcite>(hidden, std::max<int64_t>(1, in / 4), std::make_shared<SiLU>()));
    block_->push_back(conv_bn(hidden, out, 1, 1, 1, false, scale));
    sd_ = register_module("stochastic_depth", std::make_shared<StochasticDepth>(sd_prob));
  }
  Tensor forward(const Tensor& x) override {  // (N, in, H, W) -> (N, out, H / stride, W / stride)
    Tensor y = (*block_)(x);
    return use_residual_ ? residual_add((*sd_)(y), x) : y;
  }

 private:
  bool use_residual_;
  std::shared_ptr<Sequential> block_;
  ModulePtr sd_;
};

}  // namespace

ModulePtr build_efficientnet(const EfficientNetScale& scale, const ModelOptions& o) {
  NEURN_CHECK(scale.width > 0 && scale.depth > 0, "efficientnet: width and depth coefficients must be positive, got ",
              scale.width, " and ", scale.depth);
  NEURN_CHECK(scale.stochastic_depth >= 0 && scale.stochastic_depth <= 1,
              "efficientnet: stochastic_depth must be in [0, 1], got ", scale.stochastic_depth);
  auto channels = [&](int64_t c) { return make_divisible(static_cast<double>(c) * scale.width); };
  auto repeats = [&](int64_t n) { return static_cast<int64_t>(std::ceil(static_cast<double>(n) * scale.depth)); };
  DeferInit defer;  // every weight is re-initialised below
  auto model = std::make_shared<Sequential>();
  auto features = model->add("features", std::make_shared<Sequential>());
  features->push_back(conv_bn(o.in_channels, channels(kB0Stages[0].in), 3, 2, 1, true, scale));
  int64_t total_blocks = 0;
  for (auto& st : kB0Stages) total_blocks += repeats(st.layers);
  // torchvision's schedule: block b (counted from 0 over the whole network)
  // drops with probability stochastic_depth * b / total_blocks
  int64_t b = 0;
  int64_t c = channels(kB0Stages[0].in);
  for (auto& st : kB0Stages) {
    auto stage = features->push_back(std::make_shared<Sequential>());
    int64_t out = channels(st.out);
    for (int64_t i = 0; i < repeats(st.layers); ++i, ++b) {
      double sd = scale.stochastic_depth * static_cast<double>(b) / static_cast<double>(total_blocks);
      stage->push_back(std::make_shared<MBConv>(c, out, st.kernel, i == 0 ? st.stride : 1, st.expand, sd, scale));
      c = out;
    }
  }
  const int64_t last = 4 * c;  // 1280 for B0
  features->push_back(conv_bn(c, last, 1, 1, 1, true, scale));
  model->add("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  model->add("flatten", std::make_shared<Flatten>());
  auto classifier = model->add("classifier", std::make_shared<Sequential>());
  classifier->emplace<Dropout>(o.dropout.value_or(scale.dropout));
  auto fc = classifier->emplace<Linear>(last, o.num_classes);
  // torchvision's init: He normal (fan_out) convolutions with zero bias
  // (the SE convolutions have one), BN 1 and 0, the classifier
  // U(-1/sqrt(classes), 1/sqrt(classes)) with zero bias
  model->apply([](const std::string&, Module& m) {
    if (dynamic_cast<Conv2d*>(&m)) {
      kaiming_normal_(m.param("weight"), FanMode::FanOut);
      if (m.has_param("bias")) constant_(m.param("bias"), 0.0);
    }
  });
  double r = 1.0 / std::sqrt(static_cast<double>(o.num_classes));
  uniform_(fc->param("weight"), -r, r);
  constant_(fc->param("bias"), 0.0);
  return model;
}

ModulePtr build_efficientnet_b0(const ModelOptions& o) { return build_efficientnet({}, o); }

namespace {

// Tan & Le 2019 / torchvision: width, depth, dropout; B5-B7 with BN eps 1e-3, momentum 0.01.
EfficientNetScale scale_of(double width, double depth, double dropout, bool tf_bn = false) {
  EfficientNetScale s;
  s.width = width;
  s.depth = depth;
  s.dropout = dropout;
  if (tf_bn) {
    s.bn_eps = 1e-3;
    s.bn_momentum = 0.01;
  }
  return s;
}
ModulePtr build_b1(const ModelOptions& o) { return build_efficientnet(scale_of(1.0, 1.1, 0.2), o); }
ModulePtr build_b2(const ModelOptions& o) { return build_efficientnet(scale_of(1.1, 1.2, 0.3), o); }
ModulePtr build_b3(const ModelOptions& o) { return build_efficientnet(scale_of(1.2, 1.4, 0.3), o); }
ModulePtr build_b4(const ModelOptions& o) { return build_efficientnet(scale_of(1.4, 1.8, 0.4), o); }
ModulePtr build_b5(const ModelOptions& o) { return build_efficientnet(scale_of(1.6, 2.2, 0.4, true), o); }
ModulePtr build_b6(const ModelOptions& o) { return build_efficientnet(scale_of(1.8, 2.6, 0.5, true), o); }
ModulePtr build_b7(const ModelOptions& o) { return build_efficientnet(scale_of(2.0, 3.1, 0.5, true), o); }

ModelInfo efficientnet_info(int b, int64_t resolution, const char* coefficients) {
  std::string n = std::to_string(b);
  return ModelInfo{.name = "efficientnet_b" + n,
                   .family = "EfficientNet",
                   .reference = "Tan & Le 2019; torchvision models.efficientnet_b" + n + " (Keras EfficientNetB" + n +
                                ": the same network)",
                   .description = std::string("EfficientNet-B0 scaled by ") + coefficients + ", " +
                                  std::to_string(resolution) + "x" + std::to_string(resolution) + " design",
                   .aliases = {"efficientnetb" + n},
                   .reference_input_size = resolution};
}

}  // namespace

NEURN_REGISTER_MODEL(efficientnet_b0,
                     (ModelInfo{.name = "efficientnet_b0",
                                .family = "EfficientNet",
                                .reference = "Tan & Le 2019; torchvision models.efficientnet_b0 (Keras EfficientNetB0: "
                                             "the same network)",
                                .description = "MBConv with squeeze-and-excitation and SiLU, stochastic depth 0.2",
                                .aliases = {"efficientnetb0"}}),
                     build_efficientnet_b0);
NEURN_REGISTER_MODEL(efficientnet_b1, efficientnet_info(1, 240, "width 1.0, depth 1.1"), build_b1);
NEURN_REGISTER_MODEL(efficientnet_b2, efficientnet_info(2, 260, "width 1.1, depth 1.2"), build_b2);
NEURN_REGISTER_MODEL(efficientnet_b3, efficientnet_info(3, 300, "width 1.2, depth 1.4"), build_b3);
NEURN_REGISTER_MODEL(efficientnet_b4, efficientnet_info(4, 380, "width 1.4, depth 1.8"), build_b4);
NEURN_REGISTER_MODEL(efficientnet_b5, efficientnet_info(5, 456, "width 1.6, depth 2.2"), build_b5);
NEURN_REGISTER_MODEL(efficientnet_b6, efficientnet_info(6, 528, "width 1.8, depth 2.6"), build_b6);
NEURN_REGISTER_MODEL(efficientnet_b7, efficientnet_info(7, 600, "width 2.0, depth 3.1"), build_b7);

}  // namespace neurn
