// AutoFormer supernet: weight entanglement (a subnet equals its extracted
// standalone model), gradients only in the used slices, SliceAdam leaves the
// unused slices (values and moments) alone, closed-form parameter counts.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
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

std::shared_ptr<Supernet> make_supernet(const SearchSpace& s, DType dt, uint64_t seed) {
  Generator gen(seed);
  ParamScope scope({dt}, &gen);
  auto net = std::make_shared<Supernet>(s);
  // LayerNorm weights start at 1 and biases at 0: draw them so that a wrong
  // slice of those would show too
  for (auto& [name, p] : net->named_parameters())
    if (p.dim() == 1) normal_(p, name.find("weight") != std::string::npos ? 1.0 : 0.0, 0.3);
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

TEST_CASE("autoformer: a subnet's output equals its extracted standalone model's (float64)") {
  SearchSpace s = search_space("micro");
  auto net = make_supernet(s, DType::Float64, 3);
  Generator gen(11);
  std::vector<SubnetConfig> subnets = {largest_subnet(s), smallest_subnet(s),
                                       SubnetConfig{24, {2, 1}, {1.5, 2.0}}};
  for (int i = 0; i < 5; ++i) subnets.push_back(sample_subnet(s, gen));
  Tensor x = randn({3, 3, 16, 16}, {DType::Float64}, &gen);
  for (const auto& c : subnets) {
    INFO(encode_subnet(c));
    net->set_subnet(c);
    Tensor y = (*net)(x);
    REQUIRE(y.shape() == Shape{3, 10});
    ModulePtr m = extract_subnet(*net, c);
    CHECK(net->subnet() == c);  // extraction restores the sampled subnet
    Tensor z = (*m)(x);
    CHECK(max_abs_diff(y, z) < 1e-12);
    CHECK(max(abs(y)).item() > 1e-3);  // a non-trivial output
    // the extracted model owns copies
    for (auto& [name, p] : m->named_parameters()) CHECK(p.dtype() == DType::Float64);
  }
}

TEST_CASE("autoformer: the qkv slice takes q, k, v as rows 0, 1, 2 mod 3 of the used prefix") {
  SearchSpace s = search_space("micro");
  auto net = make_supernet(s, DType::Float64, 5);
  net->set_subnet(SubnetConfig{24, {1}, {1.0}});
  auto qkv = net->blocks[0]->attn->qkv();
  Tensor w = qkv->param("weight");  // (96, 32), interleaved
  Tensor sw = qkv->sampled_weight();  // (48, 24) = [q; k; v], 16 rows each
  REQUIRE(sw.shape() == Shape{48, 24});
  auto wv = w.to_vector<double>();
  auto sv = sw.to_vector<double>();
  for (int64_t part = 0; part < 3; ++part)
    for (int64_t j = 0; j < 16; ++j)
      for (int64_t col = 0; col < 24; ++col)
        CHECK(sv[(part * 16 + j) * 24 + col] == wv[(3 * j + part) * 32 + col]);
}

TEST_CASE("autoformer: gradients reach only the slices a subnet uses") {
  SearchSpace s = search_space("micro");
  auto net = make_supernet(s, DType::Float64, 7);
  SubnetConfig c{16, {1, 2}, {1.5, 1.0}};  // depth 2 of 3, embed 16 of 32
  net->set_subnet(c);
  Generator gen(2);
  Tensor x = randn({2, 3, 16, 16}, {DType::Float64}, &gen);
  Tensor loss = cross_entropy((*net)(x), from_vector<int64_t>({1, 7}, {2}));
  loss.backward();
  std::map<const TensorImpl*, Shape> boxes;
  for (auto& a : net->active_slices()) boxes[a.param.impl_ptr().get()] = a.extent;
  int64_t used = 0, unused = 0;
  for (auto& [name, p] : net->named_parameters()) {
    INFO(name);
    auto it = boxes.find(p.impl_ptr().get());
    if (it == boxes.end()) {  // block 2: not in the graph at all
      CHECK(name.rfind("blocks.2.", 0) == 0);
      CHECK(!p.grad().defined());
      ++unused;
      continue;
    }
    ++used;
    REQUIRE(p.grad().defined());
    auto g = p.grad().to_vector<double>();
    double inside = 0, outside = 0;
    for (int64_t i = 0; i < p.numel(); ++i) (in_box(p.shape(), it->second, i) ? inside : outside) += std::abs(g[i]);
    CHECK(outside == 0.0);
    CHECK(inside > 0.0);
  }
  CHECK(unused == 12);  // block 2: two LayerNorms, qkv, proj, fc1, fc2, each weight and bias
  CHECK(used == 2 + 2 + 2 * 12 + 2 + 2);  // patch embed, pos/cls, two blocks, norm, head
}

TEST_CASE("autoformer: the supernet's gradient matches central differences (float64)") {
  SearchSpace s = search_space("micro");
  s.super_embed_dim = 16, s.super_heads = 2, s.head_dim = 4, s.super_depth = 1, s.min_depth = 1, s.max_depth = 1;
  s.embed_dims = {8, 16}, s.super_mlp_ratio = 2.0, s.mlp_ratios = {1.0, 2.0}, s.patch = 4, s.input_size = 8;
  s.num_classes = 3;
  auto net = make_supernet(s, DType::Float64, 9);
  net->set_subnet(SubnetConfig{8, {1}, {1.0}});
  Generator gen(4);
  Tensor x = randn({2, 3, 8, 8}, {DType::Float64}, &gen);
  std::vector<Tensor> params = net->parameters();
  auto f = [&](const std::vector<Tensor>&) { return (*net)(x); };
  auto r = testing::gradcheck(f, params, 1e-6, 1e-7, 1e-5);
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("autoformer: SliceAdam moves only the used slices, values and moments") {
  SearchSpace s = search_space("micro");
  auto net = make_supernet(s, DType::Float64, 13);
  SliceAdam opt(net->parameters(), AdamOptions{.lr = 0.01});
  Generator gen(5);
  Tensor x = randn({2, 3, 16, 16}, {DType::Float64}, &gen);
  Tensor t = from_vector<int64_t>({1, 7}, {2});
  auto train_step = [&](const SubnetConfig& c) {
    net->set_subnet(c);
    opt.zero_grad();
    cross_entropy((*net)(x), t).backward();
    opt.set_active(net->active_slices());
    opt.step();
  };
  train_step(largest_subnet(s));  // every element has moments now
  std::vector<std::vector<double>> before;  // copies: the state dict shares the parameters' storage
  for (auto& [name, p] : net->named_parameters()) before.push_back(p.to_vector<double>());
  auto state_before = opt.state_dict();
  SubnetConfig small{16, {1}, {1.0}};
  train_step(small);
  std::map<const TensorImpl*, Shape> boxes;
  for (auto& a : net->active_slices()) boxes[a.param.impl_ptr().get()] = a.extent;
  auto state_after = opt.state_dict();
  auto find_state = [](const NamedTensors& st, const std::string& key) {
    for (auto& [k, v] : st)
      if (k == key) return v;
    FAIL("no optimizer state ", key);
    return Tensor();
  };
  auto params = net->named_parameters();
  int64_t moved_inside = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    const auto& [name, p] = params[k];
    INFO(name);
    auto it = boxes.find(p.impl_ptr().get());
    Shape extent = it == boxes.end() ? Shape(p.dim(), 0) : it->second;
    auto now = p.to_vector<double>();
    const auto& was = before[k];
    std::string pre = "state." + std::to_string(k) + ".";
    auto m0 = find_state(state_before, pre + "exp_avg").to_vector<double>();
    auto m1 = find_state(state_after, pre + "exp_avg").to_vector<double>();
    auto v0 = find_state(state_before, pre + "exp_avg_sq").to_vector<double>();
    auto v1 = find_state(state_after, pre + "exp_avg_sq").to_vector<double>();
    auto c1 = find_state(state_after, pre + "step_count").to_vector<double>();
    for (int64_t i = 0; i < p.numel(); ++i) {
      if (in_box(p.shape(), extent, i)) {
        CHECK(c1[i] == 2.0);
        moved_inside += now[i] != was[i];
      } else {
        CHECK(c1[i] == 1.0);
        CHECK(now[i] == was[i]);
        CHECK(m1[i] == m0[i]);
        CHECK(v1[i] == v0[i]);
      }
    }
  }
  CHECK(moved_inside > 1000);
}

TEST_CASE("autoformer: SliceAdam with whole boxes is Adam, and plain Adam would move unused slices") {
  SearchSpace s = search_space("micro");
  auto a = make_supernet(s, DType::Float64, 17), b = make_supernet(s, DType::Float64, 17);
  SliceAdam sa(a->parameters(), AdamOptions{.lr = 0.01, .weight_decay = 0.001});
  Adam ad(b->parameters(), AdamOptions{.lr = 0.01, .weight_decay = 0.001});
  Generator gen(6);
  Tensor x = randn({2, 3, 16, 16}, {DType::Float64}, &gen);
  Tensor t = from_vector<int64_t>({0, 9}, {2});
  for (int step = 0; step < 3; ++step) {
    for (auto* n : {a.get(), b.get()}) {
      n->set_subnet(largest_subnet(s));
      n->zero_grad();
      cross_entropy((*n)(x), t).backward();
    }
    sa.set_active(a->active_slices());
    sa.step();
    ad.step();
  }
  auto pa = a->parameters(), pb = b->parameters();
  double worst = 0;
  for (size_t k = 0; k < pa.size(); ++k) worst = std::max(worst, max_abs_diff(pa[k], pb[k]));
  CHECK(worst < 1e-15);
  // Now a small subnet: plain Adam moves the fc1 rows the subnet did not use.
  b->set_subnet(SubnetConfig{16, {1, 1, 1}, {1.0, 1.0, 1.0}});
  b->zero_grad();
  cross_entropy((*b)(x), t).backward();
  Tensor w = b->blocks[0]->fc1->param("weight");  // (64, 32); the subnet uses (16, 16)
  auto before = w.to_vector<double>();
  ad.step();
  auto after = w.to_vector<double>();
  CHECK(before[63 * 32 + 31] != after[63 * 32 + 31]);
}

TEST_CASE("autoformer: parameter counts, closed form against the built tensors and the meta device") {
  // the default subnet by hand: patch 192*3*16*16 + 192; cls 192; pos 5*192;
  // per layer 4*192 + (3*192*192 + 576) + (192*192 + 192) + (192*672 + 672) + (672*192 + 192)
  // = 407,904; final norm 384; head 192*10 + 10
  SearchSpace tiny = search_space("tiny");
  int64_t by_hand = 147648 + 192 + 960 + 12 * 407904 + 384 + 1930;
  CHECK(by_hand == 5045962);
  CHECK(subnet_param_count(tiny, default_subnet()) == by_hand);
  CHECK(trace_model("autoformer").params == by_hand);
  for (const std::string name : {"tiny", "small", "cpu", "micro"}) {
    SearchSpace s = search_space(name);
    Generator gen(21);
    for (int i = 0; i < 6; ++i) {
      SubnetConfig c = i == 0 ? largest_subnet(s) : i == 1 ? smallest_subnet(s) : sample_subnet(s, gen);
      INFO(name, " ", encode_subnet(c));
      int64_t closed = subnet_param_count(s, c);
      CHECK(subnet_params_meta(s, c) == closed);
      if (name == "micro" || name == "cpu") {
        auto net = make_supernet(s, DType::Float32, 1);
        net->set_subnet(c);
        int64_t active = 0;
        for (auto& a : net->active_slices()) active += shape_numel(a.extent);
        CHECK(active == closed);
        CHECK(extract_subnet(*net, c)->num_parameters() == closed);
      }
    }
  }
  // the supernet itself: the largest subnet plus nothing else
  SearchSpace s = search_space("micro");
  SubnetConfig all{s.super_embed_dim, std::vector<int64_t>(s.super_depth, s.super_heads),
                   std::vector<double>(s.super_depth, s.super_mlp_ratio)};
  int64_t super_params = make_supernet(s, DType::Float32, 1)->num_parameters();
  // qkv and proj are (3 D, D) and (D, D) in the reference even when heads * 64 < D
  CHECK(super_params >= subnet_param_count(s, all));
}

TEST_CASE("autoformer: encodings, JSON and bad input") {
  SubnetConfig c{216, {3, 4, 4}, {3.5, 4.0, 3.5}};
  CHECK(encode_subnet(c) == "e216-h3,4,4-m3.5,4,3.5");
  CHECK(decode_subnet(encode_subnet(c)) == c);
  CHECK_THROWS_CONTAINING(decode_subnet("e216-h3,4-m3.5"), "2 head counts but 1 MLP ratios");
  CHECK_THROWS_CONTAINING(decode_subnet("e2x6-h3-m3.5"), "bad embed dim");
  CHECK_THROWS_CONTAINING(decode_subnet("h3-m3.5"), "e, h and m are all required");
  SearchSpace tiny = search_space("tiny");
  CHECK_THROWS_CONTAINING(check_subnet(tiny, SubnetConfig{200, std::vector<int64_t>(12, 3), std::vector<double>(12, 4)}),
                          "embed dim 200 is not a choice");
  CHECK_THROWS_CONTAINING(check_subnet(tiny, SubnetConfig{192, {3}, {4.0}}), "depth 1 outside space tiny");
  CHECK_THROWS_CONTAINING(check_subnet_fits(tiny, SubnetConfig{192, {5}, {4.0}}), "has 5 heads");
  CHECK_THROWS_CONTAINING(search_space("huge"), "unknown search space 'huge'");
  CHECK_THROWS_CONTAINING(build_model("autoformer", ModelOptions{.arch = "nonsense"}), "cannot parse the subnet");
  // an inline arch builds; its trace has one attention per layer
  ModelTrace tr = trace_model("autoformer", ModelOptions{.arch = "e96-h1,2-m2,3"});
  CHECK(std::count(tr.tokens.begin(), tr.tokens.end(), "MultiheadAttention") == 2);
  CHECK(tr.params == subnet_param_count(search_space("cpu"), decode_subnet("e96-h1,2-m2,3")));
}

TEST_CASE("autoformer: an exported JSON architecture builds the registry model, bad files are named") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("neurn_test_af_json_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  SearchSpace s = search_space("cpu");
  SubnetConfig c{96, {2, 1, 2}, {3.0, 4.0, 2.0}};
  std::ofstream(dir / "a.json") << subnet_to_json(s, c);
  ArchSpec a = parse_arch((dir / "a.json").string());
  CHECK(a.subnet == c);
  CHECK(a.head_dim == 64);
  CHECK(a.patch == 16);
  CHECK(a.weights.empty());
  CHECK(trace_model("autoformer", ModelOptions{.arch = (dir / "a.json").string()}).params ==
        subnet_param_count(s, c));
  // inherited weights: the file named by "weights" is loaded
  Generator gen(4);
  ModulePtr m;
  {
    ParamScope scope({}, &gen);
    m = build_subnet_model(spec_of(s, c));
  }
  save_state(*m, (dir / "w.safetensors").string());
  std::ofstream(dir / "b.json") << subnet_to_json(s, c, "w.safetensors");
  ModulePtr loaded = build_model("autoformer", ModelOptions{.arch = (dir / "b.json").string()});
  Tensor x = rand({1, 3, 32, 32}, {}, &gen);
  CHECK(max(abs(sub((*loaded)(x), (*m)(x)))).item() == 0.0);
  // weights of another architecture are refused
  std::ofstream(dir / "c.json") << subnet_to_json(s, SubnetConfig{64, {1}, {2.0}}, "w.safetensors");
  CHECK_THROWS_CONTAINING(build_model("autoformer", ModelOptions{.arch = (dir / "c.json").string()}),
                          "do not match the architecture e64-h1-m2");
  std::ofstream(dir / "d.json") << "{\"embed_dim\": 96, \"num_heads\": [1, 2], \"mlp_ratio\": [2]}";
  CHECK_THROWS_CONTAINING(parse_arch((dir / "d.json").string()), "2 head counts but 1 MLP ratios");
  std::ofstream(dir / "e.json") << "{\"num_heads\": [1], \"mlp_ratio\": [2]}";
  CHECK_THROWS_CONTAINING(parse_arch((dir / "e.json").string()), "has no \"embed_dim\"");
  CHECK_THROWS_CONTAINING(parse_arch((dir / "missing.json").string()), "cannot read the architecture file");
  fs::remove_all(dir);
}
