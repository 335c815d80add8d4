#include "layers/patch_embed.h"

#include "framework/ops/shape_ops.h"

namespace neurn {

PatchEmbed::PatchEmbed(int64_t in_channels, int64_t dim, int64_t patch) : patch_(patch) {
  NEURN_CHECK(patch > 0, "PatchEmbed: patch size must be positive, got ", patch);
  proj_ = register_module("proj", std::make_shared<Conv2d>(in_channels, dim, patch, patch));
}

Tensor PatchEmbed::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4 && x.size(2) % patch_ == 0 && x.size(3) % patch_ == 0, "PatchEmbed(patch ", patch_,
              "): expected (N, C, H, W) with H and W multiples of ", patch_, ", got ", shape_str(x.shape()));
  Tensor y = proj_->forward(x);              // (N, D, H/p, W/p)
  return transpose(flatten(y, 2, 3), 1, 2);  // (N, L, D)
}

}  // namespace neurn
