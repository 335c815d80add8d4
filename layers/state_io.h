#pragma once
// A Module's state (parameters and buffers, PyTorch names) to and from
// safetensors, so a torchvision state dict saved as safetensors loads
// without renaming.
#include <string>
#include <vector>

#include "framework/serialize/safetensors.h"
#include "layers/module.h"

namespace neurn {

struct LoadReport {
  std::vector<std::string> loaded;
  std::vector<std::string> missing;     // in the model, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the model
  std::vector<std::string> mismatched;  // "name: file (1000, 2048), model (10, 2048)"
  // Loaded from a tensor of another shape that the owning module adapted
  // (Module::adapt_state): "name: file (1, 197, 768) -> model (1, 5, 768)".
  std::vector<std::string> adapted;
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;  // one line per problem, or "all N tensors loaded"
};

// A tensor whose shape differs from the model's is offered to the module that
// owns it (Module::adapt_state); what it adapts counts as loaded (and is
// listed in `adapted`), what it refuses is mis-shaped.
// strict: every key must match in name and shape, or nothing is changed and
// the error lists every problem. Not strict: copies the tensors that match
// (converting dtype and device) and reports the rest: how a pretrained
// backbone gets a new head (fc.weight mismatched, kept as initialised).
LoadReport load_state(Module& model, const NamedTensors& state, bool strict = true,
                      const std::string& source = "<state>");
LoadReport load_state_file(Module& model, const std::string& path, bool strict = true);

// Writes model.state_dict() (parameters and buffers) as safetensors.
void save_state(const Module& model, const std::string& path, const std::map<std::string, std::string>& metadata = {});

}  // namespace neurn
