// AutoFormer's relative position encodings (the reference's
// --relative_position): trained, sliced and extracted like every other
// super weight. The space: micro with tables of 16 columns and heads of 8, so
// that the column slice matters, and a 4x4 grid with max distance 2, so that
// the clipping does.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gradcheck.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "nas/autoformer/slice_adam.h"
#include "nas/autoformer/subnet_model.h"
#include "nas/autoformer/supernet.h"

using namespace neurn;
using namespace neurn::autoformer;

namespace {

SearchSpace rel_space() {
  SearchSpace s = search_space("micro");
  s.relative_position = true, s.max_relative_position = 2, s.head_dim = 8, s.patch = 4;
  s.validate();
  return s;
}

std::shared_ptr<Supernet> make_supernet(const SearchSpace& s, DType dt, uint64_t seed) {
  Generator gen(seed);
  ParamScope scope({dt}, &gen);
  auto net = std::make_shared<Supernet>(s);
  for (auto& [name, p] : net->named_parameters()) {
    if (p.dim() == 1) normal_(p, name.find("weight") != std::string::npos ? 1.0 : 0.0, 0.3);
    if (name.find("embeddings_table") != std::string::npos) normal_(p, 0.0, 0.5);  // terms that show
  }
  return net;
}

double max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(sub(a, b))).item(); }

bool in_box(const Shape& shape, const Shape& extent, int64_t flat) {
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    if (flat % shape[i] >= extent[i]) return false;
    flat /= shape[i];
  }
  return true;
}

}  // namespace

TEST_CASE("autoformer relative positions: the supernet holds the reference's tables") {
  SearchSpace s = rel_space();
  auto net = make_supernet(s, DType::Float32, 1);
  auto sd = net->state_dict();
  std::map<std::string, Tensor> by(sd.begin(), sd.end());
  for (int64_t i = 0; i < s.super_depth; ++i)
    for (const char* kv : {"rel_pos_embed_k", "rel_pos_embed_v"})
      for (const char* t : {"embeddings_table_v", "embeddings_table_h"}) {
        std::string k = "blocks." + std::to_string(i) + ".attn." + kv + "." + t;
        INFO(k);
        REQUIRE(by.count(k));
        // (2 m + 2, super_embed_dim / super_heads), the reference's RelativePosition2D_super
        CHECK(by[k].shape() == Shape{6, 16});
      }
  CHECK(sd.size() == 8 + 16 * static_cast<size_t>(s.super_depth));  // per block 12 + 4 tables
}

TEST_CASE("autoformer relative positions: a subnet equals its extracted standalone ViT (float64)") {
  SearchSpace s = rel_space();
  auto net = make_supernet(s, DType::Float64, 3);
  Generator gen(11);
  std::vector<SubnetConfig> subnets = {largest_subnet(s), smallest_subnet(s), SubnetConfig{24, {2, 1}, {1.5, 2.0}}};
  for (int i = 0; i < 4; ++i) subnets.push_back(sample_subnet(s, gen));
  Tensor x = randn({3, 3, 16, 16}, {DType::Float64}, &gen);
  SearchSpace plain = s;
  plain.relative_position = false;
  for (const auto& c : subnets) {
    INFO(encode_subnet(c));
    net->set_subnet(c);
    Tensor y = (*net)(x);
    ModulePtr m = extract_subnet(*net, c);
    CHECK(max_abs_diff(y, (*m)(x)) < 1e-12);
    CHECK(m->num_parameters() == subnet_param_count(s, c));
    // the tables matter: the same weights without them give another output
    auto sd = m->state_dict();
    NamedTensors without;
    for (auto& [k, t] : sd)
      if (k.find("rel_pos_embed") == std::string::npos) without.push_back({k, t});
    ModulePtr p;
    {
      ParamScope scope({DType::Float64});
      p = build_subnet_model(spec_of(plain, c));
    }
    load_state(*p, without, true, "test");
    CHECK(max_abs_diff(y, (*p)(x)) > 1e-3);
  }
}

TEST_CASE("autoformer relative positions: gradients reach only the used columns; central differences agree") {
  SearchSpace s = rel_space();
  auto net = make_supernet(s, DType::Float64, 7);
  net->set_subnet(SubnetConfig{16, {1, 2}, {1.5, 1.0}});
  Generator gen(2);
  Tensor x = randn({2, 3, 16, 16}, {DType::Float64}, &gen);
  cross_entropy((*net)(x), from_vector<int64_t>({1, 7}, {2})).backward();
  std::map<const TensorImpl*, Shape> boxes;
  for (auto& a : net->active_slices()) boxes[a.param.impl_ptr().get()] = a.extent;
  int tables = 0;
  for (auto& [name, p] : net->named_parameters()) {
    if (name.find("embeddings_table") == std::string::npos) continue;
    INFO(name);
    auto it = boxes.find(p.impl_ptr().get());
    if (name.rfind("blocks.2.", 0) == 0) {
      CHECK(it == boxes.end());
      CHECK(!p.grad().defined());
      continue;
    }
    REQUIRE(it != boxes.end());
    CHECK(it->second == Shape{6, 8});  // all rows, the first head_dim columns
    ++tables;
    auto g = p.grad().to_vector<double>();
    double inside = 0, outside = 0;
    for (int64_t i = 0; i < p.numel(); ++i) (in_box(p.shape(), it->second, i) ? inside : outside) += std::abs(g[i]);
    CHECK(outside == 0.0);
    CHECK(inside > 0.0);
  }
  CHECK(tables == 8);
  // float64 gradient check of a one-layer supernet with tables
  SearchSpace g = s;
  g.super_embed_dim = 16, g.super_heads = 2, g.head_dim = 4, g.super_depth = 1, g.min_depth = 1, g.max_depth = 1;
  g.embed_dims = {8, 16}, g.super_mlp_ratio = 2.0, g.mlp_ratios = {1.0, 2.0}, g.input_size = 12, g.num_classes = 3;
  auto small = make_supernet(g, DType::Float64, 9);
  small->set_subnet(SubnetConfig{8, {2}, {1.0}});
  Tensor xs = randn({2, 3, 12, 12}, {DType::Float64}, &gen);
  auto f = [&](const std::vector<Tensor>&) { return (*small)(xs); };
  auto r = testing::gradcheck(f, small->parameters(), 1e-6, 1e-7, 1e-5);
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("autoformer relative positions: SliceAdam leaves the unused columns alone") {
  SearchSpace s = rel_space();
  auto net = make_supernet(s, DType::Float64, 5);
  SliceAdam opt(net->parameters(), AdamOptions{.lr = 0.01});
  Tensor tab = net->blocks[0]->attn->rel_k()->param("embeddings_table_h");
  auto before = tab.to_vector<double>();
  Generator gen(3);
  for (int step = 0; step < 3; ++step) {
    net->set_subnet(SubnetConfig{24, {2, 1}, {1.5, 2.0}});
    opt.zero_grad();
    cross_entropy((*net)(randn({2, 3, 16, 16}, {DType::Float64}, &gen)), from_vector<int64_t>({1, 2}, {2})).backward();
    opt.set_active(net->active_slices());
    opt.step();
  }
  auto after = tab.to_vector<double>();
  int moved = 0;
  for (int64_t i = 0; i < tab.numel(); ++i) {
    bool used = i % 16 < 8;
    if (used) moved += after[i] != before[i];
    else CHECK(after[i] == before[i]);
  }
  CHECK(moved == 6 * 8);
}

TEST_CASE("autoformer relative positions: parameter counts; exported JSON builds the registry model") {
  namespace fs = std::filesystem;
  SearchSpace s = rel_space();
  Generator gen(21);
  for (int i = 0; i < 5; ++i) {
    SubnetConfig c = i == 0 ? largest_subnet(s) : i == 1 ? smallest_subnet(s) : sample_subnet(s, gen);
    INFO(encode_subnet(c));
    SearchSpace plain = s;
    plain.relative_position = false;
    // four tables of (2 m + 2) x head_dim per layer
    CHECK(subnet_param_count(s, c) == subnet_param_count(plain, c) + c.depth() * 4 * 6 * 8);
    CHECK(subnet_params_meta(s, c) == subnet_param_count(s, c));
    auto net = make_supernet(s, DType::Float32, 1);
    net->set_subnet(c);
    int64_t active = 0;
    for (auto& a : net->active_slices()) active += shape_numel(a.extent);
    CHECK(active == subnet_param_count(s, c));
  }
  // the reference's Tiny with relative positions: 4 (30 x 64) more per layer
  SearchSpace tiny = search_space("tiny");
  int64_t plain_count = subnet_param_count(tiny, default_subnet());
  tiny.relative_position = true;
  CHECK(subnet_param_count(tiny, default_subnet()) == plain_count + 12 * 4 * 30 * 64);
  CHECK(subnet_params_meta(tiny, default_subnet()) == subnet_param_count(tiny, default_subnet()));

  fs::path dir = fs::temp_directory_path() / ("neurn_test_af_rel_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  SearchSpace cpu = search_space("cpu");
  cpu.relative_position = true;
  SubnetConfig c{96, {2, 1}, {3.0, 4.0}};
  auto net = make_supernet(cpu, DType::Float32, 6);
  ModulePtr m = extract_subnet(*net, c);
  save_state(*m, (dir / "w.safetensors").string());
  std::ofstream(dir / "a.json") << subnet_to_json(cpu, c, "w.safetensors");
  ArchSpec a = parse_arch((dir / "a.json").string());
  CHECK(a.max_relative_position == 14);
  ModulePtr loaded = build_model("autoformer", ModelOptions{.arch = (dir / "a.json").string()});
  Tensor x = rand({2, 3, 32, 32}, {}, &gen);
  net->set_subnet(c);
  CHECK(max_abs_diff((*loaded)(x), (*net)(x)) < 1e-5);
  CHECK(max_abs_diff((*loaded)(x), (*m)(x)) == 0.0);
  // the tables under the standalone keys (timm layout)
  auto sd = loaded->state_dict();
  std::map<std::string, Tensor> by(sd.begin(), sd.end());
  REQUIRE(by.count("blocks.1.attn.rel_pos_embed_v.embeddings_table_h"));
  CHECK(by["blocks.1.attn.rel_pos_embed_v.embeddings_table_h"].shape() == Shape{30, 64});
  // without "relative_position" the same weights do not fit
  std::ofstream(dir / "b.json") << subnet_to_json(search_space("cpu"), c, "w.safetensors");
  CHECK_THROWS_CONTAINING(build_model("autoformer", ModelOptions{.arch = (dir / "b.json").string()}),
                          "do not match the architecture");
  fs::remove_all(dir);
}
