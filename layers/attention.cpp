#include "layers/attention.h"

#include <cmath>

#include "framework/ops/elementwise.h"
#include "framework/ops/linalg.h"
#include "framework/ops/loss.h"
#include "framework/ops/shape_ops.h"
#include "layers/init.h"

namespace neurn {

MultiheadSelfAttention::MultiheadSelfAttention(const AttentionSpec& spec, Generator* gen) : spec_(spec), gen_(gen) {
  NEURN_CHECK(spec.dim > 0 && spec.heads > 0 && spec.dim % spec.heads == 0, "MultiheadSelfAttention: dim (", spec.dim,
              ") must be a positive multiple of heads (", spec.heads, ")");
  NEURN_CHECK(spec.attn_drop >= 0 && spec.attn_drop < 1 && spec.proj_drop >= 0 && spec.proj_drop < 1,
              "MultiheadSelfAttention: dropout rates must be in [0, 1)");
  int64_t d = spec.dim;
  if (spec.naming == AttentionNaming::Timm) {
    qkv_ = register_module("qkv", std::make_shared<Linear>(d, 3 * d, spec.qkv_bias));
    proj_ = register_module("proj", std::make_shared<Linear>(d, d));
  } else {
    // nn.MultiheadAttention's init: xavier-uniform in-projection, zero biases
    Tensor& w = register_parameter("in_proj_weight", new_full({3 * d, d}, 0.0));
    xavier_uniform_(w);
    if (spec.qkv_bias) register_parameter("in_proj_bias", new_full({3 * d}, 0.0));
    proj_ = register_module("out_proj", std::make_shared<Linear>(d, d));
    constant_(proj_->param("bias"), 0.0);
  }
}

Tensor MultiheadSelfAttention::forward(const Tensor& x) {
  int64_t d = spec_.dim, h = spec_.heads;
  NEURN_CHECK(x.dim() == 3 && x.size(2) == d, "MultiheadSelfAttention(dim ", d, "): expected (N, L, ", d, "), got ",
              shape_str(x.shape()));
  int64_t n = x.size(0), len = x.size(1), dh = d / h;
  Tensor qkv;
  if (qkv_) {
    qkv = qkv_->forward(x);
  } else {
    qkv = linear(x, param("in_proj_weight"), has_param("in_proj_bias") ? param("in_proj_bias") : Tensor());
  }
  // (N, L, 3 D) -> (3, N, heads, L, D / heads)
  qkv = permute(reshape(qkv, {n, len, 3, h, dh}), {2, 0, 3, 1, 4});
  auto parts = chunk(qkv, 3, 0);
  Tensor q = squeeze(parts[0], 0), k = squeeze(parts[1], 0), v = squeeze(parts[2], 0);
  Tensor attn = softmax(mul(matmul(q, transpose(k, -2, -1)), 1.0 / std::sqrt(static_cast<double>(dh))), -1);
  if (spec_.attn_drop > 0 && is_training()) attn = dropout(attn, spec_.attn_drop, true, gen_);
  Tensor out = reshape(permute(matmul(attn, v), {0, 2, 1, 3}), {n, len, d});  // (N, L, D)
  out = proj_->forward(out);
  if (spec_.proj_drop > 0 && is_training()) out = dropout(out, spec_.proj_drop, true, gen_);
  return out;
}

}  // namespace neurn
