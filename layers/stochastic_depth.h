#pragma once
#include "framework/random.h"
#include "layers/module.h"

namespace neurn {

// Stochastic depth (Huang et al. 2016, "Deep Networks with Stochastic
// Depth"), torchvision's StochasticDepth(p, "row"): in training, each sample
// of the batch keeps the residual branch with probability 1 - p, scaled by
// 1 / (1 - p) (all zeros when p = 1), so the expectation is the identity;
// identity in eval. The caller adds the shortcut. Built from dropout's mask
// on a (N, 1, ..., 1) tensor of ones and a broadcast multiply, so the
// gradient is the same mask (checked in float64 in
// tests/models/test_backbones2_a.cpp). Draws from `gen` (the default
// generator when null; it must outlive the layer). Token "StochasticDepth".
class StochasticDepth : public Module {
 public:
  explicit StochasticDepth(double p, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;  // (N, ...) -> (N, ...)
  std::string type() const override { return "StochasticDepth"; }
  double p() const { return p_; }
  // A new rate (the PyTorch reference test turns it off for its training step).
  void set_p(double p);

 private:
  double p_;
  Generator* gen_;
};

}  // namespace neurn
