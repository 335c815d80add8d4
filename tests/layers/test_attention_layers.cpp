// Multi-head self-attention against a direct computation, both state
// namings, patch embedding, class token and position embedding.
#include <doctest/doctest.h>

#include <cmath>

#include "gradcheck.h"
#include "layers/layers.h"

using namespace neurn;
using neurn::testing::gradcheck;
using neurn::testing::leaf;

namespace {
// softmax(q k^T / sqrt(dh)) v per head, then the projection, in plain loops.
std::vector<double> attention_reference(const Tensor& x, const Tensor& wqkv, const Tensor& bqkv, const Tensor& wo,
                                        const Tensor& bo, int64_t heads) {
  auto xv = x.to_vector<double>(), wq = wqkv.to_vector<double>(), bq = bqkv.to_vector<double>();
  auto wov = wo.to_vector<double>(), bov = bo.to_vector<double>();
  int64_t N = x.size(0), L = x.size(1), D = x.size(2), dh = D / heads;
  std::vector<double> qkv(N * L * 3 * D);
  for (int64_t t = 0; t < N * L; ++t)
    for (int64_t o = 0; o < 3 * D; ++o) {
      double a = bq[o];
      for (int64_t i = 0; i < D; ++i) a += xv[t * D + i] * wq[o * D + i];
      qkv[t * 3 * D + o] = a;
    }
  std::vector<double> ctx(N * L * D), out(N * L * D);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < L; ++i) {
        std::vector<double> s(L);
        double mx = -1e300, z = 0;
        for (int64_t j = 0; j < L; ++j) {
          double a = 0;
          for (int64_t d = 0; d < dh; ++d)
            a += qkv[(n * L + i) * 3 * D + h * dh + d] * qkv[(n * L + j) * 3 * D + D + h * dh + d];
          s[j] = a / std::sqrt(static_cast<double>(dh));
          mx = std::max(mx, s[j]);
        }
        for (auto& v : s) z += (v = std::exp(v - mx));
        for (int64_t d = 0; d < dh; ++d) {
          double a = 0;
          for (int64_t j = 0; j < L; ++j) a += s[j] / z * qkv[(n * L + j) * 3 * D + 2 * D + h * dh + d];
          ctx[(n * L + i) * D + h * dh + d] = a;
        }
      }
  for (int64_t t = 0; t < N * L; ++t)
    for (int64_t o = 0; o < D; ++o) {
      double a = bov[o];
      for (int64_t i = 0; i < D; ++i) a += ctx[t * D + i] * wov[o * D + i];
      out[t * D + o] = a;
    }
  return out;
}
}  // namespace

TEST_CASE("MultiheadSelfAttention equals the direct computation, both namings") {
  ParamScope scope({.dtype = DType::Float64});
  Tensor x = leaf({2, 5, 8}, 3);
  for (auto naming : {AttentionNaming::Timm, AttentionNaming::Torch}) {
    MultiheadSelfAttention att(AttentionSpec{.dim = 8, .heads = 2, .naming = naming});
    std::vector<std::string> names;
    for (auto& [n, t] : att.state_dict()) names.push_back(n);
    Tensor wqkv, bqkv, wo, bo;
    if (naming == AttentionNaming::Timm) {
      CHECK(names == std::vector<std::string>{"qkv.weight", "qkv.bias", "proj.weight", "proj.bias"});
      auto sd = att.state_dict();
      wqkv = sd[0].second, bqkv = sd[1].second, wo = sd[2].second, bo = sd[3].second;
    } else {
      CHECK(names == std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"});
      auto sd = att.state_dict();
      wqkv = sd[0].second, bqkv = sd[1].second, wo = sd[2].second, bo = sd[3].second;
      // nn.MultiheadAttention starts with zero biases; give them values so the test sees them
      uniform_(bqkv, -0.5, 0.5);
      uniform_(bo, -0.5, 0.5);
    }
    Tensor y = att(x);
    CHECK(y.shape() == Shape{2, 5, 8});
    auto want = attention_reference(x, wqkv, bqkv, wo, bo, 2);
    auto got = y.to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-10));
    CHECK(att.type() == "MultiheadAttention");
  }
  MultiheadSelfAttention att(8, 4);
  Tensor small = leaf({1, 3, 8}, 5);
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return att(in[0]); }, {small}));
  CHECK_THROWS_CONTAINING(MultiheadSelfAttention(10, 4), "must be a positive multiple of heads");
  CHECK_THROWS_CONTAINING(att(leaf({1, 3, 6}, 1)), "expected (N, L, 8), got (1, 3, 6)");
}

TEST_CASE("PatchEmbed, ClassToken and PositionEmbedding") {
  ParamScope scope({.dtype = DType::Float64});
  PatchEmbed pe(3, 16, 4);
  CHECK(pe.state_dict()[0].first == "proj.weight");
  Tensor img = leaf({2, 3, 8, 12}, 2);
  LayerTrace trace;
  Tensor tok = pe(img);
  CHECK(tok.shape() == Shape{2, 6, 16});
  // token 4 = patch row 1, col 1; its channel 3 equals the convolution's output there
  Conv2dOptions o;
  o.stride = {4, 4};
  Tensor conv = conv2d(img, pe.state_dict()[0].second, pe.state_dict()[1].second, o);  // (2, 16, 2, 3)
  CHECK(tok.to_vector<double>()[4 * 16 + 3] == doctest::Approx(conv.to_vector<double>()[3 * 6 + 4]));
  ClassToken cls(16);
  PositionEmbedding pos(7, 16);
  Tensor z = pos(cls(tok));
  CHECK(z.shape() == Shape{2, 7, 16});
  CHECK(trace.tokens() == std::vector<std::string>{"PatchEmbed", "ClassToken", "PosEmbed"});
  CHECK(cls.state_dict()[0].first == "cls_token");
  CHECK(pos.state_dict()[0].first == "pos_embed");
  CHECK(pos.state_dict()[0].second.shape() == Shape{1, 7, 16});
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return pos(cls(in[0])); }, {leaf({1, 6, 16}, 3)}));
  CHECK_THROWS_CONTAINING(pe(leaf({1, 3, 6, 8}, 1)), "multiples of 4");
  CHECK_THROWS_CONTAINING(pos(tok), "expected (N, 7, 16)");
}
