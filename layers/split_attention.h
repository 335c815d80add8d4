#pragma once
// Split attention (Zhang et al., "ResNeSt: Split-Attention Networks", 2020),
// as the authors' SplAtConv2d (zhanghang1989/ResNeSt, resnest/torch/splat.py):
// one grouped k x k convolution makes `radix` splits of `channels` maps each;
// their sum is pooled globally and squeezed through two 1x1 convolutions
// (fc1 -> BN -> ReLU -> fc2) into radix x channels attention logits; a softmax
// across the radix splits (per cardinal group and channel) weights the
// splits, whose weighted sum is the output.
#include "layers/module.h"

namespace neurn {

struct SplitAttentionSpec {
  int64_t in_channels = 0;
  int64_t channels = 0;  // output channels (per split)
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t padding = 1;
  int64_t dilation = 1;
  int64_t cardinality = 1;  // the authors' `groups`
  int64_t radix = 2;
  int64_t reduction_factor = 4;  // inter channels = max(in_channels * radix / reduction_factor, 32)
  bool bias = false;             // of the k x k convolution
};

// Children and state keys as the authors': conv (in -> channels * radix,
// groups = cardinality * radix), bn0, relu, fc1 (channels -> inter, groups =
// cardinality, bias), bn1, fc2 (inter -> channels * radix, groups =
// cardinality, bias). A container: its children are traced, and it records
// "Add" (sum of the splits), "GlobalAvgPool", "Softmax" (radix > 1; "Sigmoid"
// for radix 1), "Multiply" and "Add" (the weighted sum).
class SplitAttentionConv2d : public Module {
 public:
  explicit SplitAttentionConv2d(const SplitAttentionSpec& spec);
  Tensor forward(const Tensor& x) override;  // (N, C_in, H, W) -> (N, channels, H', W')
  const SplitAttentionSpec& spec() const { return spec_; }
  int64_t inter_channels() const { return inter_; }

 private:
  SplitAttentionSpec spec_;
  int64_t inter_;
  ModulePtr conv_, bn0_, relu_, fc1_, bn1_, fc2_;
};

// The radix softmax of the authors' rSoftMax: logits (N, cardinality *
// radix * (channels / cardinality), 1, 1), laid out as (card, radix, c) per
// image -> softmax over radix -> laid out as (radix, card, c), flattened to
// (N, radix * channels). radix 1: the sigmoid of the logits, (N, channels).
Tensor radix_softmax(const Tensor& logits, int64_t radix, int64_t cardinality);

}  // namespace neurn
