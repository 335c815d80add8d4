// ShuffleNetV2 (models/shufflenet_v2.h): torchvision's parameter count,
// state keys and shapes, layer sequence and FLOPs on the meta device; the
// unit in both layouts (torchvision's and megvii's, which SPOS builds on).
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "gradcheck.h"
#include "models/shufflenet_v2.h"

using namespace neurn;

namespace {
ModelOptions imagenet() {
  ModelOptions o;
  o.num_classes = 1000;
  o.input_size = 224;
  return o;
}
}  // namespace

TEST_CASE("shufflenet_v2: torchvision's parameter count, keys, layer sequence and FLOPs") {
  // torchvision 0.14: sum(p.numel() for p in shufflenet_v2_x1_0().parameters())
  ModelTrace t = trace_model("shufflenet_v2", imagenet());
  CHECK(t.params == 2'278'604);
  CHECK(t.output_shape == Shape{1, 1000});
  // torchvision's x0_5 / x1_5 / x2_0 (the same count from torchvision 0.14)
  ModelOptions w = imagenet();
  w.width = 0.5;
  CHECK(trace_model("shufflenet_v2", w).params == 1'366'792);
  w.width = 1.5;
  CHECK(trace_model("shufflenet_v2", w).params == 3'503'624);
  w.width = 2.0;
  CHECK(trace_model("shufflenet_v2", w).params == 7'393'996);
  w.width = 0.75;
  CHECK_THROWS_CONTAINING(trace_model("shufflenet_v2", w), "width must be 0.5, 1.0, 1.5 or 2.0");

  // Leaf modules of torchvision's model: 56 Conv2d (19 depthwise), 56 BN, 37 ReLU.
  std::map<std::string, int> c;
  for (auto& tok : t.tokens) ++c[tok];
  CHECK(c["Conv"] == 37);
  CHECK(c["DepthwiseConv"] == 19);
  CHECK(c["BatchNorm"] == 56);
  CHECK(c["ReLU"] == 37);
  CHECK(c["ChannelShuffle"] == 16);
  CHECK(c["Concat"] == 16);
  CHECK(c["MaxPool"] == 1);
  CHECK(c["GlobalAvgPool"] == 1);
  CHECK(c["Linear"] == 1);
  // Ma et al. 2018, Table 5: 146 M multiply-adds for 1.0x at 224 (2 FLOPs
  // each); BN, ReLU and pooling add a little.
  INFO("GFLOPs " << t.flops / 1e9);
  CHECK(t.flops > 0.29e9);
  CHECK(t.flops < 0.33e9);

  // State keys and shapes: tests/models/torchvision_keys.txt (torch_reference.py keys).
  std::ifstream f(std::string(NEURN_SOURCE_DIR) + "/tests/models/torchvision_keys.txt");
  REQUIRE(f.good());
  std::set<std::string> want, got;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream is(line);
    std::string model, key, shape;
    is >> model >> key >> shape;
    if (model == "shufflenet_v2_x1_0") want.insert(key + " " + shape);
  }
  CHECK(want.size() == 338);
  ParamScope meta({.device = Device::meta()});
  ModulePtr m = build_model("shufflenet_v2_x1_0", imagenet());  // the alias torchvision's name is
  for (auto& [k, tensor] : m->state_dict()) {
    std::string s;
    for (size_t i = 0; i < tensor.shape().size(); ++i) s += (i ? "," : "") + std::to_string(tensor.shape()[i]);
    got.insert(k + " " + s);
  }
  CHECK(got == want);
}

TEST_CASE("shufflenet_v2: the unit in megvii's layout (the SPOS block)") {
  Generator gen(5);
  auto x = randn({2, 8, 6, 6}, {DType::Float64}, &gen);
  // even / odd split
  auto [even, odd] = shuffle_split_even_odd(x);
  CHECK(even.shape() == Shape{2, 4, 6, 6});
  auto xv = x.to_vector<double>(), ev = even.to_vector<double>(), ov = odd.to_vector<double>();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t p = 0; p < 36; ++p) {
        CHECK(ev[(n * 4 + j) * 36 + p] == xv[(n * 8 + 2 * j) * 36 + p]);
        CHECK(ov[(n * 4 + j) * 36 + p] == xv[(n * 8 + 2 * j + 1) * 36 + p]);
      }

  ParamScope scope({.dtype = DType::Float64});
  ShuffleUnitSpec s;
  s.in = 8;
  s.out = 16;
  s.stride = 2;
  s.kernel = 5;
  s.mid = 6;
  s.affine = false;
  s.layout = ShuffleLayout::Megvii;
  ShuffleV2Unit down(s);
  CHECK(down.proj_channels() == 8);  // megvii: the projection keeps the input width
  CHECK(down.main_channels() == 8);
  CHECK(down(x).shape() == Shape{2, 16, 3, 3});
  for (auto& [k, t] : down.named_parameters()) CHECK(k.find("weight") != std::string::npos);  // no BN affine
  CHECK(down.num_parameters() == 8 * 25 + 8 * 8 + 8 * 6 + 6 * 25 + 6 * 8);

  // stride 1: the even channels pass through unchanged
  s.in = 8, s.out = 8, s.stride = 1, s.xception = true;
  ShuffleV2Unit same(s);
  Tensor y = same(x);
  CHECK(y.shape() == Shape{2, 8, 6, 6});
  auto yv = y.to_vector<double>();
  for (int64_t j = 0; j < 4; ++j) CHECK(yv[j * 36 + 7] == xv[(2 * j) * 36 + 7]);
  CHECK_THROWS_CONTAINING(ShuffleV2Unit(ShuffleUnitSpec{.in = 8, .out = 8, .stride = 3}), "stride must be 1 or 2");
  CHECK_THROWS_CONTAINING(same(randn({2, 6, 6, 6}, {DType::Float64}, &gen)), "expected (N, 8, H, W)");
}
