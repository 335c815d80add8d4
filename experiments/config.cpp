#include "experiments/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "datasets/checksum.h"
#include "datasets/transforms.h"
#include "datasets/datasets.h"
#include "framework/error.h"

namespace neurn::experiments {

std::string SourceMark::str() const {
  std::string s = file.empty() ? "<config>" : file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  return s;
}

// The domains come from their descriptions (datasets/domains.cpp): adding a
// domain there makes it a valid source and target here.
std::vector<FrontSpec> run_fronts(const ExperimentConfig& cfg) {
  if (!cfg.fronts.empty()) return cfg.fronts;
  std::vector<FrontSpec> out;
  for (bool n : cfg.neurn) {
    FrontSpec f;
    if (n) {
      f.kind = "neurn";
      f.options = cfg.neurn_options;
      f.label = "neurn";
      auto it = cfg.marks.find("neurn_options." + (cfg.neurn_options.empty() ? "" : cfg.neurn_options.begin()->first));
      f.mark = it != cfg.marks.end() ? it->second.str() : cfg.file;
    }
    out.push_back(f);
  }
  return out;
}

const std::vector<std::string>& all_domains() {
  static const std::vector<std::string> d = data::evaluation_domains();
  return d;
}

std::string domain_short(const std::string& domain) {
  for (const auto& d : data::domains())
    if (d.name == domain && !d.short_name.empty()) return d.short_name;
  return domain;
}

std::string domain_long(const std::string& domain) {
  for (const auto& d : data::domains())
    if (d.name == domain && !d.display_name.empty()) return d.display_name;
  return domain;
}

const std::vector<std::string>& weights_formats() {
  static const std::vector<std::string> f{"torchvision", "keras", "neurn"};
  return f;
}

std::string keras_preprocessing(const std::string& model) {
  // keras.applications: each module's preprocess_input (imagenet_utils modes).
  // EfficientNet's preprocess_input passes the input through: the model
  // itself rescales by 1/255 and normalizes with ImageNet's mean and
  // variance, which is the "torch" mode for a model without those layers.
  static const std::map<std::string, std::string> modes{
      {"vgg19", "caffe"},          {"resnet50", "caffe"},      {"resnet50v2", "tf"},
      {"resnet50_v2", "tf"},       {"mobilenet", "tf"},        {"mobilenet_v2", "tf"},
      {"mobilenetv2", "tf"},       {"xception", "tf"},         {"inception_v3", "tf"},
      {"inceptionv3", "tf"},       {"nasnetmobile", "tf"},     {"nasnet_mobile", "tf"},
      {"densenet121", "torch"},    {"efficientnet_b0", "torch"}, {"efficientnetb0", "torch"}};
  auto it = modes.find(model);
  return it == modes.end() ? "" : it->second;
}

std::string effective_normalization(const ExperimentConfig& cfg, const ModelSpec& m) {
  std::string mode;
  if (!m.normalize.empty())
    mode = m.normalize;
  else if (!cfg.normalize.empty())
    mode = cfg.normalize;
  else if (m.weights.empty() || m.weights_format == "neurn" || m.weights_format.empty())
    mode = "none";
  else if (m.weights_format == "torchvision")
    mode = "imagenet";
  else {
    mode = keras_preprocessing(m.name);
    NEURN_CHECK(!mode.empty(), m.mark.str(), ": no Keras Applications preprocessing is known for model '", m.name,
                "'; set normalize: in its entry");
  }
  return data::input_normalization(mode).mode;  // canonical: torch -> imagenet
}

std::string ModelSpec::variant() const {
  if (!label.empty()) return label;
  std::string v = name;
  if (width != 1.0) {
    std::ostringstream w;
    w << width;
    v += "@w" + w.str();
  }
  if (!arch.empty()) {
    std::filesystem::path p(arch);
    bool file_like = arch.find('/') != std::string::npos || p.extension() == ".json";
    bool short_plain = arch.size() <= 24 && std::all_of(arch.begin(), arch.end(), [](char ch) {
                         return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
                       });
    if (file_like && !p.stem().empty())
      v += "@" + p.stem().string();
    else if (short_plain)
      v += "@" + arch;
    else
      v += "@arch" + data::sha256_hex(arch.data(), arch.size()).substr(0, 8);
  }
  if (!weights.empty()) v += "@" + std::filesystem::path(weights).stem().string();
  return v;
}

int edit_distance(const std::string& a, const std::string& b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<std::string> close_names(const std::string& name, const std::vector<std::string>& candidates,
                                     size_t max_results) {
  // Close: within a third of the name's length (at least 2 edits), or one
  // contains the other ("resnet" for "resnet18").
  std::vector<std::pair<int, std::string>> scored;
  int limit = std::max<int>(2, static_cast<int>(name.size()) / 3);
  for (auto& c : candidates) {
    int d = edit_distance(name, c);
    bool contains = name.size() >= 3 && (c.find(name) != std::string::npos || name.find(c) != std::string::npos);
    if (d <= limit || contains) scored.push_back({contains ? std::min(d, limit) : d, c});
  }
  std::stable_sort(scored.begin(), scored.end(), [](auto& x, auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (auto& [d, c] : scored) {
    if (out.size() >= max_results) break;
    out.push_back(c);
  }
  return out;
}

namespace {

std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates) {
  auto close = close_names(name, candidates);
  if (close.empty()) return "";
  return " (did you mean " + join(close, " or ") + "?)";
}

std::string fs_ext(const std::string& path) { return std::filesystem::path(path).extension().string(); }

// Reads YAML nodes against the schema; every failure carries file:line:col.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  SourceMark mark(const YAML::Node& n) const {
    SourceMark m{file_, 0, 0};
    if (n.IsDefined() && n.Mark().line >= 0) {
      m.line = n.Mark().line + 1;
      m.column = n.Mark().column + 1;
    }
    return m;
  }

  template <typename... A>
  [[noreturn]] void fail(const YAML::Node& n, const A&... args) const {
    NEURN_FAIL(mark(n).str(), ": ", args...);
  }

  // A mapping whose keys must come from `allowed`.
  void check_map(const YAML::Node& n, const std::string& where, const std::vector<std::string>& allowed) const {
    if (!n.IsMap()) fail(n, where, " must be a mapping with keys ", join(allowed), ", got ", kind(n));
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
        fail(it->first, "unknown key '", key, "' in ", where, did_you_mean(key, allowed), "; allowed keys: ",
             join(allowed));
    }
  }

  static std::string kind(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Null: return "nothing (null)";
      case YAML::NodeType::Scalar: return "'" + n.Scalar() + "'";
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Map: return "a mapping";
      default: return "an undefined value";
    }
  }

  // Scalars written in quotes are strings, never numbers or booleans.
  static bool quoted(const YAML::Node& n) { return n.Tag() == "!"; }

  int64_t get_int(const YAML::Node& n, const std::string& key, int64_t lo, int64_t hi) const {
    if (!n.IsScalar() || quoted(n)) fail(n, key, " must be an integer, got ", kind(n));
    const std::string& s = n.Scalar();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) fail(n, key, " must be an integer, got '", s, "'");
    if (v < lo || v > hi) fail(n, key, " must be in [", lo, ", ", hi, "], got ", v);
    return v;
  }

  double get_double(const YAML::Node& n, const std::string& key, double lo, double hi) const {
    if (!n.IsScalar() || quoted(n)) fail(n, key, " must be a number, got ", kind(n));
    const std::string& s = n.Scalar();
    double v = 0;
    try {
      size_t used = 0;
      v = std::stod(s, &used);
      if (used != s.size()) throw std::invalid_argument(s);
    } catch (const std::exception&) {
      fail(n, key, " must be a number, got '", s, "'");
    }
    if (!std::isfinite(v) || v < lo || v > hi) fail(n, key, " must be in [", lo, ", ", hi, "], got ", s);
    return v;
  }

  bool get_bool(const YAML::Node& n, const std::string& key) const {
    if (n.IsScalar() && !quoted(n)) {
      std::string s = n.Scalar();
      std::transform(s.begin(), s.end(), s.begin(), ::tolower);
      if (s == "true") return true;
      if (s == "false") return false;
    }
    fail(n, key, " must be true or false, got ", kind(n));
  }

  std::string get_string(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar() || n.Scalar().empty()) fail(n, key, " must be a non-empty string, got ", kind(n));
    return n.Scalar();
  }

  std::string get_enum(const YAML::Node& n, const std::string& key, const std::vector<std::string>& allowed) const {
    if (!n.IsScalar()) fail(n, key, " must be one of ", join(allowed), ", got ", kind(n));
    const std::string& s = n.Scalar();
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end())
      fail(n, "bad value '", s, "' for ", key, did_you_mean(s, allowed), "; allowed: ", join(allowed));
    return s;
  }

  // A list, or a single scalar standing for a one-element list.
  std::vector<YAML::Node> get_list(const YAML::Node& n, const std::string& key, bool allow_empty = false) const {
    std::vector<YAML::Node> out;
    if (n.IsSequence()) {
      for (auto it = n.begin(); it != n.end(); ++it) out.push_back(*it);
    } else if (n.IsScalar()) {
      out.push_back(n);
    } else {
      fail(n, key, " must be a list, got ", kind(n));
    }
    if (out.empty() && !allow_empty) fail(n, key, " must not be empty");
    return out;
  }

  std::string domain(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) fail(n, key, " must be a domain name (", join(all_domains()), "), got ", kind(n));
    std::string s = n.Scalar();
    if (std::find(all_domains().begin(), all_domains().end(), s) == all_domains().end())
      fail(n, "unknown domain '", s, "' in ", key, did_you_mean(s, all_domains()), "; domains: ",
           join(all_domains()));
    return s;
  }

 private:
  std::string file_;
};

void parse_into(const YAML::Node& root, const Reader& r, ExperimentConfig& c) {
  static const std::vector<std::string> top_keys{
      "name",        "output_dir", "data_root", "models",    "sources",       "targets",         "skip_missing_targets",
      "skip_unavailable_models",   "fronts",    "neurn",     "neurn_options", "seeds",           "image_size",
      "protocol",    "optimizer",  "batch_size", "eval_batch_size", "max_epochs",    "early_stopping",
      "device",      "precision",  "num_workers", "report", "normalize"};
  if (root.IsNull() || !root.IsDefined())
    NEURN_FAIL(r.mark(root).str(), ": the config is empty; expected a mapping with keys ", join(top_keys));
  r.check_map(root, "the config", top_keys);

  if (root["name"]) c.name = r.get_string(root["name"], "name");
  if (root["output_dir"]) {
    c.output_dir = r.get_string(root["output_dir"], "output_dir");
    c.marks["output_dir"] = r.mark(root["output_dir"]);
  }
  if (root["data_root"]) c.data_root = r.get_string(root["data_root"], "data_root");

  if (!root["models"]) r.fail(root, "missing key 'models' (a list of registry names, e.g. [digits_convnet])");
  for (auto& m : r.get_list(root["models"], "models")) {
    ModelSpec spec;
    spec.mark = r.mark(m);
    if (m.IsScalar()) {
      spec.name = r.get_string(m, "a model");
    } else {
      r.check_map(m, "a model entry", {"name", "weights", "width", "arch", "label", "normalize"});
      if (!m["name"]) r.fail(m, "a model entry needs 'name'");
      spec.name = r.get_string(m["name"], "name");
      if (const YAML::Node& w = m["weights"]) {
        spec.marks["weights"] = r.mark(w);
        if (w.IsMap()) {
          r.check_map(w, "weights", {"path", "format"});
          if (!w["path"]) r.fail(w, "weights needs 'path' (the file of initial weights)");
          spec.weights = r.get_string(w["path"], "weights.path");
          if (w["format"]) spec.weights_format = r.get_enum(w["format"], "weights.format", weights_formats());
        } else {
          spec.weights = r.get_string(w, "weights");
        }
        // The format decides the input normalization, so it is never guessed
        // for a safetensors file: torchvision and neurn both write those.
        if (spec.weights_format.empty()) {
          if (fs_ext(spec.weights) == ".h5")
            spec.weights_format = "keras";
          else
            r.fail(w, "weights: say where ", spec.weights, " comes from: weights: {path: ", spec.weights,
                   ", format: torchvision | keras | neurn} (the input normalization follows from it; see "
                   "docs/experiments.md)");
        }
      }
      if (m["width"]) spec.width = r.get_double(m["width"], "width", 1e-3, 64.0);
      if (m["arch"]) {
        spec.arch = r.get_string(m["arch"], "arch");
        spec.marks["arch"] = r.mark(m["arch"]);
      }
      if (m["label"]) {
        spec.label = r.get_string(m["label"], "label");
        spec.marks["label"] = r.mark(m["label"]);
        bool ok = !spec.label.empty() && std::all_of(spec.label.begin(), spec.label.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.' || ch == '@';
        });
        if (!ok) r.fail(m["label"], "label '", spec.label, "' may hold letters, digits and _ - . @ only");
      }
      if (m["normalize"]) {
        spec.normalize = r.get_enum(m["normalize"], "normalize", data::input_normalization_modes());
        spec.marks["normalize"] = r.mark(m["normalize"]);
      }
    }
    for (auto& other : c.models) {
      if (other.variant() != spec.variant()) continue;
      if (other.name == spec.name && other.weights == spec.weights && other.width == spec.width &&
          other.arch == spec.arch)
        r.fail(m, "model '", spec.name, "' is listed twice (first at ", other.mark.str(), ")");
      r.fail(m, "this model entry and the one at ", other.mark.str(), " would have the same run id '",
             spec.variant(), "'; give one of them a distinct label:");
    }
    c.models.push_back(spec);
  }

  if (!root["sources"]) r.fail(root, "missing key 'sources' (a list of domains: ", join(all_domains()), ")");
  c.marks["sources"] = r.mark(root["sources"]);
  for (auto& s : r.get_list(root["sources"], "sources")) {
    std::string d = r.domain(s, "sources");
    if (std::find(c.sources.begin(), c.sources.end(), d) != c.sources.end()) r.fail(s, "source '", d, "' is listed twice");
    c.sources.push_back(d);
  }
  if (root["targets"]) {
    c.marks["targets"] = r.mark(root["targets"]);
    for (auto& s : r.get_list(root["targets"], "targets")) {
      std::string d = r.domain(s, "targets");
      if (std::find(c.targets.begin(), c.targets.end(), d) == c.targets.end()) c.targets.push_back(d);
    }
  }
  if (root["skip_missing_targets"])
    c.skip_missing_targets = r.get_bool(root["skip_missing_targets"], "skip_missing_targets");
  if (root["skip_unavailable_models"])
    c.skip_unavailable_models = r.get_bool(root["skip_unavailable_models"], "skip_unavailable_models");

  if (root["neurn"]) {
    if (root["neurn"].IsMap())
      r.fail(root["neurn"], "neurn is the list of variants to run ([false, true], [true], ...); put the layer's "
                            "options (k, padding, max_scope, eps) under neurn_options");
    c.neurn.clear();
    for (auto& v : r.get_list(root["neurn"], "neurn")) {
      bool b = r.get_bool(v, "each entry of neurn");
      if (std::find(c.neurn.begin(), c.neurn.end(), b) != c.neurn.end()) r.fail(v, "neurn lists ", b, " twice");
      c.neurn.push_back(b);
    }
  }
  if (root["neurn_options"]) {
    const YAML::Node& o = root["neurn_options"];
    if (!o.IsMap()) r.fail(o, "neurn_options must be a mapping (option: value), got ", Reader::kind(o));
    for (auto it = o.begin(); it != o.end(); ++it) {
      if (!it->second.IsScalar()) r.fail(it->second, "neurn_options.", it->first.Scalar(), " must be a scalar");
      c.neurn_options[it->first.Scalar()] = it->second.Scalar();
      c.marks["neurn_options." + it->first.Scalar()] = r.mark(it->second);
    }
  }

  if (root["fronts"]) {
    for (const char* k : {"neurn", "neurn_options"})
      if (root[k])
        r.fail(root[k], k, " and fronts both say what goes in front of the model; keep fronts (for NeuRN with options: "
               "- {kind: neurn, k: 5})");
    for (auto& e : r.get_list(root["fronts"], "fronts")) {
      FrontSpec f;
      f.mark = r.mark(e).str();
      std::string label;
      if (e.IsScalar()) {
        f.kind = r.get_enum(e, "a front", front_kinds());
      } else {
        if (!e.IsMap()) r.fail(e, "a front must be a kind (", join(front_kinds()), ") or a mapping {kind: ..., ",
                               "label: ..., OPTION: value}, got ", Reader::kind(e));
        if (!e["kind"]) r.fail(e, "a front entry needs 'kind' (", join(front_kinds()), ")");
        f.kind = r.get_enum(e["kind"], "kind", front_kinds());
        for (auto it = e.begin(); it != e.end(); ++it) {
          const std::string key = it->first.Scalar();
          if (key == "kind") continue;
          if (key == "label") {
            label = r.get_string(it->second, "label");
            bool ok = std::all_of(label.begin(), label.end(), [](char ch) {
              return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
            });
            if (!ok) r.fail(it->second, "label '", label, "' may only hold letters, digits, _ - and . (it names run ",
                            "folders)");
            continue;
          }
          std::vector<std::string> allowed{"kind", "label"};
          for (auto& [o, d] : front_defaults(f.kind)) allowed.push_back(o);
          if (std::find(allowed.begin(), allowed.end(), key) == allowed.end() &&
              !(f.kind == "neurn" && key == "scope"))
            r.fail(it->first, "unknown key '", key, "' in a ", f.kind, " front", did_you_mean(key, allowed),
                   "; allowed keys: ", join(allowed));
          if (!it->second.IsScalar()) r.fail(it->second, f.kind, ".", key, " must be a scalar, got ",
                                              Reader::kind(it->second));
          f.options[key] = it->second.Scalar();
        }
      }
      try {
        resolved_front_options(f);
      } catch (const Error& err) {
        r.fail(e, err.what());
      }
      if (f.none() && !label.empty()) r.fail(e, "a run without a front has no label (its run id has no tag)");
      f.label = label.empty() ? default_front_label(f) : label;
      for (auto& other : c.fronts) {
        if (same_front(f, other)) r.fail(e, "this front is the same run as the one at ", other.mark);
        if (f.label == other.label)
          r.fail(e, "this front and the one at ", other.mark, " have the same label '", f.label,
                 "'; give one of them another label:");
      }
      c.fronts.push_back(f);
    }
  }

  if (root["normalize"]) {
    c.normalize = r.get_enum(root["normalize"], "normalize", data::input_normalization_modes());
    c.marks["normalize"] = r.mark(root["normalize"]);
  }
  // Keras weights need the model's preprocessing mode: a model this table
  // does not know must name it.
  for (auto& m : c.models) {
    if (m.weights_format != "keras" || !m.normalize.empty() || !c.normalize.empty()) continue;
    if (keras_preprocessing(m.name).empty())
      NEURN_FAIL(m.marks["weights"].str(), ": no Keras Applications preprocessing is known for model '", m.name,
                 "'; set normalize: (", join(data::input_normalization_modes()), ") in its entry");
  }

  if (root["seeds"]) {
    c.seeds.clear();
    for (auto& s : r.get_list(root["seeds"], "seeds")) {
      auto v = static_cast<uint64_t>(r.get_int(s, "each seed", 0, INT64_MAX));
      if (std::find(c.seeds.begin(), c.seeds.end(), v) != c.seeds.end()) r.fail(s, "seed ", v, " is listed twice");
      c.seeds.push_back(v);
    }
  }
  if (root["image_size"]) c.image_size = static_cast<int>(r.get_int(root["image_size"], "image_size", 0, 1024));

  if (root["protocol"]) {
    const YAML::Node& p = root["protocol"];
    r.check_map(p, "protocol", {"name", "train_images", "val_images", "test_images"});
    if (p["name"]) c.protocol.name = r.get_enum(p["name"], "protocol.name", {"single_source"});
    if (p["train_images"])
      c.protocol.train_images = r.get_int(p["train_images"], "protocol.train_images", 0, INT64_MAX);
    if (p["val_images"]) c.protocol.val_images = r.get_int(p["val_images"], "protocol.val_images", 0, INT64_MAX);
    if (p["test_images"]) c.protocol.test_images = r.get_int(p["test_images"], "protocol.test_images", 0, INT64_MAX);
  }

  if (root["optimizer"]) {
    const YAML::Node& o = root["optimizer"];
    r.check_map(o, "optimizer", {"name", "lr", "weight_decay", "momentum", "beta1", "beta2", "eps"});
    if (o["name"]) c.optimizer.name = r.get_enum(o["name"], "optimizer.name", {"adam", "sgd"});
    if (o["lr"]) c.optimizer.lr = r.get_double(o["lr"], "optimizer.lr", 1e-12, 10.0);
    if (o["weight_decay"]) c.optimizer.weight_decay = r.get_double(o["weight_decay"], "optimizer.weight_decay", 0, 1);
    if (o["momentum"]) c.optimizer.momentum = r.get_double(o["momentum"], "optimizer.momentum", 0, 0.9999);
    if (o["beta1"]) c.optimizer.beta1 = r.get_double(o["beta1"], "optimizer.beta1", 0, 0.9999999);
    if (o["beta2"]) c.optimizer.beta2 = r.get_double(o["beta2"], "optimizer.beta2", 0, 0.9999999);
    if (o["eps"]) c.optimizer.eps = r.get_double(o["eps"], "optimizer.eps", 1e-20, 1);
    if (c.optimizer.name == "adam" && o["momentum"])
      r.fail(o["momentum"], "optimizer.momentum applies to sgd only (adam uses beta1, beta2)");
    if (c.optimizer.name == "sgd" && (o["beta1"] || o["beta2"] || o["eps"]))
      r.fail(o, "optimizer.beta1/beta2/eps apply to adam only (sgd uses momentum)");
  }

  if (root["batch_size"]) c.batch_size = static_cast<int>(r.get_int(root["batch_size"], "batch_size", 1, 1 << 20));
  if (root["eval_batch_size"])
    c.eval_batch_size = static_cast<int>(r.get_int(root["eval_batch_size"], "eval_batch_size", 1, 1 << 20));
  if (root["max_epochs"]) c.max_epochs = static_cast<int>(r.get_int(root["max_epochs"], "max_epochs", 1, 100000));

  if (root["early_stopping"]) {
    const YAML::Node& e = root["early_stopping"];
    r.check_map(e, "early_stopping", {"metric", "patience", "min_delta"});
    if (e["metric"]) c.early_stopping.metric = r.get_enum(e["metric"], "early_stopping.metric", {"val_acc"});
    if (e["patience"])
      c.early_stopping.patience = static_cast<int>(r.get_int(e["patience"], "early_stopping.patience", 0, 100000));
    if (e["min_delta"]) c.early_stopping.min_delta = r.get_double(e["min_delta"], "early_stopping.min_delta", 0, 1);
  }

  if (root["device"]) {
    const YAML::Node& d = root["device"];
    std::string s = r.get_string(d, "device");
    bool ok = s == "auto" || s == "cpu" || s == "cuda";
    if (!ok && s.rfind("cuda:", 0) == 0 && s.size() > 5)
      ok = std::all_of(s.begin() + 5, s.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
    if (!ok) r.fail(d, "bad value '", s, "' for device; allowed: auto, cpu, cuda, cuda:N");
    c.device = s;
  }
  if (root["precision"]) {
    c.precision = r.get_enum(root["precision"], "precision", {"fp32", "bf16", "fp16"});
    // The trainer computes in fp32; reduced precision is named in the schema
    // so that a config asking for it fails clearly instead of running fp32.
    if (c.precision != "fp32")
      r.fail(root["precision"], "precision ", c.precision,
             " is not supported by the trainer yet (it trains in fp32); use precision: fp32");
  }
  if (root["num_workers"]) c.num_workers = static_cast<int>(r.get_int(root["num_workers"], "num_workers", 0, 64));
  if (root["report"]) c.report = r.get_bool(root["report"], "report");

}

}  // namespace

ExperimentConfig parse_config(const std::string& yaml_text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    NEURN_FAIL(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": malformed YAML: ", e.msg);
  }
  ExperimentConfig c;
  c.file = file;
  Reader r(file);
  try {
    parse_into(root, r, c);
  } catch (const YAML::Exception& e) {  // anything the schema code did not foresee still names the place
    NEURN_FAIL(file, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg);
  }
  std::string stem = std::filesystem::path(file).stem().string();
  if (c.name.empty()) c.name = stem.empty() ? "experiment" : stem;
  if (c.output_dir.empty()) c.output_dir = "runs/" + c.name;
  return c;
}

ExperimentConfig load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  NEURN_CHECK(in, "cannot read config '", path, "': ",
              std::filesystem::exists(path) ? "permission denied or not a file" : "no such file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

std::vector<std::string> targets_for(const ExperimentConfig& cfg, const std::string& source) {
  std::vector<std::string> out;
  const auto& pool = cfg.targets.empty() ? all_domains() : cfg.targets;
  for (auto& d : pool)
    if (d != source) out.push_back(d);
  return out;
}

AvailabilityReport check_availability(const ExperimentConfig& cfg, const Availability& avail, bool dry_run) {
  AvailabilityReport rep;
  const auto& reg = avail.registered_models;
  for (auto& m : cfg.models) {
    if (std::find(reg.begin(), reg.end(), m.name) != reg.end()) continue;
    if (!cfg.skip_unavailable_models && !dry_run) {
      auto close = close_names(m.name, reg);
      NEURN_FAIL(m.mark.str(), ": unknown model '", m.name, "'",
                 close.empty() ? "" : " (close names: " + join(close) + ")", "; registered models: ", join(reg),
                 ". Set skip_unavailable_models: true to run the others.");
    }
    rep.unavailable_models.push_back(m.name);
  }
  auto status = [&](const std::string& d) {
    auto it = avail.domain_status.find(d);
    return it == avail.domain_status.end() ? std::string("no reader for this domain") : it->second;
  };
  for (auto& s : cfg.sources) {
    std::string why = status(s);
    if (why.empty()) continue;
    if (dry_run) {
      rep.unavailable_sources[s] = why;
      continue;
    }
    auto it = cfg.marks.find("sources");
    NEURN_FAIL(it != cfg.marks.end() ? it->second.str() : cfg.file, ": cannot train on source '", s, "': ", why);
  }
  std::set<std::string> targets;
  for (auto& s : cfg.sources)
    for (auto& t : targets_for(cfg, s)) targets.insert(t);
  for (auto& t : targets) {
    std::string why = status(t);
    if (why.empty()) continue;
    if (!cfg.skip_missing_targets && !dry_run) {
      auto it = cfg.marks.find("targets");
      NEURN_FAIL(it != cfg.marks.end() ? it->second.str() : cfg.file, ": cannot test on target '", t, "': ", why,
                 " (or set skip_missing_targets: true to test on the others)");
    }
    rep.skipped_targets[t] = why;
  }
  return rep;
}

std::string config_to_yaml(const ExperimentConfig& c) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << c.name;
  e << YAML::Key << "output_dir" << YAML::Value << c.output_dir;
  if (!c.data_root.empty()) e << YAML::Key << "data_root" << YAML::Value << c.data_root;
  e << YAML::Key << "models" << YAML::Value << YAML::BeginSeq;
  for (auto& m : c.models) {
    if (m.weights.empty() && m.width == 1.0 && m.arch.empty() && m.label.empty() && m.normalize.empty()) {
      e << m.name;
    } else {
      e << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << m.name;
      if (!m.weights.empty())
        e << YAML::Key << "weights" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "path"
          << YAML::Value << m.weights << YAML::Key << "format" << YAML::Value << m.weights_format << YAML::EndMap;
      if (m.width != 1.0) e << YAML::Key << "width" << YAML::Value << m.width;
      if (!m.arch.empty()) e << YAML::Key << "arch" << YAML::Value << m.arch;
      if (!m.label.empty()) e << YAML::Key << "label" << YAML::Value << m.label;
      if (!m.normalize.empty()) e << YAML::Key << "normalize" << YAML::Value << m.normalize;
      e << YAML::EndMap;
    }
  }
  e << YAML::EndSeq;
  e << YAML::Key << "sources" << YAML::Value << YAML::Flow << c.sources;
  if (!c.targets.empty()) e << YAML::Key << "targets" << YAML::Value << YAML::Flow << c.targets;
  e << YAML::Key << "skip_missing_targets" << YAML::Value << c.skip_missing_targets;
  e << YAML::Key << "skip_unavailable_models" << YAML::Value << c.skip_unavailable_models;
  if (!c.fronts.empty()) {
    e << YAML::Key << "fronts" << YAML::Value << YAML::BeginSeq;
    for (auto& f : c.fronts) {
      e << YAML::Flow << YAML::BeginMap << YAML::Key << "kind" << YAML::Value << f.kind;
      if (!f.none()) e << YAML::Key << "label" << YAML::Value << f.label;
      for (auto& [k, v] : f.options) e << YAML::Key << k << YAML::Value << v;
      e << YAML::EndMap;
    }
    e << YAML::EndSeq;
  } else {
    e << YAML::Key << "neurn" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (bool b : c.neurn) e << b;
    e << YAML::EndSeq;
  }
  if (c.fronts.empty() && !c.neurn_options.empty()) {
    e << YAML::Key << "neurn_options" << YAML::Value << YAML::BeginMap;
    for (auto& [k, v] : c.neurn_options) e << YAML::Key << k << YAML::Value << v;
    e << YAML::EndMap;
  }
  if (!c.normalize.empty()) e << YAML::Key << "normalize" << YAML::Value << c.normalize;
  e << YAML::Key << "seeds" << YAML::Value << YAML::Flow << c.seeds;
  e << YAML::Key << "image_size" << YAML::Value << c.image_size;
  e << YAML::Key << "protocol" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << c.protocol.name;
  e << YAML::Key << "train_images" << YAML::Value << c.protocol.train_images;
  e << YAML::Key << "val_images" << YAML::Value << c.protocol.val_images;
  e << YAML::Key << "test_images" << YAML::Value << c.protocol.test_images;
  e << YAML::EndMap;
  e << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << c.optimizer.name;
  e << YAML::Key << "lr" << YAML::Value << c.optimizer.lr;
  e << YAML::Key << "weight_decay" << YAML::Value << c.optimizer.weight_decay;
  if (c.optimizer.name == "sgd") {
    e << YAML::Key << "momentum" << YAML::Value << c.optimizer.momentum;
  } else {
    e << YAML::Key << "beta1" << YAML::Value << c.optimizer.beta1;
    e << YAML::Key << "beta2" << YAML::Value << c.optimizer.beta2;
    e << YAML::Key << "eps" << YAML::Value << c.optimizer.eps;
  }
  e << YAML::EndMap;
  e << YAML::Key << "batch_size" << YAML::Value << c.batch_size;
  e << YAML::Key << "eval_batch_size" << YAML::Value << c.eval_batch_size;
  e << YAML::Key << "max_epochs" << YAML::Value << c.max_epochs;
  e << YAML::Key << "early_stopping" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "metric" << YAML::Value << c.early_stopping.metric;
  e << YAML::Key << "patience" << YAML::Value << c.early_stopping.patience;
  e << YAML::Key << "min_delta" << YAML::Value << c.early_stopping.min_delta;
  e << YAML::EndMap;
  e << YAML::Key << "device" << YAML::Value << c.device;
  e << YAML::Key << "precision" << YAML::Value << c.precision;
  e << YAML::Key << "num_workers" << YAML::Value << c.num_workers;
  e << YAML::Key << "report" << YAML::Value << c.report;
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace neurn::experiments
