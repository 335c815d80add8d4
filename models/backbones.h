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

// EfficientNet B0 with its compound-scaling coefficients (Tan & Le 2019):
// B1..B7 are {1.0, 1.1, 0.2}, {1.1, 1.2, 0.3}, {1.2, 1.4, 0.3}, {1.4, 1.8, 0.4},
// {1.6, 2.2, 0.4}, {1.8, 2.6, 0.5}, {2.0, 3.1, 0.5} (width, depth, dropout) at
// 240, 260, 300, 380, 456, 528, 600 pixels; torchvision's B5-B7 also use BN
// eps 1e-3, momentum 0.01 (all eight are registered in models/efficientnet.cpp).
struct EfficientNetScale {
  double width = 1.0;              // channels x width, rounded to multiples of 8
  double depth = 1.0;              // blocks per stage x depth, rounded up
  double dropout = 0.2;            // before the classifier, unless ModelOptions::dropout
  double stochastic_depth = 0.2;   // the last block's drop rate, linear from 0 (torchvision's schedule)
  double bn_eps = 1e-5;            // every batch norm's
  double bn_momentum = 0.1;        // PyTorch convention
};
ModulePtr build_efficientnet(const EfficientNetScale& scale, const ModelOptions& options);
ModulePtr build_efficientnet_b0(const ModelOptions& options);

// torchvision's Inception v3 (transform_input off); aux_logits adds the
// auxiliary classifier "AuxLogits" on Mixed_6e (training mode only, its
// logits kept by the model: see models/inception_v3.cpp).
ModulePtr build_inception_v3(const ModelOptions& options, bool aux_logits = false);
// The auxiliary logits (N, classes) of `model`'s last training-mode forward
// (undefined in eval or without the head); `model` must be an Inception v3.
// A trainer adds 0.4 x their loss, as torchvision's recipe does.
Tensor inception_v3_aux_logits(const Module& model);

// ShuffleNet v1 1.0x (Zhang et al. 2018) as megvii-model/ShuffleNet-Series
// builds it, with the paper's Table 1 channels for groups 1, 2, 3, 4 or 8.
ModulePtr build_shufflenet_v1(int64_t groups, const ModelOptions& options);

}  // namespace neurn
