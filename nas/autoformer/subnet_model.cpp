#include "nas/autoformer/subnet_model.h"

#include <cmath>
#include <filesystem>
#include <iostream>

#include "framework/ops.h"
#include "layers/layers.h"

namespace neurn::autoformer {

SubnetModelSpec spec_of(const SearchSpace& s, const SubnetConfig& c) {
  return SubnetModelSpec{c,         s.head_dim,    s.patch,
                         s.input_size, s.in_channels, s.num_classes,
                         s.qkv_bias, s.relative_position ? s.max_relative_position : 0};
}

VitConfig vit_config_of(const SubnetModelSpec& s) {
  VitConfig v;
  v.layout = VitLayout::Timm;
  v.image_size = s.input_size;
  v.patch_size = s.patch;
  v.in_channels = s.in_channels;
  v.embed_dim = s.subnet.embed_dim;
  v.heads = s.subnet.heads;
  for (double r : s.subnet.mlp_ratios) v.mlp_dims.push_back(mlp_dim(s.subnet.embed_dim, r));
  v.num_classes = s.num_classes;
  v.ln_eps = 1e-5;  // the reference's nn.LayerNorm default
  v.head_dim = s.head_dim;
  v.qkv_bias = s.qkv_bias;
  v.max_relative_position = s.max_relative_position;
  return v;
}

ModulePtr build_subnet_model(const SubnetModelSpec& spec) {
  NEURN_CHECK(spec.subnet.depth() >= 1 && spec.subnet.heads.size() == spec.subnet.mlp_ratios.size() &&
                  spec.subnet.embed_dim > 0,
              "autoformer: subnet ", encode_subnet(spec.subnet), " needs depth >= 1 and one MLP ratio per layer");
  for (size_t i = 0; i < spec.subnet.heads.size(); ++i)
    NEURN_CHECK(spec.subnet.heads[i] >= 1 && mlp_dim(spec.subnet.embed_dim, spec.subnet.mlp_ratios[i]) >= 1,
                "autoformer: layer ", i, " of ", encode_subnet(spec.subnet), " has no heads or no MLP width");
  NEURN_CHECK(spec.patch > 0 && spec.input_size % spec.patch == 0, "autoformer: input size ", spec.input_size,
              " is not a multiple of the patch size ", spec.patch);
  return build_vit(vit_config_of(spec));
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
    if (s.relative_position)  // the tables' first head_dim columns
      for (const auto& [kv, rel] : {std::pair{"rel_pos_embed_k", b.attn->rel_k()}, {"rel_pos_embed_v", b.attn->rel_v()}})
        for (const char* t : {"embeddings_table_v", "embeddings_table_h"})
          st.push_back({p + "attn." + kv + "." + t, slice(rel->param(t), 1, 0, s.head_dim)});
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
  SubnetModelSpec spec{a.subnet,      a.head_dim,    a.patch,    o.input_size,
                       o.in_channels, o.num_classes, a.qkv_bias, a.max_relative_position};
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
