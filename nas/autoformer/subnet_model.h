#pragma once
// A searched AutoFormer subnet as a standalone ViT built from ordinary layers
// (no slicing): the registered model "autoformer". Keys follow timm's ViT:
// patch_embed.proj.{weight,bias}, cls_token, pos_embed, blocks.<i>.norm1,
// blocks.<i>.attn.qkv (3 h d, D) with q, k, v as three row blocks,
// blocks.<i>.attn.proj (D, h d), blocks.<i>.norm2, blocks.<i>.mlp.fc1/fc2,
// norm, head. Pre-norm blocks, GELU, LayerNorm eps 1e-5, class-token head:
// the reference's subnet computation.
//
// Why not models/vit.h's torchvision ViT: AutoFormer's attention width is
// heads * 64, independent of the embedding dim (embed 192 with 4 heads has
// q/k/v of 256 channels), while torchvision's MultiheadAttention has
// in_proj_weight (3 D, D), i.e. heads * head_dim == D.
#include <memory>

#include "models/registry.h"
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
};

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
