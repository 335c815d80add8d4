#pragma once
// What the NAS commands (nas spos, nas autoformer) share: reading their YAML
// configs (a typed value with a default, a check that a mapping holds only
// known keys; errors name the file and section, `where`, and the key), and
// retraining the exported architecture through the experiment runner.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "experiments/config.h"
#include "experiments/sweep.h"
#include "framework/error.h"

namespace neurn::cli {

template <typename T>
T yaml_get(const YAML::Node& n, const char* key, T def, const std::string& where) {
  if (!n || !n[key]) return def;
  try {
    return n[key].as<T>();
  } catch (const YAML::Exception&) {
    NEURN_FAIL(where, ": ", key, " has the wrong type (", YAML::Dump(n[key]), ")");
  }
}

inline void yaml_only_keys(const YAML::Node& n, const std::vector<std::string>& keys, const std::string& where) {
  if (!n) return;
  NEURN_CHECK(n.IsMap(), where, " must be a mapping");
  for (auto it : n) {
    std::string k = it.first.as<std::string>();
    NEURN_CHECK(std::find(keys.begin(), keys.end(), k) != keys.end(), where, ": unknown key '", k, "'");
  }
}

// The settings of a NAS config that its finetune: section inherits.
struct NasFinetune {
  std::string method;      // "spos": the registry model and the messages' prefix
  std::string name;        // the NAS config's name
  std::string output_dir;  // the NAS config's output folder
  std::string data_root;
  std::string source;
  std::string stage;      // "retrain" / "finetune": the default run name's suffix and folder
  std::string arch_file;  // the exported architecture, relative to output_dir
};

// The finetune: section as an experiment config whose one model is the
// exported architecture (model `method` with arch OUTPUT/arch_file).
inline experiments::ExperimentConfig nas_finetune_config(const YAML::Node& finetune, const NasFinetune& n) {
  namespace fs = std::filesystem;
  NEURN_CHECK(finetune && finetune.IsMap(), n.method, " run: the config has no finetune: section");
  YAML::Node ft = YAML::Clone(finetune);
  NEURN_CHECK(!ft["models"], n.method, " run: finetune: must not list models (the exported architecture is the model)");
  if (!ft["name"]) ft["name"] = n.name + "_" + n.stage;
  if (!ft["output_dir"]) ft["output_dir"] = (fs::path(n.output_dir) / n.stage).string();
  if (!ft["data_root"] && !n.data_root.empty()) ft["data_root"] = n.data_root;
  if (!ft["sources"]) ft["sources"] = std::vector<std::string>{n.source};
  YAML::Node model;
  model["name"] = n.method;
  model["arch"] = (fs::path(n.output_dir) / n.arch_file).string();
  ft["models"].push_back(model);
  return experiments::parse_config(YAML::Dump(ft), "the finetune: section");
}

// Runs the finetune: section (resuming unless `fresh`); 1 if a run failed.
inline int run_nas_finetune(const YAML::Node& finetune, const NasFinetune& n, bool fresh) {
  experiments::ExperimentConfig cfg = nas_finetune_config(finetune, n);
  experiments::SweepOptions opt;
  opt.resume = !fresh;
  experiments::SweepSummary s = experiments::run_sweep(cfg, opt);
  std::cout << n.stage << " results: " << s.results_file << "\n";
  return s.failed > 0 ? 1 : 0;
}

}  // namespace neurn::cli
