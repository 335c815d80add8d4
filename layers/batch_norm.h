#pragma once
#include "layers/module.h"

namespace neurn {

struct BatchNormSpec {
  double eps = 1e-5;
  // PyTorch convention: r = (1 - momentum) r + momentum * batch statistic.
  // Keras's momentum m is PyTorch's 1 - m (Keras 0.99 = 0.01 here).
  double momentum = 0.1;
  bool affine = true;
  bool track_running_stats = true;
};

// Per-channel batch normalisation of (N, C, ...) with PyTorch's state names:
// parameters "weight" (ones), "bias" (zeros); buffers "running_mean" (zeros),
// "running_var" (ones), "num_batches_tracked" (int64 scalar). Training uses
// the batch statistics and updates the running ones; eval uses the running
// ones (or the batch's when they are not tracked). Token "BatchNorm".
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, const BatchNormSpec& spec = {});
  BatchNorm2d(int64_t channels, double eps, double momentum);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "BatchNorm"; }
  int64_t channels() const { return channels_; }
  const BatchNormSpec& spec() const { return spec_; }

 private:
  int64_t channels_;
  BatchNormSpec spec_;
};

}  // namespace neurn
