// ResNet (He et al., "Deep Residual Learning for Image Recognition", 2016),
// identical to torchvision's models.resnet50 ("v1.5": the stride of a
// downsampling bottleneck sits on its 3x3 convolution): modules, state keys
// (conv1.weight, layer1.0.downsample.0.weight, fc.bias, ...) and init.
// 25,557,032 parameters at 1000 classes.
#include <optional>

#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;

  Bottleneck(int64_t in, int64_t planes, int64_t stride) {
    int64_t out = planes * kExpansion;
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, planes, 1, 1, 0, 1, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(planes, planes, 3, stride, 1, 1, 1, false));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
    conv3_ = register_module("conv3", std::make_shared<Conv2d>(planes, out, 1, 1, 0, 1, 1, false));
    bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(out));
    relu_ = register_module("relu", std::make_shared<ReLU>());
    if (stride != 1 || in != out) {
      downsample_ = register_module("downsample", std::make_shared<Sequential>());
      downsample_->emplace<Conv2d>(in, out, 1, stride, 0, 1, 1, false);
      downsample_->emplace<BatchNorm2d>(out);
    }
  }

  Tensor forward(const Tensor& x) override {
    Tensor y = (*relu_)((*bn1_)((*conv1_)(x)));
    y = (*relu_)((*bn2_)((*conv2_)(y)));
    y = (*bn3_)((*conv3_)(y));
    Tensor identity = downsample_ ? (*downsample_)(x) : x;
    return (*relu_)(residual_add(y, identity));
  }

 private:
  ModulePtr conv1_, bn1_, conv2_, bn2_, conv3_, bn3_, relu_;
  std::shared_ptr<Sequential> downsample_;
};

class ResNet : public Module {
 public:
  ResNet(const std::vector<int64_t>& blocks, const ModelOptions& o) {
    std::optional<DeferInit> defer(std::in_place);  // the convolutions are re-initialised below
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(o.in_channels, 64, 7, 2, 3, 1, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(64));
    relu_ = register_module("relu", std::make_shared<ReLU>());
    maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
    int64_t in = 64;
    const int64_t planes[4] = {64, 128, 256, 512};
    for (size_t i = 0; i < blocks.size(); ++i) {
      auto layer = register_module("layer" + std::to_string(i + 1), std::make_shared<Sequential>());
      for (int64_t b = 0; b < blocks[i]; ++b) {
        layer->push_back(std::make_shared<Bottleneck>(in, planes[i], b == 0 && i > 0 ? 2 : 1));
        in = planes[i] * Bottleneck::kExpansion;
      }
      layers_.push_back(layer);
    }
    avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
    flatten_ = register_module("flatten", std::make_shared<Flatten>());
    if (o.dropout && *o.dropout > 0) dropout_ = register_module("dropout", std::make_shared<Dropout>(*o.dropout));
    defer.reset();
    fc_ = register_module("fc", std::make_shared<Linear>(in, o.num_classes));
    // torchvision's init: He normal (fan_out) convolutions, BN 1 and 0
    apply([](const std::string&, Module& m) {
      if (m.type() == "Conv") kaiming_normal_(m.param("weight"), FanMode::FanOut);
    });
  }

  Tensor forward(const Tensor& x) override {
    Tensor y = (*maxpool_)((*relu_)((*bn1_)((*conv1_)(x))));
    for (auto& layer : layers_) y = (*layer)(y);
    y = (*flatten_)((*avgpool_)(y));
    if (dropout_) y = (*dropout_)(y);
    return (*fc_)(y);
  }

 private:
  ModulePtr conv1_, bn1_, relu_, maxpool_, avgpool_, flatten_, dropout_, fc_;
  std::vector<ModulePtr> layers_;
};

}  // namespace

ModulePtr build_resnet_bottleneck(const std::vector<int64_t>& blocks, const ModelOptions& o) {
  NEURN_CHECK(blocks.size() == 4, "build_resnet_bottleneck: expected 4 stages, got ", blocks.size());
  return std::make_shared<ResNet>(blocks, o);
}

ModulePtr build_resnet50(const ModelOptions& o) { return build_resnet_bottleneck({3, 4, 6, 3}, o); }

NEURN_REGISTER_MODEL(resnet50, (ModelInfo{.name = "resnet50",
                                   .family = "ResNet",
                                   .reference = "He et al. 2016; torchvision models.resnet50 (v1.5)",
                                   .description = "bottleneck residual network, 3-4-6-3 blocks"}),
                    build_resnet50);

}  // namespace neurn
