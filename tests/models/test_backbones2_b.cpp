// Backbones II, part B: vit_b_16 and vit_digits (models/vit.h), the
// position-embedding resampling that lets weights made for one input size
// load at another (Module::adapt_state, layers/resample.h), Xception and
// NASNetMobile (Keras counts). Parameter counts and FLOPs on the meta device.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "gradcheck.h"
#include "layers/layers.h"
#include "layers/resample.h"
#include "layers/same_pool.h"
#include "models/registry.h"
#include "models/vit.h"
#include "skip.h"

using namespace neurn;

namespace {

ModelOptions at(int64_t classes, int64_t size) {
  ModelOptions o;
  o.num_classes = classes;
  o.input_size = size;
  return o;
}

std::map<std::string, int> count_tokens(const std::vector<std::string>& tokens) {
  std::map<std::string, int> c;
  for (auto& t : tokens) ++c[t];
  return c;
}

// Parameters of a torchvision-layout ViT, counted by hand from the layers.
int64_t vit_params(const VitConfig& c) {
  int64_t d = c.embed_dim, g = c.grid();
  int64_t n = d * c.in_channels * c.patch_size * c.patch_size + d;  // conv_proj
  n += d + (1 + g * g) * d;                                         // class token, position embedding
  for (int64_t i = 0; i < c.depth(); ++i) {
    int64_t m = c.mlp_dims[i];
    n += 2 * d + 3 * d * d + 3 * d + d * d + d;  // ln_1, in_proj, out_proj
    n += 2 * d + d * m + m + m * d + d;          // ln_2, mlp.0, mlp.3
  }
  return n + 2 * d + d * c.num_classes + c.num_classes;  // encoder.ln, heads.head
}

// Forward and backward on a random batch of 2 at `size`; every parameter gets a gradient.
void forward_backward(Module& m, int64_t channels, int64_t size, int64_t classes) {
  Generator gen(7);
  Tensor x = randn({2, channels, size, size}, {}, &gen);
  m.train();
  Tensor y = m(x);
  REQUIRE(y.shape() == Shape{2, classes});
  Tensor loss = cross_entropy(y, from_vector<int64_t>({1, 3}, {2}));
  CHECK(std::isfinite(loss.item()));
  loss.backward();
  for (auto& [name, p] : m.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
  }
}

}  // namespace

// ---------------------------------------------------------------- ViT

TEST_CASE("vit_b_16: torchvision's parameter count, layers and FLOPs (meta)") {
  ModelTrace t = trace_model("vit_b_16", at(1000, 224));
  CHECK(t.params == 86'567'656);  // torchvision: sum(p.numel() for p in vit_b_16().parameters())
  CHECK(t.total_params == t.params);
  CHECK(t.params == vit_params(vit_b_16_config()));
  CHECK(t.output_shape == Shape{1, 1000});
  auto c = count_tokens(t.tokens);
  CHECK(c["Conv"] == 1);
  CHECK(c["ClassToken"] == 1);
  CHECK(c["PosEmbed"] == 1);
  CHECK(c["MultiheadAttention"] == 12);
  CHECK(c["LayerNorm"] == 25);
  CHECK(c["Linear"] == 25);  // 2 per MLP and the head (the attention projections are inside the attention)
  CHECK(c["GELU"] == 12);
  CHECK(c["Add"] == 24);
  // torchvision's ViT_B_16_Weights meta: 17.56 GFLOPS (multiply-adds) at 224; a multiply-add counts 2 here
  CHECK(t.flops / 1e9 > 2 * 17.56 * 0.99);
  CHECK(t.flops / 1e9 < 2 * 17.56 * 1.01);
  // at 32x32 the same layers on a 2x2 patch grid (5 tokens)
  ModelTrace s = trace_model("vit_b_16", at(10, 32));
  CHECK(s.tokens == t.tokens);
  CHECK(s.params == 86'567'656 - 768 * 1000 - 1000 + 768 * 10 + 10 - (197 - 5) * 768);
  CHECK(s.flops < t.flops / 30);
}

TEST_CASE("vit_digits: the documented default, counted by hand") {
  VitConfig c = vit_digits_config();
  CHECK(c.patch_size == 4);
  CHECK(c.embed_dim == 192);
  CHECK(c.depth() == 6);
  CHECK(c.heads == std::vector<int64_t>(6, 3));
  CHECK(c.mlp_dims == std::vector<int64_t>(6, 768));
  ModelTrace t = trace_model("vit_digits", at(10, 32));
  CHECK(t.params == vit_params(c));
  CHECK(t.params == 2'693'578);
  CHECK(t.output_shape == Shape{1, 10});
  CHECK(count_tokens(t.tokens)["MultiheadAttention"] == 6);
  CHECK(t.flops > 0);
}

TEST_CASE("VitConfig: per-layer heads and MLP widths build a plain ViT (an AutoFormer subnet)") {
  VitConfig c;
  c.image_size = 16;
  c.patch_size = 4;
  c.in_channels = 1;
  c.embed_dim = 24;
  c.heads = {2, 4, 1};
  c.mlp_dims = {16, 48, 8};
  c.num_classes = 5;
  ModulePtr m = build_vit(c);
  CHECK(m->num_parameters() == vit_params(c));
  std::map<std::string, Shape> shapes;
  for (auto& [k, t] : m->state_dict()) shapes[k] = t.shape();
  CHECK(shapes["encoder.layers.encoder_layer_1.mlp.0.weight"] == Shape{48, 24});
  CHECK(shapes["encoder.layers.encoder_layer_2.mlp.3.weight"] == Shape{24, 8});
  CHECK(shapes["encoder.layers.encoder_layer_0.self_attention.in_proj_weight"] == Shape{72, 24});
  CHECK(shapes["encoder.pos_embedding"] == Shape{1, 17, 24});
  CHECK(shapes["class_token"] == Shape{1, 1, 24});
  CHECK(shapes["heads.head.weight"] == Shape{5, 24});
  // torchvision zero-initialises the head; give it values so that gradients reach the body
  for (auto& [k, p] : m->named_parameters())
    if (k == "heads.head.weight") normal_(p, 0.0, 0.1);
  forward_backward(*m, 1, 16, 5);
  for (auto& [k, p] : m->named_parameters()) {
    INFO(k);
    CHECK(max(abs(p.grad())).item() > 0);
  }

  VitConfig bad = c;
  bad.heads = {2, 5, 1};
  CHECK_THROWS_CONTAINING(build_vit(bad), "layer 1: embed_dim (24) must be a multiple of its heads (5)");
  bad = c;
  bad.mlp_dims = {16};
  CHECK_THROWS_CONTAINING(build_vit(bad), "3 layers in heads but 1 in mlp_dims");
  bad = c;
  bad.image_size = 18;
  CHECK_THROWS_CONTAINING(build_vit(bad), "image_size (18) must be a positive multiple of patch_size (4)");
  CHECK_THROWS_CONTAINING(build_model("vit_b_16", at(10, 40)), "input size 40 is not a multiple of the patch size 16");
  Tensor wrong = zeros({1, 1, 20, 20});
  CHECK_THROWS_CONTAINING((*m)(wrong), "expected (N, 1, 16, 16), got (1, 1, 20, 20)");
}

TEST_CASE("vit_digits: forward and backward at 32x32") {
  ModulePtr m = build_model("vit_digits", at(10, 32));
  // torchvision's init: class token and head start at zero, the position embedding N(0, 0.02)
  for (auto& [k, p] : m->named_parameters()) {
    INFO(k);
    if (k == "class_token" || k == "heads.head.weight" || k == "heads.head.bias") CHECK(max(abs(p)).item() == 0.0);
    if (k == "encoder.pos_embedding") CHECK(max(abs(p)).item() > 0.01);
  }
  for (auto& [k, p] : m->named_parameters())
    if (k == "heads.head.weight") normal_(p, 0.0, 0.02);
  forward_backward(*m, 3, 32, 10);
}

// ---------------------------------------------------------------- bicubic resampling

TEST_CASE("resize_bicubic: hand-computed values (Keys' kernel, a = -0.75, half-pixel centres)") {
  // (1, 1, 1, 2) = [0, 1] to width 4: source x = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25.
  // i = 0: taps x = -2..1 clamp to values 0, 0, 0, 1; t = 0.75, the weight of the tap at distance
  //   2 - t = 1.25 is ((a 1.25 - 5a) 1.25 + 8a) 1.25 - 4a = -0.10546875.
  // i = 1: taps -1..2 -> 0, 0, 1, 1; t = 0.25: weights at distances 0.75 (near: ((a+2) d - (a+3)) d^2 + 1
  //   = 0.26171875) and 1.75 (far: -0.03515625) sum to 0.2265625. i = 2, 3 by symmetry.
  Tensor x = from_vector<double>({0, 1}, {1, 1, 1, 2});
  Tensor y = resize_bicubic(x, 1, 4);
  REQUIRE(y.shape() == Shape{1, 1, 1, 4});
  auto v = y.to_vector<double>();
  CHECK(v[0] == doctest::Approx(-0.10546875).epsilon(1e-14));
  CHECK(v[1] == doctest::Approx(0.2265625).epsilon(1e-14));
  CHECK(v[2] == doctest::Approx(0.7734375).epsilon(1e-14));
  CHECK(v[3] == doctest::Approx(1.10546875).epsilon(1e-14));
  // the same size is the identity; a constant stays constant (the weights sum to 1)
  Generator gen(3);
  Tensor r = randn({2, 3, 5, 4}, {.dtype = DType::Float64}, &gen);
  CHECK(max(abs(sub(resize_bicubic(r, 5, 4), r))).item() < 1e-14);
  for (double c : resize_bicubic(full({1, 2, 3, 3}, 2.5), 7, 2).to_vector<double>()) CHECK(c == doctest::Approx(2.5));
  // float32 in, float32 out
  CHECK(resize_bicubic(full({1, 1, 2, 2}, 1.0), 3, 3).dtype() == DType::Float32);
  CHECK_THROWS_CONTAINING(resize_bicubic(zeros({2, 2}), 3, 3), "resize_bicubic: expected (N, C, H, W), got (2, 2)");
  CHECK_THROWS_CONTAINING(resize_bicubic(zeros({1, 1, 2, 2}), 0, 3), "output size must be positive");
}

namespace {
// Runs /usr/bin/python3 on `script`, returns the numbers it prints.
std::vector<double> python_numbers(const std::string& script) {
  std::string path = (std::filesystem::temp_directory_path() / "neurn_b2_bicubic.py").string();
  std::ofstream(path) << script;
  FILE* f = popen(("/usr/bin/python3 '" + path + "'").c_str(), "r");
  REQUIRE(f != nullptr);
  std::vector<double> out;
  double v;
  while (std::fscanf(f, "%lf", &v) == 1) out.push_back(v);
  REQUIRE(pclose(f) == 0);
  std::filesystem::remove(path);
  return out;
}
}  // namespace

TEST_CASE("resize_bicubic equals torch.nn.functional.interpolate(mode='bicubic')" *
          testing::skip_unless(testing::have_torch(), testing::kNoTorch)) {
  // x[i] = sin(0.37 i + 0.1) on (1, 2, 14, 14): down to the ViT's 2x2 grid, to 5x3, up to 17x20;
  // both align_corners settings
  struct Case {
    int64_t h, w;
    bool align;
  };
  std::vector<Case> cases = {{2, 2, false}, {5, 3, false}, {17, 20, false}, {2, 2, true}, {17, 20, true}};
  std::string py =
      "import math, torch, torch.nn.functional as F\n"
      "x = torch.tensor([math.sin(0.37 * i + 0.1) for i in range(2 * 14 * 14)], dtype=torch.float64)"
      ".reshape(1, 2, 14, 14)\n";
  for (auto& c : cases)
    py += "print(*F.interpolate(x, size=(" + std::to_string(c.h) + ", " + std::to_string(c.w) +
          "), mode='bicubic', align_corners=" + (c.align ? "True" : "False") + ").flatten().tolist())\n";
  std::vector<double> want = python_numbers(py);
  std::vector<double> xs(2 * 14 * 14);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.37 * static_cast<double>(i) + 0.1);
  Tensor x = from_vector<double>(xs, {1, 2, 14, 14});
  size_t at = 0;
  double worst = 0;
  for (auto& c : cases) {
    auto got = resize_bicubic(x, c.h, c.w, c.align).to_vector<double>();
    REQUIRE(at + got.size() <= want.size());
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[at + i]));
    at += got.size();
  }
  CHECK(at == want.size());
  MESSAGE("resize_bicubic vs torch: max abs difference " << worst);
  CHECK(worst < 1e-12);
}

TEST_CASE("resize_position_embedding: class token kept, grid resampled") {
  Generator gen(5);
  Tensor pos = randn({1, 1 + 16, 3}, {.dtype = DType::Float64}, &gen);  // a 4x4 grid of width 3
  Tensor r = resize_position_embedding(pos, 1, 2, 2);
  REQUIRE(r.shape() == Shape{1, 5, 3});
  auto p = pos.to_vector<double>(), q = r.to_vector<double>();
  for (int k = 0; k < 3; ++k) CHECK(q[k] == p[k]);  // class token
  // grid token (i, j), channel k, against resize_bicubic on the (1, 3, 4, 4) image
  Tensor img = permute(reshape(slice(pos, 1, 1, 17), {1, 4, 4, 3}), {0, 3, 1, 2});
  auto want = resize_bicubic(img, 2, 2).to_vector<double>();  // (1, 3, 2, 2)
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) CHECK(q[(1 + i * 2 + j) * 3 + k] == want[k * 4 + i * 2 + j]);
  CHECK_THROWS_CONTAINING(resize_position_embedding(randn({1, 1 + 15, 3}), 1, 2, 2), "15 grid tokens");
}

TEST_CASE("load_state: a ViT made for 64x64 loads at 32x32 (position embedding resampled by its owner)") {
  VitConfig c = VitConfig::uniform(16, 32, 2, 4, 64);
  c.image_size = 64;  // a 4x4 grid
  c.num_classes = 3;
  ModulePtr big = build_vit(c);
  for (auto& [k, p] : big->named_parameters()) normal_(p, 0.0, 0.5);
  std::string path = (std::filesystem::temp_directory_path() / "neurn_b2_vit64.safetensors").string();
  save_state(*big, path);
  c.image_size = 32;  // a 2x2 grid
  ModulePtr small = build_vit(c);
  LoadReport rep = load_state_file(*small, path);  // strict: the adapted key counts as loaded
  CHECK(rep.ok());
  REQUIRE(rep.adapted.size() == 1);
  CHECK(rep.adapted[0] == "encoder.pos_embedding: file (1, 17, 32) -> model (1, 5, 32)");
  CHECK(rep.str().find("1 adapted") != std::string::npos);
  Tensor got, want;
  for (auto& [k, t] : small->state_dict())
    if (k == "encoder.pos_embedding") got = t;
  for (auto& [k, t] : big->state_dict())
    if (k == "encoder.pos_embedding") want = resize_position_embedding(t, 1, 2, 2);
  CHECK(max(abs(sub(got, want))).item() == 0.0);
  Tensor y = (*small)(randn({2, 3, 32, 32}));
  CHECK(y.shape() == Shape{2, 3});
  // another embedding width cannot be adapted: reported mis-shaped, strict loads nothing
  VitConfig wide = c;
  wide.embed_dim = 40;
  wide.heads = {4, 4};
  ModulePtr other = build_vit(wide);
  LoadReport loose = load_state_file(*other, path, false);
  CHECK(loose.adapted.empty());
  CHECK_FALSE(loose.mismatched.empty());
  CHECK_THROWS_CONTAINING(load_state_file(*other, path), "encoder.pos_embedding: file (1, 17, 32), model (1, 5, 40)");
  std::filesystem::remove(path);
}

// ---------------------------------------------------------------- Xception

TEST_CASE("xception: Keras's totals, layers and FLOPs at 299 (meta)") {
  ModelTrace t = trace_model("xception", at(1000, 299));
  CHECK(t.total_params == 22'910'480);  // Keras Xception().count_params()
  CHECK(t.params == 22'855'952);        // Keras "Trainable params"
  CHECK(t.output_shape == Shape{1, 1000});
  auto c = count_tokens(t.tokens);
  CHECK(c["SeparableConv"] == 34);  // 2 + 2 + 2 (entry) + 8 x 3 (middle) + 2 + 2 (exit)
  CHECK(c["Conv"] == 6);            // block1's two and the four shortcut convs
  CHECK(c["BatchNorm"] == 40);
  CHECK(c["MaxPool"] == 4);
  CHECK(c["Add"] == 12);
  CHECK(c["ReLU"] == 35);
  CHECK(c["GlobalAvgPool"] == 1);
  CHECK(c["Linear"] == 1);
  // 8.42 G multiply-adds at 299 (Bianco et al., "Benchmark Analysis of Representative Deep Neural
  // Network Architectures", IEEE Access 2018); a multiply-add counts 2 here
  CHECK(t.flops / 1e9 > 2 * 8.42 * 0.97);
  CHECK(t.flops / 1e9 < 2 * 8.42 * 1.03);
  // state keys: Keras's layer names
  ParamScope meta({.device = Device::meta()});
  ModulePtr m = build_model("xception", at(1000, 299));
  std::map<std::string, Shape> keys;
  for (auto& [k, v] : m->state_dict()) keys[k] = v.shape();
  CHECK(keys.at("block1_conv1.weight") == Shape{32, 3, 3, 3});
  CHECK(keys.at("block2_sepconv1.depthwise.weight") == Shape{64, 1, 3, 3});
  CHECK(keys.at("block2_sepconv1.pointwise.weight") == Shape{128, 64, 1, 1});
  CHECK(keys.at("block12_sepconv3_bn.running_var") == Shape{728});
  CHECK(keys.at("conv2d_3.weight") == Shape{1024, 728, 1, 1});
  CHECK(keys.at("batch_normalization.weight") == Shape{128});
  CHECK(keys.at("predictions.weight") == Shape{1000, 2048});
  CHECK(keys.count("block2_sepconv1.pointwise.bias") == 0);  // use_bias=False
}

TEST_CASE("xception: minimum input 71 (Keras's), forward and backward there") {
  CHECK(model_info("xception").min_input_size == 71);
  ModelTrace t = trace_model("xception", at(10, 71));
  CHECK(t.output_shape == Shape{1, 10});
  CHECK_THROWS_CONTAINING(build_model("xception", at(10, 64)), "71");
  ModulePtr m = build_model("xception", at(10, 71));
  forward_backward(*m, 3, 71, 10);
}

TEST_CASE("SamePool2d: Keras 'same' max and average pooling (padding after, not counted)") {
  // x = 0..15 on a 4x4 map; 3x3 stride 2 windows over rows/cols {0,1,2} and {2,3} (one padded pixel after)
  std::vector<double> v(16);
  for (int i = 0; i < 16; ++i) v[i] = i;
  Tensor x = from_vector<double>(v, {1, 1, 4, 4});
  Tensor mx = SamePool2d(PoolKind::Max, 3, 2)(x), av = SamePool2d(PoolKind::Avg, 3, 2)(x);
  REQUIRE(mx.shape() == Shape{1, 1, 2, 2});
  CHECK(mx.to_vector<double>() == std::vector<double>{10, 11, 14, 15});
  // means over the pixels inside: {0,1,2,4,5,6,8,9,10}, {2,3,6,7,10,11}, {8,9,10,12,13,14}, {10,11,14,15}
  CHECK(av.to_vector<double>() == std::vector<double>{5, 6.5, 11, 12.5});
  // odd size, stride 1: one pixel each side; negative values are not beaten by the padding
  Tensor neg = full({1, 2, 5, 5}, -3.0, {.dtype = DType::Float64});
  CHECK(max(SamePool2d(PoolKind::Max, 3, 1)(neg)).item() == -3.0);
  CHECK(SamePool2d(PoolKind::Avg, 3, 2)(neg).shape() == Shape{1, 2, 3, 3});
  for (double a : SamePool2d(PoolKind::Avg, 3, 1)(neg).to_vector<double>()) CHECK(a == doctest::Approx(-3.0));
  CHECK(SamePool2d(PoolKind::Max, 3, 2).type() == "MaxPool");
  CHECK(SamePool2d(PoolKind::Avg, 3, 2).type() == "AvgPool");
  // gradients (float64 central differences), even and odd sizes
  for (int64_t n : {4, 5}) {
    for (PoolKind k : {PoolKind::Max, PoolKind::Avg}) {
      auto pool = std::make_shared<SamePool2d>(k, 3, 2);
      Tensor in = testing::leaf({2, 2, n, n}, 11 + n);
      auto r = testing::gradcheck([&](const std::vector<Tensor>& xs) { return (*pool)(xs[0]); }, {in});
      INFO(r.message);
      CHECK(r.ok);
    }
  }
}

// ---------------------------------------------------------------- NASNetMobile

TEST_CASE("nasnetmobile: Keras's totals, cells and FLOPs at 224 (meta)") {
  ModelTrace t = trace_model("nasnetmobile", at(1000, 224));
  CHECK(t.total_params == 5'326'716);  // Keras NASNetMobile().count_params()
  CHECK(t.params == 5'289'978);        // Keras "Trainable params"
  CHECK(t.output_shape == Shape{1, 1000});
  auto c = count_tokens(t.tokens);
  // 16 cells: stem_1, stem_2, 4 normal, reduce_4, 4 normal, reduce_8, 4 normal
  CHECK(c["Concat"] == 16 + 4);             // one per cell, one per two-path reduction of p
  CHECK(c["Cropping"] == 4);                // p from a larger map: stem_2, cells 0, 5 and 9
  CHECK(c["SeparableConv"] == 160);         // 2 per separable block, 5 blocks per cell
  CHECK(c["Conv"] == 1 + 16 + 4 * 2 + 11);  // stem, each cell's 1x1, two-path reductions, projections of p
  CHECK(c["BatchNorm"] == 192);
  CHECK(c["Add"] == 80);
  CHECK(c["MaxPool"] == 8);
  CHECK(c["AvgPool"] == 52);
  // Zoph et al. 2018, Table 2: NASNet-A (4 @ 1056), 564 M multiply-adds at 224; a multiply-add counts 2
  // here, and the batch norms, additions and poolings that the paper leaves out add about 2.5%
  CHECK(t.flops / 1e9 > 2 * 0.564 * 0.98);
  CHECK(t.flops / 1e9 < 2 * 0.564 * 1.05);
  ParamScope meta({.device = Device::meta()});
  ModulePtr m = build_model("nasnetmobile", at(1000, 224));
  std::map<std::string, Shape> keys;
  for (auto& [k, v] : m->state_dict()) keys[k] = v.shape();
  CHECK(keys.at("stem_conv1.weight") == Shape{32, 3, 3, 3});
  CHECK(keys.at("reduction_conv_1_stem_1.weight") == Shape{11, 32, 1, 1});
  CHECK(keys.at("separable_conv_1_reduction_right1_stem_1.depthwise.weight") == Shape{32, 1, 7, 7});
  CHECK(keys.at("adjust_conv_1_stem_2.weight") == Shape{11, 32, 1, 1});
  CHECK(keys.at("adjust_bn_stem_2.running_mean") == Shape{22});
  CHECK(keys.at("adjust_conv_projection_1.weight") == Shape{44, 88, 1, 1});
  CHECK(keys.at("separable_conv_2_bn_normal_left5_12.weight") == Shape{176});
  CHECK(keys.at("separable_conv_1_reduction_left4_reduce_8.pointwise.weight") == Shape{176, 176, 1, 1});
  CHECK(keys.at("predictions.weight") == Shape{1000, 1056});
}

TEST_CASE("nasnetmobile: minimum input 32 (Keras's); the same layers from 19; forward and backward at 32") {
  CHECK(model_info("nasnetmobile").min_input_size == 32);
  CHECK(canonical_model_name("nasnet_mobile") == "nasnetmobile");
  // maps 224 -> 111 (stem) -> 56 -> 28 -> 14 -> 7; at 19: 9 -> 5 -> 3 -> 2 -> 1, still one size per
  // stage, so Keras's _adjust_block would choose the same adjustments (at 18 the last two stages are
  // both 1x1 and Keras would project p instead of reducing it): the layers are those at 224
  ModelTrace big = trace_model("nasnetmobile", at(10, 224));
  ParamScope meta({.device = Device::meta()});
  ModulePtr small = build_model("nasnetmobile", at(10, 32));
  for (int64_t s : {32, 19}) {
    INFO(s);
    ModelTrace t = trace_model(*small, {1, 3, s, s});
    CHECK(t.tokens == big.tokens);
    CHECK(t.output_shape == Shape{1, 10});
  }
}

TEST_CASE("nasnetmobile: forward and backward at 32x32") {
  ModulePtr m = build_model("nasnetmobile", at(10, 32));
  forward_backward(*m, 3, 32, 10);
}
