// The threaded CPU loops of element-wise ops and sums
// (framework/ops/elementwise_cpu.h, reduce.cpp): broadcast and coalesced
// indices, odd and empty sizes, tensors large enough to be split over
// threads, sums against a float64 reference, and sums that do not depend on
// how many threads ran them.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "framework/cuda/index_math.h"
#include "framework/ops.h"
#include "framework/ops/elementwise_cpu.h"
#include "framework/ops/parallel_cpu.h"

using namespace neurn;

namespace {

// Flat offset into `s` of output index `o` of `out`, broadcasting s (right-aligned).
int64_t broadcast_offset(const Shape& out, const Shape& s, int64_t o) {
  int64_t off = 0, stride = 1;
  for (int d = static_cast<int>(out.size()) - 1; d >= 0; --d) {
    int64_t c = o % out[d];
    o /= out[d];
    int ds = d - static_cast<int>(out.size() - s.size());
    if (ds >= 0) {
      if (s[ds] != 1) off += c * stride;
      stride *= s[ds];
    }
  }
  return off;
}

// f applied through the op under test against f applied element by element
// with the broadcast worked out here; bit-exact (same float arithmetic).
void check_binary(const Shape& sa, const Shape& sb, const std::function<Tensor(const Tensor&, const Tensor&)>& op,
                  const std::function<float(float, float)>& f, const char* name) {
  Generator gen(7);
  Tensor a = randn(sa, {}, &gen), b = randn(sb, {}, &gen);
  Tensor out = op(a, b);
  Shape so = broadcast_shapes(sa, sb, "test");
  REQUIRE(out.shape() == so);
  auto va = a.to_vector<float>(), vb = b.to_vector<float>(), vo = out.to_vector<float>();
  int64_t bad = 0;
  for (int64_t o = 0; o < shape_numel(so); ++o)
    if (vo[o] != f(va[broadcast_offset(so, sa, o)], vb[broadcast_offset(so, sb, o)])) ++bad;
  CHECK_MESSAGE(bad == 0, name << " " << shape_str(sa) << " with " << shape_str(sb) << ": " << bad << " wrong");
}

// Shape pairs: same shape, scalar either side, bias-like, both sides
// broadcast, odd sizes, empty, and sizes that are split over threads.
const std::vector<std::pair<Shape, Shape>> kPairs = {
    {{7}, {7}},
    {{3, 5}, {}},
    {{}, {3, 5}},
    {{2, 3, 4, 5}, {1, 3, 1, 1}},
    {{4, 1, 5}, {1, 3, 1}},
    {{3, 1}, {1, 7}},
    {{2, 3, 1, 5, 1}, {3, 4, 5, 2}},
    {{0, 3}, {1, 3}},
    {{5, 0}, {5, 1}},
    {{513, 1027}, {513, 1027}},   // contiguous, split over threads
    {{513, 1027}, {1, 1027}},     // row broadcast
    {{513, 1027}, {513, 1}},      // column broadcast
    {{3, 257, 333}, {257, 1}},    // broadcast in the middle
    {{64, 17, 31, 9}, {17, 1, 1}},
    {{1, 300001}, {300001}},
};

}  // namespace

TEST_CASE("element-wise: broadcast binary ops agree with an element-by-element loop") {
  for (auto& [sa, sb] : kPairs) {
    check_binary(sa, sb, [](const Tensor& a, const Tensor& b) { return add(a, b); },
                 [](float a, float b) { return a + b; }, "add");
    check_binary(sa, sb, [](const Tensor& a, const Tensor& b) { return mul(a, b); },
                 [](float a, float b) { return a * b; }, "mul");
    check_binary(sa, sb, [](const Tensor& a, const Tensor& b) { return sub(b, a); },
                 [](float a, float b) { return b - a; }, "sub (swapped)");
    check_binary(sa, sb, [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
                 [](float a, float b) { return a > b ? a : b; }, "maximum");
    check_binary(sa, sb, [](const Tensor& a, const Tensor& b) { return where(gt(a, zeros({1})), a, b); },
                 [](float a, float b) { return a > 0 ? a : b; }, "where");
  }
}

TEST_CASE("element-wise: unary ops over large odd sizes agree with std") {
  Generator gen(3);
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{13}, (int64_t{1} << 20) + 7}) {
    Tensor x = randn({n}, {DType::Float64}, &gen);
    auto vx = x.to_vector<double>();
    auto r = relu(x).to_vector<double>(), e = exp(x).to_vector<double>();
    int64_t bad = 0;
    for (int64_t i = 0; i < n; ++i) bad += (r[i] != (vx[i] > 0 ? vx[i] : 0.0)) + (e[i] != std::exp(vx[i]));
    CHECK_MESSAGE(bad == 0, "n=" << n);
    // The backward loop too: d relu = (x > 0).
    Tensor xg = x.detach();
    xg.requires_grad_();
    relu(xg).backward(ones({n}, {DType::Float64}));
    if (n > 0) CHECK(xg.grad().to_vector<double>() == gt(x, zeros({1}, {DType::Float64})).to_vector<double>());
  }
}

TEST_CASE("element-wise: coalesced indices and segments give every operand the same offsets") {
  std::vector<std::vector<Shape>> cases = {{{4, 5}, {4, 5}, {5}},
                                           {{2, 3, 4}, {3, 1}, {2, 1, 4}},
                                           {{7}, {}, {7}},
                                           {{2, 1, 3, 2}, {1, 1, 3, 1}, {2, 1, 1, 2}},
                                           {{2, 3, 4, 5}, {1, 3, 1, 1}, {2, 3, 4, 5}},
                                           {{6, 1, 1, 5}, {6, 1, 1, 5}, {1}},
                                           {{3, 0, 2}, {1, 0, 1}, {2}}};
  for (auto& c : cases) {
    Shape out = broadcast_shapes(broadcast_shapes(c[0], c[1], "t"), c[2], "t");
    const Shape* shapes[3] = {&c[0], &c[1], &c[2]};
    BroadcastIndex idx = cpu::make_broadcast_index(out, shapes, 3);
    BroadcastIndex co = cpu::coalesce(idx);
    CHECK(co.numel == idx.numel);
    CHECK(co.ndim <= idx.ndim);
    bool ok = true;
    for (int64_t o = 0; o < idx.numel; ++o) {
      int64_t a[3], b[3];
      cuda::broadcast_offsets(idx, o, a);
      cuda::broadcast_offsets(co, o, b);  // the CUDA kernels' index math on the coalesced index
      ok = ok && a[0] == b[0] && a[1] == b[1] && a[2] == b[2];
    }
    // Segments of every [begin, end) agree with the full walk.
    std::vector<int64_t> expect;
    cpu::for_each_broadcast(idx, [&](int64_t o, int64_t i, int64_t j, int64_t k) {
      expect.insert(expect.end(), {o, i, j, k});
    });
    const int nd = co.ndim;
    for (int64_t begin = 0; begin <= idx.numel; ++begin)
      for (int64_t end = begin; end <= idx.numel; ++end) {
        std::vector<int64_t> got;
        cpu::for_each_segment(co, begin, end, [&](int64_t o, int64_t i, int64_t j, int64_t k, int64_t len) {
          for (int64_t e = 0; e < len; ++e) {
            int64_t s[3] = {nd ? co.strides[0][nd - 1] : 0, nd ? co.strides[1][nd - 1] : 0,
                            nd ? co.strides[2][nd - 1] : 0};
            got.insert(got.end(), {o + e, i + e * s[0], j + e * s[1], k + e * s[2]});
          }
        });
        ok = ok && std::equal(got.begin(), got.end(), expect.begin() + 4 * begin) &&
             got.size() == static_cast<size_t>(4 * (end - begin));
      }
    CHECK_MESSAGE(ok, shape_str(c[0]) << ", " << shape_str(c[1]) << ", " << shape_str(c[2]) << " -> ndim "
                                      << co.ndim);
  }
  // A bias add over (N, C, H, W) is (N, C, H W); a full add is one axis.
  Shape x{2, 3, 4, 5}, bias{1, 3, 1, 1};
  const Shape* s2[2] = {&x, &bias};
  BroadcastIndex co = cpu::coalesce(cpu::make_broadcast_index(x, s2, 2));
  CHECK(co.ndim == 3);
  CHECK(co.shape[2] == 20);
  const Shape* s1[2] = {&x, &x};
  CHECK(cpu::coalesce(cpu::make_broadcast_index(x, s1, 2)).ndim == 1);
}

namespace {

// Sum over `axes` (keepdim) of x in long double, the reference.
std::vector<long double> reference_sum(const std::vector<double>& x, const Shape& s, const std::vector<int64_t>& axes) {
  Shape keep = s;
  for (int64_t a : axes) keep[a] = 1;
  std::vector<long double> r(static_cast<size_t>(shape_numel(keep)), 0.0L);
  for (int64_t i = 0; i < shape_numel(s); ++i) r[broadcast_offset(s, keep, i)] += x[i];
  return r;
}

}  // namespace

TEST_CASE("sum: every reduction pattern against a float64 reference, in both dtypes") {
  struct Case {
    Shape shape;
    std::vector<int64_t> axes;
  };
  const std::vector<Case> cases = {
      {{1000003}, {0}},               // one long run, split at blocks
      {{3, 200001}, {1}},             // few long rows
      {{1031, 67}, {1}},              // many short rows
      {{1031, 67}, {0}},              // columns
      {{5, 4099, 3}, {1}},            // (outer, len, inner)
      {{7, 3, 1300}, {1}},            // columns, wide
      {{6, 5, 7, 9}, {0, 2, 3}},      // bias gradient: runs over N and H W
      {{4, 3, 5, 6}, {1, 3}},         // runs, several kept axes
      {{4, 3, 5, 6}, {0, 2}},         // several reduced axes under a kept innermost one
      {{2, 1, 3}, {1}},               // a size-1 axis: a copy
      {{3, 0, 4}, {1}},               // an empty axis: zeros
      {{0, 5}, {1}},                  // no outputs
      {{1}, {}},
      {{513, 1027}, {}},              // everything
  };
  Generator gen(11);
  for (const Case& c : cases) {
    // Offset from 0 so that cancellation does not hide an error.
    Tensor x64 = add(randn(c.shape, {DType::Float64}, &gen), 0.25);
    Tensor x32 = x64.to(DType::Float32);
    std::vector<int64_t> ax = c.axes;
    if (ax.empty())
      for (int64_t d = 0; d < static_cast<int64_t>(c.shape.size()); ++d) ax.push_back(d);
    auto ref32 = reference_sum(x32.to(DType::Float64).to_vector<double>(), c.shape, ax);
    auto ref64 = reference_sum(x64.to_vector<double>(), c.shape, ax);
    auto s32 = sum(x32, c.axes, true).to_vector<float>();
    auto s64 = sum(x64, c.axes, true).to_vector<double>();
    REQUIRE(s32.size() == ref32.size());
    REQUIRE(s64.size() == ref64.size());
    double worst32 = 0, worst64 = 0;
    for (size_t i = 0; i < ref32.size(); ++i) {
      // Scale: the sum of magnitudes bounds the rounding of any order.
      double scale = 1.0 + std::abs(static_cast<double>(ref64[i]));
      worst32 = std::max(worst32, std::abs(s32[i] - static_cast<double>(ref32[i])) / scale);
      worst64 = std::max(worst64, std::abs(s64[i] - static_cast<double>(ref64[i])) / scale);
    }
    INFO(shape_str(c.shape) << " axes " << c.axes.size());
    CHECK(worst32 <= 1e-6);   // double accumulation, one float rounding at the end
    CHECK(worst64 <= 1e-13);
  }
}

TEST_CASE("sum: the result does not depend on the number of threads or on the path taken") {
  Generator gen(5);
  Tensor x = randn({3, 400009}, {}, &gen);
  Tensor cols = randn({20011, 37}, {}, &gen);
  Tensor runs = randn({16, 5, 64, 64}, {}, &gen);
  auto all = [&] {
    return std::vector<std::vector<float>>{sum(x).to_vector<float>(), sum(x, {1}).to_vector<float>(),
                                           sum(cols, {0}).to_vector<float>(),
                                           sum(runs, {0, 2, 3}).to_vector<float>()};
  };
  auto threaded = all();
  // Loops started from inside a task of the pool run inline: one thread.
  std::vector<std::vector<float>> single;
  cpu::run_on_threads(2, [&](int64_t t) {
    if (t == 0) single = all();
  });
  MESSAGE("threads: " << cpu::num_threads());
  for (size_t i = 0; i < threaded.size(); ++i) CHECK_MESSAGE(threaded[i] == single[i], "case " << i);
  // Rows summed together (the row path) == each row summed alone (the
  // block-split path of one long row): the same order of additions.
  auto rows = sum(x, {1}).to_vector<float>();
  for (int64_t r = 0; r < 3; ++r) CHECK(rows[r] == sum(slice(x, 0, r, r + 1)).item());
}
