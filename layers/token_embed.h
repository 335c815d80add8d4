#pragma once
#include "layers/module.h"

namespace neurn {

// Prepends a learned class token: (N, L, D) -> (N, L + 1, D). Parameter
// "cls_token" (1, 1, D), drawn N(0, 1e-6) as timm does. Register it as an
// inline child (name "") to get timm's root-level key. Token "ClassToken".
class ClassToken : public Module {
 public:
  explicit ClassToken(int64_t dim);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "ClassToken"; }

 private:
  int64_t dim_;
};

// Adds a learned position embedding: parameter "pos_embed" (1, L, D), drawn
// from a normal truncated at +-2 std (std 0.02, as timm). Token "PosEmbed".
class PositionEmbedding : public Module {
 public:
  PositionEmbedding(int64_t num_tokens, int64_t dim);
  Tensor forward(const Tensor& x) override;  // (N, L, D) -> (N, L, D)
  std::string type() const override { return "PosEmbed"; }

 private:
  int64_t tokens_, dim_;
};

}  // namespace neurn
