#include "experiments/checkpoint.h"

#include <filesystem>
#include <ostream>

#include "experiments/results.h"
#include "framework/error.h"

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
  std::map<std::string, const Tensor*> by_name;
  for (auto& [k, v] : tensors) by_name[k] = &v;
  NoGradGuard ng;
  for (auto& [k, dst] : m.state_dict()) {
    auto it = by_name.find(prefix + k);
    NEURN_CHECK(it != by_name.end(), "checkpoint has no tensor '", prefix + k, "'");
    NEURN_CHECK(it->second->shape() == dst.shape(), "checkpoint tensor '", prefix + k, "' has shape ",
                shape_str(it->second->shape()), ", the model expects ", shape_str(dst.shape()));
    dst.copy_(*it->second);
  }
}

void load_initial_weights(Module& m, const std::string& path, std::ostream& log) {
  NEURN_CHECK(fs::exists(path), "initial weights ", path, " do not exist");
  NamedTensors file = load_safetensors(path);
  std::map<std::string, const Tensor*> by_name;
  for (auto& [k, v] : file) by_name[k] = &v;
  NoGradGuard ng;
  int64_t loaded = 0;
  std::string kept, missing;
  auto state = m.state_dict();
  for (auto& [k, dst] : state) {
    auto it = by_name.find(k);
    if (it == by_name.end()) {
      missing += " " + k;
    } else if (it->second->shape() != dst.shape()) {
      kept += " " + k + " " + shape_str(dst.shape()) + " (file " + shape_str(it->second->shape()) + ")";
    } else {
      dst.copy_(*it->second);
      ++loaded;
    }
  }
  NEURN_CHECK(loaded > 0, path, ": no tensor matches the model by name and shape (model tensors:",
              state.empty() ? std::string(" none") : " " + state.front().first + " ...", ")");
  log << "  initial weights " << path << ": " << loaded << " of " << state.size() << " tensors loaded";
  if (!kept.empty()) log << "; left as initialised (shape differs):" << kept;
  if (!missing.empty()) log << "; not in the file:" << missing;
  log << "\n";
}

}  // namespace neurn::experiments
