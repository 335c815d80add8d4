// Subnormal floats in the CPU's matrix products (framework/ops/denormals_cpu.h):
// conv2d, linear and matmul count subnormal operands and results as zero, in
// every thread of the pool, and leave the caller's mode as it was.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

#include "framework/ops.h"
#include "framework/ops/denormals_cpu.h"
#include "framework/ops/parallel_cpu.h"

using namespace neurn;

namespace {

constexpr float kTiny = 1e-40f;  // subnormal in float32 (the smallest normal is 1.18e-38)

// A product that the compiler cannot fold: it runs in this thread's mode.
bool flushes_here() {
  volatile float tiny = kTiny, one = 1.0f;
  float r = tiny * one;
  return r == 0.0f;
}

#ifdef NEURN_HAS_MXCSR
constexpr bool kHasMode = true;
#else
constexpr bool kHasMode = false;
#endif

// Random values where `tiny(i)` holds replaced by subnormals, and the same
// values with those entries zero. Whole rows or channels of subnormals make
// outputs and gradients of subnormal size, which only a flush turns into zero
// (scattered ones would vanish in sums of normal numbers anyway).
template <typename Pred>
void with_subnormals(int64_t n, uint64_t seed, Pred tiny, std::vector<float>& with, std::vector<float>& zeroed) {
  Generator gen(seed);
  with = randn({n}, {DType::Float32}, &gen).to_vector<float>();
  zeroed = with;
  for (int64_t i = 0; i < n; ++i) {
    if (!tiny(i)) continue;
    with[static_cast<size_t>(i)] = (i % 2 ? -1.0f : 1.0f) * kTiny * static_cast<float>(1 + i % 5);
    zeroed[static_cast<size_t>(i)] = 0.0f;
  }
}

void check_same_bits(const Tensor& a, const Tensor& b) {
  auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  REQUIRE(va.size() == vb.size());
  int64_t differ = 0, subnormal = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    differ += va[i] != vb[i];
    subnormal += std::fpclassify(va[i]) == FP_SUBNORMAL;
  }
  CHECK(differ == 0);
  CHECK(subnormal == 0);
}

}  // namespace

TEST_CASE("FlushDenormals: flushes inside, restores after, and the pool's tasks take the caller's mode") {
  if (!kHasMode) {
    MESSAGE("skipped: no MXCSR on this CPU (FlushDenormals is a no-op there)");
    return;
  }
  REQUIRE(std::fpclassify(kTiny) == FP_SUBNORMAL);
  REQUIRE_FALSE(flushes_here());  // the default mode keeps subnormals
  {
    cpu::FlushDenormals flush;
    CHECK(flushes_here());
    {
      cpu::FlushDenormals nested;  // already set: leaves it set after
      CHECK(flushes_here());
    }
    CHECK(flushes_here());
    // Every task of a loop started here flushes, on whichever thread it runs.
    const int64_t tasks = 8;
    std::vector<int> flushed(tasks, 0);
    cpu::run_on_threads(tasks, [&](int64_t t) { flushed[static_cast<size_t>(t)] = flushes_here() ? 1 : 0; });
    for (int64_t t = 0; t < tasks; ++t) CHECK(flushed[static_cast<size_t>(t)] == 1);
  }
  CHECK_FALSE(flushes_here());
  // ...and a loop started in the default mode keeps subnormals in every task
  // (no worker kept the mode of an earlier loop).
  const int64_t tasks = 8;
  std::vector<int> flushed(tasks, 1);
  cpu::run_on_threads(tasks, [&](int64_t t) { flushed[static_cast<size_t>(t)] = flushes_here() ? 1 : 0; });
  for (int64_t t = 0; t < tasks; ++t) CHECK(flushed[static_cast<size_t>(t)] == 0);
}

TEST_CASE("linear, matmul and conv2d count subnormal operands and results as zero (float32, CPU)") {
  if (!kHasMode) {
    MESSAGE("skipped: no MXCSR on this CPU (subnormals go through the products there)");
    return;
  }
  SUBCASE("linear: forward and both gradients, big enough to be split over the threads") {
    const int64_t rows = 64, in = 300, out = 200;
    std::vector<float> xw, xz, ww, wz;
    // x: row 0 (y's row 0 is then subnormal) and column 0 (dW's column 0).
    with_subnormals(rows * in, 1, [&](int64_t i) { return i < in || i % in == 0 || i % 7 == 3; }, xw, xz);
    with_subnormals(out * in, 2, [](int64_t i) { return i % 7 == 3; }, ww, wz);
    Tensor xa = from_vector(xw, {rows, in}).requires_grad_(), xb = from_vector(xz, {rows, in}).requires_grad_();
    Tensor wa = from_vector(ww, {out, in}).requires_grad_(), wb = from_vector(wz, {out, in}).requires_grad_();
    Tensor bias = zeros({out});
    Tensor ya = linear(xa, wa, bias), yb = linear(xb, wb, bias);
    check_same_bits(ya, yb);
    // An output gradient with subnormals too: the backward products see them.
    std::vector<float> gw, gz;
    with_subnormals(rows * out, 3, [&](int64_t i) { return i < out || i % 7 == 3; }, gw, gz);  // row 0: dx's row 0
    sum(mul(ya, from_vector(gw, {rows, out}))).backward();
    sum(mul(yb, from_vector(gz, {rows, out}))).backward();
    check_same_bits(xa.grad(), xb.grad());
    check_same_bits(wa.grad(), wb.grad());
  }
  SUBCASE("matmul: a product of normal numbers whose exact value is subnormal comes out zero") {
    Tensor a = full({4, 3}, 1e-20), b = full({3, 5}, 1e-20);  // each entry 3e-40
    for (float v : matmul(a, b).to_vector<float>()) CHECK(v == 0.0f);
    // Batched products (one per head) flush in every task as well.
    Tensor ab = full({16, 32, 8}, 1e-20), bb = full({16, 8, 32}, 1e-20);
    for (float v : matmul(ab, bb).to_vector<float>()) CHECK(v == 0.0f);
  }
  SUBCASE("conv2d: forward and backward, batch split over the threads") {
    const int64_t n = 8, c = 16, hw = 12, co = 32;
    std::vector<float> xw, xz, ww, wz, gw, gz;
    const int64_t chw = c * hw * hw, p = hw * hw;
    // x: image 0 (y's image 0 is subnormal); dy: image 1 (dx's image 1) and
    // output channel 0 in every image (dW's channel 0).
    with_subnormals(n * chw, 4, [&](int64_t i) { return i < chw || i % 7 == 3; }, xw, xz);
    with_subnormals(co * c * 9, 5, [](int64_t i) { return i % 7 == 3; }, ww, wz);
    with_subnormals(n * co * p, 6, [&](int64_t i) { return i / (co * p) == 1 || (i / p) % co == 0 || i % 7 == 3; },
                    gw, gz);
    Conv2dOptions o;
    o.padding = {1, 1};
    Tensor xa = from_vector(xw, {n, c, hw, hw}).requires_grad_(), xb = from_vector(xz, {n, c, hw, hw}).requires_grad_();
    Tensor wa = from_vector(ww, {co, c, 3, 3}).requires_grad_(), wb = from_vector(wz, {co, c, 3, 3}).requires_grad_();
    Tensor ya = conv2d(xa, wa, {}, o), yb = conv2d(xb, wb, {}, o);
    check_same_bits(ya, yb);
    sum(mul(ya, from_vector(gw, {n, co, hw, hw}))).backward();
    sum(mul(yb, from_vector(gz, {n, co, hw, hw}))).backward();
    check_same_bits(xa.grad(), xb.grad());
    check_same_bits(wa.grad(), wb.grad());
  }
  CHECK_FALSE(flushes_here());  // the ops gave the caller's mode back
}

TEST_CASE("NEURN_FLUSH_DENORMALS=0 and set_flush_denormals(false) keep subnormal products") {
  if (!kHasMode) {
    MESSAGE("skipped: no MXCSR on this CPU (FlushDenormals is a no-op there)");
    return;
  }
  const bool before = cpu::flush_denormals_enabled();
  CHECK(before);  // the default: on (this binary runs without the variable)
  // The environment, as read at the first product of a process.
  cpu::detail::flush_denormals_state().store(-1);
  ::setenv("NEURN_FLUSH_DENORMALS", "0", 1);
  CHECK_FALSE(cpu::flush_denormals_enabled());
  cpu::detail::flush_denormals_state().store(-1);
  ::setenv("NEURN_FLUSH_DENORMALS", "1", 1);
  CHECK(cpu::flush_denormals_enabled());
  ::unsetenv("NEURN_FLUSH_DENORMALS");

  CHECK(cpu::set_flush_denormals(false));
  {
    cpu::FlushDenormals flush;  // off: a no-op
    CHECK_FALSE(flushes_here());
  }
  // The products keep what they compute: each entry 3e-40, subnormal.
  Tensor a = full({4, 3}, 1e-20), b = full({3, 5}, 1e-20);
  for (float v : matmul(a, b).to_vector<float>()) CHECK(std::fpclassify(v) == FP_SUBNORMAL);
  CHECK_FALSE(cpu::set_flush_denormals(before));
  for (float v : matmul(a, b).to_vector<float>()) CHECK(v == 0.0f);
  CHECK_FALSE(flushes_here());
}
