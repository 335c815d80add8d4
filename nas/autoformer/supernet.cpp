#include "nas/autoformer/supernet.h"

#include <cmath>

#include "framework/ops.h"
#include "layers/activation.h"
#include "layers/attention.h"
#include "layers/init.h"

namespace neurn::autoformer {

namespace {

// A module that only holds tensors (the reference's "proj" child of the patch embedding).
class TensorHolder : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

Tensor top_left(const Tensor& w, int64_t rows, int64_t cols) {
  Tensor r = rows == w.size(0) ? w : slice(w, 0, 0, rows);
  return cols == w.size(1) ? r : slice(r, 1, 0, cols);
}

Tensor prefix(const Tensor& b, int64_t n) { return n == b.size(0) ? b : slice(b, 0, 0, n); }

}  // namespace

// ---- SuperLinear ------------------------------------------------------------

SuperLinear::SuperLinear(int64_t in_max, int64_t out_max, bool bias)
    : in_max_(in_max), out_max_(out_max), in_(in_max), out_(out_max), bias_(bias) {
  NEURN_CHECK(in_max > 0 && out_max > 0, "SuperLinear: sizes must be positive, got ", in_max, " -> ", out_max);
  // the reference's _init_weights: trunc_normal(std .02) weights, zero biases
  Tensor& w = register_parameter("weight", new_full({out_max, in_max}, 0.0));
  trunc_normal_(w, 0.02);
  if (bias) register_parameter("bias", new_full({out_max}, 0.0));
}

void SuperLinear::set_sample(int64_t in, int64_t out) {
  NEURN_CHECK(in >= 1 && in <= in_max_ && out >= 1 && out <= out_max_, "SuperLinear(", in_max_, " -> ", out_max_,
              "): sample ", in, " -> ", out, " exceeds the super weight");
  in_ = in, out_ = out;
}

Tensor SuperLinear::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() >= 1 && x.size(-1) == in_, "SuperLinear(sampled ", in_, " -> ", out_, "): expected (..., ",
              in_, "), got ", shape_str(x.shape()));
  Tensor w = top_left(param("weight"), out_, in_);  // (out, in)
  return linear(x, w, bias_ ? prefix(param("bias"), out_) : Tensor());
}

void SuperLinear::active(std::vector<ActiveSlice>& out) {
  out.push_back({param("weight"), {out_, in_}});
  if (bias_) out.push_back({param("bias"), {out_}});
}

// ---- SuperQkv ---------------------------------------------------------------

Tensor SuperQkv::sampled_weight() {
  Tensor w = top_left(param("weight"), out_, in_);  // (3 inner, in), interleaved
  return concat({slice(w, 0, 0, out_, 3), slice(w, 0, 1, out_, 3), slice(w, 0, 2, out_, 3)}, 0);
}

Tensor SuperQkv::sampled_bias() {
  if (!bias_) return {};
  Tensor b = prefix(param("bias"), out_);
  return concat({slice(b, 0, 0, out_, 3), slice(b, 0, 1, out_, 3), slice(b, 0, 2, out_, 3)}, 0);
}

Tensor SuperQkv::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() >= 1 && x.size(-1) == in_, "SuperQkv(sampled ", in_, " -> ", out_, "): expected (..., ", in_,
              "), got ", shape_str(x.shape()));
  return linear(x, sampled_weight(), sampled_bias());  // (..., 3 inner) = [q | k | v]
}

// ---- SuperLayerNorm ---------------------------------------------------------

SuperLayerNorm::SuperLayerNorm(int64_t dim_max) : dim_max_(dim_max), dim_(dim_max) {
  register_parameter("weight", new_full({dim_max}, 1.0));
  register_parameter("bias", new_full({dim_max}, 0.0));
}

Tensor SuperLayerNorm::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() >= 1 && x.size(-1) == dim_, "SuperLayerNorm(sampled ", dim_, "): expected (..., ", dim_,
              "), got ", shape_str(x.shape()));
  return layer_norm(x, 1, prefix(param("weight"), dim_), prefix(param("bias"), dim_), 1e-5);
}

void SuperLayerNorm::active(std::vector<ActiveSlice>& out) {
  out.push_back({param("weight"), {dim_}});
  out.push_back({param("bias"), {dim_}});
}

// ---- SuperPatchEmbed --------------------------------------------------------

SuperPatchEmbed::SuperPatchEmbed(int64_t in_channels, int64_t dim_max, int64_t patch)
    : patch_(patch), dim_max_(dim_max), dim_(dim_max) {
  NEURN_CHECK(patch > 0 && in_channels > 0 && dim_max > 0, "SuperPatchEmbed: sizes must be positive");
  proj_ = register_module("proj", std::make_shared<TensorHolder>());
  // nn.Conv2d's default init (the reference leaves the patch conv at it)
  proj_->register_parameter("weight", new_kaiming_uniform({dim_max, in_channels, patch, patch}, std::sqrt(5.0)));
  double b = 1.0 / std::sqrt(static_cast<double>(in_channels * patch * patch));
  proj_->register_parameter("bias", new_uniform({dim_max}, -b, b));
}

Tensor SuperPatchEmbed::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4 && x.size(2) % patch_ == 0 && x.size(3) % patch_ == 0, "SuperPatchEmbed(patch ", patch_,
              "): expected (N, C, H, W) with H and W multiples of ", patch_, ", got ", shape_str(x.shape()));
  Tensor w = prefix(proj_->param("weight"), dim_);  // (D, C, p, p)
  Tensor y = conv2d(x, w, prefix(proj_->param("bias"), dim_), Conv2dOptions{{patch_, patch_}});  // (N, D, H/p, W/p)
  return transpose(flatten(y, 2, 3), 1, 2);                                                      // (N, L, D)
}

void SuperPatchEmbed::active(std::vector<ActiveSlice>& out) {
  Tensor w = proj_->param("weight");
  out.push_back({w, {dim_, w.size(1), w.size(2), w.size(3)}});
  out.push_back({proj_->param("bias"), {dim_}});
}

// ---- SuperAttention ---------------------------------------------------------

SuperAttention::SuperAttention(int64_t dim_max, int64_t heads_max, int64_t head_dim, bool qkv_bias,
                               int64_t rel_units, int64_t max_rel)
    : head_dim_(head_dim), heads_(heads_max) {
  // the reference's AttentionSuper with change_qkv: qkv (3 D, D) and proj (D, D)
  qkv_ = register_module("qkv", std::make_shared<SuperQkv>(dim_max, dim_max, qkv_bias));
  proj_ = register_module("proj", std::make_shared<SuperLinear>(dim_max, dim_max));
  qkv_->set_sample_qkv(dim_max, heads_max * head_dim);
  proj_->set_sample(heads_max * head_dim, dim_max);
  if (max_rel > 0) {
    NEURN_CHECK(rel_units >= head_dim, "SuperAttention: relative position tables of ", rel_units,
                " columns for heads of ", head_dim);
    rel_k_ = register_module("rel_pos_embed_k", std::make_shared<RelativePosition2D>(rel_units, max_rel));
    rel_v_ = register_module("rel_pos_embed_v", std::make_shared<RelativePosition2D>(rel_units, max_rel));
  }
}

void SuperAttention::set_sample(int64_t dim, int64_t heads) {
  heads_ = heads;
  qkv_->set_sample_qkv(dim, heads * head_dim_);
  proj_->set_sample(heads * head_dim_, dim);
}

Tensor SuperAttention::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 3, "SuperAttention: expected (N, L, D), got ", shape_str(x.shape()));
  int64_t n = x.size(0), len = x.size(1), h = heads_, dh = head_dim_;
  Tensor qkv = permute(reshape((*qkv_)(x), {n, len, 3, h, dh}), {2, 0, 3, 1, 4});  // (3, N, h, L, dh)
  auto parts = chunk(qkv, 3, 0);
  Tensor q = squeeze(parts[0], 0), k = squeeze(parts[1], 0), v = squeeze(parts[2], 0);
  // the tables' first head_dim columns (the reference's sample_head_dim)
  Tensor rk = rel_k_ ? rel_k_->embeddings(len, dh) : Tensor(), rv = rel_v_ ? rel_v_->embeddings(len, dh) : Tensor();
  Tensor out = reshape(permute(attention_heads(q, k, v, rk, rv), {0, 2, 1, 3}), {n, len, h * dh});  // (N, L, h dh)
  return (*proj_)(out);
}

void SuperAttention::active(std::vector<ActiveSlice>& out) {
  qkv_->active(out);
  proj_->active(out);
  for (const auto& r : {rel_k_, rel_v_}) {
    if (!r) continue;
    for (const char* t : {"embeddings_table_v", "embeddings_table_h"}) {
      Tensor p = r->param(t);
      out.push_back({p, {p.size(0), head_dim_}});
    }
  }
}

// ---- SuperBlock -------------------------------------------------------------

SuperBlock::SuperBlock(int64_t dim_max, int64_t heads_max, int64_t head_dim, int64_t mlp_max, bool qkv_bias,
                       int64_t rel_units, int64_t max_rel) {
  attn = register_module("attn",
                         std::make_shared<SuperAttention>(dim_max, heads_max, head_dim, qkv_bias, rel_units, max_rel));
  attn_layer_norm = register_module("attn_layer_norm", std::make_shared<SuperLayerNorm>(dim_max));
  ffn_layer_norm = register_module("ffn_layer_norm", std::make_shared<SuperLayerNorm>(dim_max));
  fc1 = register_module("fc1", std::make_shared<SuperLinear>(dim_max, mlp_max));
  fc2 = register_module("fc2", std::make_shared<SuperLinear>(mlp_max, dim_max));
  act = register_module("act", std::make_shared<GELU>());
}

void SuperBlock::set_sample(int64_t dim, int64_t heads, int64_t mlp) {
  attn_layer_norm->set_sample(dim);
  attn->set_sample(dim, heads);
  ffn_layer_norm->set_sample(dim);
  fc1->set_sample(dim, mlp);
  fc2->set_sample(mlp, dim);
}

Tensor SuperBlock::forward(const Tensor& x) {
  Tensor y = add(x, (*attn)((*attn_layer_norm)(x)));
  return add(y, (*fc2)((*act)((*fc1)((*ffn_layer_norm)(y)))));
}

void SuperBlock::active(std::vector<ActiveSlice>& out) {
  attn_layer_norm->active(out);
  attn->active(out);
  ffn_layer_norm->active(out);
  fc1->active(out);
  fc2->active(out);
}

// ---- Supernet ---------------------------------------------------------------

Supernet::Supernet(const SearchSpace& space) : space_(space) {
  space.validate();
  const int64_t d = space.super_embed_dim;
  patch_embed = register_module("patch_embed_super", std::make_shared<SuperPatchEmbed>(space.in_channels, d, space.patch));
  auto holder = register_module("blocks", std::make_shared<TensorHolder>());
  for (int64_t i = 0; i < space.super_depth; ++i)
    blocks.push_back(holder->register_module(
        std::to_string(i),
        std::make_shared<SuperBlock>(d, space.super_heads, space.head_dim, space.super_mlp_dim(), space.qkv_bias,
                                     space.rel_pos_units(),
                                     space.relative_position ? space.max_relative_position : 0)));
  trunc_normal_(register_parameter("pos_embed", new_full({1, space.num_tokens(), d}, 0.0)), 0.02);
  trunc_normal_(register_parameter("cls_token", new_full({1, 1, d}, 0.0)), 0.02);
  norm = register_module("norm", std::make_shared<SuperLayerNorm>(d));
  head = register_module("head", std::make_shared<SuperLinear>(d, space.num_classes));
  std::vector<int64_t> heads(space.super_depth, space.super_heads);
  std::vector<double> ratios(space.super_depth, space.super_mlp_ratio);
  set_subnet(SubnetConfig{d, heads, ratios});
}

void Supernet::set_subnet(const SubnetConfig& c) {
  check_subnet_fits(space_, c);
  subnet_ = c;
  patch_embed->set_sample(c.embed_dim);
  for (int64_t i = 0; i < c.depth(); ++i) blocks[i]->set_sample(c.embed_dim, c.heads[i], mlp_dim(c.embed_dim, c.mlp_ratios[i]));
  norm->set_sample(c.embed_dim);
  head->set_sample(c.embed_dim, space_.num_classes);
}

Tensor Supernet::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4 && x.size(1) == space_.in_channels && x.size(2) == space_.input_size &&
                  x.size(3) == space_.input_size,
              "autoformer Supernet: expected (N, ", space_.in_channels, ", ", space_.input_size, ", ",
              space_.input_size, "), got ", shape_str(x.shape()));
  const int64_t n = x.size(0), d = subnet_.embed_dim;
  Tensor t = (*patch_embed)(x);  // (N, L, D)
  LayerTrace::record("ClassToken");
  Tensor cls = expand(slice(param("cls_token"), 2, 0, d), {n, 1, d});
  t = concat({cls, t}, 1);  // (N, L + 1, D)
  LayerTrace::record("PosEmbed");
  t = add(t, slice(param("pos_embed"), 2, 0, d));
  for (int64_t i = 0; i < subnet_.depth(); ++i) t = (*blocks[i])(t);
  t = (*norm)(t);
  t = squeeze(slice(t, 1, 0, 1), 1);  // the class token (N, D)
  return (*head)(t);                  // (N, classes)
}

std::vector<ActiveSlice> Supernet::active_slices() {
  std::vector<ActiveSlice> out;
  patch_embed->active(out);
  const int64_t d = subnet_.embed_dim;
  out.push_back({param("pos_embed"), {1, space_.num_tokens(), d}});
  out.push_back({param("cls_token"), {1, 1, d}});
  for (int64_t i = 0; i < subnet_.depth(); ++i) blocks[i]->active(out);
  norm->active(out);
  head->active(out);
  return out;
}

// ---- sampling ---------------------------------------------------------------

SubnetConfig sample_subnet(const SearchSpace& s, Generator& gen) {
  auto pick = [&](const auto& v) { return v[gen.below(v.size())]; };
  SubnetConfig c;
  c.embed_dim = pick(s.embed_dims);
  int64_t depth = s.min_depth + static_cast<int64_t>(gen.below(static_cast<uint64_t>(s.max_depth - s.min_depth + 1)));
  for (int64_t i = 0; i < depth; ++i) {
    c.heads.push_back(pick(s.heads));
    c.mlp_ratios.push_back(pick(s.mlp_ratios));
  }
  return c;
}

SubnetConfig largest_subnet(const SearchSpace& s) {
  int64_t e = *std::max_element(s.embed_dims.begin(), s.embed_dims.end());
  int64_t h = *std::max_element(s.heads.begin(), s.heads.end());
  double r = *std::max_element(s.mlp_ratios.begin(), s.mlp_ratios.end());
  return SubnetConfig{e, std::vector<int64_t>(s.max_depth, h), std::vector<double>(s.max_depth, r)};
}

SubnetConfig smallest_subnet(const SearchSpace& s) {
  int64_t e = *std::min_element(s.embed_dims.begin(), s.embed_dims.end());
  int64_t h = *std::min_element(s.heads.begin(), s.heads.end());
  double r = *std::min_element(s.mlp_ratios.begin(), s.mlp_ratios.end());
  return SubnetConfig{e, std::vector<int64_t>(s.min_depth, h), std::vector<double>(s.min_depth, r)};
}

}  // namespace neurn::autoformer

#include "layers/state_io.h"

namespace neurn::autoformer {

void load_supernet_weights(Supernet& net, const std::string& path) {
  NamedTensors st = load_safetensors(path);
  std::string rel_key;
  for (const auto& [k, t] : st)
    if (rel_key.empty() && k.find("rel_pos_embed") != std::string::npos) rel_key = k;
  const SearchSpace& s = net.space();
  NEURN_CHECK(rel_key.empty() || s.relative_position, "autoformer: ", path, " holds ", rel_key,
              ": a supernet with relative position encodings (the reference's --relative_position); space ", s.name,
              " has none: set relative_position: true");
  NEURN_CHECK(!rel_key.empty() || !s.relative_position, "autoformer: ", path,
              " has no relative position tables (rel_pos_embed_*), but space ", s.name,
              " has relative_position: true");
  load_state(net, st, true, path);
}

}  // namespace neurn::autoformer
