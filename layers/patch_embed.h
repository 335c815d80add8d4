#pragma once
#include <memory>

#include "layers/conv.h"
#include "layers/module.h"

namespace neurn {

// ViT patch embedding: a patch x patch convolution with stride patch, child
// "proj" (as timm), then (N, D, H/p, W/p) -> tokens (N, H/p * W/p, D).
// One layer in the trace: token "PatchEmbed".
class PatchEmbed : public Module {
 public:
  PatchEmbed(int64_t in_channels, int64_t dim, int64_t patch);
  Tensor forward(const Tensor& x) override;  // (N, C, H, W) -> (N, L, D)
  std::string type() const override { return "PatchEmbed"; }
  int64_t num_patches(int64_t h, int64_t w) const { return (h / patch_) * (w / patch_); }

 private:
  int64_t patch_;
  std::shared_ptr<Conv2d> proj_;
};

}  // namespace neurn
