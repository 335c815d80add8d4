// The NeuRN layer and the LRN / LCN baselines.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "framework/ops.h"
#include "gradcheck.h"
#include "layers/lcn.h"
#include "layers/lrn.h"
#include "layers/neurn_layer.h"

using namespace neurn;
using namespace neurn::testing;

TEST_CASE("NeuRN layer: the op as a Module, its trace token, and its factories") {
  Generator gen(1);
  Tensor x = rand({2, 3, 10, 10}, {}, &gen);
  NeuRNOptions opt{5, NeuRNPadding::Reflect, NeuRNScope::Channel, 1e-6};
  auto layer = make_neurn_layer(opt);
  CHECK(layer->type() == "NeuRN");
  CHECK(layer->num_parameters() == 0);
  CHECK(layer->state_dict().empty());
  Tensor y;
  std::vector<std::string> tokens;
  {
    LayerTrace trace;
    y = (*layer)(x);
    tokens = trace.tokens();
  }
  CHECK(tokens == std::vector<std::string>{"NeuRN"});
  CHECK(y.to_vector<float>() == neurn_norm(x, opt).to_vector<float>());
  auto from_spec = std::dynamic_pointer_cast<NeuRN>(make_neurn_layer("k=5,padding=reflect,max_scope=channel"));
  REQUIRE(from_spec);
  CHECK(from_spec->options().k == 5);
  CHECK(from_spec->options().padding == NeuRNPadding::Reflect);
  auto from_map = std::dynamic_pointer_cast<NeuRN>(make_neurn_layer(std::map<std::string, std::string>{{"k", "7"}}));
  REQUIRE(from_map);
  CHECK(from_map->options().k == 7);
  CHECK(from_map->options().max_scope == NeuRNScope::Image);
  CHECK_THROWS_CONTAINING(make_neurn_layer("k=4"), "odd");
  CHECK_THROWS_CONTAINING(NeuRN(NeuRNOptions{.k = -1}), "odd");
  // In front of a model the input needs no gradient; inside one it passes it on.
  Tensor xl = leaf({1, 2, 6, 6}, 3);
  sum((*layer)(xl)).backward();
  CHECK(xl.grad().defined());
  // Meta: shapes only.
  Tensor m = zeros({8, 3, 32, 32}, {.device = Device::meta()});
  CHECK((*layer)(m).shape() == m.shape());
}

namespace {

std::vector<double> reference_lrn(const std::vector<double>& x, const Shape& s, const LRNOptions& o) {
  const int64_t N = s[0], C = s[1], HW = s[2] * s[3];
  std::vector<double> out(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < HW; ++p) {
        double acc = 0;
        for (int64_t cc = c - o.size / 2; cc <= c + (o.size - 1) / 2; ++cc)
          if (cc >= 0 && cc < C) acc += x[(n * C + cc) * HW + p] * x[(n * C + cc) * HW + p];
        double a = x[(n * C + c) * HW + p];
        out[(n * C + c) * HW + p] = a / std::pow(o.k + o.alpha / o.size * acc, o.beta);
      }
  return out;
}

}  // namespace

TEST_CASE("LRN matches the AlexNet/cuDNN formula and its gradients check") {
  Generator gen(4);
  Shape s{2, 7, 3, 4};
  Tensor x = rand(s, {DType::Float64}, &gen, -3.0, 3.0);
  for (LRNOptions o : {LRNOptions{}, LRNOptions{3, 0.5, 0.75, 1.0}, LRNOptions{4, 2.0, 0.5, 1.5}}) {
    INFO("size " << o.size << " alpha " << o.alpha);
    auto ref = reference_lrn(x.to_vector<double>(), s, o);
    auto got = local_response_norm(x, o).to_vector<double>();
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(ref[i] - got[i]));
    CHECK(worst < 1e-12);
    OpFn f = [o](const std::vector<Tensor>& in) { return local_response_norm(in[0], o); };
    CHECK_GRADCHECK(gradcheck(f, {leaf(s, 10 + o.size, -2.0, 2.0)}));
  }
  LocalResponseNorm layer;
  CHECK(layer.type() == "LRN");
  CHECK(layer.options().size == 5);
  CHECK(layer.options().k == 2.0);
  CHECK_THROWS_CONTAINING(local_response_norm(zeros({3, 4}), {}), "(N, C, H, W)");
}

namespace {

// Jarrett et al.'s LCN the slow way, with the window renormalized at borders.
std::vector<double> reference_lcn(const std::vector<double>& x, const Shape& s, const LCNOptions& o) {
  const int64_t N = s[0], C = s[1], H = s[2], W = s[3], r = o.kernel_size / 2;
  auto g = [&](int64_t p, int64_t q) {
    return std::exp(-static_cast<double>(p * p + q * q) / (2 * o.sigma * o.sigma));
  };
  auto at = [&](const std::vector<double>& a, int64_t n, int64_t c, int64_t i, int64_t j) {
    return a[((n * C + c) * H + i) * W + j];
  };
  // Weighted average over channels and the in-image part of the window.
  auto smooth = [&](const std::vector<double>& a, int64_t n, int64_t i, int64_t j) {
    double num = 0, den = 0;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = -r; p <= r; ++p)
        for (int64_t q = -r; q <= r; ++q)
          if (i + p >= 0 && i + p < H && j + q >= 0 && j + q < W) {
            num += g(p, q) * at(a, n, c, i + p, j + q);
            den += g(p, q);
          }
    return num / den;
  };
  std::vector<double> v(x.size()), v2(x.size()), out(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j) {
        double m = smooth(x, n, i, j);
        for (int64_t c = 0; c < C; ++c) {
          size_t idx = ((n * C + c) * H + i) * W + j;
          v[idx] = x[idx] - m;
          v2[idx] = v[idx] * v[idx];
        }
      }
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> sig(H * W);
    double msum = 0;
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j) msum += sig[i * W + j] = std::sqrt(smooth(v2, n, i, j));
    double mth = msum / (H * W) + o.eps;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          size_t idx = ((n * C + c) * H + i) * W + j;
          out[idx] = v[idx] / std::max(mth, sig[i * W + j]);
        }
  }
  return out;
}

}  // namespace

TEST_CASE("LCN: subtractive then divisive normalization (Jarrett et al. 2009), with gradient checks") {
  Generator gen(6);
  Shape s{2, 3, 7, 8};
  Tensor x = rand(s, {DType::Float64}, &gen, 0.0, 1.0);
  for (LCNOptions o : {LCNOptions{}, LCNOptions{3, 1.0, 1e-6}, LCNOptions{5, 1.5, 1e-6}}) {
    INFO("kernel " << o.kernel_size);
    Tensor w = lcn_window(3, o, DType::Float64);
    CHECK(std::abs(sum(w).item() - 1.0) < 1e-12);
    auto ref = reference_lcn(x.to_vector<double>(), s, o);
    auto got = local_contrast_norm(x, w, o).to_vector<double>();
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(ref[i] - got[i]));
    CHECK(worst < 1e-10);
    OpFn f = [w, o](const std::vector<Tensor>& in) { return local_contrast_norm(in[0], w, o); };
    CHECK_GRADCHECK(gradcheck(f, {leaf({1, 3, 6, 5}, 20 + o.kernel_size, 0.0, 1.0)}));
  }
  // A blank image gives zeros, not NaN; an offset changes nothing.
  LocalContrastNorm layer(3);
  CHECK(layer.type() == "LCN");
  CHECK(layer.num_parameters() == 0);
  for (float v : layer(full({1, 3, 9, 9}, 0.5)).to_vector<float>()) CHECK(v == 0.0f);
  Tensor xf = x.to(DType::Float32);
  auto a = layer(xf).to_vector<float>(), b = layer(add(xf, 10.0)).to_vector<float>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
  CHECK(worst < 1e-3);
  CHECK_THROWS_CONTAINING(LocalContrastNorm(3, LCNOptions{4, 2.0, 1e-6}), "odd");
  CHECK_THROWS_CONTAINING(layer(zeros({1, 2, 9, 9})), "channels");
}
