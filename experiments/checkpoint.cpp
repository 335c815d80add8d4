#include "experiments/checkpoint.h"

#include <filesystem>
#include <ostream>

#include "experiments/results.h"
#include "framework/error.h"
#include "layers/state_io.h"
#include "models/keras_weights.h"

namespace neurn::experiments {

namespace fs = std::filesystem;

NamedTensors Checkpoint::with_prefix(const std::string& prefix) const {
  NamedTensors out;
  for (auto& [k, v] : tensors)
    if (k.rfind(prefix, 0) == 0) out.push_back({k.substr(prefix.size()), v});
  return out;
}

void save_checkpoint(const std::string& base, const NamedTensors& tensors, const nlohmann::json& meta) {
  std::string text = meta.dump(2);
  write_file_atomic(base + ".safetensors", encode_safetensors(tensors, {{"neurn", meta.dump()}}));
  write_file_atomic(base + ".json", text + "\n");
}

bool checkpoint_exists(const std::string& base) { return fs::exists(base + ".safetensors"); }

Checkpoint load_checkpoint(const std::string& base) {
  std::string path = base + ".safetensors";
  std::map<std::string, std::string> md;
  Checkpoint ck;
  ck.tensors = load_safetensors(path, &md);
  auto it = md.find("neurn");
  NEURN_CHECK(it != md.end(), path, ": no neurn metadata in the header (not a checkpoint written by neurn)");
  try {
    ck.meta = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    NEURN_FAIL(path, ": the neurn metadata is not valid JSON (", e.what(), ")");
  }
  return ck;
}

void remove_checkpoint(const std::string& base) {
  std::error_code ec;
  fs::remove(base + ".safetensors", ec);
  fs::remove(base + ".json", ec);
}

NamedTensors module_state(const Module& m, const std::string& prefix) {
  NamedTensors out;
  for (auto& [k, v] : m.state_dict()) out.push_back({prefix + k, v});
  return out;
}

void load_module_state(Module& m, const NamedTensors& tensors, const std::string& prefix) {
  NamedTensors mine;
  for (auto& [k, v] : tensors)
    if (k.rfind(prefix, 0) == 0) mine.push_back({k.substr(prefix.size()), v});
  load_state(m, mine, /*strict=*/true, "checkpoint");
}

void load_initial_weights(Module& m, const std::string& path, std::ostream& log) {
  NEURN_CHECK(fs::exists(path), "initial weights ", path, " do not exist");
  // Keras Applications files (.h5) through the Keras name mapping; anything
  // else is safetensors with PyTorch names.
  LoadReport rep = is_keras_weights_file(path) ? load_keras_weights(m, path, /*strict=*/false)
                                               : load_state_file(m, path, /*strict=*/false);
  NEURN_CHECK(!rep.loaded.empty(), path, ": no tensor matches the model by name and shape:\n", rep.str());
  log << "  initial weights " << path << ": " << rep.loaded.size() << " of " << m.state_dict().size()
      << " tensors loaded";
  if (!rep.mismatched.empty()) {
    log << "; left as initialised (shape differs):";
    for (auto& x : rep.mismatched) log << " " << x << ";";
  }
  if (!rep.missing.empty()) log << " " << rep.missing.size() << " not in the file";
  log << "\n";
}

}  // namespace neurn::experiments
