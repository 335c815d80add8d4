#pragma once
// A searched AutoFormer subnet as a standalone ViT (no slicing): the
// registered model "autoformer", models/vit.h's ViT with a VitConfig of
// layout Timm (keys patch_embed.proj.{weight,bias}, cls_token, pos_embed,
// blocks.<i>.norm1, blocks.<i>.attn.qkv (3 h d, D) with q, k, v as three row
// blocks, blocks.<i>.attn.proj (D, h d), blocks.<i>.attn.rel_pos_embed_k/v
// with relative positions, blocks.<i>.norm2, blocks.<i>.mlp.fc1/fc2, norm,
// head), head_dim d (AutoFormer's 64: the attention width h d is independent
// of the embedding dim D), LayerNorm eps 1e-5: the reference's subnet
// computation (pre-norm blocks, GELU, class-token head).
#include <memory>

#include "models/registry.h"
#include "models/vit.h"
#include "nas/autoformer/search_space.h"
#include "nas/autoformer/supernet.h"

namespace neurn::autoformer {

struct SubnetModelSpec {
  SubnetConfig subnet;
  int64_t head_dim = 64;
  int64_t patch = 16;
  int64_t input_size = 32;
  int64_t in_channels = 3;
  int64_t num_classes = 10;
  bool qkv_bias = true;
  int64_t max_relative_position = 0;  // 0: none
};

// The ViT configuration of a subnet (models/vit.h, layout Timm).
VitConfig vit_config_of(const SubnetModelSpec& spec);
SubnetModelSpec spec_of(const SearchSpace& space, const SubnetConfig& c);
// Parameters drawn as the reference initialises the supernet.
ModulePtr build_subnet_model(const SubnetModelSpec& spec);
// The standalone model of the supernet's current subnet with its inherited
// weights (copies: training one does not change the other).
ModulePtr extract_subnet(Supernet& net, const SubnetConfig& c);
// Parameters of a subnet counted on the meta device (no memory).
int64_t subnet_params_meta(const SearchSpace& space, const SubnetConfig& c);
// The builder of the registry entry "autoformer": options.arch as parse_arch
// reads it; an exported JSON with "weights" loads them (a head of another
// class count is kept as drawn, and so reported on stderr).
ModulePtr build_autoformer(const ModelOptions& o);

}  // namespace neurn::autoformer
