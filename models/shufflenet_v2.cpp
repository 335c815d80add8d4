// ShuffleNetV2 (Ma et al. 2018), identical to torchvision's
// models.shufflenet_v2_x1_0 (and x0_5, x1_5, x2_0 through `width`): modules,
// state keys (conv1.0.weight, stage2.0.branch1.0.weight,
// stage3.4.branch2.7.running_var, conv5.1.bias, fc.weight, ...) and init
// (PyTorch's defaults: torchvision's ShuffleNetV2 sets none of its own).
// 2,278,604 parameters at width 1 and 1000 classes.
#include "models/shufflenet_v2.h"

#include <cmath>

#include "framework/ops/quantize.h"

#include "models/registry.h"

namespace neurn {

namespace {

// A convolution whose weight is fake-quantized (signed, symmetric, per
// tensor) at every call; the parameter itself stays full precision.
class QuantConv2d : public Conv2d {
 public:
  QuantConv2d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups, int bits)
      : Conv2d(in, out, k, stride, k / 2, 1, groups, false), bits_(bits) {}
  Tensor forward(const Tensor& x) override {
    Conv2dOptions opt;
    opt.stride = spec().stride;
    opt.padding = spec().padding;
    opt.groups = spec().groups;
    return conv2d(x, fake_quantize_symmetric(param("weight"), bits_), {}, opt);
  }

 private:
  int bits_;
};

std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups, int bits) {
  if (bits < 32) return std::make_shared<QuantConv2d>(in, out, k, stride, groups, bits);
  return std::make_shared<Conv2d>(in, out, k, stride, k / 2, 1, groups, false);
}

}  // namespace

std::pair<Tensor, Tensor> shuffle_split_even_odd(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4 && x.size(1) % 2 == 0, "shuffle_split_even_odd: expected (N, C, H, W) with even C, got ",
              shape_str(x.shape()));
  int64_t n = x.size(0), k = x.size(1) / 2, h = x.size(2), w = x.size(3);
  Tensor v = reshape(x, {n, k, 2, h, w});  // channel 2j + r -> (j, r)
  return {reshape(slice(v, 2, 0, 1), {n, k, h, w}), reshape(slice(v, 2, 1, 2), {n, k, h, w})};
}

ShuffleV2Unit::ShuffleV2Unit(const ShuffleUnitSpec& s) : spec_(s) {
  NEURN_CHECK(s.stride == 1 || s.stride == 2, "ShuffleV2Unit: stride must be 1 or 2, got ", s.stride);
  NEURN_CHECK(s.kernel == 3 || s.kernel == 5 || s.kernel == 7, "ShuffleV2Unit: depthwise kernel must be 3, 5 or 7, got ",
              s.kernel);
  NEURN_CHECK(s.in > 0 && s.out > 0 && s.mid >= 0, "ShuffleV2Unit: bad widths in ", s.in, " out ", s.out, " mid ", s.mid);
  if (s.stride == 1 && !s.project)
    NEURN_CHECK(s.in % 2 == 0 && s.out > s.in / 2, "ShuffleV2Unit: a stride-1 unit needs an even input width and out > in/2, got in ",
                s.in, " out ", s.out);
  proj_ = (s.stride == 2 || s.project) ? (s.layout == ShuffleLayout::Torchvision ? s.out / 2 : s.in) : s.in / 2;
  NEURN_CHECK(proj_ > 0 && proj_ < s.out, "ShuffleV2Unit: out ", s.out, " leaves no channels for branch2 (in ", s.in,
              ")");
  const int64_t main_in = main_in_channels(), main_out = main_channels();
  const int64_t mid = s.mid > 0 ? s.mid : main_out;
  BatchNormSpec bn;
  bn.affine = s.affine;
  // Keys follow torchvision: branch1 exists (empty) for stride 1 too, it has
  // no tensors then, so the state dict does not see it.
  branch1_ = register_module("branch1", std::make_shared<Sequential>());
  const int wb = s.weight_bits;
  auto depthwise = [wb](int64_t c, int64_t k, int64_t stride) { return conv(c, c, k, stride, c, wb); };
  auto pointwise = [wb](int64_t in, int64_t out) { return conv(in, out, 1, 1, 1, wb); };
  if (projecting()) {
    branch1_->push_back(depthwise(s.in, s.xception ? 3 : s.kernel, s.stride));
    branch1_->emplace<BatchNorm2d>(s.in, bn);
    branch1_->push_back(pointwise(s.in, proj_));
    branch1_->emplace<BatchNorm2d>(proj_, bn);
    branch1_->emplace<ReLU>();
  }
  branch2_ = register_module("branch2", std::make_shared<Sequential>());
  if (!s.xception) {
    branch2_->push_back(pointwise(main_in, mid));
    branch2_->emplace<BatchNorm2d>(mid, bn);
    branch2_->emplace<ReLU>();
    branch2_->push_back(depthwise(mid, s.kernel, s.stride));
    branch2_->emplace<BatchNorm2d>(mid, bn);
    branch2_->push_back(pointwise(mid, main_out));
    branch2_->emplace<BatchNorm2d>(main_out, bn);
    branch2_->emplace<ReLU>();
  } else {
    const int64_t ins[3] = {main_in, mid, mid}, outs[3] = {mid, mid, main_out};
    for (int i = 0; i < 3; ++i) {
      branch2_->push_back(depthwise(ins[i], 3, i == 0 ? s.stride : 1));
      branch2_->emplace<BatchNorm2d>(ins[i], bn);
      branch2_->push_back(pointwise(ins[i], outs[i]));
      branch2_->emplace<BatchNorm2d>(outs[i], bn);
      branch2_->emplace<ReLU>();
    }
  }
  if (s.layout == ShuffleLayout::Torchvision) shuffle_ = register_module("shuffle", std::make_shared<ChannelShuffle>(2));
}

Tensor ShuffleV2Unit::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4 && x.size(1) == spec_.in, "ShuffleV2Unit: expected (N, ", spec_.in,
              ", H, W), got ", shape_str(x.shape()));
  Tensor in = spec_.act_bits < 32 ? fake_quantize_unsigned(x, spec_.act_bits) : x;
  Tensor y;
  if (projecting()) {
    y = channel_concat({(*branch1_)(in), (*branch2_)(in)});
  } else if (spec_.layout == ShuffleLayout::Torchvision) {
    std::vector<Tensor> halves = chunk(in, 2, 1);
    y = channel_concat({halves[0], (*branch2_)(halves[1])});
  } else {
    auto [passed, into] = shuffle_split_even_odd(in);
    y = channel_concat({passed, (*branch2_)(into)});
  }
  if (shuffle_) y = (*shuffle_)(y);
  return y;
}

ModulePtr build_shufflenet_v2(const ModelOptions& o) {
  // torchvision's _stage_out_channels per width (x0_5, x1_0, x1_5, x2_0).
  std::vector<int64_t> widths;
  if (o.width == 0.5) widths = {24, 48, 96, 192, 1024};
  else if (o.width == 1.0) widths = {24, 116, 232, 464, 1024};
  else if (o.width == 1.5) widths = {24, 176, 352, 704, 1024};
  else if (o.width == 2.0) widths = {24, 244, 488, 976, 2048};
  else NEURN_FAIL("shufflenet_v2: width must be 0.5, 1.0, 1.5 or 2.0 (torchvision's x0_5 .. x2_0), got ", o.width);

  auto model = std::make_shared<Sequential>();
  auto conv1 = model->add("conv1", std::make_shared<Sequential>());
  conv1->emplace<Conv2d>(o.in_channels, widths[0], 3, 2, 1, 1, 1, false);
  conv1->emplace<BatchNorm2d>(widths[0]);
  conv1->emplace<ReLU>();
  model->add("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
  const int64_t repeats[3] = {4, 8, 4};
  int64_t c = widths[0];
  for (int st = 0; st < 3; ++st) {
    auto stage = model->add("stage" + std::to_string(st + 2), std::make_shared<Sequential>());
    for (int64_t i = 0; i < repeats[st]; ++i) {
      ShuffleUnitSpec u;
      u.in = c;
      u.out = widths[st + 1];
      u.stride = i == 0 ? 2 : 1;
      stage->push_back(std::make_shared<ShuffleV2Unit>(u));
      c = u.out;
    }
  }
  auto conv5 = model->add("conv5", std::make_shared<Sequential>());
  conv5->emplace<Conv2d>(c, widths[4], 1, 1, 0, 1, 1, false);
  conv5->emplace<BatchNorm2d>(widths[4]);
  conv5->emplace<ReLU>();
  model->add("pool", std::make_shared<GlobalAvgPool>());  // torchvision: x.mean([2, 3])
  // torchvision has no dropout here; an explicit ModelOptions::dropout adds one.
  if (o.dropout && *o.dropout > 0) model->add("dropout", std::make_shared<Dropout>(*o.dropout));
  model->add("fc", std::make_shared<Linear>(widths[4], o.num_classes));
  return model;
}

NEURN_REGISTER_MODEL(shufflenet_v2,
                     (ModelInfo{.name = "shufflenet_v2",
                                .family = "ShuffleNet",
                                .reference = "Ma et al. 2018; torchvision models.shufflenet_v2_x1_0 (width 0.5/1.5/2.0: x0_5/x1_5/x2_0)",
                                .description = "channel split, depthwise units and channel shuffle",
                                .has_width = true,
                                .aliases = {"shufflenet_v2_x1_0", "shufflenetv2"}}),
                     build_shufflenet_v2);

}  // namespace neurn
