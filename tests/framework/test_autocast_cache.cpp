// bf16 autocast's promises that are host code (framework/cuda/cuda_autocast.h),
// checked on every machine: the weight cache converts an optimizer's
// parameter once per step (two forwards share one conversion; the optimizer
// step drops it and the next use converts the new values), and autograd runs
// each node's backward in the precision its forward ran in. The device side
// (conv and gemm reading the cached copies) is a CUDA case of test_cuda.cpp.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "framework/autograd.h"
#include "framework/cuda/cuda_autocast.h"
#include "framework/ops.h"
#include "framework/optim/optim.h"
#include "gradcheck.h"

using namespace neurn;
using namespace neurn::testing;

namespace {

// float32 -> bfloat16 by truncation of the low 16 bits, on the host: what a
// converter hands the cache here (the CUDA one rounds on the device).
std::shared_ptr<void> to_bf16_host(const void* src, int64_t n) {
  auto* out = new uint16_t[static_cast<size_t>(n)];
  const auto* f = static_cast<const float*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &f[i], sizeof bits);
    out[i] = static_cast<uint16_t>(bits >> 16);
  }
  return std::shared_ptr<void>(out, [](void* p) { delete[] static_cast<uint16_t*>(p); });
}

float bf16_value(const void* copy, int64_t i) {
  uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t*>(copy)[i]) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace

TEST_CASE("autocast weight cache: one conversion per optimizer step, not per forward") {
  cuda::WeightCache& cache = cuda::autocast_weight_cache();
  Tensor w = from_vector(std::vector<double>{1.0, -2.5, 3.25, 0.5}, {2, 2}, {DType::Float32});
  w.requires_grad_();
  Sgd opt({w}, SgdOptions{.lr = 0.5});  // registers w as a weight
  const int64_t n = w.numel();

  const uint64_t c0 = cache.conversions();
  // Two forwards of one step: one conversion, the same copy.
  const void* a = cache.find_or_convert(w.raw_data(), n, to_bf16_host);
  const void* b = cache.find_or_convert(w.raw_data(), n, to_bf16_host);
  REQUIRE(a != nullptr);
  CHECK(a == b);
  CHECK(cache.conversions() == c0 + 1);
  CHECK(bf16_value(a, 1) == -2.5f);

  // The optimizer step writes w: the copy goes, and the next forward
  // converts the new values once.
  w.set_grad(full({2, 2}, 1.0, {DType::Float32}));
  opt.step();
  CHECK(w.to_vector<float>()[1] == -3.0f);
  const void* c = cache.find_or_convert(w.raw_data(), n, to_bf16_host);
  const void* d = cache.find_or_convert(w.raw_data(), n, to_bf16_host);
  CHECK(c == d);
  CHECK(cache.conversions() == c0 + 2);
  CHECK(bf16_value(c, 1) == -3.0f);

  // Any other in-place write moves the version too: converted again.
  mul_(w.detach(), 2.0);
  const void* e = cache.find_or_convert(w.raw_data(), n, to_bf16_host);
  CHECK(cache.conversions() == c0 + 3);
  CHECK(bf16_value(e, 1) == -6.0f);

  // Not a whole registered weight: the caller converts per call.
  Tensor act = full({4}, 1.0, {DType::Float32});
  CHECK(cache.find_or_convert(act.raw_data(), 4, to_bf16_host) == nullptr);
  CHECK(cache.find_or_convert(w.raw_data(), n - 1, to_bf16_host) == nullptr);
  CHECK(cache.conversions() == c0 + 3);
}

TEST_CASE("autocast weight cache: a weight that has gone is forgotten, its address not mistaken for it") {
  cuda::WeightCache cache;  // a private one: counts of its own
  const void* addr = nullptr;
  {
    Tensor w = full({8}, 2.0, {DType::Float32});
    cache.add_weight(w);
    addr = w.raw_data();
    CHECK(cache.weights() == 1);
    REQUIRE(cache.find_or_convert(addr, 8, to_bf16_host) != nullptr);
    CHECK(cache.copies() == 1);
    cache.invalidate(w);
    CHECK(cache.copies() == 0);
  }
  CHECK(cache.weights() == 0);
  CHECK(cache.find_or_convert(addr, 8, to_bf16_host) == nullptr);  // whatever lives there now is no weight
  CHECK(cache.conversions() == 1);
}

TEST_CASE("autograd runs a node's backward in the precision of its forward (bf16 autocast on or off)") {
  cuda::AutocastGuard off(false);  // whatever NEURN_AUTOCAST_BF16 says
  std::vector<bool> seen;
  auto op = [&](const Tensor& x) {
    Tensor y = x.detach().clone();
    return attach_grad(y, "probe", {x}, [&seen](const Tensor& g) {
      seen.push_back(cuda::autocast_bf16());
      return std::vector<Tensor>{g};
    });
  };
  Tensor x = full({3}, 1.0);
  x.requires_grad_();
  Tensor y1;
  {
    cuda::AutocastGuard on(true);
    y1 = op(x);
  }
  Tensor y2 = op(x);
  sum(y1).backward();  // forward under autocast, backward outside it
  {
    cuda::AutocastGuard on(true);
    sum(y2).backward();  // forward outside, backward under a guard
  }
  CHECK(seen == std::vector<bool>{true, false});
  CHECK(!cuda::autocast_bf16());
}
