#pragma once
// What a run is: its effective settings, as canonical JSON, and their hash.
//
// A run's settings are everything that changes its result: the model
// variant (name, width, arch and the arch file's content, the initial
// weights' format and content hash, the input normalization), NeuRN and its
// options, source, seed, protocol, optimizer, batch size, epochs, early
// stopping and image size. Not in them: paths (a moved weights file is the
// same run), the targets (they are evaluated, not trained on), the device,
// loader threads and the evaluation batch size.
//
// The settings, dumped with sorted keys and no spaces, are hashed with
// SHA-256: the fingerprint. The run folder is named after the run id and the
// fingerprint's first 8 hex digits, and every record and checkpoint carries
// both the fingerprint and the settings, so a changed key can be named.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/trainer.h"

namespace neurn::experiments {

struct RunIdentity {
  std::string run_id;               // "resnet50@resnet50_imagenet+neurn/mnist/seed0"
  std::string variant;              // "resnet50@resnet50_imagenet"
  nlohmann::json settings;          // the effective settings (see above)
  std::string fingerprint;          // sha256 of the canonical settings, 64 hex digits
  std::string variant_fingerprint;  // the same without source, seed and the NeuRN flag: one Table 1 variant
  std::string folder;               // "resnet50@resnet50_imagenet+neurn_mnist_seed0-1a2b3c4d"
};

// The identity of `spec` in `cfg`. Hashes the weights and arch files when
// they exist (a missing file hashes as "missing": the sweep reports it).
RunIdentity run_identity(const ExperimentConfig& cfg, const RunSpec& spec);

// The canonical text of settings (sorted keys, no spaces) and its SHA-256.
std::string canonical_json(const nlohmann::json& j);
std::string settings_fingerprint(const nlohmann::json& settings);

// The keys (dotted: "optimizer.lr") whose values differ between two settings,
// as "optimizer.lr: 0.001 -> 0.01" ("(absent)" for a key one side lacks).
std::vector<std::string> changed_settings(const nlohmann::json& before, const nlohmann::json& now);

// SHA-256 of a file's content, remembered per (path, size, mtime) so a
// sweep hashes each weights file once. "" when the file cannot be read.
std::string file_sha256(const std::string& path);

}  // namespace neurn::experiments
