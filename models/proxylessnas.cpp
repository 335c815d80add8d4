// ProxylessNAS Mobile (Cai et al., "ProxylessNAS: Direct Neural Architecture
// Search on Target Task and Hardware", ICLR 2019), the searched network the
// authors release as proxyless_mobile (mit-han-lab/proxylessnas,
// proxyless_nas/model_zoo.py with its proxyless_mobile.config). The
// architecture string (per block: kernel, expansion, out channels, and which
// blocks the search made identity) is transcribed from osmr/imgclsmob
// (pytorchcv), proxylessnas.py, version "mobile", which pins 4,080,512
// parameters for it; module and state keys follow the authors' ProxylessNASNets
// (first_conv.conv.weight, blocks.1.mobile_inverted_conv.inverted_bottleneck.conv.weight,
// .depth_conv.bn.*, .point_linear.conv.weight, feature_mix_layer.*, classifier.linear.*).
// Batch norm eps 1e-3 (the config's "bn"). 4,080,512 parameters at 1000 classes.
#include <optional>

#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

const BatchNormSpec kBn{.eps = 1e-3, .momentum = 0.1};

// conv -> bn (-> relu6): the authors' ConvLayer / the parts of an
// MBInvertedConvLayer, children "conv", "bn", "act".
std::shared_ptr<Sequential> conv_bn(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups, bool act) {
  auto s = std::make_shared<Sequential>();
  s->add("conv", std::make_shared<Conv2d>(in, out, k, stride, k / 2, 1, groups, false));
  s->add("bn", std::make_shared<BatchNorm2d>(out, kBn));
  if (act) s->add("act", std::make_shared<ReLU6>());
  return s;
}

// MBInvertedConvLayer: 1x1 expansion (absent at expansion 1), k x k depthwise
// with the stride, 1x1 linear projection.
class MBInvertedConv : public Module {
 public:
  MBInvertedConv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t expand) {
    const int64_t mid = in * expand;
    if (expand > 1) inverted_ = register_module("inverted_bottleneck", conv_bn(in, mid, 1, 1, 1, true));
    depth_ = register_module("depth_conv", conv_bn(mid, mid, k, stride, mid, true));
    point_ = register_module("point_linear", conv_bn(mid, out, 1, 1, 1, false));
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = inverted_ ? (*inverted_)(x) : x;
    return (*point_)((*depth_)(y));
  }

 private:
  ModulePtr inverted_, depth_, point_;
};

// MobileInvertedResidualBlock: body (the mobile_inverted_conv) plus an
// identity shortcut where shapes allow; a block the search made a zero
// operation with a shortcut is the identity (no parameters, token "Identity").
class MBBlock : public Module {
 public:
  MBBlock(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t expand, bool body, bool shortcut)
      : shortcut_(shortcut) {
    NEURN_CHECK(body || shortcut, "proxylessnas: a block needs a body or a shortcut");
    if (body) conv_ = register_module("mobile_inverted_conv", std::make_shared<MBInvertedConv>(in, out, k, stride, expand));
    else identity_ = register_module("shortcut", std::make_shared<Identity>());
  }
  Tensor forward(const Tensor& x) override {
    if (!conv_) return (*identity_)(x);
    Tensor y = (*conv_)(x);
    return shortcut_ ? residual_add(y, x) : y;
  }

 private:
  bool shortcut_;
  ModulePtr conv_, identity_;
};

struct StageCfg {
  std::vector<int64_t> body, channels, kernels, expansions;
};

// pytorchcv's "mobile" lists: residuals (1: the block has a body), channels,
// kernel sizes, expansions; a stage's first block has stride 2 (except the
// first stage), every block but a stage's first has the identity shortcut.
const std::vector<StageCfg>& mobile_cfg() {
  static const std::vector<StageCfg> cfg = {
      {{1}, {16}, {3}, {1}},
      {{1, 1, 0, 0}, {32, 32, 32, 32}, {5, 3, 3, 3}, {3, 3, 3, 3}},
      {{1, 1, 1, 1}, {40, 40, 40, 40}, {7, 3, 5, 5}, {3, 3, 3, 3}},
      {{1, 1, 1, 1, 1, 1, 1, 1}, {80, 80, 80, 80, 96, 96, 96, 96}, {7, 5, 5, 5, 5, 5, 5, 5}, {6, 3, 3, 3, 6, 3, 3, 3}},
      {{1, 1, 1, 1, 1}, {192, 192, 192, 192, 320}, {7, 7, 7, 7, 7}, {6, 6, 3, 3, 6}},
  };
  return cfg;
}

class ProxylessNAS : public Module {
 public:
  explicit ProxylessNAS(const ModelOptions& o) {
    std::optional<DeferInit> defer(std::in_place);  // the convolutions are re-initialised below
    first_conv_ = register_module("first_conv", conv_bn(o.in_channels, 32, 3, 2, 1, true));
    blocks_ = register_module("blocks", std::make_shared<Sequential>());
    int64_t in = 32;
    // The shortcut rule of pytorchcv's `shortcuts` list: 0 for a stage's first
    // block and for the 80 -> 96 and 192 -> 320 blocks (the channel changes), 1 elsewhere.
    for (size_t i = 0; i < mobile_cfg().size(); ++i) {
      const StageCfg& s = mobile_cfg()[i];
      for (size_t j = 0; j < s.channels.size(); ++j) {
        const int64_t stride = j == 0 && i != 0 ? 2 : 1;
        const bool shortcut = j > 0 && in == s.channels[j];
        blocks_->push_back(
            std::make_shared<MBBlock>(in, s.channels[j], s.kernels[j], stride, s.expansions[j], s.body[j] == 1, shortcut));
        in = s.channels[j];
      }
    }
    feature_mix_ = register_module("feature_mix_layer", conv_bn(in, 1280, 1, 1, 1, true));
    pool_ = register_module("global_avg_pooling", std::make_shared<AdaptiveAvgPool2d>(1));
    flatten_ = register_module("flatten", std::make_shared<Flatten>());
    defer.reset();
    // LinearLayer: children "dropout" (when the rate is > 0) and "linear".
    classifier_ = register_module("classifier", std::make_shared<Sequential>());
    if (o.dropout && *o.dropout > 0) classifier_->add("dropout", std::make_shared<Dropout>(*o.dropout));
    classifier_->add("linear", std::make_shared<Linear>(1280, o.num_classes));
    // The authors' init_model("he_fout"): convolutions N(0, sqrt(2 / (k k out))), BN 1 and 0.
    apply([](const std::string&, Module& m) {
      if (dynamic_cast<Conv2d*>(&m)) kaiming_normal_(m.param("weight"), FanMode::FanOut);
    });
  }

  Tensor forward(const Tensor& x) override {
    Tensor y = (*blocks_)((*first_conv_)(x));
    y = (*flatten_)((*pool_)((*feature_mix_)(y)));
    return (*classifier_)(y);
  }

 private:
  ModulePtr first_conv_, feature_mix_, pool_, flatten_;
  std::shared_ptr<Sequential> blocks_, classifier_;
};

ModulePtr build_proxylessnas_mobile(const ModelOptions& o) { return std::make_shared<ProxylessNAS>(o); }

}  // namespace

NEURN_REGISTER_MODEL(proxylessnas,
                     (ModelInfo{.name = "proxylessnas",
                                .family = "ProxylessNAS",
                                .reference = "Cai et al. 2019 (ProxylessNAS); mit-han-lab/proxylessnas proxyless_mobile, "
                                             "architecture as osmr/imgclsmob proxylessnas_mobile",
                                .description = "searched mobile network: MBConv blocks (k 3/5/7, expansion 3/6)",
                                .aliases = {"proxylessnas_mobile", "proxyless_mobile"}}),
                     build_proxylessnas_mobile);

}  // namespace neurn
