// BatchNorm2d (state names, running statistics, num_batches_tracked, eval),
// LayerNorm, pooling layers, dropout and zero padding.
#include <doctest/doctest.h>

#include <cmath>

#include "gradcheck.h"
#include "layers/layers.h"

using namespace neurn;
using neurn::testing::gradcheck;
using neurn::testing::leaf;

TEST_CASE("BatchNorm2d: PyTorch's state names and initial values") {
  BatchNorm2d bn(4);
  std::vector<std::string> names;
  for (auto& [n, t] : bn.state_dict()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
  CHECK(bn.buffer("num_batches_tracked").dtype() == DType::Int64);
  CHECK(bn.buffer("num_batches_tracked").shape() == Shape{});
  CHECK(bn.buffer("running_var").to_vector<float>() == std::vector<float>{1, 1, 1, 1});
  CHECK(bn.type() == "BatchNorm");
  CHECK(bn.num_parameters(true) == 8);
  CHECK(bn.num_parameters(false) == 16);  // Keras's count: gamma, beta, moving mean and variance
  CHECK(BatchNorm2d(4, BatchNormSpec{.affine = false}).state_dict().size() == 3);
  ParamScope meta({.device = Device::meta()});
  BatchNorm2d on_meta(7);
  CHECK(on_meta.buffer("running_var").device().is_meta());
  CHECK(on_meta.buffer("num_batches_tracked").device().is_meta());
}

TEST_CASE("BatchNorm2d: training normalises with batch statistics and updates the running ones") {
  ParamScope scope({.dtype = DType::Float64});
  BatchNorm2d bn(2, 1e-5, 0.1);
  Tensor x = leaf({3, 2, 2, 2}, 4, -2.0, 3.0);
  Tensor y = bn(x);
  CHECK(bn.buffer("num_batches_tracked").item() == 1);
  auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  // channel 0: 12 values
  double m = 0, v = 0;
  std::vector<double> c0;
  for (int n = 0; n < 3; ++n)
    for (int i = 0; i < 4; ++i) c0.push_back(xv[n * 8 + i]);
  for (double a : c0) m += a / 12;
  for (double a : c0) v += (a - m) * (a - m) / 12;
  CHECK(yv[1] == doctest::Approx((xv[1] - m) / std::sqrt(v + 1e-5)).epsilon(1e-9));
  CHECK(bn.buffer("running_mean").to_vector<double>()[0] == doctest::Approx(0.1 * m).epsilon(1e-9));
  CHECK(bn.buffer("running_var").to_vector<double>()[0] == doctest::Approx(0.9 + 0.1 * v * 12 / 11).epsilon(1e-9));
  bn.eval();
  Tensor e = bn(x);
  CHECK(bn.buffer("num_batches_tracked").item() == 1);  // eval does not count
  double rm = bn.buffer("running_mean").to_vector<double>()[0], rv = bn.buffer("running_var").to_vector<double>()[0];
  CHECK(e.to_vector<double>()[1] == doctest::Approx((xv[1] - rm) / std::sqrt(rv + 1e-5)).epsilon(1e-9));
  CHECK_THROWS_CONTAINING(bn(leaf({1, 3, 2, 2}, 1)), "BatchNorm2d(2): expected input (N, 2, ...), got (1, 3, 2, 2)");
}

TEST_CASE("LayerNorm over the last axis") {
  ParamScope scope({.dtype = DType::Float64});
  LayerNorm ln(4);
  Tensor x = leaf({2, 3, 4}, 2);
  Tensor y = ln(x);
  auto yv = y.to_vector<double>();
  double m = 0, v = 0;
  for (int i = 0; i < 4; ++i) m += yv[i] / 4;
  for (int i = 0; i < 4; ++i) v += (yv[i] - m) * (yv[i] - m) / 4;
  CHECK(std::abs(m) < 1e-12);
  CHECK(v == doctest::Approx(1.0).epsilon(1e-3));
  CHECK(ln.type() == "LayerNorm");
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return ln(in[0]); }, {x}));
  CHECK_THROWS_CONTAINING(ln(leaf({2, 5}, 1)), "does not end with (4,)");
}

TEST_CASE("pooling layers: shapes, values and tokens") {
  Tensor x = arange(0, 16, 1, {DType::Float64}).reshape({1, 1, 4, 4});
  MaxPool2d mp(2);
  CHECK(mp(x).to_vector<double>() == std::vector<double>{5, 7, 13, 15});
  CHECK(MaxPool2d(3, 2, 1)(x).shape() == Shape{1, 1, 2, 2});
  AvgPool2d ap(2);
  CHECK(ap(x).to_vector<double>() == std::vector<double>{2.5, 4.5, 10.5, 12.5});
  AdaptiveAvgPool2d aap(1);
  CHECK(aap(x).shape() == Shape{1, 1, 1, 1});
  CHECK(aap(x).item() == 7.5);
  GlobalAvgPool gap;
  CHECK(gap(x).shape() == Shape{1, 1});
  CHECK(GlobalAvgPool(true)(x).shape() == Shape{1, 1, 1, 1});
  CHECK(mp.type() == "MaxPool");
  CHECK(ap.type() == "AvgPool");
  CHECK(aap.type() == "GlobalAvgPool");  // a 1x1 adaptive pool is Keras's global pool
  CHECK(AdaptiveAvgPool2d(7).type() == "AdaptiveAvgPool");
  CHECK(gap.type() == "GlobalAvgPool");
  CHECK_THROWS_CONTAINING(MaxPool2d(0), "expected kernel > 0");
}

TEST_CASE("Dropout: identity in eval, inverted dropout in training, seeded") {
  Dropout d(0.5);
  Tensor x = ones({1000});
  d.eval();
  CHECK(d(x).same(x));
  d.train();
  auto y = d(x).to_vector<float>();
  int zeros_n = 0;
  for (float v : y) {
    CHECK((v == 0.0f || v == 2.0f));
    zeros_n += v == 0.0f;
  }
  CHECK(zeros_n > 400);
  CHECK(zeros_n < 600);
  Generator g1(4), g2(4);
  Dropout a(0.3, &g1), b(0.3, &g2);
  CHECK(a(x).to_vector<float>() == b(x).to_vector<float>());
  CHECK_THROWS_CONTAINING(Dropout(1.0), "p must be in [0, 1)");
}

TEST_CASE("ZeroPad2d pads left, right, top, bottom") {
  ZeroPad2d zp(1, 0, 0, 2);
  Tensor x = ones({1, 1, 2, 2});
  Tensor y = zp(x);
  CHECK(y.shape() == Shape{1, 1, 4, 3});
  CHECK(y.to_vector<float>() == std::vector<float>{0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0});
  CHECK_THROWS_CONTAINING(ZeroPad2d(-1), "paddings must be >= 0");
}
