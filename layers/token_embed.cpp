#include "layers/token_embed.h"

#include "framework/ops/elementwise.h"
#include "framework/ops/shape_ops.h"
#include "layers/init.h"

namespace neurn {

ClassToken::ClassToken(int64_t dim) : dim_(dim) {
  NEURN_CHECK(dim > 0, "ClassToken: dim must be positive, got ", dim);
  register_parameter("cls_token", new_normal({1, 1, dim}, 0.0, 1e-6));
}

Tensor ClassToken::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 3 && x.size(2) == dim_, "ClassToken(dim ", dim_, "): expected (N, L, ", dim_, "), got ",
              shape_str(x.shape()));
  Tensor cls = expand(param("cls_token"), {x.size(0), 1, dim_});
  return concat({cls, x}, 1);
}

PositionEmbedding::PositionEmbedding(int64_t num_tokens, int64_t dim) : tokens_(num_tokens), dim_(dim) {
  NEURN_CHECK(num_tokens > 0 && dim > 0, "PositionEmbedding: sizes must be positive, got ", num_tokens, " x ", dim);
  Tensor& p = register_parameter("pos_embed", new_full({1, num_tokens, dim}, 0.0));
  trunc_normal_(p, 0.02, 0.0, -0.04, 0.04);
}

Tensor PositionEmbedding::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 3 && x.size(1) == tokens_ && x.size(2) == dim_, "PositionEmbedding(", tokens_, " x ", dim_,
              "): expected (N, ", tokens_, ", ", dim_, "), got ", shape_str(x.shape()));
  return add(x, param("pos_embed"));
}

}  // namespace neurn
