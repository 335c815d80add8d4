#include "nas/autoformer/subnet_model.h"

#include <cmath>
#include <filesystem>
#include <iostream>

#include "framework/ops.h"
#include "layers/layers.h"

namespace neurn::autoformer {

namespace {

// Self-attention with h heads of d channels over tokens of D channels
// (h d may differ from D). Children "qkv" (D -> 3 h d, rows [q; k; v]) and
// "proj" (h d -> D). Token "MultiheadAttention".
class SubnetAttention : public Module {
 public:
  SubnetAttention(int64_t dim, int64_t heads, int64_t head_dim, bool qkv_bias) : heads_(heads), head_dim_(head_dim) {
    qkv_ = register_module("qkv", std::make_shared<Linear>(dim, 3 * heads * head_dim, qkv_bias));
    proj_ = register_module("proj", std::make_shared<Linear>(heads * head_dim, dim));
  }
  std::string type() const override { return "MultiheadAttention"; }
  Tensor forward(const Tensor& x) override {
    NEURN_CHECK(x.dim() == 3, "autoformer attention: expected (N, L, D), got ", shape_str(x.shape()));
    int64_t n = x.size(0), len = x.size(1), h = heads_, dh = head_dim_;
    Tensor qkv = permute(reshape(qkv_->forward(x), {n, len, 3, h, dh}), {2, 0, 3, 1, 4});  // (3, N, h, L, dh)
    auto parts = chunk(qkv, 3, 0);
    Tensor q = squeeze(parts[0], 0), k = squeeze(parts[1], 0), v = squeeze(parts[2], 0);
    Tensor attn = softmax(mul(matmul(q, transpose(k, -2, -1)), 1.0 / std::sqrt(static_cast<double>(dh))), -1);
    return proj_->forward(reshape(permute(matmul(attn, v), {0, 2, 1, 3}), {n, len, h * dh}));
  }

 private:
  int64_t heads_, head_dim_;
  std::shared_ptr<Linear> qkv_, proj_;
};

class SubnetBlock : public Module {
 public:
  SubnetBlock(int64_t dim, int64_t heads, int64_t head_dim, int64_t mlp, bool qkv_bias) {
    norm1_ = register_module("norm1", std::make_shared<LayerNorm>(dim, 1e-5));
    attn_ = register_module("attn", std::make_shared<SubnetAttention>(dim, heads, head_dim, qkv_bias));
    norm2_ = register_module("norm2", std::make_shared<LayerNorm>(dim, 1e-5));
    mlp_ = register_module("mlp", std::make_shared<Sequential>());
    mlp_->add("fc1", std::make_shared<Linear>(dim, mlp));
    mlp_->add("act", std::make_shared<GELU>());
    mlp_->add("fc2", std::make_shared<Linear>(mlp, dim));
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = add(x, (*attn_)((*norm1_)(x)));
    return add(y, (*mlp_)((*norm2_)(y)));
  }

 private:
  ModulePtr norm1_, attn_, norm2_;
  std::shared_ptr<Sequential> mlp_;
};

class SubnetVit : public Module {
 public:
  explicit SubnetVit(const SubnetModelSpec& s) : spec_(s) {
    const int64_t d = s.subnet.embed_dim;
    NEURN_CHECK(s.patch > 0 && s.input_size % s.patch == 0, "autoformer: input size ", s.input_size,
                " is not a multiple of the patch size ", s.patch);
    int64_t tokens = (s.input_size / s.patch) * (s.input_size / s.patch) + 1;
    patch_ = register_module("patch_embed", std::make_shared<PatchEmbed>(s.in_channels, d, s.patch));
    cls_ = register_module("", std::make_shared<ClassToken>(d));
    pos_ = register_module("", std::make_shared<PositionEmbedding>(tokens, d));
    trunc_normal_(cls_->param("cls_token"), 0.02);
    auto blocks = register_module("blocks", std::make_shared<Sequential>());
    for (int64_t i = 0; i < s.subnet.depth(); ++i)
      blocks->push_back(std::make_shared<SubnetBlock>(d, s.subnet.heads[i], s.head_dim,
                                                      mlp_dim(d, s.subnet.mlp_ratios[i]), s.qkv_bias));
    blocks_ = blocks;
    norm_ = register_module("norm", std::make_shared<LayerNorm>(d, 1e-5));
    head_ = register_module("head", std::make_shared<Linear>(d, s.num_classes));
    // the reference's _init_weights for every Linear: trunc_normal(.02), zero bias
    apply([](const std::string&, Module& m) {
      if (m.type() != "Linear") return;
      trunc_normal_(m.param("weight"), 0.02);
      if (m.has_param("bias")) constant_(m.param("bias"), 0.0);
    });
  }
  Tensor forward(const Tensor& x) override {
    Tensor t = (*pos_)((*cls_)((*patch_)(x)));  // (N, L + 1, D)
    t = (*norm_)((*blocks_)(t));
    return (*head_)(squeeze(slice(t, 1, 0, 1), 1));  // class token -> (N, classes)
  }

 private:
  SubnetModelSpec spec_;
  ModulePtr patch_, cls_, pos_, blocks_, norm_, head_;
};

}  // namespace

SubnetModelSpec spec_of(const SearchSpace& s, const SubnetConfig& c) {
  return SubnetModelSpec{c, s.head_dim, s.patch, s.input_size, s.in_channels, s.num_classes, s.qkv_bias};
}

ModulePtr build_subnet_model(const SubnetModelSpec& spec) {
  NEURN_CHECK(spec.subnet.depth() >= 1 && spec.subnet.heads.size() == spec.subnet.mlp_ratios.size() &&
                  spec.subnet.embed_dim > 0,
              "autoformer: subnet ", encode_subnet(spec.subnet), " needs depth >= 1 and one MLP ratio per layer");
  for (size_t i = 0; i < spec.subnet.heads.size(); ++i)
    NEURN_CHECK(spec.subnet.heads[i] >= 1 && mlp_dim(spec.subnet.embed_dim, spec.subnet.mlp_ratios[i]) >= 1,
                "autoformer: layer ", i, " of ", encode_subnet(spec.subnet), " has no heads or no MLP width");
  return std::make_shared<SubnetVit>(spec);
}

ModulePtr extract_subnet(Supernet& net, const SubnetConfig& c) {
  const SearchSpace& s = net.space();
  check_subnet_fits(s, c);
  SubnetConfig prev = net.subnet();
  net.set_subnet(c);
  ModulePtr m;
  {
    ParamScope scope({net.param("cls_token").dtype(), net.param("cls_token").device()});
    DeferInit defer;  // every value is copied below
    m = build_subnet_model(spec_of(s, c));
  }
  NoGradGuard ng;
  const int64_t d = c.embed_dim;
  NamedTensors st;
  auto pre = [](const Tensor& t, int64_t n) { return slice(t, 0, 0, n); };
  auto box = [](const Tensor& t, int64_t r, int64_t cols) { return slice(slice(t, 0, 0, r), 1, 0, cols); };
  st.push_back({"patch_embed.proj.weight", pre(net.patch_embed->children()[0].second->param("weight"), d)});
  st.push_back({"patch_embed.proj.bias", pre(net.patch_embed->children()[0].second->param("bias"), d)});
  st.push_back({"cls_token", slice(net.param("cls_token"), 2, 0, d)});
  st.push_back({"pos_embed", slice(net.param("pos_embed"), 2, 0, d)});
  for (int64_t i = 0; i < c.depth(); ++i) {
    auto& b = *net.blocks[i];
    std::string p = "blocks." + std::to_string(i) + ".";
    int64_t q = c.heads[i] * s.head_dim, mlp = mlp_dim(d, c.mlp_ratios[i]);
    st.push_back({p + "norm1.weight", pre(b.attn_layer_norm->param("weight"), d)});
    st.push_back({p + "norm1.bias", pre(b.attn_layer_norm->param("bias"), d)});
    st.push_back({p + "attn.qkv.weight", b.attn->qkv()->sampled_weight()});  // interleaved -> [q; k; v]
    if (s.qkv_bias) st.push_back({p + "attn.qkv.bias", b.attn->qkv()->sampled_bias()});
    st.push_back({p + "attn.proj.weight", box(b.attn->proj()->param("weight"), d, q)});
    st.push_back({p + "attn.proj.bias", pre(b.attn->proj()->param("bias"), d)});
    st.push_back({p + "norm2.weight", pre(b.ffn_layer_norm->param("weight"), d)});
    st.push_back({p + "norm2.bias", pre(b.ffn_layer_norm->param("bias"), d)});
    st.push_back({p + "mlp.fc1.weight", box(b.fc1->param("weight"), mlp, d)});
    st.push_back({p + "mlp.fc1.bias", pre(b.fc1->param("bias"), mlp)});
    st.push_back({p + "mlp.fc2.weight", box(b.fc2->param("weight"), d, mlp)});
    st.push_back({p + "mlp.fc2.bias", pre(b.fc2->param("bias"), d)});
  }
  st.push_back({"norm.weight", pre(net.norm->param("weight"), d)});
  st.push_back({"norm.bias", pre(net.norm->param("bias"), d)});
  st.push_back({"head.weight", box(net.head->param("weight"), s.num_classes, d)});
  st.push_back({"head.bias", net.head->param("bias").clone()});
  load_state(*m, st, true, "the autoformer supernet");
  net.set_subnet(prev);
  return m;
}

int64_t subnet_params_meta(const SearchSpace& space, const SubnetConfig& c) {
  ParamScope scope({DType::Float32, Device::meta()});
  return build_subnet_model(spec_of(space, c))->num_parameters();
}

ModulePtr build_autoformer(const ModelOptions& o) {
  ArchSpec a = parse_arch(o.arch);
  SubnetModelSpec spec{a.subnet, a.head_dim, a.patch, o.input_size, o.in_channels, o.num_classes, a.qkv_bias};
  ModulePtr m = build_subnet_model(spec);
  if (a.weights.empty() || m->parameters().empty() || m->parameters()[0].device().is_meta()) return m;
  LoadReport r = load_state_file(*m, a.weights, false);
  bool only_head = r.missing.empty() && r.unexpected.empty();
  for (const auto& mm : r.mismatched) only_head = only_head && mm.rfind("head.", 0) == 0;
  NEURN_CHECK(only_head, "autoformer: the weights ", a.weights, " do not match the architecture ",
              encode_subnet(a.subnet), ":\n", r.str());
  if (!r.mismatched.empty())
    std::cerr << "autoformer: " << a.weights << ": head kept as initialised (" << r.mismatched.front() << ")\n";
  return m;
}

NEURN_REGISTER_MODEL(autoformer,
                     (ModelInfo{.name = "autoformer",
                                .family = "ViT (NAS)",
                                .reference = "Chen et al. 2021, AutoFormer (microsoft/Cream): a subnet of the "
                                             "weight-entangled ViT supernet, heads of 64 channels",
                                .description = "searched ViT; arch = exported JSON or e<embed>-h<heads>-m<ratios>; "
                                               "default e192, 12 layers of 3 heads, MLP ratio 3.5",
                                .min_input_size = 32,
                                .has_arch = true,
                                .reference_input_size = 32,
                                .reference_classes = 10}),
                     build_autoformer);

}  // namespace neurn::autoformer
