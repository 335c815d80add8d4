// Sequential naming, inline children, the layer trace, residual add, concat,
// channel shuffle and squeeze-and-excitation.
#include <doctest/doctest.h>

#include "gradcheck.h"
#include "layers/layers.h"

using namespace neurn;
using neurn::testing::gradcheck;
using neurn::testing::leaf;

TEST_CASE("Sequential names children 0, 1, ... and by name; dotted state keys") {
  auto seq = std::make_shared<Sequential>();
  seq->emplace<Linear>(4, 3);
  seq->emplace<ReLU>();
  seq->emplace<Linear>(3, 2);
  auto outer = std::make_shared<Sequential>();
  outer->add("classifier", seq);
  std::vector<std::string> names;
  for (auto& [n, t] : outer->state_dict()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"classifier.0.weight", "classifier.0.bias", "classifier.2.weight",
                                          "classifier.2.bias"});
  CHECK(seq->size() == 3);
  CHECK((*seq)[1]->type() == "ReLU");
  CHECK(outer->get("classifier") == seq);
  CHECK_THROWS_CONTAINING(outer->add("classifier", std::make_shared<ReLU>()), "already a child");
  CHECK_THROWS_CONTAINING(outer->get("features"), "no child named 'features'");
  Tensor y = (*outer)(zeros({5, 4}));
  CHECK(y.shape() == Shape{5, 2});
}

TEST_CASE("an inline child (empty name) keeps its tensors' names") {
  struct Wrapper : Module {
    Tensor forward(const Tensor& x) override { return x; }
  } w;
  auto inner = std::make_shared<Sequential>();
  inner->add("fc", std::make_shared<Linear>(2, 2));
  w.register_module("front", std::make_shared<BatchNorm2d>(2));
  w.register_module("", inner);
  std::vector<std::string> names;
  for (auto& [n, t] : w.state_dict()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"front.weight", "front.bias", "fc.weight", "fc.bias", "front.running_mean",
                                          "front.running_var", "front.num_batches_tracked"});
  std::vector<std::string> visited;
  w.apply([&](const std::string& n, Module&) { visited.push_back(n); });
  CHECK(visited == std::vector<std::string>{"", "front", "", "fc"});
}

TEST_CASE("the trace records leaf layers in execution order; containers are not tokens") {
  ParamScope meta({.device = Device::meta()});
  auto seq = std::make_shared<Sequential>();
  seq->emplace<Conv2d>(3, 4, 3, 1, 1);
  seq->emplace<ReLU6>();
  seq->emplace<ZeroPad2d>(0, 1, 0, 1);
  seq->emplace<Identity>();
  seq->emplace<Flatten>();
  seq->emplace<Dropout>(0.5);
  LayerTrace trace;
  Tensor y = (*seq)(zeros({1, 3, 4, 4}, {.device = Device::meta()}));
  CHECK(y.shape() == Shape{1, 4 * 5 * 5});
  CHECK(trace.tokens() == std::vector<std::string>{"Conv", "ReLU6", "ZeroPad", "Flatten", "Dropout"});
}

TEST_CASE("activation layers: tokens and values") {
  Tensor x = from_vector<double>({-4, -1, 0.5, 2, 7}, {5});
  struct Case {
    ModulePtr m;
    const char* token;
    std::vector<double> want;
  };
  std::vector<Case> cases = {
      {std::make_shared<ReLU>(), "ReLU", {0, 0, 0.5, 2, 7}},
      {std::make_shared<ReLU6>(), "ReLU6", {0, 0, 0.5, 2, 6}},
      {std::make_shared<LeakyReLU>(0.1), "LeakyReLU", {-0.4, -0.1, 0.5, 2, 7}},
      {std::make_shared<Hardsigmoid>(), "Hardsigmoid", {0, 2.0 / 6, 3.5 / 6, 5.0 / 6, 1}},
      {std::make_shared<Hardswish>(), "Hardswish", {0, -2.0 / 6, 0.5 * 3.5 / 6, 2 * 5.0 / 6, 7}},
      {std::make_shared<Sigmoid>(),
       "Sigmoid",
       {1 / (1 + std::exp(4.0)), 1 / (1 + std::exp(1.0)), 1 / (1 + std::exp(-0.5)), 1 / (1 + std::exp(-2.0)),
        1 / (1 + std::exp(-7.0))}},
      {std::make_shared<Tanh>(),
       "Tanh",
       {std::tanh(-4.0), std::tanh(-1.0), std::tanh(0.5), std::tanh(2.0), std::tanh(7.0)}},
      {std::make_shared<SiLU>(),
       "SiLU",
       {-4 / (1 + std::exp(4.0)), -1 / (1 + std::exp(1.0)), 0.5 / (1 + std::exp(-0.5)), 2 / (1 + std::exp(-2.0)),
        7 / (1 + std::exp(-7.0))}},
      {std::make_shared<GELU>(),
       "GELU",
       {-4 * 0.5 * std::erfc(4 / std::sqrt(2.0)), -0.5 * std::erfc(1 / std::sqrt(2.0)),
        0.25 * (1 + std::erf(0.5 / std::sqrt(2.0))), (1 + std::erf(2 / std::sqrt(2.0))),
        3.5 * (1 + std::erf(7 / std::sqrt(2.0)))}},
  };
  for (auto& c : cases) {
    INFO(c.token);
    CHECK(c.m->type() == c.token);
    auto got = (*c.m)(x).to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(c.want[i]).epsilon(1e-12));
  }
}

TEST_CASE("residual_add and channel_concat record Add and Concat; Residual module") {
  Tensor a = leaf({2, 3, 2, 2}, 1), b = leaf({2, 3, 2, 2}, 2), c = leaf({2, 1, 2, 2}, 3);
  LayerTrace trace;
  Tensor s = residual_add(a, b);
  Tensor k = channel_concat({a, c});
  CHECK(k.shape() == Shape{2, 4, 2, 2});
  CHECK(s.to_vector<double>()[5] == doctest::Approx(a.to_vector<double>()[5] + b.to_vector<double>()[5]));
  CHECK(k.to_vector<double>()[12] == c.to_vector<double>()[0]);  // channel 3 of image 0 is c's channel 0
  CHECK(trace.tokens() == std::vector<std::string>{"Add", "Concat"});
  CHECK_THROWS_CONTAINING(residual_add(a, c), "branch shapes differ: (2, 3, 2, 2) and (2, 1, 2, 2)");

  ParamScope scope({.dtype = DType::Float64});
  Residual res(std::make_shared<Conv2d>(3, 3, 3, 1, 1));
  Tensor x = leaf({1, 3, 4, 4}, 4);
  CHECK(res.state_dict()[0].first == "body.weight");
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return res(in[0]); }, {x}));
}

TEST_CASE("ChannelShuffle interleaves the groups") {
  // channels 0..5 in 2 groups [0 1 2][3 4 5] -> 0 3 1 4 2 5
  Tensor x = arange(0, 6, 1, {DType::Float64}).reshape({1, 6, 1, 1});
  ChannelShuffle shuffle(2);
  CHECK(shuffle(x).to_vector<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(shuffle.type() == "ChannelShuffle");
  CHECK_THROWS_CONTAINING(ChannelShuffle(4)(x), "C divisible by 4");
  Tensor g = leaf({2, 6, 2, 3}, 5);
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return shuffle(in[0]); }, {g}));
}

TEST_CASE("SqueezeExcite: torchvision's keys, a gate in (0, 1), trace, gradients") {
  ParamScope scope({.dtype = DType::Float64});
  SqueezeExcite se(8, 2);
  std::vector<std::string> names;
  for (auto& [n, t] : se.state_dict()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  Tensor x = leaf({2, 8, 3, 3}, 7, 0.5, 1.0);
  LayerTrace trace;
  Tensor y = se(x);
  CHECK(trace.tokens() == std::vector<std::string>{"GlobalAvgPool", "Conv", "ReLU", "Conv", "Sigmoid", "Multiply"});
  auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) CHECK((yv[i] > 0 && yv[i] < xv[i]));
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return se(in[0]); }, {x}));
}
