// SPOS (nas/spos): sampling, shared weights, off-path parameters, a path's
// output against the standalone network, channel slicing and fake
// quantization gradient checks, BN recalibration, the registered model.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <sstream>

#include "framework/ops/quantize.h"
#include "framework/optim/sgd.h"
#include "gradcheck.h"
#include "models/registry.h"
#include "nas/spos/space.h"
#include "nas/spos/supernet.h"

using namespace neurn;
using namespace neurn::spos;
using neurn::testing::gradcheck;

namespace {

// A small space with every dimension searched (fast enough for float64).
SposSpace small_space() {
  SposSpace s;
  s.stage_repeats = {2, 1, 2, 1};
  s.stage_channels = {16, 24, 32, 48};
  s.stage_strides = {1, 2, 2, 1};
  s.stem_channels = 8;
  s.last_channels = 64;
  s.search_channels = true;
  s.search_bits = true;
  s.channel_scales = {0.4, 0.8, 1.2, 1.6};
  s.weight_bits = {4, 8, 32};
  s.act_bits = {4, 8, 32};
  s.dropout = 0.0;
  return s;
}

// An architecture of `s` that uses all four ops and various widths/bits.
SposArch mixed_arch(const SposSpace& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  SposArch a = sample_arch(s, rng);
  for (size_t l = 0; l < a.layers.size(); ++l) a.layers[l].op = static_cast<int>(l % 4);
  return a;
}

double max_rel(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  REQUIRE(x.size() == y.size());
  double d = 0, m = 1e-30;
  for (size_t i = 0; i < x.size(); ++i) d = std::max(d, std::abs(x[i] - y[i])), m = std::max(m, std::abs(y[i]));
  return d / m;
}

void load_into(Module& model, const std::vector<std::pair<std::string, Tensor>>& state) {
  std::map<std::string, Tensor> mine;
  for (auto& [k, t] : model.state_dict()) mine[k] = t;
  for (auto& [k, t] : state) {
    INFO(k);
    REQUIRE(mine.count(k));
    REQUIRE(mine[k].shape() == t.shape());
    mine[k].copy_(t);
  }
}

}  // namespace

TEST_CASE("spos: uniform sampling covers every choice of every layer") {
  SposSpace s = small_space();
  std::mt19937_64 rng(1);
  const int n = 3000;
  std::vector<std::map<int, int>> ops(s.layers()), scales(s.layers()), wb(s.layers()), ab(s.layers());
  for (int i = 0; i < n; ++i) {
    SposArch a = sample_arch(s, rng);
    for (int64_t l = 0; l < s.layers(); ++l) {
      ++ops[l][a.layers[l].op];
      ++scales[l][a.layers[l].scale];
      ++wb[l][a.layers[l].wbits];
      ++ab[l][a.layers[l].abits];
    }
  }
  for (int64_t l = 0; l < s.layers(); ++l) {
    CHECK(ops[l].size() == 4);
    CHECK(scales[l].size() == 4);
    CHECK(wb[l].size() == 3);
    CHECK(ab[l].size() == 3);
    // uniform: each of 4 choices expected n/4 = 750 times (sd 24)
    for (auto& [v, c] : ops[l]) CHECK(std::abs(c - n / 4) < 150);
    for (auto& [v, c] : wb[l]) CHECK(std::abs(c - n / 3) < 150);
  }
  // switched-off dimensions have a single choice
  SposSpace ops_only;
  std::vector<int> ch = gene_choices(ops_only);
  REQUIRE(ch.size() == 80);
  for (size_t i = 0; i < ch.size(); ++i) CHECK(ch[i] == (i % 4 == 0 ? 4 : 1));
}

TEST_CASE("spos: a path's output equals the standalone network built from it with the same weights") {
  ParamScope scope({.dtype = DType::Float64});
  SposSpace s = small_space();
  Supernet net(s, 10, 3);
  Generator gen(3);
  Tensor x = randn({4, 3, 16, 16}, {DType::Float64}, &gen);
  for (uint64_t seed : {11u, 12u, 13u}) {
    SposArch a = mixed_arch(s, seed);
    INFO(describe(a));
    // give the path's BN non-trivial running statistics
    net.set_path(a);
    net.train();
    {
      NoGradGuard ng;
      for (int i = 0; i < 2; ++i) net(randn({4, 3, 16, 16}, {DType::Float64}, &gen));
    }
    ModulePtr standalone = build_spos_model(a, 10, 3);
    load_into(*standalone, net.path_state(a));
    net.eval();
    standalone->eval();
    NoGradGuard ng;
    double e_eval = max_rel(net(x), (*standalone)(x));
    net.train();
    standalone->train();
    double e_train = max_rel(net(x), (*standalone)(x));
    MESSAGE("path " << seed << ": eval rel. error " << e_eval << ", train " << e_train);
    CHECK(e_eval < 1e-10);
    CHECK(e_train < 1e-10);
  }
}

TEST_CASE("spos: shared weights are the same tensors in every path; off-path parameters are not updated") {
  SposSpace s = small_space();
  s.search_bits = false;
  Supernet net(s, 10, 3);
  // Every parameter belongs to exactly one module of the supernet.
  std::map<const void*, int> owners;
  for (auto& [k, t] : net.named_parameters()) ++owners[t.impl_ptr().get()];
  for (auto& [p, c] : owners) CHECK(c == 1);

  SposArch a = mixed_arch(s, 21), b = a;
  b.layers[1].op = (a.layers[1].op + 1) % 4;  // differ in layer 1 only
  b.layers[3].scale = 0;
  a.layers[3].scale = 3;
  // The tensors of a unit on both paths: changing one changes both paths' outputs.
  Generator gen(4);
  Tensor x = randn({2, 3, 16, 16}, {}, &gen);
  net.eval();
  NoGradGuard ng0;
  net.set_path(a);
  Tensor ya = net(x);
  net.set_path(b);
  Tensor yb = net(x);
  Tensor& w = net.unit(0, a.layers[0].op).param("pw1_0");  // layer 0 is on both paths
  Tensor saved = w.clone();
  mul_(w, 1.5);
  net.set_path(a);
  CHECK(max_rel(net(x), ya) > 1e-4);
  net.set_path(b);
  CHECK(max_rel(net(x), yb) > 1e-4);
  w.copy_(saved);
  // ... and an op off both paths does not matter
  int off = 0;
  while (off == a.layers[2].op || off == b.layers[2].op) ++off;
  mul_(net.unit(2, off).param("pw1_0"), 3.0);
  net.set_path(a);
  CHECK(max_rel(net(x), ya) == 0);
}

TEST_CASE("spos: an SGD step with momentum and weight decay leaves the parameters off the path as they were") {
  SposSpace s = small_space();
  s.search_bits = false;
  Supernet net(s, 10, 3);
  Sgd opt(net.parameters(), SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 4e-5});
  Generator gen(5);
  Tensor x = randn({4, 3, 16, 16}, {}, &gen);
  Tensor y = from_vector<int64_t>({1, 2, 3, 4}, {4});
  SposArch a = mixed_arch(s, 31), b = mixed_arch(s, 32);
  a.layers[0].scale = 1;
  b.layers[0].op = a.layers[0].op;
  b.layers[0].scale = 3;
  net.train();
  // step 1 on b builds momentum everywhere on b's path (incl. layer 0's chunks 2, 3)
  net.set_path(b);
  opt.zero_grad();
  cross_entropy(net(x), y, 0.1).backward();
  opt.step();
  // step 2 on a: layer 0's chunks 2 and 3 are off the path now
  std::vector<std::pair<std::string, Tensor>> before;
  for (auto& [k, t] : net.named_parameters()) before.push_back({k, t.clone()});
  net.set_path(a);
  opt.zero_grad();
  cross_entropy(net(x), y, 0.1).backward();
  opt.step();
  auto after = net.named_parameters();
  SuperUnit& u0 = net.unit(0, a.layers[0].op);
  int changed = 0, unchanged = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    bool same = max_rel(after[i].second, before[i].second) == 0;
    const std::string& k = after[i].first;
    // off the path: every layer's other ops, and the chunks beyond a's scale
    bool on_path = k.rfind("first_conv", 0) == 0 || k.rfind("conv_last", 0) == 0 || k.rfind("classifier", 0) == 0;
    for (int64_t l = 0; l < s.layers(); ++l) {
      std::string pre = "features." + std::to_string(l) + "." + std::to_string(a.layers[l].op) + ".";
      if (k.rfind(pre, 0) == 0) {
        std::string name = k.substr(pre.size());
        size_t us = name.find('_');
        bool chunked = us != std::string::npos && name.rfind("proj_", 0) != 0;
        bool in_scale = true;
        if (chunked) {
          std::string idx = name.substr(us + 1);
          for (char& c : idx)
            if (c == '_') c = ' ';
          std::istringstream is(idx);
          int v;
          while (is >> v) in_scale = in_scale && v <= a.layers[l].scale;
        }
        on_path = in_scale;
      }
    }
    INFO(k);
    if (on_path) {
      CHECK(!same);
      ++changed;
    } else {
      CHECK(same);
      ++unchanged;
    }
  }
  CHECK(changed > 10);
  CHECK(unchanged > 10);
  CHECK(!u0.param("pw1_3").grad().defined());
}

TEST_CASE("spos: channel slicing and the quantized path are gradient-checked (float64)") {
  ParamScope scope({.dtype = DType::Float64});
  SposSpace s = small_space();
  Generator gen(6);
  for (int op : {0, 3}) {
    SuperUnit unit(s, 0, op);  // layer 0: projecting, 8 -> 16 channels
    unit.train();
    Tensor x = randn({2, 8, 5, 5}, {DType::Float64}, &gen);
    x.requires_grad_();
    std::vector<Tensor> inputs = {x, unit.param("pw1_0"), unit.param("pw1_1")};
    if (op == 0) inputs.push_back(unit.param("pw2_1"));
    if (op == 3) inputs.push_back(unit.param("pw2_1_0"));
    INFO("op " << op);
    CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return unit.forward_path(in[0], 1, 32, 32); }, inputs));
    // chunks beyond the scale get no gradient at all
    CHECK(!unit.param("pw1_2").grad().defined());
    CHECK(!unit.param("pw1_3").grad().defined());
  }
}

TEST_CASE("fake quantization: grid values, the straight-through gradient, ranges from the data") {
  ParamScope scope({.dtype = DType::Float64});
  Tensor x = from_vector<double>({-2.0, -0.74, -0.26, 0.0, 0.24, 0.26, 0.76, 1.5}, {8});
  x.requires_grad_();
  // scale 0.5, q in [-2, 2]: the grid -1, -0.5, 0, 0.5, 1
  Tensor y = fake_quantize(x, 0.5, -2, 2);
  CHECK(y.to_vector<double>() == std::vector<double>{-1.0, -0.5, -0.5, 0.0, 0.0, 0.5, 1.0, 1.0});
  Tensor g = from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8}, {8});
  y.backward(g);
  // STE: the gradient passes inside [-1, 1], stops outside (-2.0 and 1.5)
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 2, 3, 4, 5, 6, 7, 0});
  // accumulates
  fake_quantize(x, 0.5, -2, 2).backward(g);
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 4, 6, 8, 10, 12, 14, 0});
  // equals clamp's gradient (the documented surrogate) on random data
  Generator gen(7);
  Tensor r = randn({64}, {DType::Float64}, &gen);
  Tensor a = r.detach().clone(), b = r.detach().clone();
  a.requires_grad_();
  b.requires_grad_();
  Tensor proj = randn({64}, {DType::Float64}, &gen);
  sum(mul(fake_quantize(a, 0.1, -7, 7), proj)).backward();
  sum(mul(clamp(b, -0.7, 0.7), proj)).backward();
  CHECK(a.grad().to_vector<double>() == b.grad().to_vector<double>());

  // per-tensor ranges
  Tensor w = from_vector<double>({-0.9, 0.3, 0.6, 0.1}, {4});
  auto q4 = fake_quantize_symmetric(w, 4).to_vector<double>();  // scale 0.9 / 7
  for (double v : q4) CHECK(std::abs(v / (0.9 / 7) - std::round(v / (0.9 / 7))) < 1e-12);
  CHECK(q4[0] == doctest::Approx(-0.9));
  CHECK(fake_quantize_symmetric(w, 32).same(w));
  auto u2 = fake_quantize_unsigned(from_vector<double>({-1.0, 0.2, 0.5, 0.9}, {4}), 2).to_vector<double>();
  const double u2_want[4] = {0.0, 0.3, 0.6, 0.9};  // scale 0.9 / 3, negatives clamp to 0
  for (int i = 0; i < 4; ++i) CHECK(u2[i] == doctest::Approx(u2_want[i]).epsilon(1e-12));
  CHECK_THROWS_CONTAINING(fake_quantize_symmetric(w, 1), "bits must be 2..16 or 32");
  CHECK_THROWS_CONTAINING(fake_quantize(w, 0.0, -1, 1), "scale must be positive");
  CHECK_THROWS_CONTAINING(fake_quantize(w, 1.0, 1, 1), "qmin");
}

TEST_CASE("spos: BN recalibration changes only running statistics") {
  SposSpace s = small_space();
  Supernet net(s, 10, 3);
  Generator gen(8);
  std::vector<Tensor> batches;
  for (int i = 0; i < 3; ++i) batches.push_back(randn({4, 3, 16, 16}, {}, &gen, 0.5, 2.0));
  SposArch a = mixed_arch(s, 41);
  net.eval();
  std::vector<Tensor> params, buffers;
  for (auto& [k, t] : net.named_parameters()) params.push_back(t.clone());
  for (auto& [k, t] : net.named_buffers()) buffers.push_back(t.clone());
  recalibrate_bn(net, a, batches);
  CHECK(!net.is_training());  // mode restored
  auto p2 = net.named_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    CHECK(max_rel(p2[i].second, params[i]) == 0);
    CHECK(!p2[i].second.grad().defined());
  }
  int changed = 0;
  auto b2 = net.named_buffers();
  for (size_t i = 0; i < buffers.size(); ++i) changed += max_rel(b2[i].second, buffers[i]) > 0;
  CHECK(changed > 10);
  // the stem's statistics are the average of the batches' channel means
  std::vector<double> want(static_cast<size_t>(s.stem()), 0.0);
  {
    NoGradGuard ng;
    for (auto& b : batches) {
      auto m = mean(net.children()[0].second->forward(b), {0, 2, 3}).to_vector<double>();
      for (size_t c = 0; c < want.size(); ++c) want[c] += m[c] / batches.size();
    }
  }
  auto got = net.batch_norms()[0]->running_mean(s.stem()).to_vector<double>();
  for (size_t c = 0; c < want.size(); ++c) CHECK(got[c] == doctest::Approx(want[c]).epsilon(1e-5));
}

TEST_CASE("spos: the registered model, architecture encodings and errors") {
  CHECK(model_info("spos").has_arch);
  ModelTrace t = trace_model("spos");  // the default architecture
  CHECK(t.flops > 0);
  CHECK(t.output_shape == Shape{1, 10});
  SposArch d = default_arch();
  ModelOptions o;
  o.arch = "3,2,1,0, 3,2,1,0, 3,2,1,0, 3,2,1,0, 3,2,1,0";
  ModelTrace t2 = trace_model("spos", o);
  CHECK(t2.params != t.params);
  SposArch p = parse_arch(o.arch);
  CHECK(p.layers[0].op == 3);
  CHECK(p.layers[19].op == 0);
  // JSON round trip (inline and file)
  SposArch m = mixed_arch(small_space(), 51);
  SposArch back = arch_from_json(arch_to_json(m), "test");
  CHECK(back.layers == m.layers);
  CHECK(back.space.stage_channels == m.space.stage_channels);
  o.arch = arch_to_json(m);
  CHECK(trace_model("spos", o).params == arch_cost(m, 10, 3, 32).params);
  CHECK_THROWS_CONTAINING(parse_arch("0,1,2"), "3 op indices");
  CHECK_THROWS_CONTAINING(parse_arch("0,1,9"), "bad entry '9'");
  CHECK_THROWS_CONTAINING(arch_from_json("{\"format\": \"x\"}", "f.json"), "not a neurn SPOS architecture");
  SposArch bad = m;
  bad.layers[0].scale = 9;
  CHECK_THROWS_CONTAINING(bad.validate(), "channel-scale index 9");
  // the genome round trip
  CHECK(from_genome(m.space, to_genome(m)).layers == m.layers);
  // a wider choice costs more
  SposArch narrow = m, wide = m;
  for (auto& l : narrow.layers) l.scale = 0;
  for (auto& l : wide.layers) l.scale = 3;
  CHECK(arch_cost(narrow, 10, 3, 32).flops < arch_cost(wide, 10, 3, 32).flops);
}
