// What an autograd graph keeps alive, and the version counters that catch an
// in-place write to a tensor a node saved. Memory is read from the tensor
// allocator's own count (host_memory_stats), which is exact: these checks
// compare bytes, not timings.
#include <doctest/doctest.h>

#include "framework/ops.h"
#include "framework/optim/sgd.h"
#include "gradcheck.h"

using namespace neurn;
using namespace neurn::testing;

namespace {

size_t allocated() { return host_memory_stats().allocated; }

}  // namespace

TEST_CASE("version counter: bumped by in-place writes, shared by views and detach") {
  Tensor a = zeros({2, 3});
  const uint64_t v0 = a.version();
  a.fill_(1.0);
  CHECK(a.version() == v0 + 1);
  a.copy_(ones({2, 3}));
  CHECK(a.version() == v0 + 2);
  add_(a, ones({2, 3}));
  CHECK(a.version() > v0 + 2);
  const uint64_t v1 = a.version();
  mul_(a, 2.0);
  CHECK(a.version() > v1);
  Tensor view = a.reshape({6}), d = a.detach();
  const uint64_t v2 = a.version();
  view.fill_(0.0);
  CHECK(a.version() == v2 + 1);
  CHECK(d.version() == v2 + 1);
  Tensor c = a.clone();
  const uint64_t vc = c.version();
  a.fill_(3.0);
  CHECK(c.version() == vc);  // a clone has storage of its own
  Tensor p = ones({3}).requires_grad_();
  Sgd opt({p}, SgdOptions{.lr = 0.1});
  sum(mul(p, 2.0)).backward();
  const uint64_t vp = p.version();
  opt.step();
  CHECK(p.version() == vp + 1);
}

TEST_CASE("an in-place write to a saved tensor makes backward throw, naming the op") {
  SUBCASE("relu's saved output") {
    Tensor x = randn({2, 3}).requires_grad_();
    Tensor y = relu(x);
    Tensor loss = sum(y);
    y.fill_(1.0);
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("relu's saved output (2, 3) was modified in place (version 1, saved at 0)"),
                         Error);
  }
  SUBCASE("mul's saved input") {
    Tensor a = randn({4}).requires_grad_();
    Tensor b = randn({4});
    Tensor loss = sum(mul(a, b));
    add_(b, ones({4}));
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("mul's saved other"), Error);
  }
  SUBCASE("conv2d's saved weight, changed by an optimizer step before backward") {
    Tensor x = randn({1, 2, 5, 5}).requires_grad_();
    Tensor w = randn({3, 2, 3, 3}).requires_grad_();
    Sgd opt({w}, SgdOptions{.lr = 0.1});
    w.set_grad(zeros({3, 2, 3, 3}));
    Tensor loss = sum(conv2d(x, w, Tensor(), {}));
    opt.step();
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("conv2d's saved weight (3, 2, 3, 3) was modified in place"),
                         Error);
  }
  SUBCASE("a write through a view counts") {
    Tensor x = randn({2, 3}).requires_grad_();
    Tensor y = sigmoid(x);
    Tensor loss = sum(y);
    y.reshape({6}).copy_(zeros({6}));
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("sigmoid's saved output"), Error);
  }
}

TEST_CASE("an in-place write to a tensor no node saved is allowed") {
  // add and mul by a scalar need nothing of their input for backward.
  Tensor x = randn({5}).requires_grad_();
  Tensor h = add(mul(x.detach(), 1.0), 0.0).requires_grad_();  // a leaf that is written after use
  Tensor loss = sum(add(mul(h, 3.0), 2.0));
  h.fill_(7.0);
  loss.backward();
  CHECK(h.grad().to_vector<float>() == std::vector<float>(5, 3.0f));
  // relu keeps its output, not its input: the input may change.
  Tensor a = from_vector<float>({-1, 2, -3, 4}, {4}).requires_grad_();
  Tensor b = mul(a, 1.0);
  Tensor l2 = sum(relu(b));
  b.fill_(-5.0);
  l2.backward();
  CHECK(a.grad().to_vector<float>() == std::vector<float>{0, 1, 0, 1});
}

TEST_CASE("the graph keeps only what backward needs") {
  const int64_t n = 1 << 16;
  const size_t bytes = n * sizeof(float);
  Tensor x = randn({n}).requires_grad_();
  const size_t base = allocated();
  Tensor loss;
  {
    // mul and add by a scalar keep nothing; relu keeps its output (which
    // sum keeps no more of than its shape). So of the four intermediate
    // tensors, only relu's output outlives this scope.
    Tensor y = relu(add(mul(x, 2.0), 1.0));
    loss = sum(y);
  }
  CHECK(allocated() - base >= bytes);
  CHECK(allocated() - base < bytes + 64);  // relu's output and the scalar loss
  loss.backward();
  CHECK(x.grad().defined());
  loss = Tensor();
  x.zero_grad();
  CHECK(allocated() == base);
}

TEST_CASE("backward frees each node's saved tensors as soon as the node has run") {
  const int64_t n = 1 << 16, depth = 8;
  const size_t bytes = n * sizeof(float);
  Tensor x = randn({n}).requires_grad_();
  const size_t base = allocated();
  size_t at_probe = 0;
  Tensor loss;
  {
    // The probe is the first node of the chain, so its backward runs last:
    // by then every relu (each keeping its n-float output) has run.
    Tensor y = attach_grad(mul(x.detach(), 1.0), "probe", {x}, [&at_probe](const Tensor& g) -> std::vector<Tensor> {
      at_probe = allocated();
      return {g};
    });
    for (int64_t i = 0; i < depth; ++i) y = relu(y);
    loss = sum(y);
  }
  CHECK(allocated() - base >= depth * bytes);  // the eight saved outputs
  loss.backward();
  // Alive at the probe: the gradient reaching it, and at most the one that
  // made it; not the eight saved outputs.
  CHECK(at_probe - base <= 2 * bytes + 64);
}

TEST_CASE("retain_graph keeps the saved tensors for a second backward") {
  Tensor x = from_vector<double>({-1, 2, 3}, {3}).requires_grad_();
  Tensor loss = sum(mul(relu(x), x));  // d/dx = 2x where x > 0
  loss.backward({}, /*retain_graph=*/true);
  loss.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 8, 12});
  CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("already released"), Error);
}
