#pragma once
// The AutoFormer supernet with weight entanglement: every subnet computes with
// the top-left slices of the largest weights, so all subnets share (and
// train) one set of parameters. Parameter names are those of microsoft/Cream's
// Vision_TransformerSuper (patch_embed_super.proj.weight, blocks.0.attn.qkv.weight,
// blocks.0.attn_layer_norm.weight, blocks.0.fc1.weight, pos_embed, cls_token,
// norm.weight, head.weight, ...), so a converted reference checkpoint loads
// with load_state (scripts/convert_autoformer_checkpoint.py).
//
// qkv layout. The super qkv weight is (3 D_max, D_max) and, as in the
// reference's qkv_super, output row 3j is q channel j, 3j+1 is k channel j,
// 3j+2 is v channel j. A subnet with h heads uses the first 3 h d rows (d =
// head_dim) and takes q, k, v as rows 0, 1, 2 mod 3 of that prefix. Why this
// layout and not q, k, v in three blocks: (1) what a subnet uses is then a
// top-left box like for every other super weight, so one rule describes the
// used region of every parameter (ActiveSlice, SliceAdam); (2) one more head
// appends rows at the end instead of inside three blocks; (3) reference
// checkpoints load without a permutation. The extracted standalone model
// stores q, k, v as three blocks (timm's and torchvision's in_proj layout).
//
// Slicing goes through the differentiable slice op: only the slices a subnet
// uses get non-zero gradients; blocks beyond its depth get none at all. Adam
// would still move the moments (and so the values) of the zero-gradient
// rest of a sliced tensor: SliceAdam updates only the active boxes.
#include <memory>
#include <vector>

#include "layers/module.h"
#include "layers/relative_position.h"
#include "nas/autoformer/search_space.h"

namespace neurn::autoformer {

// The part of a parameter a subnet uses: the box [0, extent[0]) x [0, extent[1]) ...
struct ActiveSlice {
  Tensor param;
  Shape extent;
};

// (out_max, in_max) weight, sampled as its top-left (out, in) box. Token "Linear".
class SuperLinear : public Module {
 public:
  SuperLinear(int64_t in_max, int64_t out_max, bool bias = true);
  void set_sample(int64_t in, int64_t out);
  Tensor forward(const Tensor& x) override;  // (..., in) -> (..., out)
  std::string type() const override { return "Linear"; }
  void active(std::vector<ActiveSlice>& out);

 protected:
  int64_t in_max_, out_max_, in_ = 0, out_ = 0;
  bool bias_;
};

// The qkv projection: (3 D_max, D_max) with the rows interleaved (see above).
// set_sample(in, inner): inner = heads * head_dim; output (..., 3 inner) as
// [q | k | v]. Token "Linear".
class SuperQkv : public SuperLinear {
 public:
  SuperQkv(int64_t in_max, int64_t inner_max, bool bias) : SuperLinear(in_max, 3 * inner_max, bias) {}
  void set_sample_qkv(int64_t in, int64_t inner) { set_sample(in, 3 * inner); }
  Tensor forward(const Tensor& x) override;
  // The subnet's q, k, v weights and biases as blocks [q; k; v] (3 inner, in).
  Tensor sampled_weight();
  Tensor sampled_bias();  // undefined without bias
};

// Token "LayerNorm", eps 1e-5 (the reference's LayerNormSuper is an nn.LayerNorm).
class SuperLayerNorm : public Module {
 public:
  explicit SuperLayerNorm(int64_t dim_max);
  void set_sample(int64_t dim) { dim_ = dim; }
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "LayerNorm"; }
  void active(std::vector<ActiveSlice>& out);

 private:
  int64_t dim_max_, dim_ = 0;
};

// Conv with kernel = stride = patch (child "proj": weight (D_max, C, p, p),
// bias), then tokens (N, L, D). Token "PatchEmbed".
class SuperPatchEmbed : public Module {
 public:
  SuperPatchEmbed(int64_t in_channels, int64_t dim_max, int64_t patch);
  void set_sample(int64_t dim) { dim_ = dim; }
  Tensor forward(const Tensor& x) override;  // (N, C, H, W) -> (N, H/p W/p, D)
  std::string type() const override { return "PatchEmbed"; }
  void active(std::vector<ActiveSlice>& out);

 private:
  int64_t patch_, dim_max_, dim_ = 0;
  ModulePtr proj_;
};

// softmax(q k^T / sqrt(head_dim)) v over h heads of head_dim channels, then
// proj (inner -> D). Children "qkv", "proj". Token "MultiheadAttention".
// max_rel > 0: the reference's relative positions, children
// "rel_pos_embed_k", "rel_pos_embed_v" (RelativePosition2D of rel_units
// columns, a subnet using the first head_dim: its set_sample_config).
class SuperAttention : public Module {
 public:
  SuperAttention(int64_t dim_max, int64_t heads_max, int64_t head_dim, bool qkv_bias, int64_t rel_units = 0,
                 int64_t max_rel = 0);
  void set_sample(int64_t dim, int64_t heads);
  Tensor forward(const Tensor& x) override;  // (N, L, D) -> (N, L, D)
  std::string type() const override { return "MultiheadAttention"; }
  void active(std::vector<ActiveSlice>& out);
  std::shared_ptr<SuperQkv> qkv() const { return qkv_; }
  std::shared_ptr<SuperLinear> proj() const { return proj_; }
  std::shared_ptr<RelativePosition2D> rel_k() const { return rel_k_; }  // null without relative positions
  std::shared_ptr<RelativePosition2D> rel_v() const { return rel_v_; }

 private:
  int64_t head_dim_, heads_ = 0;
  std::shared_ptr<SuperQkv> qkv_;
  std::shared_ptr<SuperLinear> proj_;
  std::shared_ptr<RelativePosition2D> rel_k_, rel_v_;  // null without relative positions
};

// Pre-norm encoder layer: x + attn(attn_layer_norm(x)), then
// x + fc2(gelu(fc1(ffn_layer_norm(x)))). A container (its children are traced).
class SuperBlock : public Module {
 public:
  SuperBlock(int64_t dim_max, int64_t heads_max, int64_t head_dim, int64_t mlp_max, bool qkv_bias,
             int64_t rel_units = 0, int64_t max_rel = 0);
  void set_sample(int64_t dim, int64_t heads, int64_t mlp);
  Tensor forward(const Tensor& x) override;
  void active(std::vector<ActiveSlice>& out);

  std::shared_ptr<SuperLayerNorm> attn_layer_norm, ffn_layer_norm;
  std::shared_ptr<SuperAttention> attn;
  std::shared_ptr<SuperLinear> fc1, fc2;
  ModulePtr act;
};

class Supernet : public Module {
 public:
  explicit Supernet(const SearchSpace& space);
  // The subnet the next forward computes (checked against the supernet's extents).
  void set_subnet(const SubnetConfig& c);
  const SubnetConfig& subnet() const { return subnet_; }
  const SearchSpace& space() const { return space_; }
  Tensor forward(const Tensor& x) override;  // (N, C, H, W) -> (N, classes)
  // Every parameter the current subnet uses, with its box.
  std::vector<ActiveSlice> active_slices();

  std::shared_ptr<SuperPatchEmbed> patch_embed;
  std::vector<std::shared_ptr<SuperBlock>> blocks;
  std::shared_ptr<SuperLayerNorm> norm;
  std::shared_ptr<SuperLinear> head;

 private:
  SearchSpace space_;
  SubnetConfig subnet_;
};

// Draws a subnet uniformly: embed dim, depth, and per layer heads and MLP ratio.
SubnetConfig sample_subnet(const SearchSpace& space, Generator& gen);
// The largest / smallest subnet of the space's choices.
SubnetConfig largest_subnet(const SearchSpace& space);
SubnetConfig smallest_subnet(const SearchSpace& space);

}  // namespace neurn::autoformer

namespace neurn::autoformer {

// Loads supernet weights saved with the reference's key names (a checkpoint
// converted by scripts/convert_autoformer_checkpoint.py, or save_state of a
// Supernet), strictly: every name and shape must match. A checkpoint with
// relative position tables (rel_pos_embed_*) needs a space with
// relative_position, and one without them a space without: a mismatch is
// named as such.
void load_supernet_weights(Supernet& net, const std::string& path);

}  // namespace neurn::autoformer
