#pragma once
// torchvision's segmentation models on a dilated ResNet-101 (output stride 8):
// fcn_resnet101 (Long et al. 2015's FCN head) and deeplabv3_resnet101 (Chen
// et al. 2017, ASPP head). Both output the "out" logits (N, classes, H, W),
// bilinearly upsampled to the input's H x W.
#include "models/registry.h"

namespace neurn {

// aux: the auxiliary FCN head on layer3 ("aux_classifier.*"), which
// torchvision's pretrained weights include (the registry entries build it).
// It only serves the training loss: see segmentation_aux_logits.
ModulePtr build_fcn_resnet101(const ModelOptions& options, bool aux = true);
ModulePtr build_deeplabv3_resnet101(const ModelOptions& options, bool aux = true);

// The auxiliary head's logits (N, classes, H, W) of `model`'s last
// training-mode forward: what torchvision returns as output["aux"]; its
// recipe adds 0.5 x their loss. Undefined in eval mode, without the head, or
// when `model` is not one of these segmentation models.
Tensor segmentation_aux_logits(const Module& model);

}  // namespace neurn
