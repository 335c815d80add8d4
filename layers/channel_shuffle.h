#pragma once
#include "layers/module.h"

namespace neurn {

// ShuffleNet's channel shuffle: (N, g*k, H, W) viewed as (N, g, k, H, W),
// transposed to (N, k, g, H, W) and flattened back. Token "ChannelShuffle".
class ChannelShuffle : public Module {
 public:
  explicit ChannelShuffle(int64_t groups);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "ChannelShuffle"; }

 private:
  int64_t groups_;
};

}  // namespace neurn
