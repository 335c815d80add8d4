#pragma once
#include "layers/module.h"

namespace neurn {

// Squeeze-and-excitation (Hu et al. 2018) as torchvision's
// SqueezeExcitation: x * scale(fc2(act(fc1(avgpool(x))))), with fc1, fc2 1x1
// convolutions with bias. Children "avgpool", "fc1", "fc2", "activation",
// "scale_activation" (so the state keys are fc1.*, fc2.* as in torchvision).
// A container: its children are traced, and the gating records "Multiply".
class SqueezeExcite : public Module {
 public:
  // activation: ReLU when null; scale_activation: Sigmoid when null.
  SqueezeExcite(int64_t channels, int64_t squeeze_channels, ModulePtr activation = nullptr,
                ModulePtr scale_activation = nullptr);
  Tensor forward(const Tensor& x) override;  // (N, C, H, W) -> (N, C, H, W)

 private:
  int64_t channels_;
  ModulePtr avgpool_, fc1_, fc2_, act_, scale_;
};

}  // namespace neurn
