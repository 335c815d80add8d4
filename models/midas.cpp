// MiDaS v2.1 (Ranftl et al., "Towards Robust Monocular Depth Estimation:
// Mixing Datasets for Zero-shot Cross-dataset Transfer", TPAMI 2020/2022),
// the "large" model with the ResNeXt-101 32x8d encoder: what torch.hub's
// isl-org/MiDaS "MiDaS" entry builds (midas/midas_net.py MidasNet with
// backbone "resnext101_wsl", features 256, non_negative). Relative inverse
// depth, (N, 3, H, W) -> (N, 1, H, W); H and W multiples of 32. (The authors
// squeeze the channel away; here the map keeps it, as the registry's depth
// models do.) State keys are the authors':
//   pretrained.layer1.{0,1,4}.*  conv1, bn1 and layer1 of the ResNeXt (2: ReLU, 3: max pooling)
//   pretrained.layer2 .. layer4  the ResNeXt's stages (torchvision's keys inside)
//   scratch.layer{1..4}_rn       3x3 convolutions of the taps to 256 channels, no bias
//   scratch.refinenet{1..4}.resConfUnit{1,2}.conv{1,2}  feature fusion blocks
//   scratch.output_conv.{0,2,4}  the head (1: a x2 bilinear upsampling)
// 105,362,945 parameters (the authors' table rounds to 105 M): the encoder's
// 86,742,336 (ResNeXt-101 32x8d without its fc), the scratch convolutions
// 8,847,360, the fusion blocks 9,441,280 (refinenet4's resConfUnit1 is built
// and in the released weights, but its forward has no skip input to refine,
// so it is never used), the head 331,969.
#include "layers/layers.h"
#include "models/backbones.h"
#include "models/resnet.h"

namespace neurn {

namespace {

// Bilinear resize by an integer factor as a traced layer (the authors'
// Interpolate module, and the fusion block's functional interpolate). Token
// "Upsample", as the segmentation models' bilinear resize.
class Upsample2x : public Module {
 public:
  explicit Upsample2x(bool align_corners) : align_(align_corners) {}
  Tensor forward(const Tensor& x) override {  // (N, C, H, W) -> (N, C, 2H, 2W)
    return upsample(x, 2 * x.size(2), 2 * x.size(3), UpsampleMode::Bilinear, align_);
  }
  std::string type() const override { return "Upsample"; }

 private:
  bool align_;
};

// The authors' ResidualConvUnit: conv2(relu(conv1(relu(x)))) + x, with an
// in-place ReLU: their forward overwrites x with relu(x) before the sum, so
// the released model adds relu(x); so does this one.
class ResidualConvUnit : public Module {
 public:
  explicit ResidualConvUnit(int64_t features) {
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(features, features, 3, 1, 1, 1, 1, true));
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(features, features, 3, 1, 1, 1, 1, true));
    relu_ = register_module("relu", std::make_shared<ReLU>());
  }
  Tensor forward(const Tensor& x) override {
    Tensor rx = (*relu_)(x);
    return residual_add((*conv2_)((*relu_)((*conv1_)(rx))), rx);
  }

 private:
  ModulePtr conv1_, conv2_, relu_;
};

// FeatureFusionBlock: output = x0 (+ resConfUnit1(skip)), then resConfUnit2,
// then x2 bilinear upsampling with align_corners=True.
class FeatureFusionBlock : public Module {
 public:
  explicit FeatureFusionBlock(int64_t features) {
    rcu1_ = register_module("resConfUnit1", std::make_shared<ResidualConvUnit>(features));
    rcu2_ = register_module("resConfUnit2", std::make_shared<ResidualConvUnit>(features));
    up_ = register_module("upsample", std::make_shared<Upsample2x>(true));
  }
  Tensor forward(const Tensor& x) override { return fuse(x, Tensor()); }
  Tensor fuse(const Tensor& x, const Tensor& skip) {
    Tensor y = skip.defined() ? residual_add(x, (*rcu1_)(skip)) : x;
    return (*up_)((*rcu2_)(y));
  }

 private:
  ModulePtr rcu1_, rcu2_, up_;
};

class MidasNet : public Module {
 public:
  explicit MidasNet(const ModelOptions& o) {
    const int64_t features = 256;
    // ResNeXt-101 32x8d (torchvision's resnext101_32x8d, the encoder the
    // authors start from the WSL weights of), tapped after each stage.
    ResNetParts enc = build_resnet_parts({.blocks = {3, 4, 23, 3}, .groups = 32, .width_per_group = 8}, o.in_channels);
    auto pretrained = register_module("pretrained", std::make_shared<Sequential>());
    auto layer1 = std::make_shared<Sequential>();
    layer1->push_back(enc.conv1);
    layer1->push_back(enc.bn1);
    layer1->push_back(enc.relu);
    layer1->push_back(enc.maxpool);
    layer1->push_back(enc.layers[0]);
    stages_[0] = pretrained->add("layer1", layer1);
    for (int i = 1; i < 4; ++i) stages_[i] = pretrained->add("layer" + std::to_string(i + 1), enc.layers[i]);
    auto scratch = register_module("scratch", std::make_shared<Sequential>());
    for (int i = 0; i < 4; ++i)
      rn_[i] = scratch->add("layer" + std::to_string(i + 1) + "_rn",
                            std::make_shared<Conv2d>(enc.channels[i], features, 3, 1, 1, 1, 1, false));
    for (int i = 3; i >= 0; --i)
      refine_[i] = scratch->add("refinenet" + std::to_string(i + 1), std::make_shared<FeatureFusionBlock>(features));
    head_ = scratch->add("output_conv", std::make_shared<Sequential>());
    head_->emplace<Conv2d>(features, 128, 3, 1, 1);
    head_->emplace<Upsample2x>(false);  // the authors' Interpolate(scale_factor=2, mode="bilinear")
    head_->emplace<Conv2d>(128, 32, 3, 1, 1);
    head_->emplace<ReLU>();
    head_->emplace<Conv2d>(32, 1, 1, 1, 0);
    head_->emplace<ReLU>();  // non_negative
  }

  // (N, C, H, W) -> (N, 1, H, W)
  Tensor forward(const Tensor& x) override {
    NEURN_CHECK(x.dim() == 4 && x.size(2) % 32 == 0 && x.size(3) % 32 == 0,
                "midas: input height and width must be multiples of 32, got ", shape_str(x.shape()));
    Tensor l1 = (*stages_[0])(x);   // (N, 256, H/4, W/4)
    Tensor l2 = (*stages_[1])(l1);  // (N, 512, H/8, W/8)
    Tensor l3 = (*stages_[2])(l2);  // (N, 1024, H/16, W/16)
    Tensor l4 = (*stages_[3])(l3);  // (N, 2048, H/32, W/32)
    Tensor p = refine_[3]->fuse((*rn_[3])(l4), Tensor());  // (N, 256, H/16, W/16)
    p = refine_[2]->fuse(p, (*rn_[2])(l3));                 // H/8
    p = refine_[1]->fuse(p, (*rn_[1])(l2));                 // H/4
    p = refine_[0]->fuse(p, (*rn_[0])(l1));                 // H/2
    return (*head_)(p);                                     // (N, 1, H, W)
  }

 private:
  std::array<std::shared_ptr<Sequential>, 4> stages_;
  std::array<std::shared_ptr<Conv2d>, 4> rn_;
  std::array<std::shared_ptr<FeatureFusionBlock>, 4> refine_;
  std::shared_ptr<Sequential> head_;
};

ModulePtr build_midas(const ModelOptions& o) {
  NEURN_CHECK(o.input_size % 32 == 0, "midas: input_size must be a multiple of 32, got ", o.input_size);
  return std::make_shared<MidasNet>(o);
}

}  // namespace

NEURN_REGISTER_MODEL(midas, (ModelInfo{.name = "midas",
                                       .family = "MiDaS",
                                       .reference = "Ranftl et al. 2020 (MiDaS v2.1 large); isl-org/MiDaS MidasNet, "
                                                    "torch.hub \"MiDaS\" (ResNeXt-101 32x8d encoder)",
                                       .description = "monocular depth: ResNeXt-101 encoder, fusion blocks, "
                                                      "align_corners bilinear upsampling",
                                       .aliases = {"midas_v21", "midas_v21_large"},
                                       .task = "depth",
                                       .reference_input_size = 384,
                                       .reference_classes = 1}),
                     build_midas);

}  // namespace neurn
