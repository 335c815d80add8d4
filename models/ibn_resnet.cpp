// IBN-Net (Pan, Luo, Shi & Tang, "Two at Once: Enhancing Learning and
// Generalization Capacities via IBN-Net", ECCV 2018), resnet50_ibn_a as the
// authors' XingangPan/IBN-Net (ibnnet/resnet_ibn.py) defines it: torchvision's
// ResNet-50 (v1.5, stride on the 3x3 convolution) where the first norm of
// every bottleneck of layer1-3 is an IBN layer: instance norm (affine, no
// running statistics) on the first half of the channels, batch norm on the
// rest, concatenated. layer4 keeps batch norm. Same state keys as the authors'
// (layer1.0.bn1.IN.weight, layer1.0.bn1.BN.running_mean, ...) and their init
// (He normal fan_out convolutions, norms at 1 and 0). 25,557,032 parameters at
// 1000 classes, as ResNet-50: IN's affine pair counts what BN's would.
//
// One deviation: the authors pool with AvgPool2d(7), which is global at 224;
// this pools globally at every size (torchvision's AdaptiveAvgPool2d(1)), so
// the same model runs on 32x32 digits.
#include <optional>

#include "layers/instance_norm.h"
#include "layers/layers.h"
#include "models/registry.h"

namespace neurn {

namespace {

// IN on channels [0, half), BN on [half, planes): children "IN" and "BN".
class IBN : public Module {
 public:
  explicit IBN(int64_t planes, double ratio = 0.5) : half_(static_cast<int64_t>(static_cast<double>(planes) * ratio)) {
    NEURN_CHECK(half_ > 0 && half_ < planes, "IBN: ratio ", ratio, " of ", planes, " channels leaves an empty half");
    in_ = register_module("IN", std::make_shared<InstanceNorm2d>(half_, InstanceNormSpec{.affine = true}));
    bn_ = register_module("BN", std::make_shared<BatchNorm2d>(planes - half_));
  }
  Tensor forward(const Tensor& x) override {  // (N, planes, H, W)
    auto parts = split(x, {half_, x.size(1) - half_}, 1);
    return channel_concat({(*in_)(parts[0]), (*bn_)(parts[1])});
  }

 private:
  int64_t half_;
  ModulePtr in_, bn_;
};

class BottleneckIBN : public Module {
 public:
  static constexpr int64_t kExpansion = 4;

  BottleneckIBN(int64_t in, int64_t planes, int64_t stride, bool ibn) {
    int64_t out = planes * kExpansion;
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, planes, 1, 1, 0, 1, 1, false));
    bn1_ = ibn ? register_module("bn1", std::static_pointer_cast<Module>(std::make_shared<IBN>(planes)))
               : register_module("bn1", std::static_pointer_cast<Module>(std::make_shared<BatchNorm2d>(planes)));
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

class ResNetIBN : public Module {
 public:
  ResNetIBN(const std::vector<int64_t>& blocks, const ModelOptions& o) {
    std::optional<DeferInit> defer(std::in_place);  // the convolutions are re-initialised below
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(o.in_channels, 64, 7, 2, 3, 1, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(64));
    relu_ = register_module("relu", std::make_shared<ReLU>());
    maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
    int64_t in = 64;
    const int64_t planes[4] = {64, 128, 256, 512};
    for (size_t i = 0; i < blocks.size(); ++i) {
      auto layer = register_module("layer" + std::to_string(i + 1), std::make_shared<Sequential>());
      const bool ibn = planes[i] != 512;  // IBN-a: layer1-3
      for (int64_t b = 0; b < blocks[i]; ++b) {
        layer->push_back(std::make_shared<BottleneckIBN>(in, planes[i], b == 0 && i > 0 ? 2 : 1, ibn));
        in = planes[i] * BottleneckIBN::kExpansion;
      }
      layers_.push_back(layer);
    }
    avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
    flatten_ = register_module("flatten", std::make_shared<Flatten>());
    if (o.dropout && *o.dropout > 0) dropout_ = register_module("dropout", std::make_shared<Dropout>(*o.dropout));
    defer.reset();
    fc_ = register_module("fc", std::make_shared<Linear>(in, o.num_classes));  // torch's default init, as the authors
    // The authors' init: N(0, sqrt(2 / (k k C_out))) for every convolution.
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

ModulePtr build_resnet50_ibn_a(const ModelOptions& o) { return std::make_shared<ResNetIBN>(std::vector<int64_t>{3, 4, 6, 3}, o); }

}  // namespace

NEURN_REGISTER_MODEL(resnet50_ibn_a,
                     (ModelInfo{.name = "resnet50_ibn_a",
                                .family = "IBN-Net",
                                .reference = "Pan et al. 2018 (ECCV); XingangPan/IBN-Net resnet50_ibn_a",
                                .description = "ResNet-50 with IBN-a: half instance norm, half batch norm in the first "
                                               "norm of each bottleneck of layer1-3"}),
                     build_resnet50_ibn_a);

}  // namespace neurn
