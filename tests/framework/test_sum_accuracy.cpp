// The CPU sums' accumulation contract (framework/ops/reduce.cpp, "sums";
// docs/engine-bench.md, "Sums in float32 blocks"): float32 in 64 lanes of at
// most 16 values per block of 1024, columns in float32 runs of 16 rows, those
// partial sums added in double in an order fixed by the shape; float64 in
// 8 double lanes per block of 4096. Checked four ways:
// - bit for bit against a scalar transcription of that contract, over odd
//   sizes and tails of every reduction pattern (rows, one run, few long rows,
//   columns, (outer, len, inner), bias-gradient runs);
// - against a long-double reference on adversarial inputs (2^24 + 777 ones,
//   magnitudes over 12 decades, cancellation, the case that reaches the error
//   bound) within the stated bound 15 u sum|x| + (n/16 + 8) u_d sum|x| + u |s|
//   (u = 2^-24, u_d = 2^-53);
// - bit for bit across thread counts 1, 2, 3, 4, 7 and 16 (the kernel planned
//   and split for each count, cpu::sum_with_threads);
// - views (permuted, sliced, expanded) against their contiguous copies.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "framework/ops.h"
#include "framework/ops/reduce_kernels.h"

using namespace neurn;

namespace {

constexpr double kU = 0x1p-24;   // float32 unit roundoff
constexpr double kUd = 0x1p-53;  // float64 unit roundoff

// ---- the contract, written out in scalar code ----

// One float32 block (n <= 1024): lane j adds x[j], x[j + 64], ... in float32
// from +0; the 64 lanes in double in the documented tree.
double contract_block_f32(const float* x, int64_t n) {
  float lane[64] = {};
  for (int64_t i = 0; i < n; ++i) lane[i % 64] += x[i];
  double l[64], s[8];
  for (int j = 0; j < 64; ++j) l[j] = lane[j];
  for (int i = 0; i < 8; ++i)
    s[i] = ((l[i] + l[8 + i]) + (l[16 + i] + l[24 + i])) + ((l[32 + i] + l[40 + i]) + (l[48 + i] + l[56 + i]));
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

double contract_run_f32(const float* x, int64_t n) {
  double t = 0;
  for (int64_t b = 0; b < n; b += 1024) t += contract_block_f32(x + b, std::min<int64_t>(1024, n - b));
  return t;
}

// float64, as before the float32 change: 8 lanes (the tail into lane 0) per
// block of 4096.
double contract_run_f64(const double* x, int64_t n) {
  double t = 0;
  for (int64_t b = 0; b < n; b += 4096) {
    const int64_t m = std::min<int64_t>(4096, n - b), m8 = m - m % 8;
    double lane[8] = {};
    for (int64_t i = 0; i < m; ++i) lane[i < m8 ? i % 8 : 0] += x[b + i];
    t += ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  }
  return t;
}

double contract_run(const float* x, int64_t n) { return contract_run_f32(x, n); }
double contract_run(const double* x, int64_t n) { return contract_run_f64(x, n); }

// Column c of `len` rows `inner` apart: float32 runs of 16 rows in row order,
// each run's sum added in double (float64: one double sum in row order).
double contract_column(const float* x, int64_t len, int64_t inner) {
  double acc = 0;
  for (int64_t r0 = 0; r0 < len; r0 += 16) {
    float f = x[r0 * inner];
    for (int64_t r = r0 + 1; r < std::min<int64_t>(r0 + 16, len); ++r) f += x[r * inner];
    acc += static_cast<double>(f);
  }
  return acc;
}
double contract_column(const double* x, int64_t len, int64_t inner) {
  double acc = 0;
  for (int64_t r = 0; r < len; ++r) acc += x[r * inner];
  return acc;
}

// The contract's result for x as (outer, len, inner) summed over len: rows
// (inner 1, each row one run) or columns.
template <typename T>
std::vector<T> contract_sum(const std::vector<T>& x, int64_t outer, int64_t len, int64_t inner) {
  std::vector<T> out;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < inner; ++c) {
      const T* p = x.data() + o * len * inner + c;
      out.push_back(static_cast<T>(inner == 1 ? contract_run(p, len) : contract_column(p, len, inner)));
    }
  return out;
}

// (N, C, L) summed over N and L: out[c] = sum over n, in order, of run(x[n, c, :]).
template <typename T>
std::vector<T> contract_bias(const std::vector<T>& x, int64_t n, int64_t c, int64_t l) {
  std::vector<T> out;
  for (int64_t k = 0; k < c; ++k) {
    double t = 0;
    for (int64_t i = 0; i < n; ++i) t += contract_run(x.data() + (i * c + k) * l, l);
    out.push_back(static_cast<T>(t));
  }
  return out;
}

template <typename T>
std::vector<T> values_of(const Tensor& t) {
  return t.to_vector<T>();
}

// Equal bit for bit (NaN payloads aside, none arise here); the first index that differs, or -1.
template <typename T>
int64_t first_difference(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return static_cast<int64_t>(i);
  return -1;
}

Tensor data(const Shape& s, DType dt, uint64_t seed, double offset = 0.25) {
  Generator gen(seed);
  return add(randn(s, {DType::Float64}, &gen), offset).to(dt);
}

}  // namespace

TEST_CASE("sum: float32 and float64 results are the documented contract, bit for bit, over odd sizes and tails") {
  // One run (a vector, a (1, n) row, everything): every tail length around
  // the 64 lanes and the 1024-value blocks, and the short rows (< 64) that
  // take the scalar path.
  const std::vector<int64_t> lengths = {1,   2,   7,    8,    9,    10,   15,   16,   17,    31,    63,    64,
                                        65,  100, 127,  128,  129,  511,  1023, 1024, 1025,  2047,  2048,
                                        2049, 3000, 4095, 4096, 4097, 8191, 8193, 65537, 100003};
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (int64_t n : lengths) {
      Tensor x = data({n}, dt, 100 + static_cast<uint64_t>(n));
      INFO(std::string(dtype_name(dt)) << " n = " << n);
      if (dt == DType::Float32) {
        auto v = values_of<float>(x);
        const float want = static_cast<float>(contract_run_f32(v.data(), n));
        const float got = sum(x).item();
        CHECK(std::memcmp(&got, &want, sizeof got) == 0);
        const float row = sum(reshape(x, {1, n}), {1}).item();
        CHECK(std::memcmp(&row, &want, sizeof row) == 0);
      } else {
        auto v = values_of<double>(x);
        const double want = contract_run_f64(v.data(), n);
        const double got = sum(x).item();
        CHECK(std::memcmp(&got, &want, sizeof got) == 0);
      }
    }
  }
  // Rows over the last axis (many short rows, few long rows split at
  // blocks) and columns over the first or a middle axis, every column tail
  // around the 64-column and 8-column steps and the 16-row runs.
  struct Case {
    int64_t outer, len, inner;
  };
  const std::vector<Case> cases = {
      // rows (inner 1): many short, few long (split at blocks; the last
      // block of a row under 64 values in the last two)
      {1031, 67, 1}, {7, 10, 1}, {64, 10, 1}, {3, 200001, 1}, {2, 5000, 1}, {1, 1, 1}, {3, 2058, 1}, {2, 66570, 1},
      // columns of (len, inner)
      {1, 1, 7}, {1, 15, 3}, {1, 16, 8}, {1, 17, 9}, {1, 33, 63}, {1, 100, 64}, {1, 47, 65}, {1, 31, 72},
      {1, 129, 200}, {1, 20, 4100}, {1, 1031, 67},
      // (outer, len, inner) over the middle axis
      {5, 4099, 3}, {7, 3, 1300}, {3, 18, 77}, {2, 1, 5},
  };

  for (DType dt : {DType::Float32, DType::Float64}) {
    for (const Case& c : cases) {
      const Shape s = c.outer == 1 ? Shape{c.len, c.inner} : Shape{c.outer, c.len, c.inner};
      const int64_t axis = c.outer == 1 ? 0 : 1;
      // (rows, len): the rows are the outer axis.
      const Shape rs = {c.outer, c.len};
      const bool rows = c.inner == 1;
      Tensor x = data(rows ? rs : s, dt, 7 + static_cast<uint64_t>(c.outer * 131 + c.len * 7 + c.inner));
      Tensor got = sum(x, {rows ? 1 : axis});
      INFO(std::string(dtype_name(dt)) << " " << shape_str(x.shape()) << " over axis " << (rows ? 1 : axis));
      if (dt == DType::Float32) {
        auto want = contract_sum(values_of<float>(x), c.outer, c.len, c.inner);
        CHECK(first_difference(values_of<float>(got), want) == -1);
      } else {
        auto want = contract_sum(values_of<double>(x), c.outer, c.len, c.inner);
        CHECK(first_difference(values_of<double>(got), want) == -1);
      }
    }
  }
  // The bias gradient (N, C, H, W) -> (C): each output adds the runs of its
  // H W values, images in order; run lengths short (4, 49, 63) and long (1024).
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (Shape s : {Shape{6, 5, 7, 9}, Shape{16, 8, 2, 2}, Shape{4, 3, 7, 7}, Shape{3, 4, 32, 32}}) {
      Tensor x = data(s, dt, 3 + static_cast<uint64_t>(s[2]));
      Tensor got = sum(x, {0, 2, 3});
      INFO(std::string(dtype_name(dt)) << " bias gradient of " << shape_str(s));
      if (dt == DType::Float32)
        CHECK(first_difference(values_of<float>(got), contract_bias(values_of<float>(x), s[0], s[1], s[2] * s[3])) ==
              -1);
      else
        CHECK(first_difference(values_of<double>(got), contract_bias(values_of<double>(x), s[0], s[1], s[2] * s[3])) ==
              -1);
    }
  }
}

namespace {

// Sum in long double and of magnitudes, per output, of x laid out as
// (outer, len, inner) summed over len.
struct Reference {
  std::vector<long double> sum, abs_sum;
};
Reference reference(const std::vector<float>& x, int64_t outer, int64_t len, int64_t inner) {
  Reference r;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < inner; ++c) {
      long double s = 0, a = 0;
      for (int64_t i = 0; i < len; ++i) {
        const long double v = x[static_cast<size_t>((o * len + i) * inner + c)];
        s += v;
        a += std::fabs(v);
      }
      r.sum.push_back(s);
      r.abs_sum.push_back(a);
    }
  return r;
}

// The bound of the contract for a sum of n values (n >= 1): the float32
// partial sums of at most 16 values, (16 - 1) u sum|x| to first order; the
// double additions, fewer than n / 16 + 8 per result; the final rounding.
double sum_bound(int64_t n, long double abs_sum, long double s) {
  const double a = static_cast<double>(abs_sum);
  return 15 * kU * (1 + 16 * kU) * a + (static_cast<double>(n) / 16 + 8) * kUd * 1.01 * a +
         kU * (std::fabs(static_cast<double>(s)) + 16 * kU * a);
}

// Checks sum(x) over the middle of (outer, len, inner) against the bound;
// returns the worst error as a fraction of its bound.
double check_against_bound(const std::vector<float>& v, int64_t outer, int64_t len, int64_t inner, const char* what) {
  Tensor x = from_vector(v, {outer, len, inner});
  auto got = sum(x, {1}).to_vector<float>();
  Reference ref = reference(v, outer, len, inner);
  double worst = 0;
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(static_cast<long double>(got[i]) - ref.sum[i]));
    const double bound = sum_bound(len, ref.abs_sum[i], ref.sum[i]);
    worst = std::max(worst, err / bound);
    bad += err > bound;
  }
  INFO(std::string(what) << " " << outer << " x " << len << " x " << inner);
  CHECK(bad == 0);
  MESSAGE(std::string(what) << " (" << outer << ", " << len << ", " << inner << "): worst error " << worst << " of the bound");
  return worst;
}

}  // namespace

TEST_CASE("sum: float32 accuracy on adversarial inputs stays within the stated bound") {
  SUBCASE("2^24 + 777 ones: every partial sum exact (a float32 running sum stops at 2^24)") {
    const int64_t n = (int64_t{1} << 24) + 777;
    Tensor x = ones({n});
    const float want = static_cast<float>(static_cast<double>(n));  // the exact sum, rounded once
    CHECK(sum(x).item() == want);
    // As columns: 2^24 + 777 rows of 2.
    Tensor cols = ones({n / 2, 2});
    auto c = sum(cols, {0}).to_vector<float>();
    CHECK(c[0] == static_cast<float>(static_cast<double>(n / 2)));
    CHECK(c[1] == c[0]);
    // The mean is the sum's times 1 / n: within the sum's one rounding of 1.
    CHECK(std::fabs(mean(x).item() - 1.0) <= 2 * kU);
  }
  SUBCASE("the bound is reached: 1 then 15 values just under half an ulp of 1, in every lane and column") {
    // Lane j of a block holds x[j], x[j + 64], ...: put 1 first in every lane
    // and 0.99 * 2^-24 in the next 15 values; each is lost against 1 in
    // float32, so each lane is off by 14.85 u: 0.99 of the bound's 15 u.
    const float tiny = static_cast<float>(0.99 * kU);
    std::vector<float> v(1024, tiny);
    for (int j = 0; j < 64; ++j) v[static_cast<size_t>(j)] = 1.0f;
    std::vector<float> many;
    for (int k = 0; k < 50; ++k) many.insert(many.end(), v.begin(), v.end());
    const double w = check_against_bound(many, 1, static_cast<int64_t>(many.size()), 1, "worst case, one run");
    CHECK(w > 0.9);  // the bound is tight: longer float32 runs would exceed it
    // The same down columns: row 0 of each 16-row run is 1, the others tiny.
    std::vector<float> c(static_cast<size_t>(160 * 70), tiny);
    for (int r = 0; r < 160; r += 16)
      for (int k = 0; k < 70; ++k) c[static_cast<size_t>(r * 70 + k)] = 1.0f;
    CHECK(check_against_bound(c, 1, 160, 70, "worst case, columns") > 0.9);
  }
  SUBCASE("magnitudes over 12 decades, random signs") {
    Generator gen(21);
    auto e = rand({1 << 20}, {DType::Float64}, &gen, -6.0, 6.0).to_vector<double>();
    auto sg = randn({1 << 20}, {DType::Float64}, &gen).to_vector<double>();
    std::vector<float> v(e.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((sg[i] < 0 ? -1 : 1) * std::pow(10.0, e[i]));
    check_against_bound(v, 1, static_cast<int64_t>(v.size()), 1, "12 decades, one run");
    check_against_bound(v, 4, 256, 1024, "12 decades, columns");
    check_against_bound(v, 1024, 1024, 1, "12 decades, rows");
  }
  SUBCASE("cancellation: large values and their negatives far apart, small ones between") {
    Generator gen(22);
    const int64_t n = 1 << 20;
    auto big = randn({n / 2}, {DType::Float64}, &gen).to_vector<double>();
    auto small = randn({n}, {DType::Float64}, &gen).to_vector<double>();
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n / 2; ++i) {
      v[static_cast<size_t>(i)] = static_cast<float>(1e4 * big[static_cast<size_t>(i)]);
      v[static_cast<size_t>(n - 1 - i)] = -v[static_cast<size_t>(i)];
    }
    for (int64_t i = 0; i < n; i += 3) v[static_cast<size_t>(i)] += static_cast<float>(1e-3 * small[static_cast<size_t>(i)]);
    check_against_bound(v, 1, n, 1, "cancellation, one run");
    check_against_bound(v, 1, 1024, 1024, "cancellation, columns");
  }
  SUBCASE("offset normal data: within 1e-6 of 1 + |sum|, as the double accumulation was tested") {
    for (Shape s : {Shape{1000003}, Shape{3, 200001}, Shape{20011, 37}, Shape{16, 5, 64, 64}}) {
      Tensor x = data(s, DType::Float32, 5);
      std::vector<int64_t> axes = s.size() == 4 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
      if (s.size() == 2 && s[0] == 3) axes = {1};
      auto got = sum(x, axes).to_vector<float>();
      auto want = sum(x.to(DType::Float64), axes).to_vector<double>();
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]) / (1 + std::fabs(want[i])));
      INFO(shape_str(s));
      CHECK(worst <= 1e-6);
    }
  }
}

TEST_CASE("sum: the same bits for 1, 2, 3, 4, 7 and 16 threads, on every path") {
  struct Case {
    Shape shape;
    std::vector<int64_t> axes;
  };
  const std::vector<Case> cases = {
      {{1000003}, {0}},           // one run, split at blocks
      {{3, 400009}, {1}},         // few long rows: split at blocks, per row in order
      {{2, 66570}, {1}},          // the same, the last block of each row under 64 values
      {{2000, 513}, {1}},         // many rows
      {{20011, 37}, {0}},         // columns, narrow
      {{3001, 1111}, {0}},        // columns, several stripes
      {{5, 4099, 70}, {1}},       // (outer, len, inner)
      {{16, 5, 64, 64}, {0, 2, 3}},  // bias-gradient runs
      {{6, 40, 7, 50}, {1, 3}},   // runs with several kept axes
      {{6, 40, 7, 50}, {0, 2}},   // several reduced axes under a kept innermost one
      {{513, 1027}, {0, 1}},      // everything
  };
  for (DType dt : {DType::Float32, DType::Float64}) {
    for (const Case& c : cases) {
      Tensor x = data(c.shape, dt, 9);
      Shape keep = c.shape;
      for (int64_t a : c.axes) keep[static_cast<size_t>(a)] = 1;
      Tensor base = sum(x, c.axes, true);
      for (int threads : {1, 2, 3, 4, 7, 16}) {
        Tensor out = Tensor::empty(keep, x.options());
        cpu::sum_with_threads(x, out, threads);
        INFO(std::string(dtype_name(dt)) << " " << shape_str(c.shape) << " over " << c.axes.size() << " axes, " << threads
                            << " threads");
        if (dt == DType::Float32) CHECK(first_difference(values_of<float>(out), values_of<float>(base)) == -1);
        else CHECK(first_difference(values_of<double>(out), values_of<double>(base)) == -1);
      }
    }
  }
  Tensor x = data({4, 4}, DType::Float32, 1), out = Tensor::empty({1, 4});
  CHECK_THROWS_WITH_AS(cpu::sum_with_threads(x, out, 0), doctest::Contains("0 threads"), Error);
  Tensor wrong = Tensor::empty({3, 4});
  CHECK_THROWS_WITH_AS(cpu::sum_with_threads(x, wrong, 1), doctest::Contains("is not a reduction of"), Error);
}

TEST_CASE("sum: views give their contiguous copy's bits; NaN and infinities propagate on every path") {
  Tensor x = data({37, 29, 70}, DType::Float32, 31);
  const std::vector<Tensor> views = {permute(x, {2, 0, 1}), transpose(x, 0, 2), slice(x, 2, 3, 67, 2),
                                     slice(x, 0, 1, 36), expand(slice(x, 0, 0, 1), {37, 29, 70})};
  for (size_t k = 0; k < views.size(); ++k) {
    const Tensor& v = views[k];
    Tensor c = v.contiguous();
    INFO("view " << k << " " << shape_str(v.shape()));
    for (auto axes : std::vector<std::vector<int64_t>>{{}, {0}, {1}, {2}, {0, 2}, {1, 2}}) {
      CHECK(first_difference(values_of<float>(sum(v, axes)), values_of<float>(sum(c, axes))) == -1);
      CHECK(first_difference(values_of<float>(mean(v, axes)), values_of<float>(mean(c, axes))) == -1);
    }
  }
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (Shape s : {Shape{5}, Shape{100}, Shape{3000}, Shape{40, 70}, Shape{4, 8, 9}}) {
    const int64_t n = shape_numel(s);
    for (float special : {inf, -inf, nan}) {
      std::vector<float> v(static_cast<size_t>(n), 1.0f);
      v[static_cast<size_t>(n / 2)] = special;
      Tensor t = from_vector(v, s);
      INFO(shape_str(s) << " holding " << special);
      const float all = sum(t).item();
      if (std::isnan(special)) CHECK(std::isnan(all));
      else CHECK(all == special);
      // Over each axis: exactly the outputs whose slice holds it are special.
      for (int64_t a = 0; a < t.dim(); ++a) {
        auto r = sum(t, {a}).to_vector<float>();
        int64_t specials = 0;
        for (float f : r) specials += std::isnan(f) || std::isinf(f);
        CHECK(specials == 1);
      }
    }
    std::vector<float> v(static_cast<size_t>(n), 1.0f);
    v[0] = inf;
    v[static_cast<size_t>(n - 1)] = -inf;
    CHECK(std::isnan(sum(from_vector(v, s)).item()));
  }
}
