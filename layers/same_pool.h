#pragma once
// Keras/TensorFlow "same" pooling (MaxPooling2D / AveragePooling2D with
// padding="same"): output ceil(H / stride) x ceil(W / stride), the window
// padding split with the odd pixel after (bottom/right), as Conv2dSpec::same.
// Padded positions never win the max (padded with -inf) and are not counted
// in the average (Keras divides by the pixels inside the image; PyTorch's
// count_include_pad = false, which AvgPool2d cannot do for uneven padding).
#include "layers/module.h"

namespace neurn {

enum class PoolKind { Max, Avg };

// Token "MaxPool" or "AvgPool" (the same layers as the PyTorch-padded pools).
class SamePool2d : public Module {
 public:
  SamePool2d(PoolKind kind, int64_t kernel, int64_t stride);
  Tensor forward(const Tensor& x) override;  // (N, C, H, W) -> (N, C, ceil(H / s), ceil(W / s))
  std::string type() const override { return kind_ == PoolKind::Max ? "MaxPool" : "AvgPool"; }

 private:
  PoolKind kind_;
  int64_t kernel_, stride_;
};

}  // namespace neurn
