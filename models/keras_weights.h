#pragma once
// Keras Applications weight files (.h5, e.g. resnet50v2_weights_tf_dim_
// ordering_tf_kernels.h5) loaded into the neurn models defined after Keras
// (resnet50v2, mobilenet, xception, nasnetmobile, ...), read with libhdf5
// (framework/serialize/hdf5.h). The mapping is generic over Keras layer names
// (docs/models.md, "Weights"):
// - a neurn key MODULE.PATH.PARAM belongs to the Keras layer MODULE_PATH (the
//   dots of the module path become underscores: conv2.block1.preact_bn ->
//   conv2_block1_preact_bn); the children "depthwise" and "pointwise" of a
//   SeparableConv2d belong to their parent's layer;
// - the Keras weight of a parameter: weight -> kernel, depthwise_kernel
//   (depthwise children and depthwise convs), pointwise_kernel (pointwise
//   children) or gamma (batch norms); bias -> bias or beta; running_mean ->
//   moving_mean; running_var -> moving_variance; num_batches_tracked has none;
// - layouts: a conv kernel (kh, kw, in, out) -> (out, in, kh, kw); a
//   depthwise kernel (kh, kw, C, M) -> (C * M, 1, kh, kw); a dense kernel
//   (in, out) -> (out, in); a 1x1 conv kernel read by a Linear layer
//   (MobileNet's conv_preds) -> (out, in).
// A file's dataset "LAYER/.../WEIGHT:0" is weight WEIGHT of layer LAYER (the
// first and last components of its path), as Keras 2 writes them.
//
// Two refinements of the rule above:
// - Keras's auto-names: models whose unnamed layers carry the names a fresh
//   Keras session gives them (conv2d, conv2d_1, ...: xception, inceptionv3,
//   inceptionresnetv2) also read files that count them from 1 (conv2d_1,
//   conv2d_2, ...: Keras 2.0-2.2, which wrote the Keras Applications files):
//   when the model has a layer BASE and the file has none but has BASE_1, the
//   file's BASE_k is read as BASE_(k-1).
// - EfficientNet (torchvision's keys, models/efficientnet.cpp) takes Keras's
//   EfficientNetB0-B7 layer names (keras_layer_for_efficientnet below); the
//   file's "normalization" layer (mean, variance, count: the input
//   normalization, which neurn's trainer applies) is listed in `skipped`,
//   not loaded and not an error.
#include <string>
#include <vector>

#include "layers/module.h"
#include "layers/state_io.h"

namespace neurn {

struct KerasConversion {
  NamedTensors tensors;              // neurn names, neurn layouts
  std::vector<std::string> unused;   // Keras weights that no neurn tensor took ("layer/weight")
  std::vector<std::string> missing;  // neurn keys without a Keras weight (num_batches_tracked not counted)
  std::vector<std::string> skipped;  // Keras weights deliberately not loaded ("normalization/mean")
};

// The Keras EfficientNet layer of a module of torchvision's EfficientNet
// ("features.2.1.block.1.0" -> "block2b_dwconv"); `expands` says whether that
// block has an expansion convolution (block.0 is then expand_conv). Empty
// when the path is not one of EfficientNet's layers.
std::string keras_layer_for_efficientnet(const std::string& module, bool expands);

// Converts the datasets of a Keras weight file (read_hdf5_datasets) for `model`.
KerasConversion keras_to_neurn(const Module& model, const std::vector<std::pair<std::string, Tensor>>& datasets,
                               const std::string& file = "<keras>");

// Reads `path` and loads it into `model` (strict: every neurn tensor but
// num_batches_tracked must come from the file with its shape, else nothing is
// changed and the error lists the problems; not strict: what matches is loaded,
// a head of another class count stays as initialised, as load_state).
LoadReport load_keras_weights(Module& model, const std::string& path, bool strict = true);

// A file name that says Keras weights (.h5, .hdf5, .keras).
bool is_keras_weights_file(const std::string& path);

}  // namespace neurn
