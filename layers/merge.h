#pragma once
// The two ways branches meet: residual addition and channel concatenation.
// Both record a trace token ("Add", "Concat"), since they are layers in the
// Keras graphs the paper aligns even where PyTorch writes them inline.
#include <vector>

#include "layers/module.h"

namespace neurn {

// a + b (same shape). Token "Add".
Tensor residual_add(const Tensor& a, const Tensor& b);
// Concatenation along the channel axis 1 of (N, C_i, ...) tensors. Token "Concat".
Tensor channel_concat(const std::vector<Tensor>& xs);

// y = body(x) + shortcut(x), or body(x) + x without a shortcut. Children
// "body" and "shortcut".
class Residual : public Module {
 public:
  explicit Residual(ModulePtr body, ModulePtr shortcut = nullptr);
  Tensor forward(const Tensor& x) override;

 private:
  ModulePtr body_, shortcut_;
};

}  // namespace neurn
