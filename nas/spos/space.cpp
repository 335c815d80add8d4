#include "nas/spos/space.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "framework/error.h"
#include "framework/io/atomic_file.h"

namespace neurn::spos {

using nlohmann::json;

namespace {
int64_t scaled_even(int64_t c, double width) {
  int64_t v = static_cast<int64_t>(std::lround(static_cast<double>(c) * width / 2.0)) * 2;
  return std::max<int64_t>(8, v);
}
}  // namespace

int64_t SposSpace::layers() const {
  int64_t n = 0;
  for (int64_t r : stage_repeats) n += r;
  return n;
}
int64_t SposSpace::stem() const { return scaled_even(stem_channels, width); }
int64_t SposSpace::last() const { return scaled_even(last_channels, width); }

namespace {
// (stage, index in stage) of a layer
std::pair<size_t, int64_t> locate(const SposSpace& s, int64_t layer) {
  NEURN_CHECK(layer >= 0 && layer < s.layers(), "SPOS: layer ", layer, " out of range (", s.layers(), " layers)");
  for (size_t st = 0; st < s.stage_repeats.size(); ++st) {
    if (layer < s.stage_repeats[st]) return {st, layer};
    layer -= s.stage_repeats[st];
  }
  return {0, 0};
}
}  // namespace

int64_t SposSpace::out_channels(int64_t layer) const {
  return scaled_even(stage_channels[locate(*this, layer).first], width);
}
int64_t SposSpace::in_channels(int64_t layer) const { return layer == 0 ? stem() : out_channels(layer - 1); }
int64_t SposSpace::stride(int64_t layer) const {
  auto [st, i] = locate(*this, layer);
  return i == 0 ? stage_strides[st] : 1;
}
bool SposSpace::projects(int64_t layer) const { return locate(*this, layer).second == 0; }
std::vector<double> SposSpace::scales() const { return search_channels ? channel_scales : std::vector<double>{1.0}; }
std::vector<int> SposSpace::wbits() const { return search_bits ? weight_bits : std::vector<int>{32}; }
std::vector<int> SposSpace::abits() const { return search_bits ? act_bits : std::vector<int>{32}; }

std::vector<int64_t> SposSpace::mid_widths(int64_t layer) const {
  const int64_t base = out_channels(layer) / 2;
  std::vector<int64_t> out;
  for (double s : scales()) out.push_back(std::max<int64_t>(1, static_cast<int64_t>(std::floor(base * s + 1e-9))));
  return out;
}

void SposSpace::validate() const {
  NEURN_CHECK(!stage_repeats.empty() && stage_repeats.size() == stage_channels.size() &&
                  stage_repeats.size() == stage_strides.size(),
              "SPOS space: stage_repeats, stage_channels and stage_strides must have one entry per stage (got ",
              stage_repeats.size(), ", ", stage_channels.size(), ", ", stage_strides.size(), ")");
  for (size_t i = 0; i < stage_repeats.size(); ++i) {
    NEURN_CHECK(stage_repeats[i] > 0, "SPOS space: stage_repeats[", i, "] must be positive");
    NEURN_CHECK(stage_strides[i] == 1 || stage_strides[i] == 2, "SPOS space: stage_strides[", i, "] must be 1 or 2");
    NEURN_CHECK(stage_channels[i] > 0, "SPOS space: stage_channels[", i, "] must be positive");
  }
  NEURN_CHECK(stem_stride == 1 || stem_stride == 2, "SPOS space: stem_stride must be 1 or 2, got ", stem_stride);
  NEURN_CHECK(width > 0 && width <= 4, "SPOS space: width must be in (0, 4], got ", width);
  NEURN_CHECK(dropout >= 0 && dropout < 1, "SPOS space: dropout must be in [0, 1), got ", dropout);
  NEURN_CHECK(!channel_scales.empty() && !weight_bits.empty() && !act_bits.empty(),
              "SPOS space: channel_scales, weight_bits and act_bits must not be empty");
  for (size_t i = 0; i < channel_scales.size(); ++i) {
    NEURN_CHECK(channel_scales[i] > 0 && channel_scales[i] <= 4, "SPOS space: channel_scales[", i, "] = ",
                channel_scales[i], " is not in (0, 4]");
    if (i) NEURN_CHECK(channel_scales[i] > channel_scales[i - 1], "SPOS space: channel_scales must increase");
  }
  for (const auto* bits : {&weight_bits, &act_bits})
    for (int b : *bits) NEURN_CHECK(b == 32 || (b >= 2 && b <= 16), "SPOS space: bit width ", b, " is not 2..16 or 32");
  for (int64_t l = 0; l < layers(); ++l) {
    auto m = mid_widths(l);
    for (size_t i = 1; i < m.size(); ++i)
      NEURN_CHECK(m[i] > m[i - 1], "SPOS space: at width ", width, " layer ", l, "'s middle widths repeat (", m[i - 1],
                  " at two scales): use fewer channel_scales or a larger width");
  }
}

void SposArch::validate() const {
  space.validate();
  NEURN_CHECK(static_cast<int64_t>(layers.size()) == space.layers(), "SPOS arch: ", layers.size(),
              " layer choices for a space of ", space.layers(), " layers");
  const int n_ops = space.search_ops ? 4 : 1;
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerChoice& c = layers[l];
    NEURN_CHECK(c.op >= 0 && c.op < n_ops, "SPOS arch: layer ", l, " op ", c.op, " is not in 0..", n_ops - 1,
                space.search_ops ? "" : " (operators are not searched)");
    NEURN_CHECK(c.scale >= 0 && c.scale < static_cast<int>(space.scales().size()), "SPOS arch: layer ", l,
                " channel-scale index ", c.scale, " out of range (", space.scales().size(), " scales)");
    NEURN_CHECK(c.wbits >= 0 && c.wbits < static_cast<int>(space.wbits().size()), "SPOS arch: layer ", l,
                " weight-bits index ", c.wbits, " out of range");
    NEURN_CHECK(c.abits >= 0 && c.abits < static_cast<int>(space.abits().size()), "SPOS arch: layer ", l,
                " activation-bits index ", c.abits, " out of range");
  }
}

SposArch default_arch() {
  SposArch a;
  a.layers.assign(static_cast<size_t>(a.space.layers()), LayerChoice{});
  return a;
}

std::vector<int> gene_choices(const SposSpace& s) {
  std::vector<int> c;
  for (int64_t l = 0; l < s.layers(); ++l) {
    c.push_back(s.search_ops ? 4 : 1);
    c.push_back(static_cast<int>(s.scales().size()));
    c.push_back(static_cast<int>(s.wbits().size()));
    c.push_back(static_cast<int>(s.abits().size()));
  }
  return c;
}

nas::Genome to_genome(const SposArch& a) {
  nas::Genome g;
  for (auto& c : a.layers) g.genes.insert(g.genes.end(), {c.op, c.scale, c.wbits, c.abits});
  return g;
}

SposArch from_genome(const SposSpace& s, const nas::Genome& g) {
  NEURN_CHECK(static_cast<int64_t>(g.genes.size()) == 4 * s.layers(), "SPOS: a genome of ", g.genes.size(),
              " genes for ", s.layers(), " layers (4 genes each)");
  SposArch a;
  a.space = s;
  for (int64_t l = 0; l < s.layers(); ++l)
    a.layers.push_back({g.genes[4 * l], g.genes[4 * l + 1], g.genes[4 * l + 2], g.genes[4 * l + 3]});
  return a;
}

SposArch sample_arch(const SposSpace& s, std::mt19937_64& rng) {
  return from_genome(s, nas::sample_uniform(gene_choices(s), rng));
}

const char* op_name(int op) {
  static const char* names[4] = {"shuffle3", "shuffle5", "shuffle7", "xception"};
  NEURN_CHECK(op >= 0 && op < 4, "SPOS: op ", op, " is not 0..3");
  return names[op];
}

std::string describe(const SposArch& a) {
  std::ostringstream os;
  for (size_t l = 0; l < a.layers.size(); ++l) {
    if (l) os << ' ';
    os << op_name(a.layers[l].op);
    if (a.space.search_channels) os << '/' << a.space.scales()[a.layers[l].scale];
    if (a.space.search_bits) os << "/w" << a.weight_bits(l) << 'a' << a.act_bits(l);
  }
  return os.str();
}

namespace {
json space_json(const SposSpace& s) {
  return {{"stage_repeats", s.stage_repeats}, {"stage_channels", s.stage_channels}, {"stage_strides", s.stage_strides},
          {"stem_channels", s.stem_channels}, {"stem_stride", s.stem_stride},       {"last_channels", s.last_channels},
          {"width", s.width},                 {"dropout", s.dropout},               {"search_ops", s.search_ops},
          {"search_channels", s.search_channels}, {"search_bits", s.search_bits},   {"channel_scales", s.channel_scales},
          {"weight_bits", s.weight_bits},     {"act_bits", s.act_bits}};
}
SposSpace space_from(const json& j) {
  SposSpace s;
  s.stage_repeats = j.at("stage_repeats").get<std::vector<int64_t>>();
  s.stage_channels = j.at("stage_channels").get<std::vector<int64_t>>();
  s.stage_strides = j.at("stage_strides").get<std::vector<int64_t>>();
  s.stem_channels = j.at("stem_channels").get<int64_t>();
  s.stem_stride = j.at("stem_stride").get<int64_t>();
  s.last_channels = j.at("last_channels").get<int64_t>();
  s.width = j.at("width").get<double>();
  s.dropout = j.at("dropout").get<double>();
  s.search_ops = j.at("search_ops").get<bool>();
  s.search_channels = j.at("search_channels").get<bool>();
  s.search_bits = j.at("search_bits").get<bool>();
  s.channel_scales = j.at("channel_scales").get<std::vector<double>>();
  s.weight_bits = j.at("weight_bits").get<std::vector<int>>();
  s.act_bits = j.at("act_bits").get<std::vector<int>>();
  return s;
}
}  // namespace

std::string arch_to_json(const SposArch& a) {
  json layers = json::array();
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const LayerChoice& c = a.layers[l];
    layers.push_back({{"op", c.op},
                      {"op_name", op_name(c.op)},
                      {"scale", c.scale},
                      {"mid", a.mid(static_cast<int64_t>(l))},
                      {"wbits", c.wbits},
                      {"weight_bits", a.weight_bits(static_cast<int64_t>(l))},
                      {"abits", c.abits},
                      {"act_bits", a.act_bits(static_cast<int64_t>(l))}});
  }
  json j = {{"format", "neurn-spos-arch-1"}, {"space", space_json(a.space)}, {"layers", layers},
            {"description", describe(a)}};
  return j.dump(1);
}

SposArch arch_from_json(const std::string& text, const std::string& source) {
  SposArch a;
  try {
    json j = json::parse(text);
    NEURN_CHECK(j.value("format", "") == "neurn-spos-arch-1", "SPOS arch ", source,
                ": not a neurn SPOS architecture (format ", j.value("format", "missing"), ")");
    a.space = space_from(j.at("space"));
    for (auto& l : j.at("layers"))
      a.layers.push_back({l.at("op").get<int>(), l.at("scale").get<int>(), l.at("wbits").get<int>(),
                          l.at("abits").get<int>()});
  } catch (const json::exception& e) {
    NEURN_FAIL("SPOS arch ", source, ": ", e.what());
  }
  try {
    a.validate();
  } catch (const Error& e) {
    NEURN_FAIL("SPOS arch ", source, ": ", e.what());
  }
  return a;
}

SposArch parse_arch(const std::string& arch) {
  if (arch.empty()) return default_arch();
  if (arch.front() == '{') return arch_from_json(arch, "(inline JSON)");
  if (std::filesystem::exists(arch)) {
    std::ifstream in(arch);
    NEURN_CHECK(in, "SPOS arch: cannot read ", arch);
    std::stringstream ss;
    ss << in.rdbuf();
    return arch_from_json(ss.str(), arch);
  }
  SposArch a = default_arch();
  std::vector<int> ops;
  std::string tok;
  for (char ch : arch + ",") {
    if (ch == ',' || ch == '-' || ch == ' ') {
      if (!tok.empty()) {
        NEURN_CHECK(tok.size() == 1 && tok[0] >= '0' && tok[0] <= '3', "SPOS arch '", arch,
                    "': neither an existing file, inline JSON, nor op indices 0..3 separated by commas (bad entry '", tok,
                    "')");
        ops.push_back(tok[0] - '0');
      }
      tok.clear();
    } else {
      tok += ch;
    }
  }
  NEURN_CHECK(static_cast<int64_t>(ops.size()) == a.space.layers(), "SPOS arch '", arch, "': ", ops.size(),
              " op indices, the default space has ", a.space.layers(), " layers (or the file does not exist)");
  for (size_t l = 0; l < ops.size(); ++l) a.layers[l].op = ops[l];
  return a;
}

void save_arch(const SposArch& a, const std::string& path) {
  io::write_file_atomic(path, arch_to_json(a) + "\n");  // durable; names the path on failure
}

}  // namespace neurn::spos
