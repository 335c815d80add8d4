// Semantic segmentation as torchvision's models.segmentation builds it:
// fcn_resnet101 and deeplabv3_resnet101 (torchvision 0.14), with its state
// keys (backbone.layer4.22..., classifier.0.convs.1.0.weight,
// aux_classifier.4.bias) and init (the backbone's as resnet101, the heads
// PyTorch's defaults).
//   backbone: ResNet-101 with replace_stride_with_dilation [False, True, True]:
//     layer3 and layer4 keep 1/8 of the input's side and dilate by 2 and 4
//   classifier: FCNHead(2048) or DeepLabHead(2048) (ASPP, rates 12, 24, 36)
//   aux_classifier (optional): FCNHead(1024) on layer3
// Parameters at 21 classes: fcn_resnet101 54,314,346 (51,949,141 without the
// auxiliary head), deeplabv3_resnet101 60,996,202 (58,630,997).
#include "models/segmentation.h"

#include "layers/aspp.h"
#include "layers/layers.h"
#include "models/resnet.h"

namespace neurn {

namespace {

// The ResNet without avgpool and fc (torchvision's IntermediateLayerGetter),
// named as the classifier's modules so the keys are backbone.conv1.weight, ...
class DilatedResNetBackbone : public Module {
 public:
  explicit DilatedResNetBackbone(int64_t in_channels) {
    ResNetParts p =
        build_resnet_parts(ResNetSpec{.blocks = {3, 4, 23, 3}, .replace_stride_with_dilation = {false, true, true}},
                           in_channels);
    conv1_ = register_module("conv1", p.conv1);
    bn1_ = register_module("bn1", p.bn1);
    relu_ = register_module("relu", p.relu);
    maxpool_ = register_module("maxpool", p.maxpool);
    for (int i = 0; i < 4; ++i) layers_[i] = register_module("layer" + std::to_string(i + 1), p.layers[i]);
  }
  // (N, C, H, W) -> layer3 (N, 1024, H/8, W/8) and layer4 (N, 2048, H/8, W/8)
  std::pair<Tensor, Tensor> features(const Tensor& x) {
    Tensor y = (*maxpool_)((*relu_)((*bn1_)((*conv1_)(x))));
    y = (*layers_[1])((*layers_[0])(y));
    Tensor c3 = (*layers_[2])(y);
    return {c3, (*layers_[3])(c3)};
  }
  Tensor forward(const Tensor& x) override { return features(x).second; }

 private:
  ModulePtr conv1_, bn1_, relu_, maxpool_;
  std::array<ModulePtr, 4> layers_;
};

// torchvision's FCNHead: 3x3 conv (in -> in / 4, no bias), BN, ReLU,
// Dropout(0.1), 1x1 conv to the classes (with bias).
std::shared_ptr<Sequential> fcn_head(int64_t in, int64_t classes, double dropout) {
  auto h = std::make_shared<Sequential>();
  h->emplace<Conv2d>(in, in / 4, 3, 1, 1, 1, 1, false);
  h->emplace<BatchNorm2d>(in / 4);
  h->emplace<ReLU>();
  h->emplace<Dropout>(dropout);
  h->emplace<Conv2d>(in / 4, classes, 1);
  return h;
}

// torchvision's DeepLabHead: ASPP (rates 12, 24, 36, 256 channels), 3x3 conv
// (no bias), BN, ReLU, 1x1 conv to the classes (with bias).
std::shared_ptr<Sequential> deeplab_head(int64_t in, int64_t classes, double dropout) {
  auto h = std::make_shared<Sequential>();
  h->push_back(std::make_shared<ASPP>(in, std::vector<int64_t>{12, 24, 36}, 256, dropout));
  h->emplace<Conv2d>(256, 256, 3, 1, 1, 1, 1, false);
  h->emplace<BatchNorm2d>(256);
  h->emplace<ReLU>();
  h->emplace<Conv2d>(256, classes, 1);
  return h;
}

class SegmentationModel : public Module {
 public:
  SegmentationModel(int64_t in_channels, ModulePtr classifier, ModulePtr aux_classifier) {
    backbone_ = register_module("backbone", std::make_shared<DilatedResNetBackbone>(in_channels));
    classifier_ = register_module("classifier", std::move(classifier));
    if (aux_classifier) aux_ = register_module("aux_classifier", std::move(aux_classifier));
  }
  Tensor forward(const Tensor& x) override {  // (N, C, H, W) -> (N, classes, H, W)
    auto [c3, c4] = backbone_->features(x);
    aux_logits_ = Tensor();
    // the auxiliary head only feeds the training loss: skipped in eval
    if (aux_ && is_training()) aux_logits_ = upsample_bilinear((*aux_)(c3), x.size(2), x.size(3));
    return upsample_bilinear((*classifier_)(c4), x.size(2), x.size(3));
  }
  const Tensor& aux_logits() const { return aux_logits_; }

 private:
  std::shared_ptr<DilatedResNetBackbone> backbone_;
  ModulePtr classifier_, aux_;
  Tensor aux_logits_;
};

}  // namespace

ModulePtr build_fcn_resnet101(const ModelOptions& o, bool aux) {
  double p = o.dropout.value_or(0.1);
  return std::make_shared<SegmentationModel>(o.in_channels, fcn_head(2048, o.num_classes, p),
                                             aux ? fcn_head(1024, o.num_classes, p) : nullptr);
}

ModulePtr build_deeplabv3_resnet101(const ModelOptions& o, bool aux) {
  // ModelOptions::dropout, when set, replaces the rates of both heads (ASPP's 0.5, the auxiliary FCN head's 0.1)
  return std::make_shared<SegmentationModel>(o.in_channels, deeplab_head(2048, o.num_classes, o.dropout.value_or(0.5)),
                                             aux ? fcn_head(1024, o.num_classes, o.dropout.value_or(0.1)) : nullptr);
}

Tensor segmentation_aux_logits(const Module& model) {
  auto* m = dynamic_cast<const SegmentationModel*>(&model);
  return m ? m->aux_logits() : Tensor();
}

// The entries carry the auxiliary head, as torchvision's pretrained weights
// (COCO_WITH_VOC_LABELS_V1) do, so those weights load strictly and the
// counts are the published ones; build_*(options, false) drops it.
NEURN_REGISTER_MODEL(fcn_resnet101,
                     (ModelInfo{.name = "fcn_resnet101",
                                .family = "FCN",
                                .reference = "Long et al. 2015, FCN; torchvision models.segmentation.fcn_resnet101 "
                                             "(aux_loss=True: the auxiliary head included)",
                                .description = "dilated ResNet-101 (output stride 8), FCN head, auxiliary head on "
                                               "layer3, bilinear upsampling to the input",
                                .task = "segmentation",
                                .reference_input_size = 520,
                                .reference_classes = 21}),
                     [](const ModelOptions& o) { return build_fcn_resnet101(o, true); });

NEURN_REGISTER_MODEL(deeplabv3_resnet101,
                     (ModelInfo{.name = "deeplabv3_resnet101",
                                .family = "DeepLabV3",
                                .reference = "Chen et al. 2017, DeepLabV3; torchvision "
                                             "models.segmentation.deeplabv3_resnet101 (aux_loss=True)",
                                .description = "dilated ResNet-101 (output stride 8), ASPP head (rates 12, 24, 36), "
                                               "auxiliary FCN head on layer3, bilinear upsampling to the input",
                                .task = "segmentation",
                                .reference_input_size = 520,
                                .reference_classes = 21}),
                     [](const ModelOptions& o) { return build_deeplabv3_resnet101(o, true); });

}  // namespace neurn
