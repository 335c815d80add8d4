// In-place sums of gradients (detail::accumulate_, add_, and autograd's sums
// into a node's gradient and into a leaf's .grad): the same bits as the
// out-of-place add they replace, views and broadcasts read through their
// strides, and no write into a tensor anything else can see (a caller's
// .grad handle, the seed, a gradient two inputs share); unary backward over
// the incoming gradient's buffer; relu's float32 loops (their per-ISA copies)
// against relu written out, special values included.
#include <doctest/doctest.h>

#include <iterator>
#include <limits>

#include "framework/ops.h"
#include "framework/ops/parallel_cpu.h"
#include "tests/bit_equal.h"

using namespace neurn;
using neurn::testing::bit_mismatches;

namespace {

// Values of mixed magnitude, so that a different order or rounding of the
// additions would show in the bits.
Tensor mixed(const Shape& s, DType dt, uint64_t seed) {
  Generator gen(seed);
  Tensor a = randn(s, {dt}, &gen), e = randn(s, {dt}, &gen);
  return mul(a, exp(mul(e, 4.0)));
}

template <typename T>
void check_accumulate_like_add(DType dt) {
  struct Src {
    const char* what;
    std::function<Tensor(const Tensor&)> view;  // of a (64, 48, 5, 5) tensor
    Shape dst;
  };
  const std::vector<Src> cases = {
      {"contiguous", [](const Tensor& t) { return t; }, {64, 48, 5, 5}},
      {"channel slice (concat's backward)", [](const Tensor& t) { return slice(t, 1, 8, 40); }, {64, 32, 5, 5}},
      {"permuted", [](const Tensor& t) { return permute(t, {1, 0, 3, 2}); }, {48, 64, 5, 5}},
      {"strided rows", [](const Tensor& t) { return slice(t, 3, 0, 5, 2); }, {64, 48, 5, 3}},
      {"broadcast (1, C, 1, 1)", [](const Tensor& t) { return slice(slice(slice(t, 0, 0, 1), 2, 0, 1), 3, 0, 1); },
       {64, 48, 5, 5}},
  };
  for (const Src& c : cases) {
    CAPTURE(c.what);
    Tensor base = mixed({64, 48, 5, 5}, dt, 11);
    Tensor src = c.view(base);
    Tensor dst = mixed(c.dst, dt, 12);
    const std::vector<T> want = add(dst, src).template to_vector<T>();
    const std::vector<T> base_before = base.template to_vector<T>();
    const uint64_t v0 = dst.version();
    detail::accumulate_(dst, src);
    CHECK(bit_mismatches(dst.template to_vector<T>(), want) == 0);
    CHECK(dst.version() > v0);
    CHECK(bit_mismatches(base.template to_vector<T>(), base_before) == 0);  // the source is only read
  }
}

}  // namespace

TEST_CASE("accumulate_: dst += src is add(dst, src) bit for bit, for views and broadcasts (float32, float64)") {
  check_accumulate_like_add<float>(DType::Float32);
  check_accumulate_like_add<double>(DType::Float64);
}

TEST_CASE("accumulate_: a tensor large enough to be split over the pool gives the same bits") {
  Tensor dst = mixed({64, 256, 8, 8}, DType::Float32, 3), src = mixed({64, 256, 8, 8}, DType::Float32, 4);
  const std::vector<float> want = add(dst, src).to_vector<float>();
  detail::accumulate_(dst, src);
  CHECK(bit_mismatches(dst.to_vector<float>(), want) == 0);
}

TEST_CASE("accumulate_: refuses what it cannot do in place, naming the problem") {
  Tensor d = zeros({3, 4}), s = ones({3, 4});
  CHECK_THROWS_WITH(detail::accumulate_(transpose(zeros({4, 3}), 0, 1), s), doctest::Contains("not contiguous"));
  CHECK_THROWS_WITH(detail::accumulate_(d, slice(d, 0, 0, 3)), doctest::Contains("share storage"));
  CHECK_THROWS_WITH(detail::accumulate_(d, ones({3, 4}, {DType::Float64})), doctest::Contains("dtypes differ"));
  CHECK_THROWS_WITH(detail::accumulate_(d, ones({2, 4})), doctest::Contains("accumulate_"));
  CHECK_THROWS_WITH(detail::accumulate_(zeros({3, 1}), ones({3, 4})), doctest::Contains("does not broadcast"));
}

TEST_CASE("add_: the in-place path is add then copy_, and aliasing falls back to it") {
  Tensor a = mixed({7, 33}, DType::Float32, 5), b = mixed({33}, DType::Float32, 6);
  const std::vector<float> want = add(a, b).to_vector<float>();
  const uint64_t v0 = a.version();
  add_(a, b);
  CHECK(bit_mismatches(a.to_vector<float>(), want) == 0);
  CHECK(a.version() > v0);
  // a += a (same storage) and alpha != 1 take the out-of-place path.
  Tensor c = mixed({5, 6}, DType::Float64, 7);
  const std::vector<double> twice = add(c, c).to_vector<double>();
  add_(c, c);
  CHECK(bit_mismatches(c.to_vector<double>(), twice) == 0);
  Tensor e = mixed({5, 6}, DType::Float64, 8), f = mixed({5, 6}, DType::Float64, 9);
  const std::vector<double> scaled = add(e, mul(f, -0.5)).to_vector<double>();
  add_(e, f, -0.5);
  CHECK(bit_mismatches(e.to_vector<double>(), scaled) == 0);
}

TEST_CASE("backward: a second backward adds into .grad in place when nothing else holds it") {
  Tensor x = mixed({64, 32, 4, 4}, DType::Float32, 1).requires_grad_();
  const Tensor dy1 = mixed({64, 32, 4, 4}, DType::Float32, 2), dy2 = mixed({64, 32, 4, 4}, DType::Float32, 3);
  relu(x).backward(dy1);
  const std::vector<float> g1 = x.grad().to_vector<float>();
  const void* buffer = x.grad().raw_data();
  relu(x).backward(dy2);
  // The same buffer (no fresh tensor), holding add(g1, g2)'s bits.
  CHECK(x.grad().raw_data() == buffer);
  Tensor g2 = where(gt(x.detach(), zeros_like(x)), dy2, zeros_like(dy2));
  CHECK(bit_mismatches(x.grad().to_vector<float>(), add(from_vector(g1, x.shape()), g2).to_vector<float>()) == 0);
}

TEST_CASE("backward: a caller's handle on .grad, the seed and a shared gradient are never written") {
  SUBCASE("a handle on the old .grad keeps its values; .grad becomes a new tensor") {
    Tensor x = mixed({5, 7}, DType::Float64, 1).requires_grad_();
    const Tensor dy = mixed({5, 7}, DType::Float64, 2);
    mul(x, 3.0).backward(dy);
    Tensor held = x.grad();
    const std::vector<double> before = held.to_vector<double>();
    mul(x, 3.0).backward(dy);
    CHECK(bit_mismatches(held.to_vector<double>(), before) == 0);
    CHECK_FALSE(x.grad().same(held));
    CHECK(bit_mismatches(x.grad().to_vector<double>(), add(held, held).to_vector<double>()) == 0);
  }
  SUBCASE("the seed of a leaf's own backward stays as given") {
    Tensor x = zeros({4, 3}).requires_grad_();
    const Tensor dy = mixed({4, 3}, DType::Float32, 4);
    const std::vector<float> seed = dy.to_vector<float>();
    x.backward(dy);
    x.backward(dy);
    CHECK(bit_mismatches(dy.to_vector<float>(), seed) == 0);
    CHECK(bit_mismatches(x.grad().to_vector<float>(), add(dy, dy).to_vector<float>()) == 0);
  }
  SUBCASE("add(u, u) hands one gradient tensor to both inputs: summed out of place") {
    Tensor w = mixed({6, 5}, DType::Float64, 5).requires_grad_();
    const Tensor dy = mixed({6, 5}, DType::Float64, 6);
    Tensor u = relu(w);
    add(u, u).backward(dy);
    Tensor want = where(gt(w.detach(), zeros_like(w)), add(dy, dy), zeros_like(dy));  // +0 where relu is flat
    CHECK(bit_mismatches(w.grad().to_vector<double>(), want.to_vector<double>()) == 0);
    CHECK(bit_mismatches(dy.to_vector<double>(), mixed({6, 5}, DType::Float64, 6).to_vector<double>()) == 0);
  }
}

TEST_CASE("backward: DenseNet's running concat sums view and fresh gradients into the right values") {
  // f1 = concat(x, h(x)), f2 = concat(f1, h(f1)): x's gradient is a view of
  // f1's (from f2's concat) plus relu's fresh one, summed through both in-place
  // paths. Float64 with dyadic values: every order of the additions is exact,
  // so the expected gradient is the plain formula.
  auto dyadic = [](const Shape& s, uint64_t seed) {
    std::vector<double> v(static_cast<size_t>(shape_numel(s)));
    for (double& e : v) {  // multiples of 1/8 in [-4, 4)
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      e = static_cast<double>(static_cast<int64_t>((seed >> 33) % 64) - 32) / 8.0;
    }
    return from_vector(v, s);
  };
  Tensor x = dyadic({3, 2, 2, 2}, 1).requires_grad_();
  auto h = [](const Tensor& t) { return relu(slice(t, 1, 0, 1)); };  // (N, 1, H, W)
  Tensor f1 = concat({x, h(x)}, 1);   // (3, 3, 2, 2)
  Tensor f2 = concat({f1, h(f1)}, 1);  // (3, 4, 2, 2)
  const Tensor dy = dyadic({3, 4, 2, 2}, 2);
  f2.backward(dy);
  // d f2 / d f1 = dy[:, 0:3] + (channel 0 gets dy[:, 3] where f1[:, 0] > 0)
  // d f1 / d x  = df1[:, 0:2] + (channel 0 gets df1[:, 2] where x[:, 0] > 0)
  const std::vector<double> xv = x.to_vector<double>(), d = dy.to_vector<double>();
  std::vector<double> want(xv.size());
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t p = 0; p < 4; ++p) {
      auto at = [&](int64_t c) { return d[(n * 4 + c) * 4 + p]; };
      const bool pos = xv[(n * 2 + 0) * 4 + p] > 0;  // f1[:, 0] is x[:, 0]
      const double df1_0 = at(0) + (pos ? at(3) : 0.0), df1_1 = at(1), df1_2 = at(2);
      want[(n * 2 + 0) * 4 + p] = df1_0 + (pos ? df1_2 : 0.0);
      want[(n * 2 + 1) * 4 + p] = df1_1;
    }
  CHECK(bit_mismatches(x.grad().to_vector<double>(), want) == 0);
}

TEST_CASE("unary backward over the incoming gradient's buffer: the bits of a fresh dx, and the seed untouched") {
  // op(x).backward(dy): dy is the caller's, so dx is a fresh tensor.
  // mul(op(x), 1.0).backward(dy): the node gets mul's fresh g (= dy exactly),
  // which only it sees, and writes dx over it. Both must give the same bits.
  using Op = std::function<Tensor(const Tensor&)>;
  const std::vector<std::pair<const char*, Op>> ops = {
      {"relu", [](const Tensor& t) { return relu(t); }},
      {"leaky_relu", [](const Tensor& t) { return leaky_relu(t, 0.1); }},
      {"sigmoid", [](const Tensor& t) { return sigmoid(t); }},
      {"tanh", [](const Tensor& t) { return tanh(t); }},
      {"exp", [](const Tensor& t) { return exp(t); }},
      {"square", [](const Tensor& t) { return square(t); }},
      {"abs", [](const Tensor& t) { return abs(t); }},
      {"gelu", [](const Tensor& t) { return gelu(t); }},
      {"clamp", [](const Tensor& t) { return clamp(t, -0.5, 0.7); }},
      {"neg (reads neither operand)", [](const Tensor& t) { return neg(t); }},
      {"mul by a scalar", [](const Tensor& t) { return mul(t, -1.75); }},
  };
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (const auto& [name, op] : ops) {
      CAPTURE(name);
      const Shape s = dt == DType::Float32 ? Shape{64, 64, 8, 8} : Shape{3, 5, 7};  // the first splits over the pool
      Tensor x = mixed(s, dt, 21).requires_grad_();
      const Tensor dy = mixed(s, dt, 22);
      const Tensor dy_copy = dy.clone();
      op(x).backward(dy);
      Tensor fresh = x.grad();
      x.zero_grad();
      mul(op(x), 1.0).backward(dy);
      if (dt == DType::Float32) {
        CHECK(bit_mismatches(x.grad().to_vector<float>(), fresh.to_vector<float>()) == 0);
        CHECK(bit_mismatches(dy.to_vector<float>(), dy_copy.to_vector<float>()) == 0);
      } else {
        CHECK(bit_mismatches(x.grad().to_vector<double>(), fresh.to_vector<double>()) == 0);
        CHECK(bit_mismatches(dy.to_vector<double>(), dy_copy.to_vector<double>()) == 0);
      }
    }
  }
}

TEST_CASE("relu's float32 loops (one copy per instruction set): the functor's bits, special values, odd sizes") {
  // relu(x) = x > 0 ? x : +0 and dx = x > 0 ? g : +0, written out here:
  // NaN and -0 give +0, infinities and subnormals keep their bits. Odd sizes
  // and sizes split over the pool exercise the vector loops' tails.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float sub = std::numeric_limits<float>::denorm_min();
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{33}, int64_t{1000}, int64_t{300001}}) {
    CAPTURE(n);
    Tensor r = mixed({n}, DType::Float32, 31);
    std::vector<float> xv = r.to_vector<float>(), gv = mixed({n}, DType::Float32, 32).to_vector<float>();
    const float special[] = {nan, -0.0f, 0.0f, inf, -inf, sub, -sub, 1e-30f, -1e-30f};
    for (size_t k = 0; k < std::size(special) && k < xv.size(); ++k) xv[(k * 7919) % xv.size()] = special[k];
    std::vector<float> want_y(xv.size()), want_dx(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) {
      want_y[i] = xv[i] > 0.0f ? xv[i] : 0.0f;
      want_dx[i] = xv[i] > 0.0f ? gv[i] : 0.0f;
    }
    Tensor x = from_vector(xv, {n}).requires_grad_();
    Tensor y = relu(x);
    CHECK(bit_mismatches(y.to_vector<float>(), want_y) == 0);
    y.backward(from_vector(gv, {n}));  // a held seed: dx into a fresh tensor
    CHECK(bit_mismatches(x.grad().to_vector<float>(), want_dx) == 0);
    x.zero_grad();
    mul(relu(x), 1.0).backward(from_vector(gv, {n}));  // mul's fresh gradient: dx written over it
    CHECK(bit_mismatches(x.grad().to_vector<float>(), want_dx) == 0);
  }
}
