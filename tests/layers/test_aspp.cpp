// ASPP (layers/aspp.h): torchvision's state keys and shapes, the trace, that
// an atrous branch really is dilated by its rate with padding = rate, and a
// float64 gradient check through the whole layer.
#include <doctest/doctest.h>

#include "gradcheck.h"
#include "layers/aspp.h"
#include "layers/layers.h"

using namespace neurn;
using namespace neurn::testing;

TEST_CASE("ASPP: torchvision's keys and shapes, trace, output shape") {
  ParamScope meta({.device = Device::meta()});
  ASPP aspp(2048, {12, 24, 36});
  std::map<std::string, Shape> keys;
  for (auto& [k, t] : aspp.state_dict()) keys[k] = t.shape();
  CHECK(keys.at("convs.0.0.weight") == Shape{256, 2048, 1, 1});
  CHECK(keys.at("convs.1.0.weight") == Shape{256, 2048, 3, 3});
  CHECK(keys.at("convs.3.1.running_var") == Shape{256});
  CHECK(keys.at("convs.4.1.weight") == Shape{256, 2048, 1, 1});  // the pooling branch: 0 is the pool
  CHECK(keys.at("convs.4.2.bias") == Shape{256});
  CHECK(keys.at("project.0.weight") == Shape{256, 1280, 1, 1});
  CHECK(keys.at("project.1.num_batches_tracked") == Shape{});
  // torchvision: 5 convolutions of 2048 -> 256 (one 1x1, three 3x3, the pooling 1x1), the projection,
  // 6 BN (weight and bias each)
  CHECK(aspp.num_parameters() == 256 * 2048 * (1 + 3 * 9 + 1) + 256 * 1280 + 6 * 2 * 256);
  aspp.eval();
  LayerTrace trace;
  Tensor y = aspp(zeros({1, 2048, 9, 7}, {.device = Device::meta()}));
  CHECK(y.shape() == Shape{1, 256, 9, 7});
  std::vector<std::string> want = {"Conv", "BatchNorm", "ReLU", "Conv", "BatchNorm", "ReLU", "Conv",
                                   "BatchNorm", "ReLU", "Conv", "BatchNorm", "ReLU", "GlobalAvgPool", "Conv",
                                   "BatchNorm", "ReLU", "Upsample", "Concat", "Conv", "BatchNorm", "ReLU", "Dropout"};
  CHECK(trace.tokens() == want);
  CHECK_THROWS_CONTAINING(ASPP(8, {}), "at least one atrous rate");
  CHECK_THROWS_CONTAINING(ASPP(8, {2, 0}), "rates must be >= 1, got 0");
}

TEST_CASE("ASPP: a rate at least the map's size leaves only the centre tap (padding = dilation = rate)") {
  ParamScope scope({.dtype = DType::Float64});
  Generator gen(11);
  Tensor x = randn({2, 3, 5, 4}, {.dtype = DType::Float64}, &gen);
  auto run = [&](int64_t rate, bool zero_off_centre) {
    ParamScope draws({.dtype = DType::Float64}, &gen);
    gen = Generator(5);  // the same weights every time
    ASPP aspp(3, {rate}, 4);
    aspp.eval();
    if (zero_off_centre) {
      for (auto& [k, t] : aspp.state_dict()) {
        if (k != "convs.1.0.weight") continue;
        auto v = t.to_vector<double>();  // (4, 3, 3, 3): keep index 4 of each 3x3
        for (size_t i = 0; i < v.size(); ++i)
          if (i % 9 != 4) v[i] = 0;
        t.copy_(from_vector<double>(v, t.shape()));
      }
    }
    NoGradGuard ng;
    return aspp(x).to_vector<double>();
  };
  // rate 5 >= 5 x 4: every off-centre tap reads the zero padding, so zeroing them changes nothing
  auto full = run(5, false), centre = run(5, true);
  REQUIRE(full.size() == 2 * 4 * 5 * 4);
  for (size_t i = 0; i < full.size(); ++i) CHECK(full[i] == doctest::Approx(centre[i]).epsilon(1e-12));
  // at rate 1 the off-centre taps read the map: the outputs differ
  auto full1 = run(1, false), centre1 = run(1, true);
  double diff = 0;
  for (size_t i = 0; i < full1.size(); ++i) diff = std::max(diff, std::abs(full1[i] - centre1[i]));
  CHECK(diff > 1e-3);
}

TEST_CASE("ASPP: float64 gradient check, training mode") {
  ParamScope scope({.dtype = DType::Float64});
  ASPP aspp(3, {1, 2}, 2, 0.0);
  aspp.train();  // batch statistics: the BN backward is part of the check
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return aspp(in[0]); }, {leaf({2, 3, 4, 3}, 9)}));
}
