// Published supernet checkpoints: the reference's key layout (microsoft/Cream
// AutoFormer, Vision_TransformerSuper) loads into neurn's supernet; the .pth
// converter (scripts/convert_autoformer_checkpoint.py) where PyTorch exists.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gradcheck.h"
#include "layers/layers.h"
#include "nas/autoformer/subnet_model.h"
#include "nas/autoformer/supernet.h"
#include "skip.h"

namespace fs = std::filesystem;
using namespace neurn;
using namespace neurn::autoformer;

namespace {

fs::path scratch(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("neurn_test_afck_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The reference's state-dict names and shapes, written out from its
// constructors (not from neurn's modules): patch_embed_super = PatchembedSuper
// (nn.Conv2d proj), blocks = TransformerEncoderLayer (AttentionSuper with
// change_qkv: qkv_super (3 D, D), proj LinearSuper (D, D); attn_layer_norm,
// ffn_layer_norm; fc1 (int(D r), D), fc2; with --relative_position
// attn.rel_pos_embed_k/v.embeddings_table_v/h (2 * 14 + 2, D // heads)),
// abs_pos pos_embed, cls_token, pre_norm norm, head.
std::vector<std::pair<std::string, Shape>> reference_keys(const SearchSpace& s) {
  const int64_t d = s.super_embed_dim, m = mlp_dim(d, s.super_mlp_ratio);
  std::vector<std::pair<std::string, Shape>> k = {
      {"patch_embed_super.proj.weight", {d, s.in_channels, s.patch, s.patch}}, {"patch_embed_super.proj.bias", {d}}};
  for (int64_t i = 0; i < s.super_depth; ++i) {
    std::string p = "blocks." + std::to_string(i) + ".";
    k.push_back({p + "attn.qkv.weight", {3 * d, d}});
    k.push_back({p + "attn.qkv.bias", {3 * d}});
    k.push_back({p + "attn.proj.weight", {d, d}});
    k.push_back({p + "attn.proj.bias", {d}});
    for (const char* ln : {"attn_layer_norm", "ffn_layer_norm"}) {
      k.push_back({p + ln + ".weight", {d}});
      k.push_back({p + ln + ".bias", {d}});
    }
    k.push_back({p + "fc1.weight", {m, d}});
    k.push_back({p + "fc1.bias", {m}});
    k.push_back({p + "fc2.weight", {d, m}});
    k.push_back({p + "fc2.bias", {d}});
    if (s.relative_position)  // RelativePosition2D_super(super_embed_dim // num_heads, max_relative_position)
      for (const char* kv : {"rel_pos_embed_k", "rel_pos_embed_v"})
        for (const char* t : {"embeddings_table_v", "embeddings_table_h"})
          k.push_back({p + "attn." + kv + "." + t, {2 * s.max_relative_position + 2, d / s.super_heads}});
  }
  k.push_back({"pos_embed", {1, s.num_tokens(), d}});
  k.push_back({"cls_token", {1, 1, d}});
  k.push_back({"norm.weight", {d}});
  k.push_back({"norm.bias", {d}});
  k.push_back({"head.weight", {s.num_classes, d}});
  k.push_back({"head.bias", {s.num_classes}});
  return k;
}

Tensor pattern(const Shape& shape, size_t key_index) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i % 97) * 0.01 + key_index * 0.001);
  return from_vector<float>(v, shape);
}

void check_loaded(Supernet& net, const std::vector<std::pair<std::string, Shape>>& keys) {
  auto sd = net.state_dict();
  REQUIRE(sd.size() == keys.size());
  std::map<std::string, Tensor> by_name(sd.begin(), sd.end());
  for (size_t k = 0; k < keys.size(); ++k) {
    INFO(keys[k].first);
    REQUIRE(by_name.count(keys[k].first));
    CHECK(max(abs(sub(by_name[keys[k].first], pattern(keys[k].second, k)))).item() == 0.0);
  }
}

}  // namespace

TEST_CASE("autoformer: a checkpoint with the reference's key names loads into the supernet") {
  for (const std::string name : {"tiny", "small", "cpu"}) {
    INFO(name);
    SearchSpace s = search_space(name);
    auto keys = reference_keys(s);
    // names and shapes on the meta device, for the full-size spaces
    ParamScope meta({DType::Float32, Device::meta()});
    Supernet net(s);
    auto sd = net.state_dict();
    REQUIRE(sd.size() == keys.size());
    std::map<std::string, Shape> shapes;
    for (auto& [k, t] : sd) shapes[k] = t.shape();
    for (auto& [k, shape] : keys) CHECK_MESSAGE(shapes[k] == shape, k);
  }
  SearchSpace s = search_space("cpu");
  auto keys = reference_keys(s);
  fs::path dir = scratch("names");
  NamedTensors file;
  for (size_t k = 0; k < keys.size(); ++k) file.push_back({keys[k].first, pattern(keys[k].second, k)});
  save_safetensors((dir / "ref.safetensors").string(), file);
  Supernet net(s);
  load_supernet_weights(net, (dir / "ref.safetensors").string());
  check_loaded(net, keys);
  // a relative-position checkpoint into a space without them is refused with the reason
  file.push_back({"blocks.0.attn.rel_pos_embed_k.embeddings_table_v", pattern({30, 64}, 0)});
  save_safetensors((dir / "rel.safetensors").string(), file);
  CHECK_THROWS_CONTAINING(load_supernet_weights(net, (dir / "rel.safetensors").string()),
                          "set relative_position: true");
  // a wrong shape names the key
  file.pop_back();
  file[0].second = pattern({8, 3, 16, 16}, 0);
  save_safetensors((dir / "bad.safetensors").string(), file);
  CHECK_THROWS_CONTAINING(load_supernet_weights(net, (dir / "bad.safetensors").string()),
                          "patch_embed_super.proj.weight");
  fs::remove_all(dir);
}

TEST_CASE("autoformer: a checkpoint with relative position tables loads into a space with relative_position") {
  SearchSpace s = search_space("cpu");
  s.relative_position = true;
  auto keys = reference_keys(s);
  REQUIRE(keys.size() == 8 + 16 * static_cast<size_t>(s.super_depth));  // per block 12 + 4 tables
  fs::path dir = scratch("rel");
  NamedTensors file;
  for (size_t k = 0; k < keys.size(); ++k) file.push_back({keys[k].first, pattern(keys[k].second, k)});
  save_safetensors((dir / "ref.safetensors").string(), file);
  Supernet net(s);
  load_supernet_weights(net, (dir / "ref.safetensors").string());
  check_loaded(net, keys);
  // the loaded tables are what a subnet computes with: its extracted model
  // carries their first head_dim (64 = D / heads here) columns
  SubnetConfig c{96, {2, 1}, {3.0, 4.0}};
  ModulePtr m = extract_subnet(net, c);
  auto sd = m->state_dict();
  std::map<std::string, Tensor> by(sd.begin(), sd.end());
  size_t idx = 0;
  for (size_t k = 0; k < keys.size(); ++k)
    if (keys[k].first == "blocks.1.attn.rel_pos_embed_v.embeddings_table_h") idx = k;
  REQUIRE(idx > 0);
  CHECK(max(abs(sub(by["blocks.1.attn.rel_pos_embed_v.embeddings_table_h"], pattern({30, 64}, idx)))).item() == 0.0);
  // a checkpoint without tables into this space is refused with the reason
  Supernet plain_net(search_space("cpu"));
  save_state(plain_net, (dir / "plain.safetensors").string());
  CHECK_THROWS_CONTAINING(load_supernet_weights(net, (dir / "plain.safetensors").string()),
                          "has no relative position tables");
  fs::remove_all(dir);
}

TEST_CASE("autoformer: the .pth converter (scripts/convert_autoformer_checkpoint.py) feeds the supernet" *
          testing::skip_unless(testing::have_torch(), testing::kNoTorch)) {
  SearchSpace s = search_space("cpu");
  s.relative_position = true;  // the keys of a --relative_position supernet, tables included
  auto keys = reference_keys(s);
  fs::path dir = scratch("pth");
  {
    std::ofstream f(dir / "keys.txt");
    for (auto& [k, shape] : keys) {
      f << k;
      for (int64_t d : shape) f << " " << d;
      f << "\n";
    }
  }
  std::string src = NEURN_SOURCE_DIR;
  std::string make = "/usr/bin/python3 '" + src + "/tests/nas/autoformer_checkpoint.py' '" + (dir / "keys.txt").string() +
                     "' '" + (dir / "ref.pth").string() + "'";
  REQUIRE(std::system(make.c_str()) == 0);
  std::string convert = "/usr/bin/python3 '" + src + "/scripts/convert_autoformer_checkpoint.py' '" +
                        (dir / "ref.pth").string() + "' '" + (dir / "ref.safetensors").string() + "'";
  REQUIRE(std::system(convert.c_str()) == 0);
  Supernet net(s);
  load_supernet_weights(net, (dir / "ref.safetensors").string());
  check_loaded(net, keys);
  fs::remove_all(dir);
}
