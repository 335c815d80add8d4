#pragma once
// Atrous spatial pyramid pooling (Chen et al., "Rethinking Atrous Convolution
// for Semantic Image Segmentation", 2017: DeepLabV3), as torchvision's
// models.segmentation.deeplabv3.ASPP builds it, with its state keys.
#include <vector>

#include "layers/module.h"
#include "layers/sequential.h"

namespace neurn {

// Bilinear resize (align_corners = false) as a traced layer: token "Upsample".
// (N, C, H, W) -> (N, C, out_h, out_w).
Tensor upsample_bilinear(const Tensor& x, int64_t out_h, int64_t out_w);

// (N, in, H, W) -> (N, out, H, W). Five parallel branches, concatenated and
// projected back to `out` channels:
//   convs.0: 1x1 conv, BN, ReLU
//   convs.1 .. convs.R: 3x3 conv with dilation = padding = rate, BN, ReLU (one per rate)
//   convs.R+1: global average pool, 1x1 conv, BN, ReLU, bilinear upsampling to H x W
//   project: 1x1 conv (5 out -> out), BN, ReLU, Dropout(dropout; torchvision 0.5)
// Convolutions have no bias. torchvision's DeepLabHead uses rates 12, 24, 36
// and out = 256.
class ASPP : public Module {
 public:
  ASPP(int64_t in, const std::vector<int64_t>& rates, int64_t out = 256, double dropout = 0.5);
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<Sequential> convs_;  // a list: its children run side by side, not in sequence
  std::shared_ptr<Sequential> project_;
};

}  // namespace neurn
