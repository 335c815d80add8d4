// ResNeSt-50 (Zhang et al., "ResNeSt: Split-Attention Networks", 2020) as the
// authors' resnest50 (zhanghang1989/ResNeSt, resnest/torch/models/resnest.py
// and resnet.py): ResNet-50's 3-4-6-3 bottlenecks with the 3x3 convolution
// replaced by split attention (radix 2, cardinality 1, bottleneck width 64),
// a deep stem (three 3x3 convolutions, 32-32-64), average-pool downsampling
// in the shortcuts (avg_down) and in the block (avd: a 3x3 stride-2 average
// pooling after the split attention, instead of a strided convolution).
// State keys are the authors' (conv1.0.weight, layer1.0.conv2.fc1.bias,
// layer2.0.avd_layer, layer2.0.downsample.1.weight, fc.weight, ...).
// 27,483,240 parameters at 1000 classes.
#include <optional>

#include "layers/layers.h"
#include "layers/split_attention.h"
#include "models/backbones.h"

namespace neurn {

namespace {

constexpr int64_t kExpansion = 4;

class ResNeStBottleneck : public Module {
 public:
  // is_first: the authors' flag that puts avd on a stride-1 first block; their
  // resnest50 passes is_first=False for layer1, so only strided blocks have it.
  ResNeStBottleneck(int64_t in, int64_t planes, int64_t stride, bool downsample) {
    const int64_t width = planes;  // int(planes * bottleneck_width / 64) * cardinality
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, width, 1, 1, 0, 1, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(width));
    const bool avd = stride > 1;
    conv2_ = register_module("conv2", std::make_shared<SplitAttentionConv2d>(SplitAttentionSpec{
                                          .in_channels = width, .channels = width, .kernel = 3, .stride = 1,
                                          .padding = 1, .cardinality = 1, .radix = 2}));
    if (avd) avd_ = register_module("avd_layer", std::make_shared<AvgPool2d>(3, stride, 1));
    conv3_ = register_module("conv3", std::make_shared<Conv2d>(width, planes * kExpansion, 1, 1, 0, 1, 1, false));
    bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(planes * kExpansion));
    relu_ = register_module("relu", std::make_shared<ReLU>());
    if (downsample) {
      // avg_down: the pooling carries the stride (kernel 1, stride 1 in layer1:
      // the authors keep the layer there too), then a 1x1 convolution.
      downsample_ = register_module("downsample", std::make_shared<Sequential>());
      downsample_->emplace<AvgPool2d>(stride, stride, 0, true, false);
      downsample_->emplace<Conv2d>(in, planes * kExpansion, 1, 1, 0, 1, 1, false);
      downsample_->emplace<BatchNorm2d>(planes * kExpansion);
    }
  }

  Tensor forward(const Tensor& x) override {
    Tensor y = (*relu_)((*bn1_)((*conv1_)(x)));
    y = (*conv2_)(y);  // split attention: BN and ReLU inside
    if (avd_) y = (*avd_)(y);
    y = (*bn3_)((*conv3_)(y));
    Tensor identity = downsample_ ? (*downsample_)(x) : x;
    return (*relu_)(residual_add(y, identity));
  }

 private:
  ModulePtr conv1_, bn1_, conv2_, avd_, conv3_, bn3_, relu_;
  std::shared_ptr<Sequential> downsample_;
};

class ResNeSt : public Module {
 public:
  ResNeSt(const std::vector<int64_t>& blocks, const ModelOptions& o) {
    std::optional<DeferInit> defer(std::in_place);  // the convolutions are re-initialised below
    const int64_t stem = 32;
    auto conv1 = register_module("conv1", std::make_shared<Sequential>());
    conv1->emplace<Conv2d>(o.in_channels, stem, 3, 2, 1, 1, 1, false);
    conv1->emplace<BatchNorm2d>(stem);
    conv1->emplace<ReLU>();
    conv1->emplace<Conv2d>(stem, stem, 3, 1, 1, 1, 1, false);
    conv1->emplace<BatchNorm2d>(stem);
    conv1->emplace<ReLU>();
    conv1->emplace<Conv2d>(stem, stem * 2, 3, 1, 1, 1, 1, false);
    conv1_ = conv1;
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(stem * 2));
    relu_ = register_module("relu", std::make_shared<ReLU>());
    maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
    int64_t in = stem * 2;
    const int64_t planes[4] = {64, 128, 256, 512};
    for (size_t i = 0; i < blocks.size(); ++i) {
      auto layer = register_module("layer" + std::to_string(i + 1), std::make_shared<Sequential>());
      for (int64_t b = 0; b < blocks[i]; ++b) {
        const int64_t stride = b == 0 && i > 0 ? 2 : 1;
        const bool down = b == 0 && (stride != 1 || in != planes[i] * kExpansion);
        layer->push_back(std::make_shared<ResNeStBottleneck>(in, planes[i], stride, down));
        in = planes[i] * kExpansion;
      }
      layers_.push_back(layer);
    }
    avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
    flatten_ = register_module("flatten", std::make_shared<Flatten>());
    if (o.dropout && *o.dropout > 0) dropout_ = register_module("drop", std::make_shared<Dropout>(*o.dropout));
    defer.reset();
    fc_ = register_module("fc", std::make_shared<Linear>(in, o.num_classes));
    // The authors' init: every convolution's weight N(0, sqrt(2 / (k k out))),
    // their biases (the attention's fc1, fc2) PyTorch's default; BN 1 and 0.
    apply([](const std::string&, Module& m) {
      auto* conv = dynamic_cast<Conv2d*>(&m);
      if (!conv) return;
      if (conv->spec().bias) conv->reset_parameters();
      kaiming_normal_(m.param("weight"), FanMode::FanOut);
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

ModulePtr build_resnest50(const ModelOptions& o) { return std::make_shared<ResNeSt>(std::vector<int64_t>{3, 4, 6, 3}, o); }

}  // namespace

NEURN_REGISTER_MODEL(resnest50,
                     (ModelInfo{.name = "resnest50",
                                .family = "ResNeSt",
                                .reference = "Zhang et al. 2020 (ResNeSt); zhanghang1989/ResNeSt resnest50",
                                .description = "ResNet-50 with split-attention (radix 2) blocks, deep stem, avg_down, avd"}),
                     build_resnest50);

}  // namespace neurn
