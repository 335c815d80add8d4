#include "experiments/results.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "framework/error.h"

namespace neurn::experiments {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// JSON has no NaN or infinity: non-finite numbers are stored as null and read
// back as NaN (a diverged loss must survive the round trip).
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double get_num(const json& j, const char* key) {
  NEURN_CHECK(j.contains(key), "missing field '", key, "'");
  const json& v = j.at(key);
  if (v.is_null()) return std::nan("");
  NEURN_CHECK(v.is_number(), "field '", key, "' must be a number, got ", v.type_name());
  return v.get<double>();
}
template <typename T>
T get(const json& j, const char* key) {
  NEURN_CHECK(j.contains(key), "missing field '", key, "'");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    NEURN_FAIL("field '", key, "' has the wrong type (", j.at(key).type_name(), ")");
  }
}
template <typename T>
T get_or(const json& j, const char* key, T def) {
  return j.contains(key) ? get<T>(j, key) : def;
}

json split_to_json(const SplitMetrics& m) {
  json pc = json::array();
  for (double v : m.per_class) pc.push_back(num(v));
  return {{"domain", m.domain}, {"images", m.images}, {"accuracy", num(m.accuracy)},
          {"per_class", pc},    {"confusion", m.confusion}};
}

SplitMetrics split_from_json(const json& j) {
  NEURN_CHECK(j.is_object(), "a split's metrics must be an object");
  SplitMetrics m;
  m.domain = get<std::string>(j, "domain");
  m.images = get<int64_t>(j, "images");
  m.accuracy = get_num(j, "accuracy");
  if (j.contains("per_class")) {
    NEURN_CHECK(j.at("per_class").is_array(), "field 'per_class' must be an array, got ", j.at("per_class").type_name());
    for (auto& v : j.at("per_class")) {
      NEURN_CHECK(v.is_null() || v.is_number(), "field 'per_class' holds a ", v.type_name(), " (expected numbers)");
      m.per_class.push_back(v.is_null() ? std::nan("") : v.get<double>());
    }
  }
  m.confusion = get_or<std::vector<std::vector<int64_t>>>(j, "confusion", {});
  return m;
}

}  // namespace

std::string record_to_json(const RunRecord& r) {
  json hist = json::array();
  for (auto& e : r.history)
    hist.push_back({{"epoch", e.epoch},
                    {"train_loss", num(e.train_loss)},
                    {"train_acc", num(e.train_acc)},
                    {"val_acc", num(e.val_acc)},
                    {"seconds", num(e.seconds)},
                    {"images_per_second", num(e.images_per_second)}});
  json targets = json::object();
  for (auto& [d, m] : r.targets) targets[d] = split_to_json(m);
  json j = {{"run_id", r.run_id},
            {"experiment", r.experiment},
            {"model", r.model},
            {"neurn", r.neurn},
            // A record that only says neurn (as code before fronts wrote
            // them) has the default NeuRN in front.
            {"front", r.neurn && r.front_kind == "none" ? json{{"kind", "neurn"}, {"label", "neurn"}}
                                                       : json{{"kind", r.front_kind}, {"label", r.front}}},
            {"source", r.source},
            {"seed", r.seed},
            {"status", r.status},
            {"message", r.message},
            {"epochs_run", r.epochs_run},
            {"best_epoch", r.best_epoch},
            {"best_val_acc", num(r.best_val_acc)},
            {"source_test", split_to_json(r.source_test)},
            {"targets", targets},
            {"skipped_targets", r.skipped_targets},
            {"history", hist},
            {"parameters", r.parameters},
            {"wall_seconds", num(r.wall_seconds)},
            {"device", r.device},
            {"code_version", r.code_version},
            {"finished_at", r.finished_at},
            {"config", r.config_yaml}};
  if (!r.fingerprint.empty()) {
    j["variant"] = r.variant;
    j["fingerprint"] = r.fingerprint;
    j["variant_fingerprint"] = r.variant_fingerprint;
    j["settings"] = r.settings_json.empty() ? json(nullptr) : json::parse(r.settings_json);
  }
  j["normalize"] = r.normalize;
  if (!r.data_sources.empty()) j["data_sources"] = r.data_sources;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {
RunRecord parse_record(const std::string& line);
}

// Every value of the wrong JSON type becomes a neurn::Error, never a
// json::exception that no command catches (load_results reports it with the
// file and line and skips the record).
RunRecord record_from_json(const std::string& line) {
  try {
    return parse_record(line);
  } catch (const json::exception& e) {
    NEURN_FAIL("a field has the wrong type or value (", e.what(), ")");
  }
}

namespace {
RunRecord parse_record(const std::string& line) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::parse_error& e) {
    NEURN_FAIL("not valid JSON (", e.what(), ")");
  }
  NEURN_CHECK(j.is_object(), "a record must be a JSON object, got ", j.type_name());
  RunRecord r;
  r.run_id = get<std::string>(j, "run_id");
  r.experiment = get_or<std::string>(j, "experiment", "");
  r.model = get<std::string>(j, "model");
  r.neurn = get<bool>(j, "neurn");
  r.front_kind = r.neurn ? "neurn" : "none";
  r.front = r.neurn ? "neurn" : "";
  if (j.contains("front")) {
    const json& f = j.at("front");
    NEURN_CHECK(f.is_object(), "front must be an object {kind, label}, got ", f.type_name());
    r.front_kind = get<std::string>(f, "kind");
    r.front = get<std::string>(f, "label");
    NEURN_CHECK((r.front_kind == "neurn") == r.neurn, "front kind '", r.front_kind, "' disagrees with neurn: ",
                r.neurn ? "true" : "false");
    NEURN_CHECK((r.front_kind == "none") == r.front.empty(), "front label '", r.front, "' does not fit kind '",
                r.front_kind, "'");
  }
  r.source = get<std::string>(j, "source");
  r.seed = get<uint64_t>(j, "seed");
  r.status = get<std::string>(j, "status");
  NEURN_CHECK(r.status == "ok" || r.status == "diverged", "unknown status '", r.status,
              "' (expected ok or diverged)");
  r.message = get_or<std::string>(j, "message", "");
  r.epochs_run = get_or<int>(j, "epochs_run", 0);
  r.best_epoch = get_or<int>(j, "best_epoch", 0);
  r.best_val_acc = j.contains("best_val_acc") ? get_num(j, "best_val_acc") : 0.0;
  if (j.contains("source_test")) r.source_test = split_from_json(j.at("source_test"));
  if (j.contains("targets")) {
    NEURN_CHECK(j.at("targets").is_object(), "field 'targets' must be an object");
    for (auto& [d, m] : j.at("targets").items()) r.targets[d] = split_from_json(m);
  }
  r.skipped_targets = get_or<std::map<std::string, std::string>>(j, "skipped_targets", {});
  if (j.contains("history")) {
    NEURN_CHECK(j.at("history").is_array(), "field 'history' must be an array, got ", j.at("history").type_name());
    for (auto& e : j.at("history")) {
      NEURN_CHECK(e.is_object(), "field 'history' holds a ", e.type_name(), " (expected objects)");
      EpochLog l;
      l.epoch = get<int>(e, "epoch");
      l.train_loss = get_num(e, "train_loss");
      l.train_acc = get_num(e, "train_acc");
      l.val_acc = get_num(e, "val_acc");
      l.seconds = e.contains("seconds") ? get_num(e, "seconds") : 0.0;
      l.images_per_second = e.contains("images_per_second") ? get_num(e, "images_per_second") : 0.0;
      r.history.push_back(l);
    }
  }
  r.parameters = get_or<int64_t>(j, "parameters", 0);
  r.wall_seconds = j.contains("wall_seconds") ? get_num(j, "wall_seconds") : 0.0;
  r.device = get_or<std::string>(j, "device", "");
  r.code_version = get_or<std::string>(j, "code_version", "");
  r.finished_at = get_or<std::string>(j, "finished_at", "");
  r.config_yaml = get_or<std::string>(j, "config", "");
  r.variant = get_or<std::string>(j, "variant", "");
  r.fingerprint = get_or<std::string>(j, "fingerprint", "");
  r.variant_fingerprint = get_or<std::string>(j, "variant_fingerprint", "");
  if (j.contains("settings") && !j.at("settings").is_null()) {
    NEURN_CHECK(j.at("settings").is_object(), "field 'settings' must be an object");
    r.settings_json = j.at("settings").dump();
  }
  r.normalize = get_or<std::string>(j, "normalize", "none");
  r.data_sources = get_or<std::map<std::string, std::string>>(j, "data_sources", {});
  return r;
}
}  // namespace

void append_record(const std::string& path, const RunRecord& r) {
  io::append_durable(path, record_to_json(r) + "\n");
}

std::string record_variant(const RunRecord& r) {
  if (!r.variant.empty()) return r.variant;
  std::string v = r.run_id.substr(0, r.run_id.find('/'));
  const std::string tag = "+neurn";
  if (v.size() > tag.size() && v.compare(v.size() - tag.size(), tag.size(), tag) == 0) v.resize(v.size() - tag.size());
  return v.empty() ? r.model : v;
}

LoadedResults load_results(const std::string& path) {
  LoadedResults out;
  std::ifstream in(path);
  if (!in) {
    NEURN_CHECK(!fs::exists(path), "cannot read ", path);
    return out;
  }
  std::set<std::string> seen;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      RunRecord r = record_from_json(line);
      if (!seen.insert(r.run_id + "#" + r.fingerprint).second) {
        out.warnings.push_back(path + ":" + std::to_string(lineno) + ": run " + r.run_id +
                               " is recorded again; the first record is kept");
        continue;
      }
      out.records.push_back(std::move(r));
    } catch (const std::exception& e) {  // neurn::Error, and anything a hostile line provokes
      out.warnings.push_back(path + ":" + std::to_string(lineno) + ": corrupt record skipped: " + e.what());
    }
  }
  return out;
}

LoadedResults load_results_dir(const std::string& dir) {
  NEURN_CHECK(fs::exists(dir), "results directory ", dir, " does not exist");
  std::vector<std::string> files;
  if (fs::is_regular_file(dir)) {
    files.push_back(dir);
  } else {
    for (auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file() && e.path().filename() == "results.jsonl") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  NEURN_CHECK(!files.empty(), "no results.jsonl under ", dir);
  LoadedResults out;
  std::set<std::string> seen;
  for (auto& f : files) {
    LoadedResults part = load_results(f);
    out.warnings.insert(out.warnings.end(), part.warnings.begin(), part.warnings.end());
    for (auto& r : part.records) {
      if (!seen.insert(r.run_id + "#" + r.fingerprint).second) {
        out.warnings.push_back(f + ": run " + r.run_id + " also appears in another shard; the first record is kept");
        continue;
      }
      out.records.push_back(std::move(r));
    }
  }
  return out;
}

std::string code_version() {
  static const std::string v = [] {
    std::string out = "neurn 0.1";
    FILE* f = ::popen("git rev-parse --short=12 HEAD 2>/dev/null && git status --porcelain --untracked-files=no 2>/dev/null | head -1", "r");
    if (!f) return out;
    char buf[256];
    std::string hash, dirty;
    if (std::fgets(buf, sizeof buf, f)) hash = buf;
    if (std::fgets(buf, sizeof buf, f)) dirty = buf;
    ::pclose(f);
    while (!hash.empty() && (hash.back() == '\n' || hash.back() == '\r')) hash.pop_back();
    if (!hash.empty()) out += " git " + hash + (dirty.empty() ? "" : "-dirty");
    return out;
  }();
  return v;
}

std::string utc_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace neurn::experiments
