#include "experiments/run_identity.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <tuple>

#include "datasets/checksum.h"
#include "datasets/transforms.h"
#include "framework/ops/neurn.h"

namespace neurn::experiments {

using nlohmann::json;
namespace fs = std::filesystem;

std::string file_sha256(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return "";
  auto size = fs::file_size(path, ec);
  auto mtime = fs::last_write_time(path, ec).time_since_epoch().count();
  static std::mutex mu;
  static std::map<std::tuple<std::string, uintmax_t, int64_t>, std::string> cache;
  auto key = std::make_tuple(fs::absolute(path, ec).string(), size, static_cast<int64_t>(mtime));
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  data::Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  std::string hex = h.hex();
  std::lock_guard<std::mutex> lock(mu);
  cache[key] = hex;
  return hex;
}

std::string canonical_json(const json& j) {
  // nlohmann's objects are sorted maps: dump() is canonical.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string settings_fingerprint(const json& settings) {
  std::string text = canonical_json(settings);
  return data::sha256_hex(text.data(), text.size());
}

namespace {

void flatten(const json& j, const std::string& prefix, std::map<std::string, json>& out) {
  if (j.is_object() && !j.empty()) {
    for (auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    out[prefix] = j;
  }
}

}  // namespace

RunIdentity run_identity(const ExperimentConfig& cfg, const RunSpec& spec) {
  RunIdentity id;
  id.run_id = spec.run_id();
  id.variant = spec.model.variant();
  const ModelSpec& m = spec.model;
  data::InputNormalization norm = data::input_normalization(effective_normalization(cfg, m));
  json model = {{"name", m.name}, {"width", m.width}, {"normalize", norm.mode}};
  if (!m.arch.empty()) {
    model["arch"] = m.arch;
    // A file names its content: the same path with another architecture in
    // it is another run.
    std::error_code ec;
    if (fs::is_regular_file(m.arch, ec)) model["arch"] = "sha256:" + file_sha256(m.arch);
  }
  if (!m.weights.empty()) {
    std::string h = file_sha256(m.weights);
    model["weights"] = {{"format", m.weights_format}, {"sha256", h.empty() ? std::string("missing") : h}};
  }
  const FrontSpec front = effective_front(cfg, spec);
  json s = {{"model", model},
            {"neurn", front.kind == "neurn"},
            {"source", spec.source},
            {"seed", spec.seed},
            {"image_size", run_image_size(cfg, spec)},
            {"protocol",
             {{"name", cfg.protocol.name},
              {"train_images", cfg.protocol.train_images},
              {"val_images", cfg.protocol.val_images},
              {"test_images", cfg.protocol.test_images}}},
            {"batch_size", cfg.batch_size},
            {"max_epochs", cfg.max_epochs},
            {"early_stopping",
             {{"metric", cfg.early_stopping.metric},
              {"patience", cfg.early_stopping.patience},
              {"min_delta", cfg.early_stopping.min_delta}}},
            {"precision", cfg.precision}};
  json opt = {{"name", cfg.optimizer.name}, {"lr", cfg.optimizer.lr}, {"weight_decay", cfg.optimizer.weight_decay}};
  if (cfg.optimizer.name == "sgd") {
    opt["momentum"] = cfg.optimizer.momentum;
  } else {
    opt["beta1"] = cfg.optimizer.beta1;
    opt["beta2"] = cfg.optimizer.beta2;
    opt["eps"] = cfg.optimizer.eps;
  }
  s["optimizer"] = opt;
  // Only the runs with a front depend on its options (with the layer's
  // defaults filled in, so `k: 3` written out and left to its default are
  // the same run); a run without one stays the same run when they change.
  // NeuRN's are where the runs before `fronts:` had them, so those keep
  // their fingerprints; the label names the run, it does not change it.
  if (front.kind == "neurn") s["neurn_options"] = resolved_front_options(front);
  if (front.kind != "neurn" && !front.none())
    s["front"] = {{"kind", front.kind}, {"options", resolved_front_options(front)}};
  id.settings = s;
  id.fingerprint = settings_fingerprint(s);

  json v = s;
  v.erase("source");
  v.erase("seed");
  v.erase("neurn");
  v.erase("neurn_options");
  v.erase("front");
  id.variant_fingerprint = settings_fingerprint(v);
  id.folder = spec.dir_name() + "-" + id.fingerprint.substr(0, 8);
  return id;
}

std::vector<std::string> changed_settings(const json& before, const json& now) {
  std::map<std::string, json> a, b;
  flatten(before, "", a);
  flatten(now, "", b);
  std::map<std::string, std::pair<std::string, std::string>> diff;
  for (auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end())
      diff[k] = {v.dump(), "(absent)"};
    else if (it->second != v)
      diff[k] = {v.dump(), it->second.dump()};
  }
  for (auto& [k, v] : b)
    if (!a.count(k)) diff[k] = {"(absent)", v.dump()};
  std::vector<std::string> out;
  for (auto& [k, p] : diff) out.push_back(k + ": " + p.first + " -> " + p.second);
  return out;
}

}  // namespace neurn::experiments
