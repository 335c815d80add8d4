#include "experiments/front.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "framework/error.h"
#include "framework/ops/neurn.h"
#include "layers/lcn.h"
#include "layers/lrn.h"
#include "layers/neurn_layer.h"

namespace neurn::experiments {

using nlohmann::json;

namespace {

std::string keys_of(const std::map<std::string, std::string>& m) {
  std::string s;
  for (auto& [k, v] : m) s += (s.empty() ? "" : ", ") + k;
  return s;
}

int64_t parse_int(const FrontSpec& f, const std::string& key, const std::string& value) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(value.c_str(), &end, 10);
  NEURN_CHECK(!value.empty() && *end == '\0' && errno == 0, f.kind, ": ", key, " expects an integer, got '", value,
              "'");
  return v;
}

double parse_number(const FrontSpec& f, const std::string& key, const std::string& value) {
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  NEURN_CHECK(!value.empty() && *end == '\0' && std::isfinite(v), f.kind, ": ", key, " expects a finite number, got '",
              value, "'");
  return v;
}

void check_known(const FrontSpec& f) {
  const auto& d = front_defaults(f.kind);
  for (auto& [k, v] : f.options)
    NEURN_CHECK(d.count(k) || (f.kind == "neurn" && k == "scope"), f.kind, ": unknown option '", k, "' (",
                d.empty() ? std::string("it takes none") : "expected " + keys_of(d), ")");
}

LRNOptions lrn_options(const FrontSpec& f) {
  LRNOptions o;
  for (auto& [k, v] : f.options) {
    if (k == "size") o.size = parse_int(f, k, v);
    if (k == "alpha") o.alpha = parse_number(f, k, v);
    if (k == "beta") o.beta = parse_number(f, k, v);
    if (k == "k") o.k = parse_number(f, k, v);
  }
  NEURN_CHECK(o.size >= 1, "lrn: size must be >= 1, got ", o.size);
  NEURN_CHECK(o.k > 0, "lrn: k must be > 0 (it keeps the denominator positive), got ", o.k);
  NEURN_CHECK(o.alpha >= 0, "lrn: alpha must be >= 0, got ", o.alpha);
  return o;
}

LCNOptions lcn_options(const FrontSpec& f) {
  LCNOptions o;
  for (auto& [k, v] : f.options) {
    if (k == "kernel_size") o.kernel_size = parse_int(f, k, v);
    if (k == "sigma") o.sigma = parse_number(f, k, v);
    if (k == "eps") o.eps = parse_number(f, k, v);
  }
  NEURN_CHECK(o.kernel_size >= 1 && o.kernel_size % 2 == 1, "lcn: kernel_size must be odd and >= 1, got ",
              o.kernel_size);
  NEURN_CHECK(o.sigma > 0, "lcn: sigma must be > 0, got ", o.sigma);
  NEURN_CHECK(o.eps >= 0, "lcn: eps must be >= 0, got ", o.eps);
  return o;
}

void check_kind(const FrontSpec& f) {
  const auto& k = front_kinds();
  NEURN_CHECK(std::find(k.begin(), k.end(), f.kind) != k.end(), "unknown front '", f.kind,
              "' (expected none, neurn, lrn or lcn)");
}

}  // namespace

const std::vector<std::string>& front_kinds() {
  static const std::vector<std::string> k{"none", "neurn", "lrn", "lcn"};
  return k;
}

const std::map<std::string, std::string>& front_defaults(const std::string& kind) {
  static const std::map<std::string, std::map<std::string, std::string>> d{
      {"none", {}},
      {"neurn", {{"k", "3"}, {"padding", "valid"}, {"max_scope", "image"}, {"eps", "1e-06"}}},
      {"lrn", {{"size", "5"}, {"alpha", "0.0001"}, {"beta", "0.75"}, {"k", "2"}}},
      {"lcn", {{"kernel_size", "9"}, {"sigma", "2"}, {"eps", "1e-06"}}}};
  auto it = d.find(kind);
  NEURN_CHECK(it != d.end(), "unknown front '", kind, "' (expected none, neurn, lrn or lcn)");
  return it->second;
}

json resolved_front_options(const FrontSpec& f) {
  check_kind(f);
  check_known(f);
  if (f.kind == "neurn") {
    // Written exactly as the fingerprints of runs before fronts had it, so a
    // sweep of `neurn: [false, true]` keeps its run ids and records.
    NeuRNOptions o = neurn_options_from_map(f.options);
    return {{"k", o.k}, {"padding", neurn_padding_name(o.padding)}, {"max_scope", neurn_scope_name(o.max_scope)},
            {"eps", o.eps}};
  }
  if (f.kind == "lrn") {
    LRNOptions o = lrn_options(f);
    return {{"size", o.size}, {"alpha", o.alpha}, {"beta", o.beta}, {"k", o.k}};
  }
  if (f.kind == "lcn") {
    LCNOptions o = lcn_options(f);
    return {{"kernel_size", o.kernel_size}, {"sigma", o.sigma}, {"eps", o.eps}};
  }
  NEURN_CHECK(f.options.empty(), "none: a run without a front takes no options, got ", keys_of(f.options));
  return json::object();
}

std::string default_front_label(const FrontSpec& f) {
  if (f.none()) return "";
  json opts = resolved_front_options(f);
  FrontSpec plain;
  plain.kind = f.kind;
  json defaults = resolved_front_options(plain);
  std::string label = f.kind;
  for (auto& [k, v] : opts.items()) {
    if (v == defaults[k]) continue;
    std::string value = v.is_string() ? v.get<std::string>() : v.dump();
    label += k == "k" && f.kind == "neurn" ? "_k" + value : "_" + k + "-" + value;
  }
  return label;
}

bool same_front(const FrontSpec& a, const FrontSpec& b) {
  return a.kind == b.kind && resolved_front_options(a) == resolved_front_options(b);
}

ModulePtr make_front_layer(const FrontSpec& f, int64_t channels) {
  check_kind(f);
  check_known(f);
  if (f.kind == "neurn") return make_neurn_layer(neurn_options_from_map(f.options));
  if (f.kind == "lrn") return std::make_shared<LocalResponseNorm>(lrn_options(f));
  if (f.kind == "lcn") return std::make_shared<LocalContrastNorm>(channels, lcn_options(f));
  return nullptr;
}

std::string front_display_name(const FrontSpec& f) {
  if (f.none()) return "";
  if (f.kind == "neurn" && f.label == "neurn") return "NeuRN";
  if (f.kind == "lrn" && f.label == "lrn") return "LRN";
  if (f.kind == "lcn" && f.label == "lcn") return "LCN";
  return f.label;
}

}  // namespace neurn::experiments
