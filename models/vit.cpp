// The Vision Transformer as torchvision builds it (models/vit.h): a
// patch x patch convolution turns the image into tokens, a learned class
// token goes first, a learned position embedding is added, pre-norm encoder
// layers (LayerNorm, multi-head self-attention, residual; LayerNorm, MLP
// with GELU, residual), a final LayerNorm, and the head reads the class
// token. torchvision's init: truncated-normal patch projection (std
// sqrt(1 / fan_in)), zero class token, N(0, 0.02) position embedding,
// Xavier-uniform attention in-projection and MLP weights (MLP biases N(0,
// 1e-6)), zero attention biases, and a zero head. Layout Timm (AutoFormer's
// standalone subnet) has the same computation under timm's keys and
// AutoFormer's init (models/vit.h).
#include "models/vit.h"

#include <cmath>

#include "layers/layers.h"
#include "layers/resample.h"
#include "models/backbones.h"

namespace neurn {

namespace {

AttentionSpec attention_spec(const VitConfig& c, int64_t heads) {
  bool timm = c.layout == VitLayout::Timm;
  return AttentionSpec{.dim = c.embed_dim,
                       .heads = heads,
                       .qkv_bias = c.qkv_bias,
                       .attn_drop = c.attention_dropout,
                       .naming = timm ? AttentionNaming::Timm : AttentionNaming::Torch,
                       .head_dim = c.head_dim,
                       .max_relative_position = c.max_relative_position};
}

// Torchvision: ln_1, self_attention, dropout, ln_2, mlp (0 Linear, 1 GELU,
// 2 Dropout, 3 Linear, 4 Dropout), torchvision's EncoderBlock and MLPBlock.
// Timm: norm1, attn, dropout, norm2, mlp (fc1, act, drop1, fc2, drop2).
class EncoderBlock : public Module {
 public:
  EncoderBlock(const VitConfig& c, int64_t heads, int64_t mlp_dim) {
    int64_t d = c.embed_dim;
    bool timm = c.layout == VitLayout::Timm;
    ln_1_ = register_module(timm ? "norm1" : "ln_1", std::make_shared<LayerNorm>(d, c.ln_eps));
    attn_ = register_module(timm ? "attn" : "self_attention",
                            std::make_shared<MultiheadSelfAttention>(attention_spec(c, heads)));
    dropout_ = register_module("dropout", std::make_shared<Dropout>(c.dropout));
    ln_2_ = register_module(timm ? "norm2" : "ln_2", std::make_shared<LayerNorm>(d, c.ln_eps));
    mlp_ = register_module("mlp", std::make_shared<Sequential>());
    std::shared_ptr<Linear> fc1, fc2;
    if (timm) {
      fc1 = std::static_pointer_cast<Linear>(mlp_->add("fc1", std::make_shared<Linear>(d, mlp_dim)));
      mlp_->add("act", std::make_shared<GELU>());
      mlp_->add("drop1", std::make_shared<Dropout>(c.dropout));
      fc2 = std::static_pointer_cast<Linear>(mlp_->add("fc2", std::make_shared<Linear>(mlp_dim, d)));
      mlp_->add("drop2", std::make_shared<Dropout>(c.dropout));
      return;  // Linear init: VisionTransformer's, for every Linear
    }
    fc1 = mlp_->emplace<Linear>(d, mlp_dim);
    mlp_->emplace<GELU>();
    mlp_->emplace<Dropout>(c.dropout);
    fc2 = mlp_->emplace<Linear>(mlp_dim, d);
    mlp_->emplace<Dropout>(c.dropout);
    for (auto& fc : {fc1, fc2}) {
      xavier_uniform_(fc->param("weight"));
      normal_(fc->param("bias"), 0.0, 1e-6);
    }
  }

  Tensor forward(const Tensor& x) override {  // (N, L, D) -> (N, L, D)
    Tensor y = residual_add((*dropout_)((*attn_)((*ln_1_)(x))), x);
    return residual_add((*mlp_)((*ln_2_)(y)), y);
  }

 private:
  ModulePtr ln_1_, attn_, dropout_, ln_2_;
  std::shared_ptr<Sequential> mlp_;
};

// A position embedding (1, 1 + g^2, D) loaded from a checkpoint of another
// grid is resampled: the class token's entry kept, the grid bicubic.
Tensor adapt_position_embedding(const Tensor& src, const Shape& shape) {
  if (src.dim() != 3 || shape.size() != 3 || src.size(0) != 1 || src.size(2) != shape[2]) return {};
  auto grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(shape[1] - 1))));
  int64_t src_grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(src.size(1) - 1))));
  if (grid * grid != shape[1] - 1 || src_grid * src_grid != src.size(1) - 1) return {};
  return resize_position_embedding(src, 1, grid, grid);
}

// torchvision's Encoder: pos_embedding (1, 1 + grid^2, D), dropout, layers,
// ln. Loading a position embedding made for another grid resamples it
// (adapt_state): the class token's entry kept, the grid bicubic.
class Encoder : public Module {
 public:
  explicit Encoder(const VitConfig& c) {
    int64_t tokens = 1 + c.grid() * c.grid();
    normal_(register_parameter("pos_embedding", new_full({1, tokens, c.embed_dim}, 0.0)), 0.0, 0.02);
    dropout_ = register_module("dropout", std::make_shared<Dropout>(c.dropout));
    layers_ = register_module("layers", std::make_shared<Sequential>());
    for (int64_t i = 0; i < c.depth(); ++i)
      layers_->add("encoder_layer_" + std::to_string(i), std::make_shared<EncoderBlock>(c, c.heads[i], c.mlp_dims[i]));
    ln_ = register_module("ln", std::make_shared<LayerNorm>(c.embed_dim, c.ln_eps));
  }

  Tensor forward(const Tensor& x) override {  // (N, L, D) -> (N, L, D)
    const Tensor& pos = param("pos_embedding");
    NEURN_CHECK(x.dim() == 3 && x.size(1) == pos.size(1) && x.size(2) == pos.size(2), "vit encoder: expected (N, ",
                pos.size(1), ", ", pos.size(2), ") tokens, got ", shape_str(x.shape()));
    LayerTrace::record("PosEmbed");
    return (*ln_)((*layers_)((*dropout_)(neurn::add(x, pos))));
  }

  Tensor adapt_state(const std::string& name, const Tensor& src, const Shape& shape) const override {
    return name == "pos_embedding" ? adapt_position_embedding(src, shape) : Tensor();
  }

 private:
  ModulePtr dropout_, ln_;
  std::shared_ptr<Sequential> layers_;
};

class VisionTransformer : public Module {
 public:
  explicit VisionTransformer(const VitConfig& c) : config_(c) {
    c.validate();
    if (c.layout == VitLayout::Timm) {
      build_timm(c);
      return;
    }
    int64_t d = c.embed_dim;
    auto proj = register_module("conv_proj", std::make_shared<Conv2d>(c.in_channels, d, c.patch_size, c.patch_size));
    trunc_normal_(proj->param("weight"), std::sqrt(1.0 / static_cast<double>(fan_in(proj->param("weight").shape()))));
    constant_(proj->param("bias"), 0.0);
    conv_proj_ = proj;
    register_parameter("class_token", new_full({1, 1, d}, 0.0));
    encoder_ = register_module("encoder", std::make_shared<Encoder>(c));
    heads_ = register_module("heads", std::make_shared<Sequential>());
    auto head = heads_->add("head", std::make_shared<Linear>(d, c.num_classes));
    constant_(head->param("weight"), 0.0);
    constant_(head->param("bias"), 0.0);
  }

  Tensor forward(const Tensor& x) override {  // (N, C, H, W) -> (N, classes)
    const VitConfig& c = config_;
    NEURN_CHECK(x.dim() == 4 && x.size(1) == c.in_channels && x.size(2) == c.image_size && x.size(3) == c.image_size,
                "vit (image size ", c.image_size, ", patch ", c.patch_size, "): expected (N, ", c.in_channels, ", ",
                c.image_size, ", ", c.image_size, "), got ", shape_str(x.shape()));
    int64_t n = x.size(0), d = c.embed_dim;
    bool timm = c.layout == VitLayout::Timm;
    Tensor tokens = (*conv_proj_)(x);
    if (!timm) tokens = transpose(flatten(tokens, 2, 3), 1, 2);  // (N, grid^2, D); PatchEmbed does it itself
    LayerTrace::record("ClassToken");
    tokens = concat({expand(param(timm ? "cls_token" : "class_token"), {n, 1, d}), tokens}, 1);  // (N, 1 + grid^2, D)
    if (timm) {  // timm's layers in the model itself, as torchvision's Encoder
      LayerTrace::record("PosEmbed");
      tokens = (*ln_)((*layers_)((*dropout_)(neurn::add(tokens, param("pos_embed")))));
    } else {
      tokens = (*encoder_)(tokens);
    }
    Tensor cls = squeeze(slice(tokens, 1, 0, 1), 1);  // (N, D)
    return timm ? (*head_)(cls) : (*heads_)(cls);
  }

  Tensor adapt_state(const std::string& name, const Tensor& src, const Shape& shape) const override {
    return config_.layout == VitLayout::Timm && name == "pos_embed" ? adapt_position_embedding(src, shape) : Tensor();
  }

 private:
  // patch_embed, cls_token, pos_embed, blocks, norm, head (timm's order)
  void build_timm(const VitConfig& c) {
    int64_t d = c.embed_dim, tokens = 1 + c.grid() * c.grid();
    conv_proj_ = register_module("patch_embed", std::make_shared<PatchEmbed>(c.in_channels, d, c.patch_size));
    trunc_normal_(register_parameter("cls_token", new_full({1, 1, d}, 0.0)), 0.02);
    trunc_normal_(register_parameter("pos_embed", new_full({1, tokens, d}, 0.0)), 0.02);
    dropout_ = register_module("pos_drop", std::make_shared<Dropout>(c.dropout));
    layers_ = register_module("blocks", std::make_shared<Sequential>());
    for (int64_t i = 0; i < c.depth(); ++i) layers_->push_back(std::make_shared<EncoderBlock>(c, c.heads[i], c.mlp_dims[i]));
    ln_ = register_module("norm", std::make_shared<LayerNorm>(d, c.ln_eps));
    head_ = register_module("head", std::make_shared<Linear>(d, c.num_classes));
    // AutoFormer's _init_weights for every Linear: trunc_normal(.02), zero bias
    apply([](const std::string&, Module& m) {
      if (m.type() != "Linear") return;
      trunc_normal_(m.param("weight"), 0.02);
      if (m.has_param("bias")) constant_(m.param("bias"), 0.0);
    });
  }

  VitConfig config_;
  ModulePtr conv_proj_, encoder_, dropout_, ln_, head_;
  std::shared_ptr<Sequential> heads_, layers_;
};

}  // namespace

VitConfig VitConfig::uniform(int64_t patch_size, int64_t embed_dim, int64_t depth, int64_t heads, int64_t mlp_dim) {
  NEURN_CHECK(depth > 0, "VitConfig::uniform: depth must be positive, got ", depth);
  VitConfig c;
  c.patch_size = patch_size;
  c.embed_dim = embed_dim;
  c.heads.assign(static_cast<size_t>(depth), heads);
  c.mlp_dims.assign(static_cast<size_t>(depth), mlp_dim);
  return c;
}

void VitConfig::validate() const {
  NEURN_CHECK(patch_size > 0 && image_size > 0 && image_size % patch_size == 0, "VitConfig: image_size (", image_size,
              ") must be a positive multiple of patch_size (", patch_size, ")");
  NEURN_CHECK(in_channels > 0 && embed_dim > 0 && num_classes > 0, "VitConfig: in_channels (", in_channels,
              "), embed_dim (", embed_dim, ") and num_classes (", num_classes, ") must be positive");
  NEURN_CHECK(!heads.empty(), "VitConfig: heads is empty (one entry per encoder layer)");
  NEURN_CHECK(heads.size() == mlp_dims.size(), "VitConfig: ", heads.size(), " layers in heads but ", mlp_dims.size(),
              " in mlp_dims");
  NEURN_CHECK(head_dim >= 0 && max_relative_position >= 0, "VitConfig: head_dim (", head_dim,
              ") and max_relative_position (", max_relative_position, ") must not be negative");
  NEURN_CHECK(max_relative_position == 0 || layout == VitLayout::Timm,
              "VitConfig: relative position encodings (max_relative_position ", max_relative_position,
              ") need layout Timm (AutoFormer's keys)");
  for (size_t i = 0; i < heads.size(); ++i) {
    NEURN_CHECK(heads[i] > 0 && (head_dim > 0 || embed_dim % heads[i] == 0), "VitConfig: layer ", i, ": embed_dim (",
                embed_dim, ") must be a multiple of its heads (", heads[i], ") unless head_dim is given");
    NEURN_CHECK(mlp_dims[i] > 0, "VitConfig: layer ", i, ": mlp_dims must be positive, got ", mlp_dims[i]);
  }
  NEURN_CHECK(dropout >= 0 && dropout < 1 && attention_dropout >= 0 && attention_dropout < 1,
              "VitConfig: dropout rates must be in [0, 1), got ", dropout, " and ", attention_dropout);
}

VitConfig vit_b_16_config() { return VitConfig::uniform(16, 768, 12, 12, 3072); }

VitConfig vit_digits_config() {
  VitConfig c = VitConfig::uniform(4, 192, 6, 3, 768);
  c.image_size = 32;
  c.num_classes = 10;
  return c;
}

ModulePtr build_vit(const VitConfig& config) { return std::make_shared<VisionTransformer>(config); }

ModulePtr build_vit(const VitConfig& config, const ModelOptions& o) {
  VitConfig c = config;
  c.num_classes = o.num_classes;
  c.in_channels = o.in_channels;
  c.image_size = o.input_size;
  if (o.dropout) c.dropout = *o.dropout;
  NEURN_CHECK(c.image_size % c.patch_size == 0, "vit: input size ", c.image_size,
              " is not a multiple of the patch size ", c.patch_size);
  return build_vit(c);
}

namespace {
ModulePtr build_vit_b_16(const ModelOptions& o) { return build_vit(vit_b_16_config(), o); }
ModulePtr build_vit_digits(const ModelOptions& o) { return build_vit(vit_digits_config(), o); }
}  // namespace

NEURN_REGISTER_MODEL(vit_b_16,
                     (ModelInfo{.name = "vit_b_16",
                                .family = "ViT",
                                .reference = "Dosovitskiy et al. 2021, ViT-B/16; torchvision models.vit_b_16",
                                .description = "patch 16, width 768, 12 layers of 12 heads, MLP 3072",
                                // 2x2 patches at 32: the smallest grid the digits need; inputs must be
                                // multiples of 16
                                .min_input_size = 32}),
                     build_vit_b_16);

NEURN_REGISTER_MODEL(vit_digits,
                     (ModelInfo{.name = "vit_digits",
                                .family = "ViT",
                                .reference = "Dosovitskiy et al. 2021, scaled for 32x32 digits (models/vit.h)",
                                .description = "patch 4, width 192, 6 layers of 3 heads, MLP 768",
                                .min_input_size = 32,
                                .reference_input_size = 32,
                                .reference_classes = 10}),
                     build_vit_digits);

}  // namespace neurn
