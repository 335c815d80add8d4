#include "layers/attention.h"

#include <cmath>

#include "framework/ops/elementwise.h"
#include "framework/ops/linalg.h"
#include "framework/ops/loss.h"
#include "framework/ops/shape_ops.h"
#include "layers/init.h"

namespace neurn {

Tensor attention_heads(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& rel_k, const Tensor& rel_v,
                       double attn_drop, Generator* gen) {
  NEURN_CHECK(q.dim() == 4 && k.shape() == q.shape() && v.shape() == q.shape(),
              "attention: expected q, k, v of one shape (N, heads, L, head_dim), got ", shape_str(q.shape()), ", ",
              shape_str(k.shape()), ", ", shape_str(v.shape()));
  const int64_t n = q.size(0), h = q.size(1), len = q.size(2), dh = q.size(3);
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  Tensor logits = matmul(q, transpose(k, -2, -1));  // (N, h, L, L)
  // per query token i: (N h, dh) x (dh, L), batched over i; back to (N, h, L, L)
  auto by_token = [&](const Tensor& t) { return reshape(permute(t, {2, 0, 1, 3}), {len, n * h, t.size(3)}); };
  auto from_token = [&](const Tensor& t) { return permute(reshape(t, {len, n, h, t.size(2)}), {1, 2, 0, 3}); };
  if (rel_k.defined()) {
    NEURN_CHECK(rel_k.shape() == (Shape{len, len, dh}), "attention: relative position k embeddings ",
                shape_str(rel_k.shape()), " for ", len, " tokens of head dim ", dh);
    logits = add(logits, from_token(matmul(by_token(q), transpose(rel_k, 1, 2))));
  }
  Tensor attn = softmax(mul(logits, scale), -1);
  if (attn_drop > 0) attn = dropout(attn, attn_drop, true, gen);
  Tensor out = matmul(attn, v);  // (N, h, L, dh)
  if (rel_v.defined()) {
    NEURN_CHECK(rel_v.shape() == (Shape{len, len, dh}), "attention: relative position v embeddings ",
                shape_str(rel_v.shape()), " for ", len, " tokens of head dim ", dh);
    out = add(out, from_token(matmul(by_token(attn), rel_v)));
  }
  return out;
}

MultiheadSelfAttention::MultiheadSelfAttention(const AttentionSpec& spec, Generator* gen) : spec_(spec), gen_(gen) {
  NEURN_CHECK(spec.dim > 0 && spec.heads > 0 && (spec.head_dim > 0 || spec.dim % spec.heads == 0),
              "MultiheadSelfAttention: dim (", spec.dim, ") must be a positive multiple of heads (", spec.heads,
              ") unless head_dim is given");
  NEURN_CHECK(spec.head_dim >= 0 && spec.max_relative_position >= 0,
              "MultiheadSelfAttention: head_dim and max_relative_position must not be negative");
  NEURN_CHECK(spec.max_relative_position == 0 || spec.naming == AttentionNaming::Timm,
              "MultiheadSelfAttention: relative positions need the Timm naming (AutoFormer's keys)");
  NEURN_CHECK(spec.attn_drop >= 0 && spec.attn_drop < 1 && spec.proj_drop >= 0 && spec.proj_drop < 1,
              "MultiheadSelfAttention: dropout rates must be in [0, 1)");
  int64_t d = spec.dim, inner = spec.inner();
  if (spec.naming == AttentionNaming::Timm) {
    qkv_ = register_module("qkv", std::make_shared<Linear>(d, 3 * inner, spec.qkv_bias));
    proj_ = register_module("proj", std::make_shared<Linear>(inner, d));
  } else {
    // nn.MultiheadAttention's init: xavier-uniform in-projection, zero biases
    Tensor& w = register_parameter("in_proj_weight", new_full({3 * inner, d}, 0.0));
    xavier_uniform_(w);
    if (spec.qkv_bias) register_parameter("in_proj_bias", new_full({3 * inner}, 0.0));
    proj_ = register_module("out_proj", std::make_shared<Linear>(inner, d));
    constant_(proj_->param("bias"), 0.0);
  }
  if (spec.max_relative_position > 0) {
    int64_t dh = inner / spec.heads;
    rel_k_ = register_module("rel_pos_embed_k", std::make_shared<RelativePosition2D>(dh, spec.max_relative_position));
    rel_v_ = register_module("rel_pos_embed_v", std::make_shared<RelativePosition2D>(dh, spec.max_relative_position));
  }
}

Tensor MultiheadSelfAttention::forward(const Tensor& x) {
  int64_t d = spec_.dim, h = spec_.heads, inner = spec_.inner();
  NEURN_CHECK(x.dim() == 3 && x.size(2) == d, "MultiheadSelfAttention(dim ", d, "): expected (N, L, ", d, "), got ",
              shape_str(x.shape()));
  int64_t n = x.size(0), len = x.size(1), dh = inner / h;
  Tensor qkv;
  if (qkv_) {
    qkv = qkv_->forward(x);
  } else {
    qkv = linear(x, param("in_proj_weight"), has_param("in_proj_bias") ? param("in_proj_bias") : Tensor());
  }
  // (N, L, 3 h dh) -> (3, N, heads, L, dh)
  qkv = permute(reshape(qkv, {n, len, 3, h, dh}), {2, 0, 3, 1, 4});
  auto parts = chunk(qkv, 3, 0);
  Tensor q = squeeze(parts[0], 0), k = squeeze(parts[1], 0), v = squeeze(parts[2], 0);
  Tensor rk = rel_k_ ? rel_k_->embeddings(len) : Tensor(), rv = rel_v_ ? rel_v_->embeddings(len) : Tensor();
  double drop = spec_.attn_drop > 0 && is_training() ? spec_.attn_drop : 0.0;
  Tensor out = reshape(permute(attention_heads(q, k, v, rk, rv, drop, gen_), {0, 2, 1, 3}), {n, len, inner});
  out = proj_->forward(out);
  if (spec_.proj_drop > 0 && is_training()) out = dropout(out, spec_.proj_drop, true, gen_);
  return out;
}

}  // namespace neurn
