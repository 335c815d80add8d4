#include <doctest/doctest.h>

#include "framework/ops.h"
#include "gradcheck.h"

using namespace neurn;
using namespace neurn::testing;

TEST_CASE("tensor creation, copy and conversion") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.numel() == 6);
  CHECK(z.dtype() == DType::Float32);
  Tensor a = arange(0, 6).reshape({2, 3});
  CHECK(a.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
  Tensor d = a.to(DType::Float64);
  CHECK(d.dtype() == DType::Float64);
  CHECK(d.to_vector<double>()[5] == 5.0);
  Tensor c = a.clone();
  c.fill_(7);
  CHECK(a.to_vector<float>()[0] == 0.0f);  // clone copies data
  CHECK(full({1}, 2.5).item() == 2.5);
  CHECK_THROWS_CONTAINING(a.item(), "6 elements");
}

TEST_CASE("seeded generators are reproducible") {
  Generator g1(42), g2(42);
  auto a = randn({100}, {}, &g1).to_vector<float>();
  auto b = randn({100}, {}, &g2).to_vector<float>();
  CHECK(a == b);
  double m = 0;
  Generator g3(1);
  auto big = randn({20000}, {DType::Float64}, &g3).to_vector<double>();
  for (double v : big) m += v;
  CHECK(std::abs(m / big.size()) < 0.05);
}

TEST_CASE("meta tensors carry shapes and FLOPs, no data") {
  Tensor a = zeros({4, 5}, {.device = Device::meta()});
  Tensor b = zeros({5}, {.device = Device::meta()});
  FlopCounter fc;
  Tensor c = relu(add(a, b));
  CHECK(c.device().is_meta());
  CHECK(c.shape() == Shape{4, 5});
  CHECK(fc.flops() == 40);
  CHECK(c.raw_data() == nullptr);
}

TEST_CASE("broadcasting add and its gradient") {
  Tensor a = leaf({2, 3}, 1), b = leaf({3}, 2);
  Tensor c = add(a, b);
  CHECK(c.shape() == Shape{2, 3});
  sum(c).backward();
  CHECK(b.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
  CHECK_THROWS_CONTAINING(add(leaf({2, 3}, 1), leaf({4}, 1)), "add: shapes (2, 3) and (4,) cannot be broadcast");
  CHECK_THROWS_CONTAINING(add(zeros({2}), zeros({2}, {.dtype = DType::Float64})), "dtypes differ");
}

TEST_CASE("backward errors and graph release") {
  Tensor x = leaf({3}, 3);
  Tensor y = mul(x, 2.0);
  CHECK_THROWS_CONTAINING(y.backward(), "only for a scalar");
  Tensor s = sum(y);
  s.backward();
  CHECK_THROWS_CONTAINING(s.backward(), "already released");
  Tensor s2 = sum(mul(x, 3.0));
  s2.backward({}, /*retain_graph=*/true);
  s2.backward();
  CHECK(x.grad().to_vector<double>()[0] == doctest::Approx(2 + 3 + 3));
  {
    NoGradGuard ng;
    CHECK_FALSE(mul(x, 2.0).requires_grad());
  }
}

TEST_CASE("leaves never share gradient storage") {
  Tensor a = leaf({3}, 1), b = leaf({3}, 2);
  sum(add(a, b)).backward();
  CHECK(a.grad().storage() != b.grad().storage());
  mul_(a.grad(), 5.0);
  CHECK(b.grad().to_vector<double>() == std::vector<double>{1, 1, 1});
  Tensor c = leaf({2}, 3);
  Tensor seed = ones({2}, {.dtype = DType::Float64});
  mul(c, 1.0).backward(seed);
  CHECK(c.grad().storage() != seed.storage());
}
