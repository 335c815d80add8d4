// ResNet (He et al., "Deep Residual Learning for Image Recognition", 2016)
// and its widened and grouped variants, identical to torchvision's
// models.resnet50/101/152, wide_resnet50_2 (Zagoruyko & Komodakis 2016) and
// resnext50_32x4d (Xie et al. 2017): "v1.5" bottlenecks (the stride sits on
// the 3x3 convolution), modules, state keys (conv1.weight,
// layer1.0.downsample.0.weight, fc.bias, ...) and init. One builder
// (models/resnet.h) serves all of them and the dilated segmentation backbones.
#include "models/resnet.h"

#include <optional>

#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

// torchvision's Bottleneck: 1x1 (in -> width), 3x3 (width, stride, groups,
// dilation), 1x1 (width -> planes * 4), each followed by BN; ReLU after the
// first two and after the residual sum.
class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;

  Bottleneck(int64_t in, int64_t planes, int64_t stride, int64_t groups, int64_t width_per_group, int64_t dilation,
             bool downsample) {
    const int64_t width = planes * width_per_group / 64 * groups;
    const int64_t out = planes * kExpansion;
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, width, 1, 1, 0, 1, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(width));
    conv2_ = register_module("conv2",
                             std::make_shared<Conv2d>(width, width, 3, stride, dilation, dilation, groups, false));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(width));
    conv3_ = register_module("conv3", std::make_shared<Conv2d>(width, out, 1, 1, 0, 1, 1, false));
    bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(out));
    relu_ = register_module("relu", std::make_shared<ReLU>());
    if (downsample) {
      downsample_ = register_module("downsample", std::make_shared<Sequential>());
      downsample_->emplace<Conv2d>(in, out, 1, stride, 0, 1, 1, false);
      downsample_->emplace<BatchNorm2d>(out);
    }
  }

  Tensor forward(const Tensor& x) override {  // (N, in, H, W) -> (N, planes * 4, H / stride, W / stride)
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

// Every convolution under `m` redrawn as torchvision does: He normal, fan_out.
void init_convolutions(Module& m) {
  m.apply([](const std::string&, Module& c) {
    if (c.has_param("weight") && c.param("weight").dim() == 4) kaiming_normal_(c.param("weight"), FanMode::FanOut);
  });
}

class ResNet : public Module {
 public:
  ResNet(ResNetParts parts, const ModelOptions& o) {
    conv1_ = register_module("conv1", parts.conv1);
    bn1_ = register_module("bn1", parts.bn1);
    relu_ = register_module("relu", parts.relu);
    maxpool_ = register_module("maxpool", parts.maxpool);
    for (int i = 0; i < 4; ++i) layers_.push_back(register_module("layer" + std::to_string(i + 1), parts.layers[i]));
    avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
    flatten_ = register_module("flatten", std::make_shared<Flatten>());
    if (o.dropout && *o.dropout > 0) dropout_ = register_module("dropout", std::make_shared<Dropout>(*o.dropout));
    fc_ = register_module("fc", std::make_shared<Linear>(parts.channels[3], o.num_classes));
  }

  Tensor forward(const Tensor& x) override {  // (N, C, H, W) -> (N, classes)
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

ResNetParts build_resnet_parts(const ResNetSpec& spec, int64_t in_channels) {
  NEURN_CHECK(spec.blocks.size() == 4, "build_resnet: expected 4 stages, got ", spec.blocks.size());
  for (int64_t b : spec.blocks) NEURN_CHECK(b >= 1, "build_resnet: every stage needs a block, got ", b);
  NEURN_CHECK(spec.groups >= 1 && spec.width_per_group >= 1, "build_resnet: groups and width_per_group must be >= 1, got ",
              spec.groups, " and ", spec.width_per_group);
  NEURN_CHECK(in_channels >= 1, "build_resnet: in_channels must be >= 1, got ", in_channels);
  ResNetParts p;
  {
    DeferInit defer;  // the convolutions are redrawn below, BN starts at 1 and 0 anyway
    p.conv1 = std::make_shared<Conv2d>(in_channels, 64, 7, 2, 3, 1, 1, false);
    p.bn1 = std::make_shared<BatchNorm2d>(64);
    p.relu = std::make_shared<ReLU>();
    p.maxpool = std::make_shared<MaxPool2d>(3, 2, 1);
    int64_t in = 64, dilation = 1;
    const int64_t planes[4] = {64, 128, 256, 512};
    for (int i = 0; i < 4; ++i) {
      int64_t stride = i == 0 ? 1 : 2;
      const int64_t previous_dilation = dilation;
      if (i > 0 && spec.replace_stride_with_dilation[i - 1]) {  // torchvision's _make_layer
        dilation *= stride;
        stride = 1;
      }
      const int64_t out = planes[i] * Bottleneck::kExpansion;
      auto layer = std::make_shared<Sequential>();
      // the first block keeps the previous dilation, the others take the stage's
      layer->push_back(std::make_shared<Bottleneck>(in, planes[i], stride, spec.groups, spec.width_per_group,
                                                    previous_dilation, stride != 1 || in != out));
      in = out;
      for (int64_t b = 1; b < spec.blocks[i]; ++b)
        layer->push_back(
            std::make_shared<Bottleneck>(in, planes[i], 1, spec.groups, spec.width_per_group, dilation, false));
      p.layers[i] = layer;
      p.channels[i] = out;
    }
  }
  init_convolutions(*p.conv1);
  for (auto& layer : p.layers) init_convolutions(*layer);
  return p;
}

ModulePtr build_resnet(const ResNetSpec& spec, const ModelOptions& o) {
  return std::make_shared<ResNet>(build_resnet_parts(spec, o.in_channels), o);
}

ModulePtr build_resnet_bottleneck(const std::vector<int64_t>& blocks, const ModelOptions& o) {
  NEURN_CHECK(blocks.size() == 4, "build_resnet_bottleneck: expected 4 stages, got ", blocks.size());
  return build_resnet(ResNetSpec{.blocks = blocks}, o);
}

ModulePtr build_resnet50(const ModelOptions& o) { return build_resnet_bottleneck({3, 4, 6, 3}, o); }

NEURN_REGISTER_MODEL(resnet50, (ModelInfo{.name = "resnet50",
                                   .family = "ResNet",
                                   .reference = "He et al. 2016; torchvision models.resnet50 (v1.5)",
                                   .description = "bottleneck residual network, 3-4-6-3 blocks"}),
                    build_resnet50);

NEURN_REGISTER_MODEL(resnet101, (ModelInfo{.name = "resnet101",
                                    .family = "ResNet",
                                    .reference = "He et al. 2016; torchvision models.resnet101 (v1.5)",
                                    .description = "bottleneck residual network, 3-4-23-3 blocks"}),
                    [](const ModelOptions& o) { return build_resnet(ResNetSpec{.blocks = {3, 4, 23, 3}}, o); });

NEURN_REGISTER_MODEL(resnet152, (ModelInfo{.name = "resnet152",
                                    .family = "ResNet",
                                    .reference = "He et al. 2016; torchvision models.resnet152 (v1.5)",
                                    .description = "bottleneck residual network, 3-8-36-3 blocks"}),
                    [](const ModelOptions& o) { return build_resnet(ResNetSpec{.blocks = {3, 8, 36, 3}}, o); });

NEURN_REGISTER_MODEL(wide_resnet50_2,
                     (ModelInfo{.name = "wide_resnet50_2",
                                .family = "ResNet",
                                .reference = "Zagoruyko & Komodakis 2016 (bottleneck form); torchvision "
                                             "models.wide_resnet50_2",
                                .description = "ResNet-50 with twice the bottleneck width (width_per_group 128)"}),
                     [](const ModelOptions& o) { return build_resnet(ResNetSpec{.width_per_group = 128}, o); });

NEURN_REGISTER_MODEL(resnext50_32x4d,
                     (ModelInfo{.name = "resnext50_32x4d",
                                .family = "ResNet",
                                .reference = "Xie et al. 2017, ResNeXt; torchvision models.resnext50_32x4d",
                                .description = "ResNet-50 with grouped 3x3 convolutions, cardinality 32, width 4"}),
                     [](const ModelOptions& o) {
                       return build_resnet(ResNetSpec{.groups = 32, .width_per_group = 4}, o);
                     });

// The same network as resnet50; only its released weights differ (trained
// semi-supervised on YFCC100M images, then fine-tuned on ImageNet). Its own
// entry so that the registry holds the paper's 44 names.
NEURN_REGISTER_MODEL(resnet50_ssl,
                     (ModelInfo{.name = "resnet50_ssl",
                                .family = "ResNet",
                                .reference = "Yalniz et al. 2019, semi-supervised ResNet-50 "
                                             "(facebookresearch/semi-supervised-ImageNet1K-models, torch.hub "
                                             "resnet50_ssl); the architecture is torchvision's resnet50",
                                .description = "resnet50's architecture, the semi-supervised weight release"}),
                     build_resnet50);

}  // namespace neurn
