// conv2d, pooling, upsampling and normalisation: forward against direct loops
// and hand-computed values, gradients in float64, meta shapes and FLOPs, and
// the error messages of bad configurations.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "framework/ops.h"
#include "framework/ops/conv_cpu.h"
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
      // Maps of 1024 positions or more: each image is its own column matrix.
      {"pointwise 1x1, large map", {2, 2, 32, 33}, {3, 2, 1, 1}, conv_opt(1, 1, 0, 0, 1, 1, 1), true},
      {"1x1 stride 2", {2, 4, 5, 5}, {3, 4, 1, 1}, conv_opt(2, 2, 0, 0, 1, 1, 1), false},
      {"3x3 padding 1 on a 1x1 map", {3, 4, 1, 1}, {2, 4, 3, 3}, conv_opt(1, 1, 1, 1, 1, 1, 1), true},
      // Output width 16 or more: im2col row by row instead of the offset table.
      {"wide rows, stride (1, 2)", {2, 2, 4, 34}, {3, 2, 3, 3}, conv_opt(1, 2, 1, 1, 1, 1, 1), true},
      {"depthwise, wide rows", {2, 3, 3, 20}, {3, 1, 3, 3}, conv_opt(1, 1, 1, 1, 1, 1, 3), true},
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

TEST_CASE("conv2d: the batch split over threads agrees with one image at a time") {
  // Large enough for the batch-parallel path (several MFLOP per thread); each
  // single image is small enough for the one-thread path.
  struct Split {
    const char* name;
    Shape x, w;
    Conv2dOptions opt;
  };
  const std::vector<Split> splits = {
      {"3x3 padding 1", {8, 16, 16, 16}, {32, 16, 3, 3}, conv_opt(1, 1, 1, 1, 1, 1, 1)},
      {"3x3 groups 2, stride 2", {8, 16, 40, 40}, {32, 8, 3, 3}, conv_opt(2, 2, 1, 1, 1, 1, 2)},
      {"pointwise", {8, 64, 16, 16}, {64, 64, 1, 1}, conv_opt(1, 1, 0, 0, 1, 1, 1)},
  };
  for (const auto& c : splits) {
    SUBCASE(c.name) {
      for (DType dt : {DType::Float32, DType::Float64}) {
        Generator gen(5);
        Tensor x = randn(c.x, {dt}, &gen), w = randn(c.w, {dt}, &gen), b = randn({c.w[0]}, {dt}, &gen);
        Tensor y = conv2d(x, w, b, c.opt);
        Tensor gy = randn(y.shape(), {dt}, &gen);
        x.requires_grad_(), w.requires_grad_(), b.requires_grad_();
        conv2d(x, w, b, c.opt).backward(gy);
        std::vector<double> dw_sum(static_cast<size_t>(w.numel()), 0.0), db_sum(static_cast<size_t>(c.w[0]), 0.0);
        double tol = dt == DType::Float32 ? 1e-4 : 1e-12;
        for (int64_t n = 0; n < c.x[0]; ++n) {
          Tensor xn = slice(x.detach(), 0, n, n + 1).clone(), wn = w.detach().clone(), bn = b.detach().clone();
          xn.requires_grad_(), wn.requires_grad_(), bn.requires_grad_();
          conv2d(xn, wn, bn, c.opt).backward(slice(gy, 0, n, n + 1).clone());
          check_close(xn.grad().to_vector<double>(), slice(x.grad(), 0, n, n + 1).to_vector<double>(), tol);
          auto dwn = wn.grad().to_vector<double>(), dbn = bn.grad().to_vector<double>();
          for (size_t i = 0; i < dwn.size(); ++i) dw_sum[i] += dwn[i];
          for (size_t i = 0; i < dbn.size(); ++i) db_sum[i] += dbn[i];
        }
        check_close(w.grad().to_vector<double>(), dw_sum, tol * 10);
        check_close(b.grad().to_vector<double>(), db_sum, tol * 10);
        check_close(y.to_vector<double>(), conv_reference(x, w, b, c.opt), tol);
      }
    }
  }
}

TEST_CASE("conv2d: one large image (gemms split over threads) agrees with the batch split") {
  // N = 1 takes the path where each gemm is split over the threads; the same
  // image twice takes the path where the threads split the batch.
  for (DType dt : {DType::Float32, DType::Float64}) {
    Generator gen(13);
    Tensor x1 = randn({1, 16, 32, 32}, {dt}, &gen), w1 = randn({32, 16, 3, 3}, {dt}, &gen);
    Tensor g1 = randn({1, 32, 32, 32}, {dt}, &gen);
    Tensor x2 = concat({x1, x1}, 0), w2 = w1.clone(), g2 = concat({g1, g1}, 0);
    for (Tensor* t : {&x1, &w1, &x2, &w2}) t->requires_grad_();
    Conv2dOptions o = conv_opt(1, 1, 1, 1, 1, 1, 1);
    Tensor y1 = conv2d(x1, w1, {}, o), y2 = conv2d(x2, w2, {}, o);
    y1.backward(g1), y2.backward(g2);
    double tol = dt == DType::Float32 ? 1e-4 : 1e-12;
    check_close(y1.to_vector<double>(), slice(y2, 0, 1, 2).to_vector<double>(), tol);
    check_close(x1.grad().to_vector<double>(), slice(x2.grad(), 0, 1, 2).to_vector<double>(), tol);
    check_close(mul(w1.grad(), 2.0).to_vector<double>(), w2.grad().to_vector<double>(), tol);
  }
}

TEST_CASE("parallel_gemm matches a direct product (row and column splits, transposes)") {
  struct Dims {
    int64_t M, N, K;
  };
  // 200 x 100: split by rows (op(B) is the smaller operand to repeat); 8
  // rows: by columns; 64 x 600: by columns (op(A) is the smaller); all above
  // the threading threshold. 5 x 7 x 3: one plain gemm.
  for (Dims d : {Dims{200, 100, 300}, Dims{8, 600, 1000}, Dims{64, 600, 400}, Dims{5, 7, 3}}) {
    for (int tr = 0; tr < 4; ++tr) {
      bool ta = tr & 1, tb = tr & 2;
      Generator gen(9);
      auto a = randn({d.M * d.K}, {DType::Float64}, &gen).to_vector<double>();
      auto b = randn({d.K * d.N}, {DType::Float64}, &gen).to_vector<double>();
      auto c = randn({d.M * d.N}, {DType::Float64}, &gen).to_vector<double>();
      int64_t lda = ta ? d.M : d.K, ldb = tb ? d.K : d.N;
      std::vector<double> want(c.size());
      for (int64_t i = 0; i < d.M; ++i)
        for (int64_t j = 0; j < d.N; ++j) {
          double acc = 0;
          for (int64_t k = 0; k < d.K; ++k)
            acc += (ta ? a[k * lda + i] : a[i * lda + k]) * (tb ? b[j * ldb + k] : b[k * ldb + j]);
          want[i * d.N + j] = 1.5 * acc + 0.5 * c[i * d.N + j];
        }
      cpu::parallel_gemm(ta, tb, d.M, d.N, d.K, 1.5, a.data(), lda, b.data(), ldb, 0.5, c.data(), d.N);
      INFO("M " << d.M << " N " << d.N << " K " << d.K << " trans " << ta << tb);
      check_close(c, want, 1e-12);
    }
  }
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
  CHECK_THROWS_CONTAINING(conv2d(x, zeros({2, 4, 3, 3}), zeros({3})), "conv2d: bias must have shape (2,)");
  CHECK_THROWS_CONTAINING(conv2d(x, zeros({2, 4, 3, 3}, {DType::Float64})), "conv2d: input is float32 but weight is float64");
}

// ---- pooling and upsampling -----------------------------------------------------

namespace {

Tensor grid(int64_t h, int64_t w, DType dt = DType::Float64) {  // 0, 1, 2, ... as (1, 1, h, w)
  return arange(0, static_cast<double>(h * w), 1, {dt}).reshape({1, 1, h, w});
}

Pool2dOptions pool_opt(int64_t k, int64_t s, int64_t p, bool ceil, bool include_pad = true) {
  Pool2dOptions o;
  o.kernel = {k, k};
  o.stride = {s, s};
  o.padding = {p, p};
  o.ceil_mode = ceil;
  o.count_include_pad = include_pad;
  return o;
}

// Values with distinct magnitudes (no ties inside a pooling window).
Tensor distinct_leaf(const Shape& s, uint64_t seed) {
  Tensor t = leaf(s, seed);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] += 0.01 * static_cast<double>((i * 7919) % 101);
  return t;
}

}  // namespace

TEST_CASE("max_pool2d known values, ceil_mode and padding") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    CHECK(max_pool2d(grid(4, 4, dt), pool_opt(2, 0, 0, false)).to_vector<double>() == std::vector<double>{5, 7, 13, 15});
    // 5x5, kernel 2, stride 2: floor mode drops the last row/column, ceil mode keeps a 1-wide window.
    CHECK(max_pool2d(grid(5, 5, dt), pool_opt(2, 2, 0, false)).to_vector<double>() == std::vector<double>{6, 8, 16, 18});
    CHECK(max_pool2d(grid(5, 5, dt), pool_opt(2, 2, 0, true)).to_vector<double>() ==
          std::vector<double>{6, 8, 9, 16, 18, 19, 21, 23, 24});
    // kernel 3, stride 2, padding 1, ceil: windows rows [-1,2), [1,4), [3,6) clipped to the input.
    CHECK(max_pool2d(grid(4, 4, dt), pool_opt(3, 2, 1, true)).to_vector<double>() ==
          std::vector<double>{5, 7, 7, 13, 15, 15, 13, 15, 15});
  }
}

TEST_CASE("max_pool2d propagates NaN") {
  double nan = std::nan("");
  for (bool ceil : {false, true}) {  // the 2x2 fast path and the general loop
    auto y = max_pool2d(from_vector<double>({1, nan, 3, 2, 0, 5, 7, 1, 2}, {1, 1, 3, 3}), pool_opt(2, 2, 0, ceil))
                 .to_vector<double>();
    CHECK(std::isnan(y[0]));
    if (ceil) {
      REQUIRE(y.size() == 4);
      CHECK((y[1] == 5 && y[2] == 7 && y[3] == 2));
    }
  }
}

TEST_CASE("max_pool2d backward: ties go to the first maximum") {
  Tensor x = ones({1, 1, 2, 4}, {DType::Float64});
  x.requires_grad_();
  sum(max_pool2d(x, pool_opt(2, 2, 0, false))).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 1, 0, 0, 0, 0, 0});
  // Overlapping windows (stride 1) both pick the shared maximum: it gets both gradients.
  Tensor z = from_vector<double>({0, 5, 1, 2, 3, 4}, {1, 1, 2, 3});
  z.requires_grad_();
  sum(max_pool2d(z, pool_opt(2, 1, 0, false))).backward();
  CHECK(z.grad().to_vector<double>() == std::vector<double>{0, 2, 0, 0, 0, 0});
}

TEST_CASE("avg_pool2d known values: count_include_pad both ways, ceil_mode") {
  Tensor x = grid(4, 4);
  // kernel 3, stride 2, padding 1, ceil mode; the divisor counts padding but
  // not the ceil-mode overhang beyond the padded border.
  auto inc = avg_pool2d(x, pool_opt(3, 2, 1, true, true)).to_vector<double>();
  auto exc = avg_pool2d(x, pool_opt(3, 2, 1, true, false)).to_vector<double>();
  std::vector<double> want_inc = {10.0 / 9, 24.0 / 9, 10.0 / 6, 51.0 / 9, 10, 33.0 / 6, 25.0 / 6, 42.0 / 6, 15.0 / 4};
  std::vector<double> want_exc = {2.5, 4, 5, 8.5, 10, 11, 12.5, 14, 15};
  check_close(inc, want_inc, 1e-12);
  check_close(exc, want_exc, 1e-12);
  // No padding: ceil mode's 1-wide windows divide by their real size either way.
  std::vector<double> want5 = {3, 5, 6.5, 13, 15, 16.5, 20.5, 22.5, 24};
  check_close(avg_pool2d(grid(5, 5), pool_opt(2, 2, 0, true, true)).to_vector<double>(), want5, 1e-12);
  check_close(avg_pool2d(grid(5, 5), pool_opt(2, 2, 0, true, false)).to_vector<double>(), want5, 1e-12);
  // ones with padding 1: corners see 4 of 9, edges 6 of 9 when padding counts.
  auto o = avg_pool2d(ones({1, 1, 3, 3}, {DType::Float64}), pool_opt(3, 1, 1, false, true)).to_vector<double>();
  check_close(o, {4.0 / 9, 6.0 / 9, 4.0 / 9, 6.0 / 9, 1, 6.0 / 9, 4.0 / 9, 6.0 / 9, 4.0 / 9}, 1e-12);
}

TEST_CASE("adaptive and global average pooling known values") {
  // 5 -> 3: windows [0,2), [1,4), [3,5) on each axis.
  check_close(adaptive_avg_pool2d(grid(5, 5), 3, 3).to_vector<double>(), {3, 4.5, 6, 10.5, 12, 13.5, 18, 19.5, 21},
              1e-12);
  // Two channels: 0..15 and 16..31 -> their means, shape (N, C).
  Tensor x = arange(0, 32, 1, {DType::Float64}).reshape({1, 2, 4, 4});
  Tensor g = global_avg_pool2d(x);
  CHECK(g.shape() == Shape{1, 2});
  check_close(g.to_vector<double>(), {7.5, 23.5}, 1e-12);
}

TEST_CASE("upsample nearest and bilinear (align_corners=false) known values") {
  Tensor x = from_vector<double>({0, 1, 2, 3}, {1, 1, 2, 2});
  check_close(upsample(x, 4, 4, UpsampleMode::Nearest).to_vector<double>(),
              {0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3}, 0);
  check_close(upsample(x, 4, 4, UpsampleMode::Bilinear).to_vector<double>(),
              {0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3}, 1e-12);
  check_close(upsample(x, 3, 5, UpsampleMode::Bilinear).to_vector<double>(),
              {0, 0.1, 0.5, 0.9, 1, 1, 1.1, 1.5, 1.9, 2, 2, 2.1, 2.5, 2.9, 3}, 1e-12);
  // 3 -> 5 nearest: floor(dst * 3 / 5).
  check_close(upsample(arange(0, 3, 1, {DType::Float64}).reshape({1, 1, 1, 3}), 1, 5).to_vector<double>(),
              {0, 0, 1, 1, 2}, 0);
  // Non-integer ratios pick the pixels PyTorch 1.13 picks (F.interpolate, mode='nearest').
  Tensor row7 = arange(0, 7, 1, {DType::Float32}).reshape({1, 1, 1, 7});
  check_close(upsample(row7, 1, 3).to_vector<double>(), {0, 2, 4}, 0);
  check_close(upsample(row7, 1, 10).to_vector<double>(), {0, 0, 1, 2, 2, 3, 4, 4, 5, 6}, 0);
  check_close(upsample(row7, 1, 17).to_vector<double>(), {0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 6, 6}, 0);
}

TEST_CASE("pooling and upsampling gradients (float64)") {
  using neurn::testing::OpFn;
  struct Case {
    const char* name;
    OpFn f;
    Shape shape;
  };
  std::vector<Case> cases = {
      {"max_pool2d 2x2", [](const std::vector<Tensor>& in) { return max_pool2d(in[0], pool_opt(2, 0, 0, false)); },
       {2, 2, 4, 5}},
      {"max_pool2d 3x3 s2 p1 ceil",
       [](const std::vector<Tensor>& in) { return max_pool2d(in[0], pool_opt(3, 2, 1, true)); }, {1, 2, 6, 7}},
      {"avg_pool2d include pad ceil",
       [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], pool_opt(3, 2, 1, true, true)); }, {2, 2, 6, 5}},
      {"avg_pool2d exclude pad ceil",
       [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], pool_opt(3, 2, 1, true, false)); }, {2, 2, 6, 5}},
      {"avg_pool2d 2x2", [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], pool_opt(2, 0, 0, false)); },
       {1, 3, 4, 4}},
      {"adaptive_avg_pool2d 5x7 -> 3x2",
       [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], 3, 2); }, {2, 2, 5, 7}},
      {"adaptive_avg_pool2d upscale 2x3 -> 4x4",
       [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], 4, 4); }, {1, 2, 2, 3}},
      {"global_avg_pool2d", [](const std::vector<Tensor>& in) { return global_avg_pool2d(in[0]); }, {2, 3, 3, 4}},
      {"upsample nearest 3x4 -> 7x6",
       [](const std::vector<Tensor>& in) { return upsample(in[0], 7, 6, UpsampleMode::Nearest); }, {1, 2, 3, 4}},
      {"upsample bilinear 3x4 -> 7x6",
       [](const std::vector<Tensor>& in) { return upsample(in[0], 7, 6, UpsampleMode::Bilinear); }, {1, 2, 3, 4}},
      {"upsample bilinear down 6x5 -> 4x3",
       [](const std::vector<Tensor>& in) { return upsample(in[0], 4, 3, UpsampleMode::Bilinear); }, {2, 1, 6, 5}},
  };
  for (const auto& c : cases) {
    SUBCASE(c.name) {
      Tensor x = distinct_leaf(c.shape, 21);
      CHECK_GRADCHECK(gradcheck(c.f, {x}));
      CHECK(neurn::testing::accumulates(c.f, {x}));
    }
  }
}

TEST_CASE("pooling on meta, and bad configurations") {
  Tensor m = Tensor::empty({8, 64, 28, 28}, {DType::Float32, Device::meta()});
  FlopCounter fc;
  CHECK(max_pool2d(m, pool_opt(2, 0, 0, false)).shape() == Shape{8, 64, 14, 14});
  CHECK(fc.flops() == 8 * 64 * 14 * 14 * 4);
  CHECK(avg_pool2d(Tensor::empty({1, 3, 5, 5}, {DType::Float32, Device::meta()}), pool_opt(2, 2, 0, true)).shape() ==
        Shape{1, 3, 3, 3});
  CHECK(adaptive_avg_pool2d(m, 7, 7).shape() == Shape{8, 64, 7, 7});
  CHECK(global_avg_pool2d(m).shape() == Shape{8, 64});
  CHECK(upsample(m, 56, 56, UpsampleMode::Bilinear).shape() == Shape{8, 64, 56, 56});

  Tensor x = zeros({1, 2, 3, 3});
  CHECK_THROWS_CONTAINING(max_pool2d(x, pool_opt(5, 1, 0, false)),
                          "max_pool2d: kernel 5x5 is larger than the padded input 3x3 (input (1, 2, 3, 3))");
  CHECK_THROWS_CONTAINING(avg_pool2d(x, pool_opt(2, 1, 2, false)), "avg_pool2d: padding (2, 2) must be at most half");
  CHECK_THROWS_CONTAINING(max_pool2d(zeros({2, 3, 3}), pool_opt(2, 1, 0, false)), "max_pool2d: input must be 4-D");
  CHECK_THROWS_CONTAINING(adaptive_avg_pool2d(x, 0, 2), "adaptive_avg_pool2d: output size must be >= 1");
  CHECK_THROWS_CONTAINING(upsample(zeros({3, 3}), 4, 4), "upsample: input must be 4-D");
}

// ---- normalisation --------------------------------------------------------------

TEST_CASE("batch_norm running statistics after several steps") {
  // Channel 0 holds 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3),
  // channel 1 holds 0, 0, 2, 2 (mean 1, biased var 1, unbiased 4/3).
  Tensor x = from_vector<double>({1, 2, 0, 0, 3, 4, 2, 2}, {2, 2, 1, 2});
  Tensor rm = zeros({2}, {DType::Float64}), rv = ones({2}, {DType::Float64});
  Tensor y = batch_norm(x, {}, {}, rm, rv, true, 0.1, 1e-5);
  check_close(rm.to_vector<double>(), {0.25, 0.1}, 1e-12);
  check_close(rv.to_vector<double>(), {0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.1 * 4.0 / 3.0}, 1e-12);
  double s0 = 1 / std::sqrt(1.25 + 1e-5), s1 = 1 / std::sqrt(1 + 1e-5);
  check_close(y.to_vector<double>(), {-1.5 * s0, -0.5 * s0, -s1, -s1, 0.5 * s0, 1.5 * s0, s1, s1}, 1e-12);
  // Two more steps with the same batch: r_k = 0.9 r_{k-1} + 0.1 stat.
  double m0 = 0.25, v0 = 0.9 + 0.1 * 5.0 / 3.0, m1 = 0.1, v1 = 0.9 + 0.1 * 4.0 / 3.0;
  for (int step = 0; step < 2; ++step) {
    batch_norm(x, {}, {}, rm, rv, true, 0.1, 1e-5);
    m0 = 0.9 * m0 + 0.25, v0 = 0.9 * v0 + 0.1 * 5.0 / 3.0;
    m1 = 0.9 * m1 + 0.1, v1 = 0.9 * v1 + 0.1 * 4.0 / 3.0;
  }
  check_close(rm.to_vector<double>(), {m0, m1}, 1e-12);
  check_close(rv.to_vector<double>(), {v0, v1}, 1e-12);
  CHECK(std::abs(m0 - 0.67750) < 1e-12);  // 0.25 (1 + 0.9 + 0.81), by hand
  // Eval uses the running statistics and leaves them alone; float32 agrees.
  Tensor w = from_vector<double>({2, 3}, {2}), b = from_vector<double>({-1, 1}, {2});
  Tensor ye = batch_norm(x, w, b, rm, rv, false, 0.1, 1e-5);
  check_close(rm.to_vector<double>(), {m0, m1}, 1e-12);
  auto xv = x.to_vector<double>(), yv = ye.to_vector<double>();
  for (size_t i = 0; i < xv.size(); ++i) {
    int c = static_cast<int>((i / 2) % 2);
    double want = (xv[i] - (c ? m1 : m0)) / std::sqrt((c ? v1 : v0) + 1e-5) * (c ? 3 : 2) + (c ? 1 : -1);
    CHECK(std::abs(yv[i] - want) < 1e-12);
  }
  Tensor rm32 = zeros({2}), rv32 = ones({2});
  batch_norm(x.to(DType::Float32), {}, {}, rm32, rv32, true, 0.1, 1e-5);
  check_close(rm32.to_vector<double>(), {0.25, 0.1}, 1e-6);
  check_close(rv32.to_vector<double>(), {0.9 + 0.1 * 5.0 / 3.0, 0.9 + 0.1 * 4.0 / 3.0}, 1e-6);
}

TEST_CASE("layer_norm normalises each row") {
  Tensor x = from_vector<double>({1, 2, 3, 4, 2, 2, 2, 2}, {2, 4});
  Tensor w = from_vector<double>({1, 2, 3, 4}, {4}), b = from_vector<double>({0, 1, 0, 1}, {4});
  auto y = layer_norm(x, 1, w, b, 1e-5).to_vector<double>();
  double s = 1 / std::sqrt(1.25 + 1e-5);
  check_close(y, {-1.5 * s, 2 * -0.5 * s + 1, 3 * 0.5 * s, 4 * 1.5 * s + 1, 0, 1, 0, 1}, 1e-12);
  // Over the last two axes of (2, 2, 2): each (2, 2) block is one row.
  auto y2 = layer_norm(from_vector<double>({1, 2, 3, 4, 5, 5, 5, 5}, {2, 2, 2}), 2, {}, {}).to_vector<double>();
  check_close(y2, {-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s, 0, 0, 0, 0}, 1e-12);
  Tensor m = Tensor::empty({4, 197, 192}, {DType::Float32, Device::meta()});
  CHECK(layer_norm(m, 1, Tensor::empty({192}, {DType::Float32, Device::meta()}), {}).shape() == m.shape());
}

TEST_CASE("normalisation gradients (float64)") {
  using neurn::testing::OpFn;
  SUBCASE("batch_norm training, affine, (N, C, H, W)") {
    Tensor rm = zeros({3}, {DType::Float64}), rv = ones({3}, {DType::Float64});
    OpFn f = [rm, rv](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, true); };
    std::vector<Tensor> in = {leaf({2, 3, 3, 2}, 31), leaf({3}, 32, 0.5, 1.5), leaf({3}, 33)};
    CHECK_GRADCHECK(gradcheck(f, in));
    CHECK(neurn::testing::accumulates(f, in));
  }
  SUBCASE("batch_norm training, affine, planes of 10 (lanes and a tail)") {
    Tensor rm = zeros({2}, {DType::Float64}), rv = ones({2}, {DType::Float64});
    OpFn f = [rm, rv](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, true); };
    CHECK_GRADCHECK(gradcheck(f, {leaf({3, 2, 2, 5}, 45), leaf({2}, 46, 0.5, 1.5), leaf({2}, 47)}));
  }
  SUBCASE("batch_norm training, no affine, (N, C)") {
    OpFn f = [](const std::vector<Tensor>& in) { return batch_norm(in[0], {}, {}, {}, {}, true); };
    CHECK_GRADCHECK(gradcheck(f, {leaf({5, 4}, 34)}));
  }
  SUBCASE("batch_norm eval") {
    Tensor rm = from_vector<double>({0.1, -0.2}, {2}), rv = from_vector<double>({0.5, 2.0}, {2});
    OpFn f = [rm, rv](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, false); };
    CHECK_GRADCHECK(gradcheck(f, {leaf({2, 2, 3, 3}, 35), leaf({2}, 36), leaf({2}, 37)}));
  }
  SUBCASE("layer_norm, one axis, affine") {
    OpFn f = [](const std::vector<Tensor>& in) { return layer_norm(in[0], 1, in[1], in[2]); };
    std::vector<Tensor> in = {leaf({3, 2, 5}, 38), leaf({5}, 39, 0.5, 1.5), leaf({5}, 40)};
    CHECK_GRADCHECK(gradcheck(f, in));
    CHECK(neurn::testing::accumulates(f, in));
  }
  SUBCASE("layer_norm, two axes, no affine") {
    OpFn f = [](const std::vector<Tensor>& in) { return layer_norm(in[0], 2, {}, {}); };
    CHECK_GRADCHECK(gradcheck(f, {leaf({3, 2, 4}, 41)}));
  }
  SUBCASE("layer_norm wide rows (column blocks)") {
    OpFn f = [](const std::vector<Tensor>& in) { return layer_norm(in[0], 1, in[1], in[2]); };
    CHECK_GRADCHECK(gradcheck(f, {leaf({2, 70}, 42), leaf({70}, 43), leaf({70}, 44)}));
  }
}

TEST_CASE("normalisation errors name the op and shapes") {
  Tensor x = zeros({2, 3, 4, 4});
  CHECK_THROWS_CONTAINING(batch_norm(x, zeros({4}), {}, {}, {}, true),
                          "batch_norm: weight must have shape (3,) for input (2, 3, 4, 4), got (4,)");
  CHECK_THROWS_CONTAINING(batch_norm(x, {}, {}, {}, {}, false), "batch_norm: eval mode needs running_mean");
  CHECK_THROWS_CONTAINING(batch_norm(zeros({1, 3}), {}, {}, {}, {}, true),
                          "batch_norm: training needs more than one value per channel, got input (1, 3)");
  CHECK_THROWS_CONTAINING(layer_norm(x, 2, zeros({4}), {}), "layer_norm: weight must have shape (4, 4)");
  CHECK_THROWS_CONTAINING(layer_norm(x, 5, {}, {}), "layer_norm: normalized_dims must be in [1, 4]");
}
