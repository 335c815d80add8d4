// AutoFormer's 2-D relative position encoding (layers/relative_position.h)
// and multi-head attention with it and with heads of their own width
// (head_dim != dim / heads), against plain loops in float64; gradients.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "gradcheck.h"
#include "layers/layers.h"

using namespace neurn;
using neurn::testing::gradcheck;
using neurn::testing::leaf;

namespace {

// The table row of tokens (i, j) on a side x side grid after the class token.
int64_t rel_index(int64_t i, int64_t j, int64_t side, int64_t m, bool vertical) {
  if (i == 0 || j == 0) return 0;
  int64_t ri = (i - 1) / side, ci = (i - 1) % side, rj = (j - 1) / side, cj = (j - 1) % side;
  int64_t d = vertical ? rj - ri : cj - ci;
  return std::clamp<int64_t>(d, -m, m) + m + 1;
}

}  // namespace

TEST_CASE("RelativePosition2D: e(i, j) = table_v[row distance] + table_h[column distance], class token at 0") {
  ParamScope scope({.dtype = DType::Float64});
  const int64_t m = 2, side = 4, L = 1 + side * side, units = 6;
  RelativePosition2D rel(units, m);
  auto sd = rel.state_dict();
  REQUIRE(sd.size() == 2);
  CHECK(sd[0].first == "embeddings_table_v");
  CHECK(sd[1].first == "embeddings_table_h");
  CHECK(sd[0].second.shape() == Shape{2 * m + 2, units});
  auto tv = sd[0].second.to_vector<double>(), th = sd[1].second.to_vector<double>();
  for (int64_t width : {units, int64_t{4}}) {
    Tensor e = rel.embeddings(L, width);
    REQUIRE(e.shape() == Shape{L, L, width});
    auto ev = e.to_vector<double>();
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < L; ++j)
        for (int64_t c = 0; c < width; ++c) {
          double want = tv[rel_index(i, j, side, m, true) * units + c] + th[rel_index(i, j, side, m, false) * units + c];
          CHECK(ev[(i * L + j) * width + c] == want);
        }
  }
  // clipping is used on this grid: distance 3 maps to the row of distance 2
  CHECK(rel_index(1, 16, side, m, true) == rel_index(1, 12, side, m, true));
  CHECK_THROWS_CONTAINING(rel.embeddings(L, units + 1), "width 7 outside 1..6");
  CHECK_THROWS_CONTAINING(RelativePosition2D(0, 14), "must be positive");
  // the tables' gradient (through the one-hot product)
  Tensor t = sd[0].second;
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>&) { return rel.embeddings(10, 5); }, {t, sd[1].second}));
}

TEST_CASE("MultiheadSelfAttention with head_dim and relative positions equals plain loops (float64)") {
  ParamScope scope({.dtype = DType::Float64});
  const int64_t N = 2, side = 3, L = 1 + side * side, D = 6, H = 2, dh = 4, m = 1, inner = H * dh;
  MultiheadSelfAttention att(AttentionSpec{.dim = D, .heads = H, .head_dim = dh, .max_relative_position = m});
  std::map<std::string, Tensor> p;
  for (auto& [n, t] : att.state_dict()) {
    p[n] = t;
    normal_(t, 0.0, 0.5);  // zero biases would hide a wrong bias slice
  }
  REQUIRE(p.size() == 8);
  CHECK(p["qkv.weight"].shape() == Shape{3 * inner, D});
  CHECK(p["proj.weight"].shape() == Shape{D, inner});
  CHECK(p["rel_pos_embed_k.embeddings_table_v"].shape() == Shape{2 * m + 2, dh});
  Tensor x = leaf({N, L, D}, 3);
  auto xv = x.to_vector<double>(), wq = p["qkv.weight"].to_vector<double>(), bq = p["qkv.bias"].to_vector<double>();
  auto wo = p["proj.weight"].to_vector<double>(), bo = p["proj.bias"].to_vector<double>();
  auto kv = p["rel_pos_embed_k.embeddings_table_v"].to_vector<double>();
  auto kh = p["rel_pos_embed_k.embeddings_table_h"].to_vector<double>();
  auto vv = p["rel_pos_embed_v.embeddings_table_v"].to_vector<double>();
  auto vh = p["rel_pos_embed_v.embeddings_table_h"].to_vector<double>();
  std::vector<double> want(N * L * D);
  for (int64_t n = 0; n < N; ++n) {
    // qkv[t][o], o in [q | k | v] blocks of inner
    std::vector<double> qkv(L * 3 * inner);
    for (int64_t t = 0; t < L; ++t)
      for (int64_t o = 0; o < 3 * inner; ++o) {
        double a = bq[o];
        for (int64_t i = 0; i < D; ++i) a += xv[(n * L + t) * D + i] * wq[o * D + i];
        qkv[t * 3 * inner + o] = a;
      }
    std::vector<double> ctx(L * inner, 0.0);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i) {
        std::vector<double> s(L);
        double mx = -1e300;
        for (int64_t j = 0; j < L; ++j) {
          int64_t rv = rel_index(i, j, side, m, true), rh = rel_index(i, j, side, m, false);
          double a = 0;
          for (int64_t c = 0; c < dh; ++c) {
            double q = qkv[i * 3 * inner + h * dh + c], k = qkv[j * 3 * inner + inner + h * dh + c];
            a += q * (k + kv[rv * dh + c] + kh[rh * dh + c]);
          }
          s[j] = a / std::sqrt(static_cast<double>(dh));
          mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (auto& v : s) z += (v = std::exp(v - mx));
        for (int64_t j = 0; j < L; ++j) {
          int64_t rv = rel_index(i, j, side, m, true), rh = rel_index(i, j, side, m, false);
          for (int64_t c = 0; c < dh; ++c)
            ctx[i * inner + h * dh + c] +=
                s[j] / z * (qkv[j * 3 * inner + 2 * inner + h * dh + c] + vv[rv * dh + c] + vh[rh * dh + c]);
        }
      }
    for (int64_t t = 0; t < L; ++t)
      for (int64_t o = 0; o < D; ++o) {
        double a = bo[o];
        for (int64_t i = 0; i < inner; ++i) a += ctx[t * inner + i] * wo[o * inner + i];
        want[(n * L + t) * D + o] = a;
      }
  }
  auto got = att(x).to_vector<double>();
  REQUIRE(got.size() == want.size());
  double diff = 0;
  for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::abs(got[i] - want[i]));
  CHECK(diff < 1e-12);
  std::vector<Tensor> all = {x};
  for (auto& [n, t] : p) all.push_back(t);
  CHECK_GRADCHECK(gradcheck([&](const std::vector<Tensor>& in) { return att(in[0]); }, all));
  CHECK_THROWS_CONTAINING(
      MultiheadSelfAttention(AttentionSpec{.dim = 6, .heads = 2, .naming = AttentionNaming::Torch,
                                           .max_relative_position = 2}),
      "relative positions need the Timm naming");
}
