#pragma once
// Checkpoints: one safetensors file that carries the tensors and, in its
// __metadata__ ("neurn" key), the JSON metadata, written atomically
// (temporary file, fsync, rename). One file keeps tensors and metadata
// consistent whenever the process is killed. A copy of the metadata is also
// written beside it as <base>.json for people and scripts.
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>

#include "framework/serialize/safetensors.h"
#include "layers/module.h"

namespace neurn::experiments {

struct Checkpoint {
  NamedTensors tensors;
  nlohmann::json meta;
  // The tensors whose names start with `prefix`, with the prefix removed.
  NamedTensors with_prefix(const std::string& prefix) const;
};

// `base` without extension: writes base.safetensors, then base.json.
void save_checkpoint(const std::string& base, const NamedTensors& tensors, const nlohmann::json& meta);
bool checkpoint_exists(const std::string& base);
Checkpoint load_checkpoint(const std::string& base);
void remove_checkpoint(const std::string& base);

// The module's state dict (parameters and buffers, PyTorch names), names
// prefixed with `prefix`.
NamedTensors module_state(const Module& m, const std::string& prefix);
// Copies every tensor of the module's state dict from `tensors` (named with
// `prefix`); a missing tensor or a shape mismatch is an error naming it.
void load_module_state(Module& m, const NamedTensors& tensors, const std::string& prefix);
// Initial weights (ImageNet weights exported from torchvision as safetensors,
// or a Keras Applications .h5 file: models/keras_weights.h): every
// tensor whose name and shape match is copied; tensors whose shape differs
// (the classifier head for 10 classes) keep their initial values. Reports to
// `log`; an error when nothing matches.
void load_initial_weights(Module& m, const std::string& path, std::ostream& log);

}  // namespace neurn::experiments
