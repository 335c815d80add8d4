// Split attention (ResNeSt's SplAtConv2d): the radix softmax against a
// direct loop, the layer's state keys, trace and shapes, and a float64
// gradient check of the whole layer (input and every parameter).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "framework/ops.h"
#include "gradcheck.h"
#include "layers/init.h"
#include "layers/split_attention.h"

using namespace neurn;
using neurn::testing::gradcheck;
using neurn::testing::leaf;

TEST_CASE("radix_softmax: softmax across the radix splits, the authors' layout") {
  for (int64_t card : {1, 2}) {
    CAPTURE(card);
    const int64_t n = 2, radix = 3, per = 4;  // per: channels per cardinal group
    const int64_t total = card * radix * per;
    Tensor logits = leaf({n, total, 1, 1}, 11, -2.0, 2.0);
    std::vector<double> in = logits.to_vector<double>(), got = radix_softmax(logits, radix, card).to_vector<double>();
    REQUIRE(got.size() == in.size());
    // input index (b, g, r, c) = ((b * card + g) * radix + r) * per + c; output (b, r, g, c)
    for (int64_t b = 0; b < n; ++b)
      for (int64_t g = 0; g < card; ++g)
        for (int64_t c = 0; c < per; ++c) {
          double z = 0;
          for (int64_t r = 0; r < radix; ++r) z += std::exp(in[((b * card + g) * radix + r) * per + c]);
          for (int64_t r = 0; r < radix; ++r) {
            double want = std::exp(in[((b * card + g) * radix + r) * per + c]) / z;
            CHECK(got[b * total + (r * card + g) * per + c] == doctest::Approx(want).epsilon(1e-12));
          }
        }
  }
  // radix 1: a sigmoid gate
  Tensor l = leaf({1, 5, 1, 1}, 3);
  std::vector<double> v = l.to_vector<double>(), s = radix_softmax(l, 1, 1).to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i) CHECK(s[i] == doctest::Approx(1 / (1 + std::exp(-v[i]))).epsilon(1e-12));
  CHECK_THROWS_CONTAINING(radix_softmax(leaf({1, 7, 1, 1}, 1), 2, 1), "do not split into radix 2");
}

TEST_CASE("SplitAttentionConv2d: keys, shapes, trace") {
  SplitAttentionConv2d sa(SplitAttentionSpec{.in_channels = 64, .channels = 64, .stride = 2});
  std::vector<std::string> keys;
  for (auto& [k, t] : sa.named_parameters()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"conv.weight", "bn0.weight", "bn0.bias", "fc1.weight", "fc1.bias",
                                         "bn1.weight", "bn1.bias", "fc2.weight", "fc2.bias"});
  CHECK(sa.inter_channels() == 32);  // max(64 * 2 / 4, 32)
  CHECK(SplitAttentionConv2d(SplitAttentionSpec{.in_channels = 256, .channels = 256}).inter_channels() == 128);
  // conv 64 -> 128 in 2 groups, BN 128, fc1 64 -> 32, BN 32, fc2 32 -> 128
  CHECK(sa.num_parameters() == 128 * 32 * 9 + 2 * 128 + (64 * 32 + 32) + 2 * 32 + (32 * 128 + 128));
  LayerTrace trace;
  Tensor y = sa(randn({2, 64, 8, 8}));
  CHECK(y.shape() == Shape{2, 64, 4, 4});
  CHECK(trace.tokens() == std::vector<std::string>{"GroupConv", "BatchNorm", "ReLU", "Add", "GlobalAvgPool", "Conv",
                                                   "BatchNorm", "ReLU", "Conv", "Softmax", "Multiply", "Add"});
  CHECK_THROWS_CONTAINING(SplitAttentionConv2d(SplitAttentionSpec{.in_channels = 6, .channels = 9, .cardinality = 2}),
                          "cardinality 2 must divide");
}

TEST_CASE("SplitAttentionConv2d: float64 gradients of input and parameters") {
  for (int64_t card : {1, 2}) {
    CAPTURE(card);
    ParamScope scope({.dtype = DType::Float64});
    SplitAttentionConv2d sa(SplitAttentionSpec{.in_channels = 4, .channels = 4, .cardinality = card,
                                               .reduction_factor = 4});
    std::vector<Tensor> inputs{leaf({3, 4, 5, 5}, 21)};
    for (auto& [k, t] : sa.named_parameters()) {
      uniform_(t, -0.6, 0.6);  // BN scales and biases away from their 1 / 0 start
      inputs.push_back(t);
    }
    sa.train();  // batch statistics: the BN paths are part of the check
    CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return sa(in[0]); }, inputs));
  }
}
