#pragma once
#include "layers/module.h"

namespace neurn {

struct InstanceNormSpec {
  double eps = 1e-5;
  double momentum = 0.1;  // PyTorch's convention, as BatchNormSpec
  // torch.nn.InstanceNorm2d's defaults: no affine, no running statistics.
  bool affine = false;
  bool track_running_stats = false;
};

// Per-(image, channel) normalisation of (N, C, H, W) (torch.nn.InstanceNorm2d)
// with torch's state names: parameters "weight" (ones), "bias" (zeros) when
// affine; buffers "running_mean" (zeros), "running_var" (ones) and
// "num_batches_tracked" (left at 0, as torch does) when tracking. Training (or not tracking) normalises
// with each plane's statistics and updates the running ones; eval with
// tracked statistics uses them. Token "InstanceNorm".
class InstanceNorm2d : public Module {
 public:
  explicit InstanceNorm2d(int64_t channels, const InstanceNormSpec& spec = {});
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "InstanceNorm"; }
  int64_t channels() const { return channels_; }
  const InstanceNormSpec& spec() const { return spec_; }

 private:
  int64_t channels_;
  InstanceNormSpec spec_;
};

}  // namespace neurn
