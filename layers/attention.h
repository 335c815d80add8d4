#pragma once
#include <memory>

#include "framework/random.h"
#include "layers/linear.h"
#include "layers/module.h"

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
};

// Multi-head self-attention over tokens: (N, L, dim) -> (N, L, dim),
// softmax(q k^T / sqrt(dim / heads)) v per head, then the output projection.
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
};

}  // namespace neurn
