// MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
// Bottlenecks", 2018), identical to torchvision's models.mobilenet_v2:
// modules, state keys (features.0.0.weight, features.1.conv.0.0.weight,
// features.2.conv.3.running_var, classifier.1.bias, ...), the width
// multiplier with channels rounded to multiples of 8, and init.
// 3,504,872 parameters at width 1 and 1000 classes.
#include <algorithm>

#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

// torchvision's _make_divisible: nearest multiple of `divisor`, at least
// `divisor`, never more than 10% below v.
int64_t make_divisible(double v, int64_t divisor = 8) {
  int64_t n = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(n) < 0.9 * v) n += divisor;
  return n;
}

// torchvision's Conv2dNormActivation: "0" conv (no bias), "1" BN, "2" ReLU6.
std::shared_ptr<Sequential> conv_bn_relu6(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups) {
  auto s = std::make_shared<Sequential>();
  s->emplace<Conv2d>(in, out, kernel, stride, (kernel - 1) / 2, 1, groups, false);
  s->emplace<BatchNorm2d>(out);
  s->emplace<ReLU6>();
  return s;
}

class InvertedResidual : public Module {
 public:
  InvertedResidual(int64_t in, int64_t out, int64_t stride, int64_t expand_ratio)
      : use_residual_(stride == 1 && in == out) {
    int64_t hidden = in * expand_ratio;
    conv_ = register_module("conv", std::make_shared<Sequential>());
    if (expand_ratio != 1) conv_->push_back(conv_bn_relu6(in, hidden, 1, 1, 1));
    conv_->push_back(conv_bn_relu6(hidden, hidden, 3, stride, hidden));  // depthwise
    conv_->emplace<Conv2d>(hidden, out, 1, 1, 0, 1, 1, false);           // linear bottleneck
    conv_->emplace<BatchNorm2d>(out);
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = (*conv_)(x);
    return use_residual_ ? residual_add(x, y) : y;
  }

 private:
  bool use_residual_;
  std::shared_ptr<Sequential> conv_;
};

}  // namespace

ModulePtr build_mobilenet_v2(const ModelOptions& o) {
  DeferInit defer;  // every weight is re-initialised below
  auto model = std::make_shared<Sequential>();
  auto features = model->add("features", std::make_shared<Sequential>());
  int64_t c = make_divisible(32 * o.width);
  int64_t last = make_divisible(1280 * std::max(1.0, o.width));
  features->push_back(conv_bn_relu6(o.in_channels, c, 3, 2, 1));
  // t (expansion), c (channels), n (repeats), s (stride of the first)
  const int64_t settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  for (auto& st : settings) {
    int64_t out = make_divisible(static_cast<double>(st[1]) * o.width);
    for (int64_t i = 0; i < st[2]; ++i) {
      features->push_back(std::make_shared<InvertedResidual>(c, out, i == 0 ? st[3] : 1, st[0]));
      c = out;
    }
  }
  features->push_back(conv_bn_relu6(c, last, 1, 1, 1));
  model->add("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  model->add("flatten", std::make_shared<Flatten>());
  auto classifier = model->add("classifier", std::make_shared<Sequential>());
  classifier->emplace<Dropout>(o.dropout.value_or(0.2));
  auto fc = classifier->emplace<Linear>(last, o.num_classes);
  // torchvision's init: He normal (fan_out) convolutions with zero bias, BN 1
  // and 0, classifier N(0, 0.01) with zero bias
  model->apply([](const std::string&, Module& m) {
    if (m.type() == "Conv" || m.type() == "DepthwiseConv") kaiming_normal_(m.param("weight"), FanMode::FanOut);
  });
  normal_(fc->param("weight"), 0.0, 0.01);
  constant_(fc->param("bias"), 0.0);
  return model;
}

NEURN_REGISTER_MODEL(mobilenet_v2, (ModelInfo{.name = "mobilenet_v2",
                                   .family = "MobileNet",
                                   .reference = "Sandler et al. 2018; torchvision models.mobilenet_v2 (width_mult = width)",
                                   .description = "inverted residuals with linear bottlenecks",
                                   .has_width = true,
                                   .aliases = {"mobilenetv2"}}),
                    build_mobilenet_v2);

}  // namespace neurn
