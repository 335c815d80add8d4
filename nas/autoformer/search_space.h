#pragma once
// AutoFormer's search spaces and subnet encodings (Chen et al., "AutoFormer:
// Searching Transformers for Visual Recognition", ICCV 2021; the supernet of
// microsoft/Cream's AutoFormer). A subnet has one embedding dim, a depth, and
// per layer a number of heads (each of head_dim = 64 channels) and an MLP
// ratio; every choice takes the top-left slice of the supernet's weights.
#include <cstdint>
#include <string>
#include <vector>

namespace neurn::autoformer {

struct SearchSpace {
  std::string name;
  // The supernet: the largest of every dimension.
  int64_t super_embed_dim = 256;
  int64_t super_depth = 14;
  int64_t super_heads = 4;
  double super_mlp_ratio = 4.0;
  // The choices a subnet is drawn from.
  std::vector<int64_t> embed_dims;
  int64_t min_depth = 12, max_depth = 14;
  std::vector<int64_t> heads;
  std::vector<double> mlp_ratios;
  // Channels per head. The reference fixes 64, so q/k/v width = heads * 64,
  // independent of the embedding dim; the tests' micro space uses fewer.
  int64_t head_dim = 64;
  int64_t patch = 16;
  int64_t input_size = 32;  // square inputs; (input_size / patch)^2 patches plus the class token
  int64_t in_channels = 3;
  int64_t num_classes = 10;
  bool qkv_bias = true;  // the reference's supernet_train.py builds it with qkv_bias=True
  // The reference's --relative_position: 2-D relative position tables for k
  // and v in every attention (layers/relative_position.h), each
  // (2 max_relative_position + 2, super_embed_dim / super_heads), a subnet
  // using their first head_dim columns. The absolute position embedding stays
  // (the reference keeps abs_pos on by default).
  bool relative_position = false;
  int64_t max_relative_position = 14;  // the reference's default

  // Errors name the space and the inconsistent field.
  void validate() const;
  int64_t num_patches() const { return (input_size / patch) * (input_size / patch); }
  int64_t num_tokens() const { return num_patches() + 1; }
  int64_t super_mlp_dim() const;
  // The width of the relative position tables: the reference's
  // super_embed_dim // super_heads (its AttentionSuper's head dim).
  int64_t rel_pos_units() const { return super_embed_dim / super_heads; }
};

// "tiny" and "small" are the reference's Supernet-T and Supernet-S; "cpu" is
// a reduced space for 2-core runs, "micro" the tests' space (head_dim 8).
SearchSpace search_space(const std::string& name);
std::vector<std::string> search_space_names();

struct SubnetConfig {
  int64_t embed_dim = 0;
  std::vector<int64_t> heads;       // one per layer; depth = heads.size()
  std::vector<double> mlp_ratios;   // one per layer
  int64_t depth() const { return static_cast<int64_t>(heads.size()); }
  bool operator==(const SubnetConfig&) const = default;
};

// MLP hidden width: int(embed * ratio), Python's truncation as the reference.
int64_t mlp_dim(int64_t embed_dim, double ratio);

// Errors name the field and the allowed values.
void check_subnet(const SearchSpace& space, const SubnetConfig& c);
// Within the supernet's extents (not necessarily among the choices): what an
// extracted model needs.
void check_subnet_fits(const SearchSpace& space, const SubnetConfig& c);

// Closed-form parameter count of a subnet: patch embed D C p^2 + D, class
// token D, position embedding T D, per layer 2 LayerNorms 4D, qkv 3 h d D
// (+ 3 h d bias), proj h d D + D, fc1 D m + m, fc2 m D + D (+ with relative
// positions 4 (2 r + 2) d: tables v and h for k and for v); final norm 2D;
// head D K + K.
int64_t subnet_param_count(const SearchSpace& space, const SubnetConfig& c);

// Inline encoding: "e192-h3,4,3-m3.5,4,4" (embed, heads per layer, MLP ratios
// per layer). Parsing errors quote the text.
std::string encode_subnet(const SubnetConfig& c);
SubnetConfig decode_subnet(const std::string& text);
// JSON (the exported architecture): {"embed_dim": 192, "depth": 3,
// "num_heads": [...], "mlp_ratio": [...]} plus, from the space, "head_dim",
// "patch_size", "qkv_bias", "space", "relative_position" (and with it
// "max_relative_position"); `weights` (if not empty) names the
// safetensors file of the inherited weights, relative to the JSON's folder.
std::string subnet_to_json(const SearchSpace& space, const SubnetConfig& c, const std::string& weights = "");

// An architecture as the model registry receives it (ModelOptions::arch).
struct ArchSpec {
  SubnetConfig subnet;
  int64_t head_dim = 64;
  int64_t patch = 16;
  bool qkv_bias = true;
  int64_t max_relative_position = 0;  // 0: no relative position encodings
  std::string weights;  // absolute or relative-to-cwd path, empty: none
};
// `arch`: a path to an exported JSON file, or an inline encoding; empty: the
// documented default (the Tiny space's smallest subnet: embed 192, 12 layers
// of 3 heads and MLP ratio 3.5).
ArchSpec parse_arch(const std::string& arch);
SubnetConfig default_subnet();

}  // namespace neurn::autoformer
