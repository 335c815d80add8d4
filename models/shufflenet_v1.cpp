// ShuffleNet v1 (Zhang et al., "ShuffleNet: An Extremely Efficient
// Convolutional Neural Network for Mobile Devices", CVPR 2018), groups 3,
// 1.0x, built as the authors' reference code (megvii-model/ShuffleNet-Series,
// ShuffleNetV1) builds it, with their module names (first_conv.0.weight,
// features.0.branch_main_1.0.weight, features.3.branch_main_2.1.running_var,
// classifier.0.weight):
//   first_conv 3x3/2 -> 24, BN, ReLU; max pool 3x3/2;
//   stages of 4, 8, 4 units with 240, 480, 960 outputs (Table 1, g = 3);
//   a unit: 1x1 group conv to out/4 channels, BN, ReLU, 3x3 depthwise
//   (stride 2 in the first unit of a stage), BN, channel shuffle, 1x1 group
//   conv, BN; stride 1: ReLU(x + unit), stride 2: concat(avgpool 3x3/2 of
//   x, ReLU(unit)), the unit producing out - in channels. The first 1x1 of
//   the network (24 inputs) is not grouped (the paper: too few channels).
//   Global average pooling and a classifier without bias.
// Parameters at 1000 classes: 1,864,728 (pinned in tests; the reference
// README rounds it to 1.9M). The channel shuffle is the reference's (after
// the depthwise conv's BN; (N, C/g, g) -> (N, g, C/g)), so its published
// ImageNet checkpoints load with their keys minus "module."
// (scripts/convert_shufflenet_v1_checkpoint.py). One deviation from the
// reference code, which changes no parameter: its global pooling is
// AvgPool2d(7), which only fits 224x224; here it is an adaptive average to
// 1x1 (the same at 224, and it lets 32x32 digits through: the last stage's
// map is then 1x1).
#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

// The paper's Table 1 output channels of stages 2-4 at 1.0x, per group count.
std::array<int64_t, 3> stage_channels(int64_t groups) {
  switch (groups) {
    case 1: return {144, 288, 576};
    case 2: return {200, 400, 800};
    case 3: return {240, 480, 960};
    case 4: return {272, 544, 1088};
    case 8: return {384, 768, 1536};
  }
  NEURN_FAIL("shufflenet: groups must be 1, 2, 3, 4 or 8 (Zhang et al. 2018, Table 1), got ", groups);
}

class ShuffleV1Block : public Module {
 public:
  ShuffleV1Block(int64_t in, int64_t out, int64_t groups, bool first_group, int64_t stride)
      : stride_(stride), groups_(groups) {
    int64_t mid = out / 4;
    int64_t outputs = stride == 2 ? out - in : out;
    main1_ = register_module("branch_main_1", std::make_shared<Sequential>());
    main1_->emplace<Conv2d>(in, mid, 1, 1, 0, 1, first_group ? 1 : groups, false);
    main1_->emplace<BatchNorm2d>(mid);
    main1_->emplace<ReLU>();
    main1_->emplace<Conv2d>(mid, mid, 3, stride, 1, 1, mid, false);  // depthwise
    main1_->emplace<BatchNorm2d>(mid);
    // megvii's channel_shuffle views (N, mid / g, g) and swaps to (N, g, mid / g):
    // ChannelShuffle (which views (N, groups, C / groups)) with groups = mid / g.
    // The paper's own view is the transposed permutation; megvii's trained
    // weights need theirs (scripts/convert_shufflenet_v1_checkpoint.py).
    shuffle_ = register_module("channel_shuffle", std::make_shared<ChannelShuffle>(groups > 1 ? mid / groups : 1));
    main2_ = register_module("branch_main_2", std::make_shared<Sequential>());
    main2_->emplace<Conv2d>(mid, outputs, 1, 1, 0, 1, groups, false);
    main2_->emplace<BatchNorm2d>(outputs);
    relu_ = register_module("relu", std::make_shared<ReLU>());
    if (stride == 2) proj_ = register_module("branch_proj", std::make_shared<AvgPool2d>(3, 2, 1));
  }
  Tensor forward(const Tensor& x) override {  // (N, in, H, W) -> (N, out, H / stride, W / stride)
    Tensor y = (*main1_)(x);
    if (groups_ > 1) y = (*shuffle_)(y);
    y = (*main2_)(y);
    if (stride_ == 1) return (*relu_)(residual_add(y, x));
    return channel_concat({(*proj_)(x), (*relu_)(y)});
  }

 private:
  int64_t stride_, groups_;
  std::shared_ptr<Sequential> main1_, main2_;
  ModulePtr shuffle_, relu_, proj_;
};

}  // namespace

ModulePtr build_shufflenet_v1(int64_t groups, const ModelOptions& o) {
  auto channels = stage_channels(groups);
  const int64_t repeats[3] = {4, 8, 4};
  DeferInit defer;  // every weight is re-initialised below
  auto model = std::make_shared<Sequential>();
  int64_t c = 24;
  auto first = model->add("first_conv", std::make_shared<Sequential>());
  first->emplace<Conv2d>(o.in_channels, c, 3, 2, 1, 1, 1, false);
  first->emplace<BatchNorm2d>(c);
  first->emplace<ReLU>();
  model->add("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  auto features = model->add("features", std::make_shared<Sequential>());
  for (int s = 0; s < 3; ++s) {
    for (int64_t i = 0; i < repeats[s]; ++i) {
      features->push_back(std::make_shared<ShuffleV1Block>(c, channels[s], groups, s == 0 && i == 0, i == 0 ? 2 : 1));
      c = channels[s];
    }
  }
  model->add("globalpool", std::make_shared<AdaptiveAvgPool2d>(1));
  model->add("flatten", std::make_shared<Flatten>());
  if (o.dropout && *o.dropout > 0) model->add("dropout", std::make_shared<Dropout>(*o.dropout));
  auto classifier = model->add("classifier", std::make_shared<Sequential>());
  auto fc = classifier->emplace<Linear>(c, o.num_classes, false);
  // The reference's init: convolutions N(0, 0.01) for the first one (its
  // name holds "first"), N(0, 1 / weight.shape[1]) otherwise; BN weight 1,
  // bias 1e-4; classifier N(0, 0.01)
  model->apply([](const std::string& name, Module& m) {
    if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
      Tensor& w = conv->param("weight");
      bool is_first = name.find("first") != std::string::npos;
      normal_(w, 0.0, is_first ? 0.01 : 1.0 / static_cast<double>(w.size(1)));
    } else if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) {
      constant_(bn->param("weight"), 1.0);
      constant_(bn->param("bias"), 1e-4);
    }
  });
  normal_(fc->param("weight"), 0.0, 0.01);
  return model;
}

namespace {
ModulePtr build_shufflenet_g3(const ModelOptions& o) { return build_shufflenet_v1(3, o); }
}  // namespace

NEURN_REGISTER_MODEL(shufflenet, (ModelInfo{.name = "shufflenet",
                                  .family = "ShuffleNet",
                                  .reference = "Zhang et al. 2018 (ShuffleNet v1, g = 3, 1.0x); "
                                               "megvii-model/ShuffleNet-Series ShuffleNetV1",
                                  .description = "group convolutions and channel shuffle, 1,864,728 parameters",
                                  .aliases = {"shufflenet_v1", "shufflenetv1"}}),
                     build_shufflenet_g3);

}  // namespace neurn
