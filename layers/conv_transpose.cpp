#include "layers/conv_transpose.h"

#include <cmath>

#include "layers/init.h"

namespace neurn {

ConvTranspose2d::ConvTranspose2d(const ConvTranspose2dSpec& spec) : spec_(spec) {
  const auto& s = spec_;
  NEURN_CHECK(s.in_channels > 0 && s.out_channels > 0 && s.groups > 0,
              "ConvTranspose2d: channels and groups must be positive, got in=", s.in_channels,
              " out=", s.out_channels, " groups=", s.groups);
  NEURN_CHECK(s.in_channels % s.groups == 0 && s.out_channels % s.groups == 0, "ConvTranspose2d: in_channels (",
              s.in_channels, ") and out_channels (", s.out_channels, ") must be divisible by groups (", s.groups, ")");
  for (int i = 0; i < 2; ++i)
    NEURN_CHECK(s.kernel[i] > 0 && s.stride[i] > 0 && s.dilation[i] > 0 && s.padding[i] >= 0 &&
                    s.output_padding[i] >= 0 && s.output_padding[i] < s.stride[i],
                "ConvTranspose2d(", s.in_channels, " -> ", s.out_channels,
                "): kernel, stride, dilation must be positive, padding >= 0 and 0 <= output_padding < stride");
  Shape w{s.in_channels, s.out_channels / s.groups, s.kernel[0], s.kernel[1]};
  register_parameter("weight", new_kaiming_uniform(w, std::sqrt(5.0)));
  if (s.bias) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(w)));
    register_parameter("bias", new_uniform({s.out_channels}, -bound, bound));
  }
}

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                                 int64_t output_padding, int64_t groups, bool bias, int64_t dilation)
    : ConvTranspose2d(ConvTranspose2dSpec{in,
                                          out,
                                          {kernel, kernel},
                                          {stride, stride},
                                          {padding, padding},
                                          {output_padding, output_padding},
                                          {dilation, dilation},
                                          groups,
                                          bias}) {}

void ConvTranspose2d::reset_parameters() {
  Tensor& w = param("weight");
  kaiming_uniform_(w, FanMode::FanIn, std::sqrt(5.0));
  if (has_param("bias")) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in(w.shape())));
    uniform_(param("bias"), -bound, bound);
  }
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4 && x.size(1) == spec_.in_channels, "ConvTranspose2d(", spec_.in_channels, " -> ",
              spec_.out_channels, "): expected input (N, ", spec_.in_channels, ", H, W), got ", shape_str(x.shape()));
  ConvTranspose2dOptions opt;
  opt.stride = spec_.stride;
  opt.padding = spec_.padding;
  opt.output_padding = spec_.output_padding;
  opt.dilation = spec_.dilation;
  opt.groups = spec_.groups;
  Tensor bias = has_param("bias") ? param("bias") : Tensor();
  return conv_transpose2d(x, param("weight"), bias, opt);
}

}  // namespace neurn
