// conv2d, pooling, upsampling and normalisation: forward against direct loops
// and hand-computed values, gradients in float64, meta shapes and FLOPs, and
// the error messages of bad configurations.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "framework/ops.h"
#include "gradcheck.h"

using namespace neurn;
using neurn::testing::gradcheck;
using neurn::testing::leaf;

namespace {

// The definition of a convolution, written as plainly as possible.
std::vector<double> conv_reference(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  std::vector<double> bv = b.defined() ? b.to_vector<double>() : std::vector<double>();
  int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  int64_t Co = w.size(0), Cg = w.size(1), kh = w.size(2), kw = w.size(3);
  int64_t Ho = (H + 2 * o.padding[0] - o.dilation[0] * (kh - 1) - 1) / o.stride[0] + 1;
  int64_t Wo = (W + 2 * o.padding[1] - o.dilation[1] * (kw - 1) - 1) / o.stride[1] + 1;
  int64_t Og = Co / o.groups;
  std::vector<double> y(static_cast<size_t>(N * Co * Ho * Wo));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t co = 0; co < Co; ++co)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          double acc = bv.empty() ? 0.0 : bv[co];
          int64_t grp = co / Og;
          for (int64_t ci = 0; ci < Cg; ++ci)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                int64_t ih = oh * o.stride[0] - o.padding[0] + i * o.dilation[0];
                int64_t iw = ow * o.stride[1] - o.padding[1] + j * o.dilation[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += xv[((n * C + grp * Cg + ci) * H + ih) * W + iw] * wv[((co * Cg + ci) * kh + i) * kw + j];
              }
          y[((n * Co + co) * Ho + oh) * Wo + ow] = acc;
        }
  return y;
}

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv2dOptions opt;
  bool bias;
};

Conv2dOptions conv_opt(int64_t s0, int64_t s1, int64_t p0, int64_t p1, int64_t d0, int64_t d1, int64_t groups) {
  Conv2dOptions o;
  o.stride = {s0, s1};
  o.padding = {p0, p1};
  o.dilation = {d0, d1};
  o.groups = groups;
  return o;
}

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cases = {
      {"plain 3x3", {2, 3, 7, 6}, {4, 3, 3, 3}, conv_opt(1, 1, 0, 0, 1, 1, 1), true},
      {"stride 2, padding 1", {2, 3, 8, 7}, {5, 3, 3, 3}, conv_opt(2, 2, 1, 1, 1, 1, 1), true},
      {"asymmetric stride/padding, no bias", {1, 2, 9, 8}, {3, 2, 3, 2}, conv_opt(2, 1, 1, 0, 1, 1, 1), false},
      {"dilation 2", {2, 2, 9, 9}, {3, 2, 3, 3}, conv_opt(1, 1, 2, 2, 2, 2, 1), true},
      {"groups 2", {2, 4, 6, 6}, {6, 2, 3, 3}, conv_opt(1, 1, 1, 1, 1, 1, 2), true},
      {"depthwise", {2, 4, 7, 7}, {4, 1, 3, 3}, conv_opt(2, 2, 1, 1, 1, 1, 4), true},
      {"depthwise multiplier 2, dilated", {1, 3, 8, 8}, {6, 1, 3, 3}, conv_opt(1, 2, 2, 1, 2, 1, 3), false},
      {"pointwise 1x1", {3, 5, 4, 4}, {7, 5, 1, 1}, conv_opt(1, 1, 0, 0, 1, 1, 1), true},
      {"5x5 large batch (chunked im2col)", {20, 3, 6, 6}, {4, 3, 5, 5}, conv_opt(1, 1, 0, 0, 1, 1, 1), true},
  };
  return cases;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])));
  }
}

}  // namespace

TEST_CASE("conv2d matches a direct loop (float32 and float64)") {
  for (const auto& c : conv_cases()) {
    SUBCASE(c.name) {
      Generator gen(11);
      for (DType dt : {DType::Float32, DType::Float64}) {
        Tensor x = randn(c.x, {dt}, &gen);
        Tensor w = randn(c.w, {dt}, &gen);
        Tensor b = c.bias ? randn({c.w[0]}, {dt}, &gen) : Tensor();
        Tensor y = conv2d(x, w, b, c.opt);
        check_close(y.to_vector<double>(), conv_reference(x, w, b, c.opt), dt == DType::Float32 ? 1e-4 : 1e-12);
      }
    }
  }
}

TEST_CASE("conv2d gradients (float64)") {
  for (const auto& c : conv_cases()) {
    SUBCASE(c.name) {
      Shape xs = c.x;
      if (xs[0] > 2) xs[0] = 2;  // keep the numeric gradient cheap
      Tensor x = leaf(xs, 1), w = leaf(c.w, 2);
      Conv2dOptions o = c.opt;
      if (c.bias) {
        Tensor b = leaf({c.w[0]}, 3);
        CHECK_GRADCHECK(gradcheck([o](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], o); },
                                  {x, w, b}));
      } else {
        CHECK_GRADCHECK(
            gradcheck([o](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], {}, o); }, {x, w}));
      }
    }
  }
}

TEST_CASE("conv2d backward accumulates and skips inputs without grad") {
  Tensor x = leaf({2, 3, 5, 5}, 4), w = leaf({4, 3, 3, 3}, 5);
  auto f = [](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], {}, conv_opt(1, 1, 1, 1, 1, 1, 1)); };
  CHECK(neurn::testing::accumulates(f, {x, w}));
  Tensor xc = randn({2, 3, 5, 5}, {DType::Float64});  // no grad: only the weight gets one
  Tensor wc = leaf({4, 3, 3, 3}, 6);
  sum(conv2d(xc, wc)).backward();
  CHECK(wc.grad().defined());
  CHECK_FALSE(xc.grad().defined());
}

TEST_CASE("conv2d on meta: shape and FLOPs") {
  Tensor x = Tensor::empty({8, 3, 32, 32}, {DType::Float32, Device::meta()});
  Tensor w = Tensor::empty({64, 3, 5, 5}, {DType::Float32, Device::meta()});
  Tensor b = Tensor::empty({64}, {DType::Float32, Device::meta()});
  FlopCounter fc;
  Tensor y = conv2d(x, w, b);
  CHECK(y.shape() == Shape{8, 64, 28, 28});
  CHECK(y.device().is_meta());
  CHECK(fc.flops() == 2 * 8 * 64 * 28 * 28 * 75 + 8 * 64 * 28 * 28);
  Tensor yd = conv2d(Tensor::empty({1, 4, 9, 9}, {DType::Float32, Device::meta()}),
                     Tensor::empty({4, 1, 3, 3}, {DType::Float32, Device::meta()}), {}, conv_opt(2, 2, 1, 1, 1, 1, 4));
  CHECK(yd.shape() == Shape{1, 4, 5, 5});
}

TEST_CASE("conv2d errors name the op and shapes") {
  Tensor x = zeros({1, 4, 8, 8});
  CHECK_THROWS_CONTAINING(conv2d(x, zeros({2, 3, 3, 3})), "conv2d: weight (2, 3, 3, 3) expects 3 input channels");
  CHECK_THROWS_CONTAINING(conv2d(x, zeros({3, 2, 3, 3}), {}, conv_opt(1, 1, 0, 0, 1, 1, 2)),
                          "conv2d: groups=2 does not divide the output channels C_out=3");
  CHECK_THROWS_CONTAINING(conv2d(x, zeros({3, 1, 3, 3}), {}, conv_opt(1, 1, 0, 0, 1, 1, 3)),
                          "conv2d: groups=3 does not divide the input channels C_in=4");
  CHECK_THROWS_CONTAINING(conv2d(x, zeros({2, 4, 9, 9})), "is larger than the padded input 8x8");
  CHECK_THROWS_CONTAINING(conv2d(zeros({4, 8, 8}), zeros({2, 4, 3, 3})), "conv2d: input must be 4-D");
  CHECK_THROWS_CONTAINING(conv2d(x, zeros({2, 4, 3, 3}), zeros({3})), "conv2d: bias must have shape (2)");
  CHECK_THROWS_CONTAINING(conv2d(x, zeros({2, 4, 3, 3}, {DType::Float64})), "conv2d: input is float32 but weight is float64");
}
