#include "layers/conv.h"

#include <cmath>

#include "framework/ops/shape_ops.h"
#include "layers/init.h"

namespace neurn {

namespace {
// TensorFlow's "same": total padding so that out = ceil(in / stride), the
// extra pixel (when the total is odd) after.
std::array<int64_t, 2> same_pad(int64_t in, int64_t k, int64_t s, int64_t d) {
  int64_t out = (in + s - 1) / s;
  int64_t total = std::max<int64_t>(0, (out - 1) * s + (k - 1) * d + 1 - in);
  return {total / 2, total - total / 2};
}
}  // namespace

Conv2d::Conv2d(const Conv2dSpec& spec) : spec_(spec) {
  const auto& s = spec_;
  NEURN_CHECK(s.in_channels > 0 && s.out_channels > 0 && s.groups > 0,
              "Conv2d: channels and groups must be positive, got in=", s.in_channels, " out=", s.out_channels,
              " groups=", s.groups);
  NEURN_CHECK(s.in_channels % s.groups == 0 && s.out_channels % s.groups == 0, "Conv2d: in_channels (", s.in_channels,
              ") and out_channels (", s.out_channels, ") must be divisible by groups (", s.groups, ")");
  NEURN_CHECK(s.kernel[0] > 0 && s.kernel[1] > 0 && s.stride[0] > 0 && s.stride[1] > 0,
              "Conv2d: kernel and stride must be positive");
  Shape w{s.out_channels, s.in_channels / s.groups, s.kernel[0], s.kernel[1]};
  register_parameter("weight", new_kaiming_uniform(w, std::sqrt(5.0)));
  if (s.bias) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(w)));
    register_parameter("bias", new_uniform({s.out_channels}, -bound, bound));
  }
}

void Conv2d::reset_parameters() {
  Tensor& w = param("weight");
  kaiming_uniform_(w, FanMode::FanIn, std::sqrt(5.0));
  if (has_param("bias")) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(w.shape())));
    uniform_(param("bias"), -bound, bound);
  }
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
               int64_t groups, bool bias)
    : Conv2d(Conv2dSpec{
          in, out, {kernel, kernel}, {stride, stride}, {padding, padding}, {dilation, dilation}, groups, bias, false}) {
}

std::string Conv2d::type() const {
  if (spec_.groups == 1) return "Conv";
  return spec_.groups == spec_.in_channels ? "DepthwiseConv" : "GroupConv";
}

Tensor Conv2d::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4 && x.size(1) == spec_.in_channels, "Conv2d(", spec_.in_channels, " -> ", spec_.out_channels,
              "): expected input (N, ", spec_.in_channels, ", H, W), got ", shape_str(x.shape()));
  Conv2dOptions opt;
  opt.stride = spec_.stride;
  opt.padding = spec_.padding;
  opt.dilation = spec_.dilation;
  opt.groups = spec_.groups;
  Tensor in = x;
  if (spec_.same) {
    auto ph = same_pad(x.size(2), spec_.kernel[0], spec_.stride[0], spec_.dilation[0]);
    auto pw = same_pad(x.size(3), spec_.kernel[1], spec_.stride[1], spec_.dilation[1]);
    if (ph[0] == ph[1] && pw[0] == pw[1]) {
      opt.padding = {ph[0], pw[0]};
    } else {  // asymmetric: pad explicitly, then a valid convolution
      in = pad(x, {pw[0], pw[1], ph[0], ph[1]});
      opt.padding = {0, 0};
    }
  }
  Tensor bias = has_param("bias") ? param("bias") : Tensor();
  return conv2d(in, param("weight"), bias, opt);
}

DepthwiseConv2d::DepthwiseConv2d(int64_t channels, int64_t kernel, int64_t stride, int64_t padding,
                                 int64_t depth_multiplier, bool bias, bool same)
    : Conv2d(Conv2dSpec{channels,
                        channels * depth_multiplier,
                        {kernel, kernel},
                        {stride, stride},
                        {padding, padding},
                        {1, 1},
                        channels,
                        bias,
                        same}) {}

SeparableConv2d::SeparableConv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                                 int64_t depth_multiplier, bool bias, bool same) {
  depthwise_ = register_module(
      "depthwise", std::make_shared<DepthwiseConv2d>(in, kernel, stride, padding, depth_multiplier, false, same));
  pointwise_ = register_module("pointwise", std::make_shared<Conv2d>(in * depth_multiplier, out, 1, 1, 0, 1, 1, bias));
}

Tensor SeparableConv2d::forward(const Tensor& x) {
  // forward(), not operator(): the pair is one layer in the trace
  return pointwise_->forward(depthwise_->forward(x));
}

}  // namespace neurn
