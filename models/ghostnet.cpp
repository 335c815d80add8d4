// GhostNet 1.0x (Han et al., "GhostNet: More Features from Cheap Operations",
// CVPR 2020) as the authors' ghostnet (huawei-noah/Efficient-AI-Backbones,
// ghostnet_pytorch/ghostnet.py; timm's ghostnet_100 is the same network):
// ghost modules (a 1x1 "primary" convolution makes half the maps, a 3x3
// depthwise "cheap operation" the other half, concatenated), ghost
// bottlenecks with an optional squeeze-excite (hard-sigmoid gate, reduced
// channels made divisible by 4) and a depthwise stride-2 convolution, a 1x1
// 960 -> 1280 head with bias before the classifier. State keys are the
// authors' (conv_stem.weight, blocks.3.0.ghost1.primary_conv.0.weight,
// blocks.3.0.se.conv_reduce.bias, blocks.9.0.conv.weight, conv_head.bias,
// classifier.weight). 5,182,508 parameters at 1000 classes, derived from that
// definition; the 5,180,840 often quoted is the authors' first release
// (osmr/imgclsmob oth_ghostnet: SE reduced to C // 4, 3x3 shortcut depthwise
// convolutions, a bias-free 960 -> 1280 Linear with BatchNorm1d as the head),
// 1,668 fewer.
#include <cmath>

#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

// The authors' _make_divisible: nearest multiple of `divisor`, at least
// `divisor`, never more than 10% below v.
int64_t make_divisible(double v, int64_t divisor) {
  int64_t n = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(n) < 0.9 * v) n += divisor;
  return n;
}

// Squeeze-excite of GhostNet: x * hard_sigmoid(expand(relu(reduce(pool(x))))),
// children avg_pool, conv_reduce, act1, conv_expand (the authors' keys).
class GhostSqueezeExcite : public Module {
 public:
  GhostSqueezeExcite(int64_t channels, double ratio) {
    const int64_t reduced = make_divisible(static_cast<double>(channels) * ratio, 4);
    pool_ = register_module("avg_pool", std::make_shared<AdaptiveAvgPool2d>(1));
    reduce_ = register_module("conv_reduce", std::make_shared<Conv2d>(channels, reduced, 1));
    act_ = register_module("act1", std::make_shared<ReLU>());
    expand_ = register_module("conv_expand", std::make_shared<Conv2d>(reduced, channels, 1));
  }
  Tensor forward(const Tensor& x) override {
    Tensor s = (*expand_)((*act_)((*reduce_)((*pool_)(x))));  // (N, C, 1, 1)
    LayerTrace::record("Hardsigmoid");                       // the authors' gate_fn, a function
    LayerTrace::record("Multiply");
    return mul(x, hardsigmoid(s));
  }

 private:
  ModulePtr pool_, reduce_, act_, expand_;
};

// Ghost module (ratio 2, 1x1 primary, 3x3 cheap): cat(primary(x),
// cheap(primary(x))) cut to `out` channels. relu: both halves end in a ReLU.
class GhostModule : public Module {
 public:
  GhostModule(int64_t in, int64_t out, bool relu) : out_(out) {
    const int64_t init = (out + 1) / 2;  // ceil(out / ratio)
    primary_ = register_module("primary_conv", std::make_shared<Sequential>());
    primary_->emplace<Conv2d>(in, init, 1, 1, 0, 1, 1, false);
    primary_->emplace<BatchNorm2d>(init);
    cheap_ = register_module("cheap_operation", std::make_shared<Sequential>());
    cheap_->emplace<Conv2d>(init, init, 3, 1, 1, 1, init, false);
    cheap_->emplace<BatchNorm2d>(init);
    if (relu) {
      // The authors' index 2 is ReLU, or an empty Sequential (no keys either way).
      primary_->emplace<ReLU>();
      cheap_->emplace<ReLU>();
    }
  }
  Tensor forward(const Tensor& x) override {
    Tensor x1 = (*primary_)(x);  // (N, init, H, W)
    Tensor x2 = (*cheap_)(x1);   // (N, init, H, W)
    Tensor y = channel_concat({x1, x2});
    return y.size(1) == out_ ? y : slice(y, 1, 0, out_);
  }

 private:
  int64_t out_;
  std::shared_ptr<Sequential> primary_, cheap_;
};

class GhostBottleneck : public Module {
 public:
  GhostBottleneck(int64_t in, int64_t mid, int64_t out, int64_t k, int64_t stride, double se_ratio) {
    ghost1_ = register_module("ghost1", std::make_shared<GhostModule>(in, mid, true));
    if (stride > 1) {
      conv_dw_ = register_module("conv_dw", std::make_shared<Conv2d>(mid, mid, k, stride, (k - 1) / 2, 1, mid, false));
      bn_dw_ = register_module("bn_dw", std::make_shared<BatchNorm2d>(mid));
    }
    if (se_ratio > 0) se_ = register_module("se", std::make_shared<GhostSqueezeExcite>(mid, se_ratio));
    ghost2_ = register_module("ghost2", std::make_shared<GhostModule>(mid, out, false));
    if (in != out || stride != 1) {
      shortcut_ = register_module("shortcut", std::make_shared<Sequential>());
      shortcut_->emplace<Conv2d>(in, in, k, stride, (k - 1) / 2, 1, in, false);
      shortcut_->emplace<BatchNorm2d>(in);
      shortcut_->emplace<Conv2d>(in, out, 1, 1, 0, 1, 1, false);
      shortcut_->emplace<BatchNorm2d>(out);
    }
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = (*ghost1_)(x);
    if (conv_dw_) y = (*bn_dw_)((*conv_dw_)(y));
    if (se_) y = (*se_)(y);
    y = (*ghost2_)(y);
    return residual_add(y, shortcut_ ? (*shortcut_)(x) : x);
  }

 private:
  ModulePtr ghost1_, conv_dw_, bn_dw_, se_, ghost2_;
  std::shared_ptr<Sequential> shortcut_;
};

struct GhostCfg {
  int64_t k, exp, c;
  double se;
  int64_t s;
};

// The authors' cfgs (k, expansion size, out channels, SE ratio, stride); each
// inner list is one stage (one Sequential "blocks.i").
const std::vector<std::vector<GhostCfg>>& ghostnet_cfgs() {
  static const std::vector<std::vector<GhostCfg>> cfgs = {
      {{3, 16, 16, 0, 1}},
      {{3, 48, 24, 0, 2}},
      {{3, 72, 24, 0, 1}},
      {{5, 72, 40, 0.25, 2}},
      {{5, 120, 40, 0.25, 1}},
      {{3, 240, 80, 0, 2}},
      {{3, 200, 80, 0, 1}, {3, 184, 80, 0, 1}, {3, 184, 80, 0, 1}, {3, 480, 112, 0.25, 1}, {3, 672, 112, 0.25, 1}},
      {{5, 672, 160, 0.25, 2}},
      {{5, 960, 160, 0, 1}, {5, 960, 160, 0.25, 1}, {5, 960, 160, 0, 1}, {5, 960, 160, 0.25, 1}},
  };
  return cfgs;
}

class GhostNet : public Module {
 public:
  explicit GhostNet(const ModelOptions& o) {
    const double w = o.width;
    int64_t out = make_divisible(16 * w, 4);
    conv_stem_ = register_module("conv_stem", std::make_shared<Conv2d>(o.in_channels, out, 3, 2, 1, 1, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out));
    act1_ = register_module("act1", std::make_shared<ReLU>());
    int64_t in = out;
    blocks_ = register_module("blocks", std::make_shared<Sequential>());
    int64_t last_exp = 0;
    for (const auto& stage : ghostnet_cfgs()) {
      auto seq = std::make_shared<Sequential>();
      for (const GhostCfg& c : stage) {
        out = make_divisible(static_cast<double>(c.c) * w, 4);
        const int64_t hidden = make_divisible(static_cast<double>(c.exp) * w, 4);
        seq->push_back(std::make_shared<GhostBottleneck>(in, hidden, out, c.k, c.s, c.se));
        in = out;
        last_exp = c.exp;
      }
      blocks_->push_back(seq);
    }
    // The last stage: ConvBnAct(in, make_divisible(960 w)) with children conv, bn1, act1.
    out = make_divisible(static_cast<double>(last_exp) * w, 4);
    auto head_stage = std::make_shared<Sequential>();
    auto cba = std::make_shared<Sequential>();
    cba->add("conv", std::make_shared<Conv2d>(in, out, 1, 1, 0, 1, 1, false));
    cba->add("bn1", std::make_shared<BatchNorm2d>(out));
    cba->add("act1", std::make_shared<ReLU>());
    head_stage->push_back(cba);
    blocks_->push_back(head_stage);
    in = out;
    pool_ = register_module("global_pool", std::make_shared<AdaptiveAvgPool2d>(1));
    conv_head_ = register_module("conv_head", std::make_shared<Conv2d>(in, 1280, 1, 1, 0, 1, 1, true));
    act2_ = register_module("act2", std::make_shared<ReLU>());
    flatten_ = register_module("flatten", std::make_shared<Flatten>());
    const double p = o.dropout.value_or(0.2);
    if (p > 0) dropout_ = register_module("dropout", std::make_shared<Dropout>(p));
    classifier_ = register_module("classifier", std::make_shared<Linear>(1280, o.num_classes));
  }

  Tensor forward(const Tensor& x) override {
    Tensor y = (*act1_)((*bn1_)((*conv_stem_)(x)));
    y = (*blocks_)(y);
    y = (*flatten_)((*act2_)((*conv_head_)((*pool_)(y))));
    if (dropout_) y = (*dropout_)(y);
    return (*classifier_)(y);
  }

 private:
  ModulePtr conv_stem_, bn1_, act1_, pool_, conv_head_, act2_, flatten_, dropout_, classifier_;
  std::shared_ptr<Sequential> blocks_;
};

ModulePtr build_ghostnet(const ModelOptions& o) { return std::make_shared<GhostNet>(o); }

}  // namespace

NEURN_REGISTER_MODEL(ghostnet, (ModelInfo{.name = "ghostnet",
                                          .family = "GhostNet",
                                          .reference = "Han et al. 2020 (GhostNet); huawei-noah/Efficient-AI-Backbones "
                                                       "ghostnet_pytorch (= timm ghostnet_100), 1.0x",
                                          .description = "ghost bottlenecks (1x1 primary + depthwise cheap maps), SE",
                                          .has_width = true,
                                          .aliases = {"ghostnet_100"}}),
                     build_ghostnet);

}  // namespace neurn
