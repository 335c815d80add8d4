// Known-value and bad-input tests of the shape ops, matmul/linear and the
// losses. Gradients are checked in test_gradcheck_table.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "framework/ops.h"
#include "gradcheck.h"

using namespace neurn;
using namespace neurn::testing;

namespace {

Tensor iota(const Shape& s, DType dt = DType::Float32) {
  return arange(0, static_cast<double>(shape_numel(s)), 1.0, {dt}).reshape(s);
}

}  // namespace

// ---- shape ops ---------------------------------------------------------------

TEST_CASE("permute and transpose move elements to their new positions") {
  Tensor x = iota({2, 3, 4});
  Tensor y = permute(x, {2, 0, 1});  // (4, 2, 3)
  CHECK(y.shape() == Shape{4, 2, 3});
  auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t c = 0; c < 4; ++c) CHECK(yv[(c * 2 + a) * 3 + b] == xv[(a * 3 + b) * 4 + c]);
  Tensor t = transpose(iota({2, 3}), 0, 1);
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(transpose(iota({2, 3}), -1, -2).to_vector<float>() == t.to_vector<float>());
  CHECK_THROWS_CONTAINING(permute(x, {0, 0, 1}), "permute: axis 0 appears twice");
  CHECK_THROWS_CONTAINING(permute(x, {0, 1}), "permute: 2 dimensions given for a tensor of shape (2, 3, 4)");
  CHECK_THROWS_CONTAINING(transpose(x, 0, 3), "transpose: axis 3 is out of range for a tensor of shape (2, 3, 4)");
}

TEST_CASE("slice with negative bounds, steps and clamping") {
  Tensor x = iota({3, 5});
  CHECK(slice(x, 1, 1, 4).to_vector<float>() == std::vector<float>{1, 2, 3, 6, 7, 8, 11, 12, 13});
  CHECK(slice(x, 1, 0, 5, 2).to_vector<float>() == std::vector<float>{0, 2, 4, 5, 7, 9, 10, 12, 14});
  CHECK(slice(x, 0, -1, 100).to_vector<float>() == std::vector<float>{10, 11, 12, 13, 14});
  CHECK(slice(x, -1, -2, -1).to_vector<float>() == std::vector<float>{3, 8, 13});
  CHECK(slice(x, 0, 2, 1).shape() == Shape{0, 5});
  CHECK_THROWS_CONTAINING(slice(x, 2, 0, 1), "slice: axis 2 is out of range for a tensor of shape (3, 5)");
  CHECK_THROWS_CONTAINING(slice(x, 0, 0, 1, 0), "slice: step must be positive");
}

TEST_CASE("concat, split and chunk are inverse to each other") {
  Tensor a = iota({2, 2}), b = add(iota({2, 3}), 100.0);
  Tensor c = concat({a, b}, 1);
  CHECK(c.shape() == Shape{2, 5});
  CHECK(c.to_vector<float>() == std::vector<float>{0, 1, 100, 101, 102, 2, 3, 103, 104, 105});
  auto parts = split(c, {2, 3}, -1);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].to_vector<float>() == a.to_vector<float>());
  CHECK(parts[1].to_vector<float>() == b.to_vector<float>());
  Tensor r = concat({iota({1, 3}), iota({2, 3})}, 0);
  CHECK(r.to_vector<float>() == std::vector<float>{0, 1, 2, 0, 1, 2, 3, 4, 5});
  auto ch = chunk(iota({4, 2}), 2, 0);
  CHECK(ch[1].to_vector<float>() == std::vector<float>{4, 5, 6, 7});
  CHECK_THROWS_CONTAINING(concat({a, iota({3, 3})}, 1),
                          "concat: tensor 1 has shape (3, 3) but tensor 0 has (2, 2); all sizes must match except "
                          "along axis 1");
  CHECK_THROWS_CONTAINING(concat({a, iota({2, 2}, DType::Float64)}, 0), "concat: tensor 1 is float64");
  CHECK_THROWS_CONTAINING(concat({a, b}, 2), "concat: axis 2 is out of range for a tensor of shape (2, 2)");
  CHECK_THROWS_CONTAINING(split(c, {2, 2}, 1), "split: piece sizes add up to 4 but axis 1 of (2, 5) has size 5");
  CHECK_THROWS_CONTAINING(chunk(c, 2, 1), "chunk: axis 1 of (2, 5) (size 5) cannot be cut into 2 equal pieces");
}

TEST_CASE("pad: zero/constant and reflect, 1-D and 2-D") {
  Tensor x = iota({1, 3});
  CHECK(pad(x, {1, 2}).to_vector<float>() == std::vector<float>{0, 0, 1, 2, 0, 0});
  CHECK(pad(x, {1, 0}, PadMode::Zero, 9.0).to_vector<float>() == std::vector<float>{9, 0, 1, 2});
  CHECK(pad(x, {2, 2}, PadMode::Reflect).to_vector<float>() == std::vector<float>{2, 1, 0, 1, 2, 1, 0});
  Tensor m = iota({1, 1, 2, 3});
  Tensor z = pad(m, {1, 1, 1, 0});  // left, right, top, bottom
  CHECK(z.shape() == Shape{1, 1, 3, 5});
  CHECK(z.to_vector<float>() == std::vector<float>{0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 5, 0});
  Tensor rf = pad(m, {1, 1, 1, 1}, PadMode::Reflect);
  CHECK(rf.shape() == Shape{1, 1, 4, 5});
  // rows reflect as 1 0 1 0, columns as 1 0 1 2 1
  CHECK(rf.to_vector<float>() ==
        std::vector<float>{4, 3, 4, 5, 4, 1, 0, 1, 2, 1, 4, 3, 4, 5, 4, 1, 0, 1, 2, 1});
  CHECK_THROWS_CONTAINING(pad(m, {3, 0}, PadMode::Reflect), "pad: reflect padding needs each pad smaller");
  CHECK_THROWS_CONTAINING(pad(m, {1, 1, 1}), "pad: expected 2 pads");
}

TEST_CASE("shape ops on the meta device give shapes and no data") {
  TensorOptions meta{.device = Device::meta()};
  Tensor x = zeros({2, 3, 4}, meta);
  CHECK(permute(x, {1, 2, 0}).shape() == Shape{3, 4, 2});
  CHECK(slice(x, 2, 1, 3).shape() == Shape{2, 3, 2});
  CHECK(concat({x, x}, 0).shape() == Shape{4, 3, 4});
  Tensor p = pad(x, {1, 2, 1, 2}, PadMode::Reflect);
  CHECK(p.shape() == Shape{2, 6, 7});
  CHECK(p.raw_data() == nullptr);
}

// ---- matmul and linear -----------------------------------------------------------

namespace {

// The naive triple loop, in double, for one (m, k) @ (k, n) product.
std::vector<double> naive_mm(const std::vector<double>& a, const std::vector<double>& b, int64_t m, int64_t k,
                             int64_t n) {
  std::vector<double> c(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) c[i * n + j] += a[i * k + p] * b[p * n + j];
  return c;
}

}  // namespace

TEST_CASE("matmul agrees with the naive loop, float32 and float64, batched and broadcast") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    Generator g(3);
    Tensor a = randn({7, 13}, {dt}, &g), b = randn({13, 5}, {dt}, &g);
    auto ref = naive_mm(a.to_vector<double>(), b.to_vector<double>(), 7, 13, 5);
    auto got = matmul(a, b).to_vector<double>();
    REQUIRE(got.size() == ref.size());
    for (size_t i = 0; i < ref.size(); ++i) CHECK(got[i] == doctest::Approx(ref[i]).epsilon(1e-5));
  }
  // (2, 1, 3, 4) @ (3, 4, 2) -> (2, 3, 3, 2): batch (i, j) uses a[i, 0] and b[j].
  Generator g(4);
  Tensor a = randn({2, 1, 3, 4}, {DType::Float64}, &g), b = randn({3, 4, 2}, {DType::Float64}, &g);
  Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{2, 3, 3, 2});
  auto av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      std::vector<double> ai(av.begin() + i * 12, av.begin() + (i + 1) * 12);
      std::vector<double> bj(bv.begin() + j * 8, bv.begin() + (j + 1) * 8);
      auto ref = naive_mm(ai, bj, 3, 4, 2);
      for (int64_t e = 0; e < 6; ++e) CHECK(cv[(i * 3 + j) * 6 + e] == doctest::Approx(ref[e]));
    }
  // vectors
  Tensor v = from_vector(std::vector<double>{1, 2, 3}, {3});
  CHECK(matmul(v, v).item() == 14.0);
  CHECK(matmul(v, v).dim() == 0);
  Tensor m = arange(0, 6, 1, {DType::Float64}).reshape({2, 3});
  CHECK(matmul(m, v).to_vector<double>() == std::vector<double>{8, 26});
  CHECK(matmul(from_vector(std::vector<double>{1, 1}, {2}), m).to_vector<double>() == std::vector<double>{3, 5, 7});
}

TEST_CASE("linear is x W^T + b") {
  Tensor x = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = from_vector(std::vector<float>{1, 0, -1, 2, 1, 0}, {2, 3});
  Tensor b = from_vector(std::vector<float>{0.5f, -1}, {2});
  CHECK(linear(x, w, b).to_vector<float>() == std::vector<float>{-1.5f, 3, -1.5f, 12});
  CHECK(linear(x, w).to_vector<float>() == std::vector<float>{-2, 4, -2, 13});
  CHECK(linear(zeros({4, 2, 3}), w, b).shape() == Shape{4, 2, 2});
}

TEST_CASE("matmul and linear: bad inputs name the op and the shapes") {
  CHECK_THROWS_CONTAINING(matmul(zeros({2, 3}), zeros({4, 5})),
                          "matmul: shapes (2, 3) and (4, 5) do not match: a has 3 columns, b has 4 rows");
  CHECK_THROWS_CONTAINING(matmul(zeros({2, 2, 3}), zeros({3, 3, 1})),
                          "matmul: the batch axes of (2, 2, 3) and (3, 3, 1) cannot be broadcast together");
  CHECK_THROWS_CONTAINING(matmul(zeros({2, 3}), zeros({3, 2}, {.dtype = DType::Float64})),
                          "matmul: dtypes differ: float32 (2, 3) and float64 (3, 2)");
  CHECK_THROWS_CONTAINING(matmul(zeros({3}), zeros({4})), "matmul: shapes (3,) and (4,) do not match");
  CHECK_THROWS_CONTAINING(linear(zeros({2, 3}), zeros({4, 5})),
                          "linear: input (2, 3) does not end in 5 features as weight (4, 5) expects");
  CHECK_THROWS_CONTAINING(linear(zeros({2, 5}), zeros({4, 5}), zeros({3})), "linear: bias (3,) does not match");
}

TEST_CASE("matmul and linear on the meta device count 2 M N K FLOPs") {
  TensorOptions meta{.device = Device::meta()};
  {
    FlopCounter fc;
    Tensor c = matmul(zeros({4, 6, 8}, meta), zeros({8, 3}, meta));
    CHECK(c.shape() == Shape{4, 6, 3});
    CHECK(fc.flops() == 2 * 4 * 6 * 3 * 8);
  }
  {
    FlopCounter fc;
    Tensor y = linear(zeros({64, 3200}, meta), zeros({1024, 3200}, meta), zeros({1024}, meta));
    CHECK(y.shape() == Shape{64, 1024});
    CHECK(fc.flops() == 2 * 64 * 3200 * 1024 + 64 * 1024);
    CHECK(y.raw_data() == nullptr);
  }
}

// ---- softmax and losses ----------------------------------------------------------

TEST_CASE("softmax rows sum to 1 and survive large logits") {
  Generator g(8);
  Tensor x = mul(randn({6, 10}, {}, &g), 30.0);
  Tensor p = softmax(x);
  auto pv = p.to_vector<float>();
  for (int r = 0; r < 6; ++r) {
    double s = 0;
    for (int j = 0; j < 10; ++j) {
      CHECK(pv[r * 10 + j] >= 0.0f);
      s += pv[r * 10 + j];
    }
    CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
  }
  // Columns of a middle axis sum to 1 too.
  Tensor q = softmax(randn({2, 3, 4}, {DType::Float64}, &g), 1);
  auto qs = sum(q, {1}).to_vector<double>();
  for (double v : qs) CHECK(v == doctest::Approx(1.0));
  // exp(log_softmax) == softmax; no overflow for logits of 1000.
  Tensor big = from_vector(std::vector<float>{1000, 1001, 1002}, {1, 3});
  auto ls = log_softmax(big).to_vector<float>();
  double lse = std::log(std::exp(-2.0) + std::exp(-1.0) + 1.0);
  CHECK(ls[2] == doctest::Approx(-lse).epsilon(1e-5));
  CHECK(ls[0] == doctest::Approx(-2 - lse).epsilon(1e-5));
  CHECK(softmax(big).to_vector<float>()[2] == doctest::Approx(std::exp(-lse)).epsilon(1e-5));
}

TEST_CASE("cross_entropy and nll_loss against hand computation") {
  std::vector<double> x{1.0, 2.0, 0.5, -1.0, 0.0, 3.0};  // (2, 3)
  Tensor logits = from_vector(x, {2, 3});
  Tensor target = from_vector(std::vector<int64_t>{1, 2}, {2});
  auto lse = [&](int r) {
    double s = 0;
    for (int j = 0; j < 3; ++j) s += std::exp(x[r * 3 + j]);
    return std::log(s);
  };
  double l0 = lse(0) - x[1], l1 = lse(1) - x[5];
  CHECK(cross_entropy(logits, target).item() == doctest::Approx((l0 + l1) / 2));
  CHECK(cross_entropy(logits, target, 0.0, Reduction::Sum).item() == doctest::Approx(l0 + l1));
  auto none = cross_entropy(logits, target, 0.0, Reduction::None).to_vector<double>();
  CHECK(none[0] == doctest::Approx(l0));
  CHECK(none[1] == doctest::Approx(l1));
  // label smoothing eps: target distribution (1 - eps) onehot + eps / C.
  double eps = 0.3;
  double s0 = 0, s1 = 0;
  for (int j = 0; j < 3; ++j) {
    double q0 = (j == 1 ? 1 - eps : 0) + eps / 3, q1 = (j == 2 ? 1 - eps : 0) + eps / 3;
    s0 -= q0 * (x[j] - lse(0));
    s1 -= q1 * (x[3 + j] - lse(1));
  }
  CHECK(cross_entropy(logits, target, eps).item() == doctest::Approx((s0 + s1) / 2));
  // nll of log_softmax is cross entropy; nll picks -log_probs[i, t_i].
  CHECK(nll_loss(log_softmax(logits), target).item() == doctest::Approx((l0 + l1) / 2));
  CHECK(nll_loss(logits, target, Reduction::None).to_vector<double>() == std::vector<double>{-2.0, -3.0});
  // float32 agrees
  CHECK(cross_entropy(logits.to(DType::Float32), target).item() == doctest::Approx((l0 + l1) / 2).epsilon(1e-5));
  // The gradient of the mean: (softmax - onehot) / N.
  Tensor lg = logits.clone();
  lg.requires_grad_();
  cross_entropy(lg, target).backward();
  auto gr = lg.grad().to_vector<double>();
  CHECK(gr[1] == doctest::Approx((std::exp(x[1] - lse(0)) - 1) / 2));
  CHECK(gr[3] == doctest::Approx(std::exp(x[3] - lse(1)) / 2));
}

TEST_CASE("losses: bad inputs name the op and the shapes") {
  Tensor logits = zeros({2, 3});
  CHECK_THROWS_CONTAINING(cross_entropy(logits, from_vector(std::vector<int64_t>{0, 3}, {2})),
                          "cross_entropy: target 3 at position 1 is outside [0, 3) for logits (2, 3)");
  CHECK_THROWS_CONTAINING(cross_entropy(logits, from_vector(std::vector<int64_t>{0, 1, 2}, {3})),
                          "cross_entropy: target (3,) does not match logits (2, 3)");
  CHECK_THROWS_CONTAINING(cross_entropy(logits, zeros({2})), "cross_entropy: target must hold int64 class indices");
  CHECK_THROWS_CONTAINING(nll_loss(zeros({2, 3, 4}), from_vector(std::vector<int64_t>{0, 1}, {2})),
                          "nll_loss: log_probs must be (N, C), got (2, 3, 4)");
  CHECK_THROWS_CONTAINING(softmax(logits, 2), "softmax: axis 2 is out of range for a tensor of shape (2, 3)");
  CHECK_THROWS_CONTAINING(log_softmax(logits, -3), "log_softmax: axis -3 is out of range");
}

TEST_CASE("softmax and losses on the meta device") {
  TensorOptions meta{.device = Device::meta()};
  Tensor t = zeros({4}, {.dtype = DType::Int64, .device = Device::meta()});
  CHECK(softmax(zeros({4, 10}, meta)).shape() == Shape{4, 10});
  CHECK(cross_entropy(zeros({4, 10}, meta), t).shape() == Shape{});
  CHECK(cross_entropy(zeros({4, 10}, meta), t, 0.0, Reduction::None).shape() == Shape{4});
  CHECK(dropout(zeros({4, 10}, meta), 0.5, true).device().is_meta());
}

TEST_CASE("matmul and linear with an empty inner dimension give zeros") {
  Tensor a = zeros({3, 0}), b = zeros({0, 2});
  CHECK(matmul(a, b).to_vector<float>() == std::vector<float>(6, 0.0f));
  Tensor x = zeros({0, 4}, {DType::Float64}), w = leaf({2, 4}, 1), bias = leaf({2}, 2);
  x.requires_grad_();
  Tensor y = linear(x, w, bias);
  CHECK(y.shape() == Shape{0, 2});
  sum(y).backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>(8, 0.0));
  CHECK(bias.grad().to_vector<double>() == std::vector<double>(2, 0.0));
}

TEST_CASE("large inputs take the threaded loops and agree with the single-threaded results") {
  Generator g(21);
  // permute: every element checked against its index map.
  Tensor x = randn({32, 24, 16, 16}, {}, &g);
  Tensor y = permute(x, {0, 2, 3, 1});
  auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  bool ok = true;
  for (int64_t n = 0; n < 32; ++n)
    for (int64_t c = 0; c < 24; ++c)
      for (int64_t h = 0; h < 16; ++h)
        for (int64_t w = 0; w < 16; ++w)
          ok = ok && yv[((n * 16 + h) * 16 + w) * 24 + c] == xv[((n * 24 + c) * 16 + h) * 16 + w];
  CHECK(ok);
  // softmax and cross entropy: the whole batch against row-by-row calls.
  Tensor logits = randn({2048, 40}, {}, &g);
  Tensor target = randint(0, 40, {2048}, &g);
  Tensor p = softmax(logits), rows = cross_entropy(logits, target, 0.1, Reduction::None);
  auto pv = p.to_vector<float>(), rv = rows.to_vector<float>();
  for (int64_t r : {0, 777, 2047}) {
    auto one = softmax(slice(logits, 0, r, r + 1)).to_vector<float>();
    for (int64_t j = 0; j < 40; ++j) CHECK(pv[r * 40 + j] == one[j]);
    Tensor t1 = slice(target, 0, r, r + 1);
    CHECK(rv[r] == cross_entropy(slice(logits, 0, r, r + 1), t1, 0.1, Reduction::None).item());
  }
  // dropout: the mask of every element is its counter's.
  Generator dg(5);
  Tensor big = ones({300000});
  auto dv = dropout(big, 0.5, true, &dg).to_vector<float>();
  ok = true;
  for (size_t i = 0; i < dv.size(); ++i) ok = ok && dv[i] == (counter_uniform(5, i) >= 0.5 ? 2.0f : 0.0f);
  CHECK(ok);
}

TEST_CASE("batched matmul split over threads equals the products one by one") {
  Generator g(31);
  Tensor a = randn({48, 33, 40}, {}, &g), b = randn({48, 40, 29}, {}, &g);
  auto c = matmul(a, b).to_vector<float>();
  bool ok = true;
  for (int64_t i = 0; i < 48; ++i) {
    auto ci = matmul(squeeze(slice(a, 0, i, i + 1), 0), squeeze(slice(b, 0, i, i + 1), 0)).to_vector<float>();
    for (size_t e = 0; e < ci.size(); ++e) ok = ok && std::abs(c[i * 33 * 29 + e] - ci[e]) <= 1e-4f * (1 + std::abs(ci[e]));
  }
  CHECK(ok);
}

TEST_CASE("linear: the bias gradient is the sums' column sum, bit for bit; an empty batch gives zeros") {
  Generator gen(21);
  for (int64_t batch : {int64_t{0}, int64_t{1}, int64_t{17}, int64_t{1000}}) {
    INFO("batch " << batch);
    Tensor x = randn({batch, 5}, {DType::Float32}, &gen);
    Tensor w = randn({37, 5}, {DType::Float32}, &gen);
    Tensor b = randn({37}, {DType::Float32}, &gen);
    b.requires_grad_();
    Tensor g = randn({batch, 37}, {DType::Float32}, &gen);
    linear(x, w, b).backward(g);
    REQUIRE(b.grad().defined());
    const std::vector<float> got = b.grad().to_vector<float>();
    const std::vector<float> want = sum(g, {0}).to_vector<float>();
    REQUIRE(got.size() == want.size());
    for (size_t j = 0; j < got.size(); ++j) CHECK(std::memcmp(&got[j], &want[j], sizeof(float)) == 0);
    if (batch == 0)
      for (float v : got) CHECK(v == 0.0f);
  }
}
