#pragma once
// The Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words",
// ICLR 2021) as torchvision builds it (torchvision.models.VisionTransformer),
// with torchvision's state keys: conv_proj, class_token,
// encoder.pos_embedding, encoder.layers.encoder_layer_N.{ln_1,
// self_attention.in_proj_weight/in_proj_bias/out_proj, ln_2, mlp.0, mlp.3},
// encoder.ln, heads.head.
//
// VitConfig gives every encoder layer its own head count and MLP hidden
// width, a head width independent of the embedding (head_dim) and optional
// 2-D relative position encodings, so a subnet searched in a ViT supernet
// (AutoFormer: per-layer heads of 64 channels and MLP ratios, one embedding
// width) is this ViT too: the registry's "autoformer" is a VitConfig with
// layout Timm (nas/autoformer/subnet_model.cpp). One definition of the ViT.
#include <vector>

#include "models/registry.h"

namespace neurn {

// The state keys and the initialisation; the computation is the same.
enum class VitLayout {
  // torchvision's keys (above) and init (models/vit.cpp).
  Torchvision,
  // timm's / AutoFormer's standalone keys: patch_embed.proj, cls_token,
  // pos_embed, blocks.<i>.{norm1, attn.qkv (rows [q; k; v]), attn.proj,
  // attn.rel_pos_embed_k/v.embeddings_table_v/h, norm2, mlp.fc1, mlp.fc2},
  // norm, head; the init of AutoFormer's supernet (trunc_normal(.02) Linear
  // weights, zero biases, trunc_normal(.02) class token and position
  // embedding, nn.Conv2d's default for the patch projection).
  Timm,
};

struct VitConfig {
  int64_t image_size = 224;  // square input; a multiple of patch_size
  int64_t patch_size = 16;
  int64_t in_channels = 3;
  int64_t embed_dim = 768;
  // One entry per encoder layer (depth = heads.size()); without head_dim,
  // embed_dim must be a multiple of each layer's heads (head width
  // embed_dim / heads, as nn.MultiheadAttention).
  std::vector<int64_t> heads;
  std::vector<int64_t> mlp_dims;  // the hidden width of each layer's MLP; as many as heads
  int64_t num_classes = 1000;
  double dropout = 0.0;            // after the position embedding, after attention, in the MLP
  double attention_dropout = 0.0;  // on the attention weights
  double ln_eps = 1e-6;            // torchvision's LayerNorm eps
  // Channels per head; 0: embed_dim / heads (torchvision). AutoFormer: 64,
  // so q, k, v have heads * 64 channels whatever embed_dim is.
  int64_t head_dim = 0;
  bool qkv_bias = true;
  // > 0: AutoFormer's relative position encodings (layers/relative_position.h)
  // in every layer's attention, largest distance this (the reference's 14).
  // Needs layout Timm.
  int64_t max_relative_position = 0;
  VitLayout layout = VitLayout::Torchvision;

  int64_t depth() const { return static_cast<int64_t>(heads.size()); }
  int64_t grid() const { return image_size / patch_size; }  // patches per side
  // depth layers of `heads` heads and MLP width mlp_dim each (the ViT paper's models).
  static VitConfig uniform(int64_t patch_size, int64_t embed_dim, int64_t depth, int64_t heads, int64_t mlp_dim);
  // Throws, naming the field, on an inconsistent configuration.
  void validate() const;
};

// ViT-B/16: patch 16, width 768, 12 layers of 12 heads, MLP 3072 (86,567,656
// parameters at 1000 classes, 224x224).
VitConfig vit_b_16_config();
// The small ViT for 32x32 digits (vit_digits): patch 4 (an 8x8 grid, 64
// tokens plus the class token), width 192, 6 layers of 3 heads, MLP 768.
VitConfig vit_digits_config();

// Builds exactly `config`.
ModulePtr build_vit(const VitConfig& config);
// `config`'s architecture with the classes, input channels and input size of
// `options` (and its dropout, when set): how the registry builds vit_b_16
// and vit_digits. The input size must be a multiple of the patch size.
ModulePtr build_vit(const VitConfig& config, const ModelOptions& options);

}  // namespace neurn
