#include <nlohmann/json.hpp>

#include "nas/autoformer/search_space.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "framework/error.h"

namespace neurn::autoformer {

namespace {

template <typename T>
bool contains(const std::vector<T>& v, T x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

template <typename T>
std::string list_str(const std::vector<T>& v) {
  std::ostringstream os;
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  NEURN_CHECK(in, "autoformer: cannot read the architecture file ", path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

}  // namespace

int64_t mlp_dim(int64_t embed_dim, double ratio) {
  // + 1e-9: 3.5 * 216 is exact, but a ratio parsed from text may sit a hair below
  return static_cast<int64_t>(std::floor(static_cast<double>(embed_dim) * ratio + 1e-9));
}

int64_t SearchSpace::super_mlp_dim() const { return mlp_dim(super_embed_dim, super_mlp_ratio); }

void SearchSpace::validate() const {
  const char* n = name.c_str();
  NEURN_CHECK(super_embed_dim > 0 && super_depth > 0 && super_heads > 0 && head_dim > 0, "autoformer space ", n,
              ": supernet sizes must be positive");
  NEURN_CHECK(super_heads * head_dim <= super_embed_dim, "autoformer space ", n, ": super_heads * head_dim (",
              super_heads * head_dim, ") exceeds super_embed_dim (", super_embed_dim,
              "); the reference's qkv and proj weights are (3 D, D) and (D, D)");
  NEURN_CHECK(!embed_dims.empty() && !heads.empty() && !mlp_ratios.empty(), "autoformer space ", n,
              ": every choice list must be non-empty");
  for (int64_t e : embed_dims)
    NEURN_CHECK(e > 0 && e <= super_embed_dim, "autoformer space ", n, ": embed dim ", e, " outside (0, ",
                super_embed_dim, "]");
  for (int64_t h : heads)
    NEURN_CHECK(h > 0 && h <= super_heads, "autoformer space ", n, ": heads ", h, " outside (0, ", super_heads, "]");
  for (double r : mlp_ratios)
    NEURN_CHECK(r > 0 && r <= super_mlp_ratio, "autoformer space ", n, ": MLP ratio ", r, " outside (0, ",
                super_mlp_ratio, "]");
  NEURN_CHECK(min_depth > 0 && min_depth <= max_depth && max_depth <= super_depth, "autoformer space ", n,
              ": depth range ", min_depth, "..", max_depth, " must lie in 1..", super_depth);
  NEURN_CHECK(patch > 0 && input_size % patch == 0, "autoformer space ", n, ": input size ", input_size,
              " is not a multiple of the patch size ", patch);
  NEURN_CHECK(in_channels > 0 && num_classes > 0, "autoformer space ", n, ": channels and classes must be positive");
  NEURN_CHECK(!relative_position || max_relative_position > 0, "autoformer space ", n,
              ": max_relative_position must be positive, got ", max_relative_position);
}

SearchSpace search_space(const std::string& name) {
  SearchSpace s;
  s.name = name;
  if (name == "tiny") {  // Supernet-T, the paper's Table 1
    s.super_embed_dim = 256, s.super_depth = 14, s.super_heads = 4, s.super_mlp_ratio = 4.0;
    s.embed_dims = {192, 216, 240}, s.min_depth = 12, s.max_depth = 14, s.heads = {3, 4}, s.mlp_ratios = {3.5, 4.0};
  } else if (name == "small") {  // Supernet-S
    s.super_embed_dim = 448, s.super_depth = 14, s.super_heads = 7, s.super_mlp_ratio = 4.0;
    s.embed_dims = {320, 384, 448}, s.min_depth = 12, s.max_depth = 14, s.heads = {5, 6, 7};
    s.mlp_ratios = {3.0, 3.5, 4.0};
  } else if (name == "cpu") {  // minutes on 2 cores
    s.super_embed_dim = 128, s.super_depth = 4, s.super_heads = 2, s.super_mlp_ratio = 4.0;
    s.embed_dims = {64, 96, 128}, s.min_depth = 2, s.max_depth = 4, s.heads = {1, 2}, s.mlp_ratios = {2.0, 3.0, 4.0};
  } else if (name == "micro") {  // the tests: milliseconds per step
    s.super_embed_dim = 32, s.super_depth = 3, s.super_heads = 2, s.super_mlp_ratio = 2.0, s.head_dim = 16;
    s.embed_dims = {16, 24, 32}, s.min_depth = 1, s.max_depth = 3, s.heads = {1, 2}, s.mlp_ratios = {1.0, 1.5, 2.0};
    s.patch = 8, s.input_size = 16;
  } else {
    NEURN_FAIL("autoformer: unknown search space '", name, "' (known: tiny, small, cpu, micro)");
  }
  s.validate();
  return s;
}

std::vector<std::string> search_space_names() { return {"tiny", "small", "cpu", "micro"}; }

void check_subnet_fits(const SearchSpace& space, const SubnetConfig& c) {
  NEURN_CHECK(c.embed_dim > 0 && c.embed_dim <= space.super_embed_dim, "autoformer subnet: embed dim ", c.embed_dim,
              " outside the supernet's (0, ", space.super_embed_dim, "]");
  NEURN_CHECK(c.depth() >= 1 && c.depth() <= space.super_depth, "autoformer subnet: depth ", c.depth(),
              " outside 1..", space.super_depth);
  NEURN_CHECK(c.mlp_ratios.size() == c.heads.size(), "autoformer subnet: ", c.heads.size(), " head counts but ",
              c.mlp_ratios.size(), " MLP ratios (one of each per layer)");
  for (size_t i = 0; i < c.heads.size(); ++i) {
    NEURN_CHECK(c.heads[i] >= 1 && c.heads[i] <= space.super_heads, "autoformer subnet: layer ", i, " has ",
                c.heads[i], " heads, the supernet 1..", space.super_heads);
    int64_t m = mlp_dim(c.embed_dim, c.mlp_ratios[i]);
    NEURN_CHECK(m >= 1 && m <= space.super_mlp_dim(), "autoformer subnet: layer ", i, " MLP width ", m,
                " (ratio ", c.mlp_ratios[i], ") outside 1..", space.super_mlp_dim());
  }
}

void check_subnet(const SearchSpace& space, const SubnetConfig& c) {
  check_subnet_fits(space, c);
  NEURN_CHECK(contains(space.embed_dims, c.embed_dim), "autoformer subnet: embed dim ", c.embed_dim,
              " is not a choice of space ", space.name, " (", list_str(space.embed_dims), ")");
  NEURN_CHECK(c.depth() >= space.min_depth && c.depth() <= space.max_depth, "autoformer subnet: depth ", c.depth(),
              " outside space ", space.name, "'s ", space.min_depth, "..", space.max_depth);
  for (size_t i = 0; i < c.heads.size(); ++i) {
    NEURN_CHECK(contains(space.heads, c.heads[i]), "autoformer subnet: layer ", i, " heads ", c.heads[i],
                " not a choice of space ", space.name, " (", list_str(space.heads), ")");
    NEURN_CHECK(contains(space.mlp_ratios, c.mlp_ratios[i]), "autoformer subnet: layer ", i, " MLP ratio ",
                c.mlp_ratios[i], " not a choice of space ", space.name, " (", list_str(space.mlp_ratios), ")");
  }
}

int64_t subnet_param_count(const SearchSpace& s, const SubnetConfig& c) {
  check_subnet_fits(s, c);
  const int64_t d = c.embed_dim, k = s.num_classes;
  int64_t n = d * s.in_channels * s.patch * s.patch + d;  // patch embedding
  n += d + s.num_tokens() * d;                            // class token, position embedding
  for (int64_t i = 0; i < c.depth(); ++i) {
    int64_t q = c.heads[i] * s.head_dim, m = mlp_dim(d, c.mlp_ratios[i]);
    n += 4 * d;                                     // two LayerNorms
    n += 3 * q * d + (s.qkv_bias ? 3 * q : 0);      // qkv
    n += q * d + d;                                 // proj
    n += d * m + m + m * d + d;                     // fc1, fc2
    if (s.relative_position) n += 4 * (2 * s.max_relative_position + 2) * s.head_dim;
  }
  n += 2 * d + d * k + k;  // final norm, head
  return n;
}

std::string encode_subnet(const SubnetConfig& c) {
  std::ostringstream os;
  os << "e" << c.embed_dim << "-h" << list_str(c.heads) << "-m" << list_str(c.mlp_ratios);
  return os.str();
}

SubnetConfig decode_subnet(const std::string& text) {
  auto fail = [&](const std::string& why) {
    NEURN_FAIL("autoformer: cannot parse the subnet '", text, "': ", why,
               " (expected e<embed>-h<heads,...>-m<ratios,...>, e.g. e192-h3,4-m3.5,4)");
  };
  SubnetConfig c;
  bool have_e = false, have_h = false, have_m = false;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, '-')) {
    if (part.size() < 2) fail("empty field '" + part + "'");
    char tag = part[0];
    std::string body = part.substr(1);
    std::stringstream items(body);
    std::string it;
    try {
      if (tag == 'e') {
        size_t used = 0;
        c.embed_dim = std::stoll(body, &used);
        if (used != body.size()) fail("bad embed dim '" + body + "'");
        have_e = true;
      } else if (tag == 'h') {
        while (std::getline(items, it, ',')) {
          size_t used = 0;
          c.heads.push_back(std::stoll(it, &used));
          if (used != it.size()) fail("bad head count '" + it + "'");
        }
        have_h = true;
      } else if (tag == 'm') {
        while (std::getline(items, it, ',')) {
          size_t used = 0;
          c.mlp_ratios.push_back(std::stod(it, &used));
          if (used != it.size()) fail("bad MLP ratio '" + it + "'");
        }
        have_m = true;
      } else {
        fail(std::string("unknown field '") + tag + "'");
      }
    } catch (const std::invalid_argument&) {
      fail("not a number in '" + part + "'");
    } catch (const std::out_of_range&) {
      fail("number out of range in '" + part + "'");
    }
  }
  if (!have_e || !have_h || !have_m) fail("e, h and m are all required");
  if (c.heads.size() != c.mlp_ratios.size())
    fail(std::to_string(c.heads.size()) + " head counts but " + std::to_string(c.mlp_ratios.size()) + " MLP ratios");
  return c;
}

std::string subnet_to_json(const SearchSpace& space, const SubnetConfig& c, const std::string& weights) {
  nlohmann::ordered_json j{{"space", space.name},
                           {"embed_dim", c.embed_dim},
                           {"depth", c.depth()},
                           {"num_heads", c.heads},
                           {"mlp_ratio", c.mlp_ratios},
                           {"head_dim", space.head_dim},
                           {"patch_size", space.patch},
                           {"qkv_bias", space.qkv_bias},
                           {"params", subnet_param_count(space, c)},
                           {"encoding", encode_subnet(c)},
                           {"relative_position", space.relative_position}};
  if (space.relative_position) j["max_relative_position"] = space.max_relative_position;
  if (!weights.empty()) j["weights"] = weights;
  return j.dump(2) + "\n";
}

SubnetConfig default_subnet() { return SubnetConfig{192, std::vector<int64_t>(12, 3), std::vector<double>(12, 3.5)}; }

ArchSpec parse_arch(const std::string& arch) {
  ArchSpec a;
  if (arch.empty()) {
    a.subnet = default_subnet();
    return a;
  }
  namespace fs = std::filesystem;
  bool is_file = arch.size() > 5 && arch.substr(arch.size() - 5) == ".json";
  if (!is_file) {
    a.subnet = decode_subnet(arch);
    return a;
  }
  nlohmann::json v;
  try {
    v = nlohmann::json::parse(slurp(arch));
  } catch (const nlohmann::json::exception& e) {
    NEURN_FAIL("autoformer: ", arch, " is not valid JSON: ", e.what());
  }
  NEURN_CHECK(v.is_object(), "autoformer: ", arch, " is not a JSON object");
  auto find = [&](const char* key) -> const nlohmann::json* { return v.contains(key) ? &v.at(key) : nullptr; };
  auto num = [&](const char* key, bool required) -> const nlohmann::json* {
    const nlohmann::json* x = find(key);
    NEURN_CHECK(x || !required, "autoformer: ", arch, " has no \"", key, "\"");
    NEURN_CHECK(!x || x->is_number(), "autoformer: ", arch, ": \"", key, "\" is not a number");
    return x;
  };
  auto arr = [&](const char* key) {
    const nlohmann::json* x = find(key);
    NEURN_CHECK(x && x->is_array(), "autoformer: ", arch, ": \"", key, "\" is missing or not an array");
    std::vector<double> out;
    for (const auto& it : *x) {
      NEURN_CHECK(it.is_number(), "autoformer: ", arch, ": \"", key, "\" holds a non-number");
      out.push_back(it.get<double>());
    }
    return out;
  };
  auto boolean = [&](const char* key) -> const nlohmann::json* {
    const nlohmann::json* x = find(key);
    NEURN_CHECK(!x || x->is_boolean(), "autoformer: ", arch, ": \"", key, "\" is not true/false");
    return x;
  };
  auto integer = [](const nlohmann::json* x) { return static_cast<int64_t>(x->get<double>()); };
  a.subnet.embed_dim = integer(num("embed_dim", true));
  for (double h : arr("num_heads")) a.subnet.heads.push_back(static_cast<int64_t>(h));
  a.subnet.mlp_ratios = arr("mlp_ratio");
  if (const auto* d = num("depth", false))
    NEURN_CHECK(integer(d) == a.subnet.depth(), "autoformer: ", arch, ": depth ", integer(d), " but ",
                a.subnet.depth(), " layers of heads");
  NEURN_CHECK(a.subnet.heads.size() == a.subnet.mlp_ratios.size(), "autoformer: ", arch, ": ",
              a.subnet.heads.size(), " head counts but ", a.subnet.mlp_ratios.size(), " MLP ratios");
  if (const auto* x = num("head_dim", false)) a.head_dim = integer(x);
  if (const auto* x = num("patch_size", false)) a.patch = integer(x);
  if (const auto* x = boolean("qkv_bias")) a.qkv_bias = x->get<bool>();
  if (const auto* x = boolean("relative_position"); x && x->get<bool>()) {
    const auto* r = num("max_relative_position", false);
    a.max_relative_position = r ? integer(r) : 14;
    NEURN_CHECK(a.max_relative_position > 0, "autoformer: ", arch, ": \"max_relative_position\" must be positive");
  }
  if (const auto* x = find("weights")) {
    NEURN_CHECK(x->is_string(), "autoformer: ", arch, ": \"weights\" is not a string");
    fs::path w(x->get<std::string>());
    a.weights = w.is_absolute() ? w.string() : (fs::path(arch).parent_path() / w).string();
  }
  return a;
}

}  // namespace neurn::autoformer
