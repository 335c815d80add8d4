#pragma once
// 2-D convolution layers over the conv2d op.
#include <array>

#include "framework/ops/conv.h"
#include "layers/module.h"

namespace neurn {

struct Conv2dSpec {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  std::array<int64_t, 2> kernel{3, 3};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
  bool bias = true;
  // TensorFlow/Keras "same" padding: pad so that H_out = ceil(H / stride),
  // putting the odd pixel after (bottom/right), computed from the input at
  // each call. Overrides `padding`.
  bool same = false;
};

// Parameters "weight" (out, in / groups, kH, kW) and "bias" (out), PyTorch's
// default init: kaiming-uniform a = sqrt(5) for the weight, U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)) for the bias. Token "Conv"; "DepthwiseConv" when every
// group holds one input channel; "GroupConv" for other grouped convolutions
// (ShuffleNet, ResNeXt), a different layer for the N-W aligner.
class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dSpec& spec);
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1,
         int64_t groups = 1, bool bias = true);
  Tensor forward(const Tensor& x) override;  // (N, C_in, H, W) -> (N, C_out, H', W')
  std::string type() const override;
  const Conv2dSpec& spec() const { return spec_; }
  // Redraws weight and bias with PyTorch's default init.
  void reset_parameters();

 private:
  Conv2dSpec spec_;
};

// Keras DepthwiseConv2D: one kxk filter per input channel, times
// depth_multiplier output channels each (groups = in_channels).
class DepthwiseConv2d : public Conv2d {
 public:
  DepthwiseConv2d(int64_t channels, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
                  int64_t depth_multiplier = 1, bool bias = true, bool same = false);
};

// Keras SeparableConv2D: a depthwise kxk convolution (no bias) followed by a
// pointwise 1x1 convolution (with bias), children "depthwise" and "pointwise".
// One layer in the trace: token "SeparableConv".
class SeparableConv2d : public Module {
 public:
  SeparableConv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
                  int64_t depth_multiplier = 1, bool bias = true, bool same = false);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "SeparableConv"; }

 private:
  std::shared_ptr<Conv2d> depthwise_, pointwise_;
};

}  // namespace neurn
