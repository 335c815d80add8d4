#pragma once
// torchvision's bottleneck ResNet family from one builder: ResNet-50/101/152,
// Wide ResNet (width_per_group 128), ResNeXt (groups 32, width_per_group 4 or
// 8), and the dilated backbones of the segmentation models
// (replace_stride_with_dilation). The state keys are torchvision's:
// conv1.weight, bn1.*, layer1.0.conv1.weight, layer1.0.downsample.0.weight,
// ..., fc.weight, fc.bias.
#include <array>
#include <memory>
#include <vector>

#include "layers/sequential.h"
#include "models/registry.h"

namespace neurn {

struct ResNetSpec {
  std::vector<int64_t> blocks{3, 4, 6, 3};  // bottlenecks per stage (4 stages)
  int64_t groups = 1;                       // of the 3x3 convolutions (ResNeXt: 32)
  // Channels per group of the bottleneck: its 3x3 convolution has
  // planes * width_per_group / 64 * groups channels (torchvision's base_width)
  int64_t width_per_group = 64;
  // For stages 2, 3, 4: keep the resolution and dilate the 3x3 convolutions
  // instead of striding (torchvision's replace_stride_with_dilation).
  std::array<bool, 3> replace_stride_with_dilation{false, false, false};
};

// The stem and the four stages, each a module with torchvision's names and
// init (He normal fan_out convolutions, BN 1 and 0), for encoders that tap
// the stages (segmentation backbones, MiDaS): register them under the names
// you need. The stem's forward is conv1 -> bn1 -> relu -> maxpool.
struct ResNetParts {
  ModulePtr conv1, bn1, relu, maxpool;           // the stem
  std::array<std::shared_ptr<Sequential>, 4> layers;  // layer1 .. layer4
  std::array<int64_t, 4> channels{};             // output channels of layer1 .. layer4 (256 ... 2048 at 64/group)
};
ResNetParts build_resnet_parts(const ResNetSpec& spec, int64_t in_channels);

// The classifier: conv1, bn1, relu, maxpool, layer1-4, avgpool, flatten,
// (dropout when options.dropout > 0), fc. The fc has PyTorch's default init,
// as in torchvision.
ModulePtr build_resnet(const ResNetSpec& spec, const ModelOptions& options);

}  // namespace neurn
