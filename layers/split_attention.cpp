#include "layers/split_attention.h"

#include <algorithm>

#include "framework/error.h"
#include "layers/activation.h"
#include "layers/batch_norm.h"
#include "layers/conv.h"

namespace neurn {

Tensor radix_softmax(const Tensor& logits, int64_t radix, int64_t cardinality) {
  NEURN_CHECK(radix >= 1 && cardinality >= 1, "radix_softmax: radix and cardinality must be >= 1, got ", radix, ", ",
              cardinality);
  const int64_t n = logits.size(0), total = logits.numel() / std::max<int64_t>(n, 1);
  NEURN_CHECK(total % (radix * cardinality) == 0, "radix_softmax: ", total,
              " logits per image do not split into radix ", radix, " x cardinality ", cardinality);
  if (radix == 1) return sigmoid(reshape(logits, {n, total}));
  Tensor a = reshape(logits, {n, cardinality, radix, total / (radix * cardinality)});  // (N, card, radix, c)
  a = softmax(transpose(a, 1, 2), 1);                                                 // (N, radix, card, c)
  return reshape(a, {n, total});                                                      // (N, radix * channels)
}

SplitAttentionConv2d::SplitAttentionConv2d(const SplitAttentionSpec& s) : spec_(s) {
  NEURN_CHECK(s.in_channels >= 1 && s.channels >= 1, "SplitAttentionConv2d: channels must be >= 1, got in ",
              s.in_channels, ", out ", s.channels);
  NEURN_CHECK(s.radix >= 1 && s.cardinality >= 1, "SplitAttentionConv2d: radix and cardinality must be >= 1, got ",
              s.radix, ", ", s.cardinality);
  NEURN_CHECK(s.channels % s.cardinality == 0 && s.in_channels % s.cardinality == 0,
              "SplitAttentionConv2d: cardinality ", s.cardinality, " must divide in ", s.in_channels, " and out ",
              s.channels);
  inter_ = std::max<int64_t>(s.in_channels * s.radix / s.reduction_factor, 32);
  conv_ = register_module("conv", std::make_shared<Conv2d>(s.in_channels, s.channels * s.radix, s.kernel, s.stride,
                                                           s.padding, s.dilation, s.cardinality * s.radix, s.bias));
  bn0_ = register_module("bn0", std::make_shared<BatchNorm2d>(s.channels * s.radix));
  relu_ = register_module("relu", std::make_shared<ReLU>());
  fc1_ = register_module("fc1", std::make_shared<Conv2d>(s.channels, inter_, 1, 1, 0, 1, s.cardinality, true));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(inter_));
  fc2_ = register_module("fc2",
                         std::make_shared<Conv2d>(inter_, s.channels * s.radix, 1, 1, 0, 1, s.cardinality, true));
}

Tensor SplitAttentionConv2d::forward(const Tensor& x) {
  const int64_t r = spec_.radix, c = spec_.channels;
  Tensor y = (*relu_)((*bn0_)((*conv_)(x)));  // (N, radix * C, H', W')
  const int64_t n = y.size(0);
  std::vector<Tensor> splits = r > 1 ? chunk(y, r, 1) : std::vector<Tensor>{y};  // radix x (N, C, H', W')
  Tensor gap = splits[0];
  for (int64_t i = 1; i < r; ++i) gap = add(gap, splits[i]);
  if (r > 1) LayerTrace::record("Add");
  gap = adaptive_avg_pool2d(gap, 1, 1);  // (N, C, 1, 1)
  LayerTrace::record("GlobalAvgPool");
  gap = (*relu_)((*bn1_)((*fc1_)(gap)));                       // (N, inter, 1, 1)
  Tensor atten = radix_softmax((*fc2_)(gap), r, spec_.cardinality);  // (N, radix * C)
  LayerTrace::record(r > 1 ? "Softmax" : "Sigmoid");
  atten = reshape(atten, {n, r * c, 1, 1});
  std::vector<Tensor> weights = r > 1 ? chunk(atten, r, 1) : std::vector<Tensor>{atten};  // radix x (N, C, 1, 1)
  Tensor out = mul(weights[0], splits[0]);
  for (int64_t i = 1; i < r; ++i) out = add(out, mul(weights[i], splits[i]));
  LayerTrace::record("Multiply");
  if (r > 1) LayerTrace::record("Add");
  return out;
}

}  // namespace neurn
