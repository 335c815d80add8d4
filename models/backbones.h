#pragma once
// The builders of the built-in architectures (each defined and registered
// in its own file with NEURN_REGISTER_MODEL). Use build_model(name, options) rather than
// these directly: it validates the options and adds the front module.
#include <vector>

#include "models/registry.h"

namespace neurn {

ModulePtr build_digits_convnet(const ModelOptions& options);

// VGG from a configuration: channel counts, 0 for a 2x2 max pooling.
ModulePtr build_vgg(const std::vector<int64_t>& cfg, const ModelOptions& options);
ModulePtr build_vgg19(const ModelOptions& options);

// torchvision's bottleneck ResNet with the given blocks per stage (3, 4, 6, 3: ResNet50).
ModulePtr build_resnet_bottleneck(const std::vector<int64_t>& blocks, const ModelOptions& options);
ModulePtr build_resnet50(const ModelOptions& options);

// Keras's pre-activation ResNetV2 with the given blocks per stack.
ModulePtr build_resnet_v2(const std::vector<int64_t>& blocks, const ModelOptions& options);
ModulePtr build_resnet50v2(const ModelOptions& options);

// torchvision's DenseNet: growth rate, layers per dense block, initial features.
ModulePtr build_densenet(int64_t growth, const std::vector<int64_t>& blocks, int64_t init_features,
                         const ModelOptions& options);
ModulePtr build_densenet121(const ModelOptions& options);

ModulePtr build_mobilenet(const ModelOptions& options);     // Keras MobileNet v1, alpha = width
ModulePtr build_mobilenet_v2(const ModelOptions& options);  // torchvision, width_mult = width

}  // namespace neurn
