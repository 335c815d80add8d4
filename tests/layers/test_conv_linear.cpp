// Conv2d, DepthwiseConv2d, SeparableConv2d and Linear: parameter names and
// shapes, PyTorch's default init bounds, seeded reproducibility, forward
// against the ops, Keras "same" padding, gradients, meta construction.
#include <doctest/doctest.h>

#include <cmath>

#include "gradcheck.h"
#include "layers/layers.h"

using namespace neurn;
using neurn::testing::gradcheck;
using neurn::testing::leaf;

namespace {
double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}
double max_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}
}  // namespace

TEST_CASE("Conv2d: names, shapes and PyTorch's default init bounds") {
  Generator gen(3);
  ParamScope scope({}, &gen);
  Conv2d conv(8, 16, 3, 1, 1);
  auto sd = conv.state_dict();
  REQUIRE(sd.size() == 2);
  CHECK(sd[0].first == "weight");
  CHECK(sd[0].second.shape() == Shape{16, 8, 3, 3});
  CHECK(sd[1].first == "bias");
  CHECK(sd[1].second.shape() == Shape{16});
  CHECK(conv.param("weight").requires_grad());
  // kaiming_uniform(a = sqrt 5) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 8*9
  double bound = 1.0 / std::sqrt(72.0);
  CHECK(max_abs(conv.param("weight")) <= bound);
  CHECK(max_abs(conv.param("weight")) > 0.9 * bound);  // 1152 draws fill the interval
  CHECK(max_abs(conv.param("bias")) <= bound);
  CHECK(conv.type() == "Conv");
  CHECK(conv.num_parameters() == 16 * 8 * 9 + 16);

  Conv2d grouped(Conv2dSpec{.in_channels = 8, .out_channels = 4, .kernel = {1, 1}, .groups = 2, .bias = false});
  CHECK(grouped.param("weight").shape() == Shape{4, 4, 1, 1});
  CHECK_FALSE(grouped.has_param("bias"));
  CHECK(grouped.state_dict().size() == 1);
  CHECK_THROWS_CONTAINING(Conv2d(6, 4, 3, 1, 0, 1, 4), "divisible by groups");
}

TEST_CASE("layers draw from the scope's generator: same seed, same weights") {
  Generator g1(11), g2(11), g3(12);
  Tensor a, b, c;
  {
    ParamScope s({}, &g1);
    a = Conv2d(3, 4, 3).param("weight");
  }
  {
    ParamScope s({}, &g2);
    b = Conv2d(3, 4, 3).param("weight");
  }
  {
    ParamScope s({}, &g3);
    c = Conv2d(3, 4, 3).param("weight");
  }
  CHECK(max_diff(a, b) == 0.0);
  CHECK(max_diff(a, c) > 0.0);
}

TEST_CASE("ParamScope on meta: shapes, no memory; float64 scope") {
  {
    ParamScope s({.device = Device::meta()});
    Linear big(25088, 4096);
    CHECK(big.param("weight").device().is_meta());
    CHECK(big.param("weight").raw_data() == nullptr);
    CHECK(big.num_parameters() == 25088LL * 4096 + 4096);
    Conv2d conv(3, 8, 3);
    CHECK(conv.param("bias").device().is_meta());
  }
  {
    ParamScope s({.dtype = DType::Float64});
    Linear l(3, 2);
    CHECK(l.param("weight").dtype() == DType::Float64);
  }
  Linear after(3, 2);  // the scope is gone
  CHECK(after.param("weight").device().is_cpu());
  CHECK(after.param("weight").dtype() == DType::Float32);
}

TEST_CASE("Conv2d forward equals the conv2d op; gradients through the layer") {
  ParamScope s({.dtype = DType::Float64});
  Conv2d conv(Conv2dSpec{.in_channels = 2, .out_channels = 3, .kernel = {3, 3}, .stride = {2, 1}, .padding = {1, 0}});
  Tensor x = leaf({2, 2, 6, 5}, 1);
  Conv2dOptions o;
  o.stride = {2, 1};
  o.padding = {1, 0};
  Tensor want = conv2d(x, conv.param("weight"), conv.param("bias"), o);
  Tensor got = conv(x);
  CHECK(got.shape() == want.shape());
  CHECK(max_diff(got, want) == 0.0);
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return conv(in[0]); }, {x}));
  CHECK_THROWS_CONTAINING(conv(leaf({1, 3, 6, 6}, 2)), "expected input (N, 2, H, W), got (1, 3, 6, 6)");
}

TEST_CASE("Conv2d same padding matches TensorFlow: out = ceil(in / stride), extra pixel after") {
  ParamScope s({.dtype = DType::Float64});
  // stride 2, 3x3 on an even size: total padding 1, all of it bottom/right
  Conv2d same(Conv2dSpec{.in_channels = 2, .out_channels = 2, .kernel = {3, 3}, .stride = {2, 2}, .same = true});
  Tensor x = leaf({1, 2, 8, 8}, 5);
  Tensor y = same(x);
  CHECK(y.shape() == Shape{1, 2, 4, 4});
  Conv2dOptions o;
  o.stride = {2, 2};
  Tensor want = conv2d(pad(x, {0, 1, 0, 1}), same.param("weight"), same.param("bias"), o);
  CHECK(max_diff(y, want) < 1e-12);
  // odd size 7: total padding 2, one each side, the same as padding 1
  Tensor x7 = leaf({1, 2, 7, 7}, 6);
  o.padding = {1, 1};
  CHECK(same(x7).shape() == Shape{1, 2, 4, 4});
  CHECK(max_diff(same(x7), conv2d(x7, same.param("weight"), same.param("bias"), o)) < 1e-12);
  // stride 1: symmetric, shape kept
  Conv2d same1(Conv2dSpec{.in_channels = 2, .out_channels = 2, .kernel = {3, 3}, .same = true});
  CHECK(same1(x).shape() == Shape{1, 2, 8, 8});
}

TEST_CASE("DepthwiseConv2d and SeparableConv2d (Keras style)") {
  ParamScope s({.dtype = DType::Float64});
  DepthwiseConv2d dw(4, 3, 1, 1, 2, false);
  CHECK(dw.param("weight").shape() == Shape{8, 1, 3, 3});
  CHECK(dw.type() == "DepthwiseConv");
  CHECK(Conv2d(4, 4, 3, 1, 1, 1, 4).type() == "DepthwiseConv");  // torchvision's way of writing it
  CHECK(Conv2d(4, 8, 3, 1, 1, 1, 2).type() == "GroupConv");      // ShuffleNet's, ResNeXt's grouped conv
  SeparableConv2d sep(4, 6, 3, 1, 1);
  auto names = sep.state_dict();
  REQUIRE(names.size() == 3);
  CHECK(names[0].first == "depthwise.weight");
  CHECK(names[1].first == "pointwise.weight");
  CHECK(names[2].first == "pointwise.bias");
  CHECK(sep.num_parameters() == 4 * 9 + 4 * 6 + 6);  // as Keras counts SeparableConv2D(6, 3) on 4 channels
  Tensor x = leaf({2, 4, 5, 5}, 9);
  LayerTrace trace;
  Tensor y = sep(x);
  CHECK(y.shape() == Shape{2, 6, 5, 5});
  CHECK(trace.tokens() == std::vector<std::string>{"SeparableConv"});  // one layer, not two
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return sep(in[0]); }, {x}));
}

TEST_CASE("Linear: forward on (..., in), init bounds, gradients") {
  Generator gen(5);
  ParamScope s({.dtype = DType::Float64}, &gen);
  Linear fc(6, 4);
  CHECK(fc.param("weight").shape() == Shape{4, 6});
  CHECK(max_abs(fc.param("weight")) <= 1.0 / std::sqrt(6.0));
  Tensor x = leaf({2, 3, 6}, 2);
  Tensor y = fc(x);
  CHECK(y.shape() == Shape{2, 3, 4});
  auto xv = x.to_vector<double>(), wv = fc.param("weight").to_vector<double>(),
       bv = fc.param("bias").to_vector<double>();
  double want = bv[1];
  for (int k = 0; k < 6; ++k) want += xv[6 + k] * wv[6 + k];  // row (0, 1), output 1
  CHECK(y.to_vector<double>()[4 + 1] == doctest::Approx(want).epsilon(1e-12));
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return fc(in[0]); }, {x}));
  Linear nobias(6, 4, false);
  CHECK(nobias.state_dict().size() == 1);
  CHECK_THROWS_CONTAINING(fc(leaf({2, 5}, 1)), "Linear(6 -> 4): expected input (..., 6), got (2, 5)");
}

TEST_CASE("init helpers: kaiming normal std, constants, trunc normal bounds") {
  Generator gen(21);
  ParamScope s({.dtype = DType::Float64}, &gen);
  Tensor w = zeros({256, 64, 3, 3}, {DType::Float64});
  kaiming_normal_(w, FanMode::FanOut);  // std = sqrt(2 / (256 * 9))
  auto v = w.to_vector<double>();
  double m2 = 0;
  for (double x : v) m2 += x * x;
  CHECK(std::sqrt(m2 / v.size()) == doctest::Approx(std::sqrt(2.0 / (256 * 9))).epsilon(0.02));
  Tensor t = zeros({5000}, {DType::Float64});
  trunc_normal_(t, 0.02, 0.0, -0.04, 0.04);
  CHECK(max_abs(t) <= 0.04);
  constant_(t, 0.5);
  CHECK(max_abs(t) == 0.5);
  CHECK_THROWS_CONTAINING(trunc_normal_(t, 0.02, 0.0, 5.0, 6.0), "holds almost no mass");
}
