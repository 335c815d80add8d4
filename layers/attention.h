#pragma once
#include <memory>

#include "framework/random.h"
#include "layers/linear.h"
#include "layers/module.h"
#include "layers/relative_position.h"

namespace neurn {

// Which state names the layer uses; the math is the same.
enum class AttentionNaming {
  Timm,   // children "qkv" (Linear dim -> 3 dim) and "proj" (Linear dim -> dim), as timm's ViT and AutoFormer
  Torch,  // "in_proj_weight" (3 dim, dim), "in_proj_bias" (3 dim), child "out_proj", as nn.MultiheadAttention
};

struct AttentionSpec {
  int64_t dim = 0;
  int64_t heads = 1;
  bool qkv_bias = true;
  double attn_drop = 0.0;  // dropout on the attention weights (training only)
  double proj_drop = 0.0;  // dropout on the output (training only)
  AttentionNaming naming = AttentionNaming::Timm;
  // Channels per head; 0: dim / heads (nn.MultiheadAttention). AutoFormer's
  // heads have 64 channels whatever dim is: q, k, v then have heads * head_dim.
  int64_t head_dim = 0;
  // > 0: AutoFormer's relative position encodings for k and v (children
  // "rel_pos_embed_k", "rel_pos_embed_v", RelativePosition2D of head_dim
  // units) with this largest distance (the reference's 14); Timm naming only.
  int64_t max_relative_position = 0;
  int64_t inner() const { return heads * (head_dim > 0 ? head_dim : dim / heads); }
};

// Scaled dot-product attention of heads: q, k, v (N, h, L, dh) ->
// softmax(q k^T / sqrt(dh)) v, (N, h, L, dh). With relative position
// embeddings rel_k, rel_v (L, L, dh; RelativePosition2D::embeddings) as
// AutoFormer: the logits gain q_i . rel_k(i, j) / sqrt(dh) and the output
// sum_j a_ij rel_v(i, j). attn_drop > 0: dropout on the attention weights.
Tensor attention_heads(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rel_k = {},
                       const Tensor& rel_v = {}, double attn_drop = 0.0, Generator* gen = nullptr);

// Multi-head self-attention over tokens: (N, L, dim) -> (N, L, dim),
// softmax(q k^T / sqrt(head_dim)) v per head (attention_heads), then the
// output projection (heads * head_dim -> dim).
// Token "MultiheadAttention".
class MultiheadSelfAttention : public Module {
 public:
  explicit MultiheadSelfAttention(const AttentionSpec& spec, Generator* gen = nullptr);
  MultiheadSelfAttention(int64_t dim, int64_t heads, bool qkv_bias = true)
      : MultiheadSelfAttention(AttentionSpec{dim, heads, qkv_bias}) {}
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "MultiheadAttention"; }
  const AttentionSpec& spec() const { return spec_; }

 private:
  AttentionSpec spec_;
  Generator* gen_;
  std::shared_ptr<Linear> qkv_, proj_;
  std::shared_ptr<RelativePosition2D> rel_k_, rel_v_;
};

}  // namespace neurn
