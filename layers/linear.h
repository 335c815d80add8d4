#pragma once
#include "layers/module.h"

namespace neurn {

// Fully connected: (..., in) -> (..., out). Parameters "weight" (out, in) and
// "bias" (out) with PyTorch's default init (as Conv2d). Token "Linear".
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Linear"; }
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  // Redraws weight and bias with PyTorch's default init.
  void reset_parameters();

 private:
  int64_t in_, out_;
};

}  // namespace neurn
