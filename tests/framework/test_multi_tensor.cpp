// Multi-tensor apply (framework/optim/multi_tensor.h): the chunk list both
// backends launch over, and the CPU update of all parameters in one threaded
// loop against the per-parameter update and a serial element-by-element
// reference, bit for bit (the update is element-wise: no split may change a
// result).
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <memory>

#include "framework/ops.h"
#include "framework/optim/multi_tensor.h"
#include "framework/optim/optim.h"
#include "framework/optim/update_functors.h"
#include "gradcheck.h"

using namespace neurn;
using namespace neurn::testing;

TEST_CASE("chunk_tensors: consecutive ranges of at most `chunk` elements, none for empty tensors") {
  auto c = chunk_tensors({0, 5, 12, 1, 4}, 4);
  std::vector<std::array<int64_t, 3>> got;
  for (const TensorChunk& ch : c) got.push_back({ch.tensor, ch.begin, ch.end});
  std::vector<std::array<int64_t, 3>> want = {{1, 0, 4}, {1, 4, 5}, {2, 0, 4}, {2, 4, 8}, {2, 8, 12},
                                              {3, 0, 1}, {4, 0, 4}};
  CHECK(got == want);
  CHECK(chunk_tensors({}, 4).empty());
  CHECK(chunk_tensors({0, 0}).empty());
  // The default chunk: a large tensor spreads over many chunks that cover it exactly.
  auto big = chunk_tensors({3 * kMultiTensorChunk + 7});
  REQUIRE(big.size() == 4);
  CHECK(big.back().begin == 3 * kMultiTensorChunk);
  CHECK(big.back().end == 3 * kMultiTensorChunk + 7);
  CHECK_THROWS_CONTAINING(chunk_tensors({4}, 0), "chunk size 0 must be positive");
  CHECK_THROWS_CONTAINING(chunk_tensors({4, -1}, 2), "tensor 1 has a negative size -1");
}

namespace {

// Parameters of many sizes (empty, one element, around and across the chunk
// size) in two groups, float32 and float64 mixed (two buckets).
struct Params {
  std::vector<Tensor> a, b;
};

Params make_params(uint64_t seed) {
  Generator g(seed);
  Params ps;
  const std::vector<int64_t> sizes = {0, 1, 7, kMultiTensorChunk - 1, kMultiTensorChunk + 3, 3 * kMultiTensorChunk + 5,
                                      300};
  for (size_t i = 0; i < sizes.size(); ++i) {
    DType dt = i % 3 == 2 ? DType::Float64 : DType::Float32;
    Tensor t = randn({sizes[i]}, {dt}, &g);
    t.requires_grad_();
    (i % 2 ? ps.b : ps.a).push_back(t);
  }
  return ps;
}

std::vector<Tensor> all(const Params& p) {
  std::vector<Tensor> v = p.a;
  v.insert(v.end(), p.b.begin(), p.b.end());
  return v;
}

Params clone_params(const Params& p) {
  Params c;
  for (const Tensor& t : p.a) c.a.push_back(t.detach().clone().requires_grad_());
  for (const Tensor& t : p.b) c.b.push_back(t.detach().clone().requires_grad_());
  return c;
}

bool same_bits(const Tensor& x, const Tensor& y) {
  return x.dtype() == y.dtype() && x.numel() == y.numel() &&
         (x.numel() == 0 || std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()) == 0);
}

// The serial reference: each parameter element by element, with the step
// constants made the way the optimizer documents them.
struct Reference {
  int kind;  // 0 SGD, 1 SGD momentum + dampening, 2 Nesterov, 3 Adam, 4 AdamW
  double lr_a = 0.05, lr_b = 0.01, wd_a = 1e-3, wd_b = 0.0;
  std::vector<Tensor> p, b0, b1;
  std::vector<int64_t> steps;
  explicit Reference(int k, const std::vector<Tensor>& params) : kind(k) {
    for (const Tensor& t : params) {
      p.push_back(t.detach().clone());
      b0.push_back(zeros(t.shape(), {t.dtype()}));
      b1.push_back(zeros(t.shape(), {t.dtype()}));
      steps.push_back(0);
    }
  }
  void step(size_t i, const Tensor& g, bool group_a) {
    const double lr = group_a ? lr_a : lr_b, wd = group_a ? wd_a : wd_b;
    ++steps[i];
    dispatch_float(p[i].dtype(), "reference", [&](auto z) {
      using T = decltype(z);
      T *pp = p[i].data<T>(), *m = b0[i].data<T>(), *v = b1[i].data<T>();
      const T* pg = g.data<T>();
      for (int64_t e = 0; e < p[i].numel(); ++e) {
        if (kind <= 2) {
          SgdStep s{lr, kind == 0 ? 0.0 : 0.9, kind == 1 ? 0.1 : 0.0, wd, kind == 2, steps[i] == 1};
          sgd_update_element<T>(pp[e], pg[e], m + e, s);
        } else {
          AdamStep a{lr, 0.9, 0.999, 1e-8, wd, kind == 4, steps[i]};
          const double st = static_cast<double>(steps[i]);
          adam_update_element<T>(pp[e], pg[e], m[e], v[e], a, 1.0 - std::pow(0.9, st),
                                 std::sqrt(1.0 - std::pow(0.999, st)));
        }
      }
    });
  }
};

std::unique_ptr<Optimizer> make_optimizer(int kind, const Params& ps, const Reference& r) {
  std::vector<ParamGroup> groups = {ParamGroup{ps.a, r.lr_a, r.wd_a}, ParamGroup{ps.b, r.lr_b, r.wd_b}};
  switch (kind) {
    case 0: return std::make_unique<Sgd>(groups, SgdOptions{});
    case 1: return std::make_unique<Sgd>(groups, SgdOptions{.momentum = 0.9, .dampening = 0.1});
    case 2: return std::make_unique<Sgd>(groups, SgdOptions{.momentum = 0.9, .nesterov = true});
    case 3: return std::make_unique<Adam>(groups, AdamOptions{});
    default: return std::make_unique<AdamW>(groups, AdamWOptions{});
  }
}

}  // namespace

TEST_CASE("multi-tensor CPU updates equal the per-parameter update and the serial reference bit for bit") {
  for (int kind = 0; kind < 5; ++kind) {
    CAPTURE(kind);
    Params multi = make_params(21), single = clone_params(multi);
    std::vector<Tensor> pm = all(multi), psg = all(single);
    Reference ref(kind, pm);
    auto om = make_optimizer(kind, multi, ref), os = make_optimizer(kind, single, ref);
    CHECK(om->multi_tensor());
    os->set_multi_tensor(false);
    Generator g(5);
    for (int s = 0; s < 3; ++s) {
      for (size_t i = 0; i < pm.size(); ++i) {
        // Parameter 2 has no gradient on the first step: its Adam step count
        // (bias corrections) and SGD buffer start one step later than the others'.
        if (i == 2 && s == 0) continue;
        Tensor grad = randn(pm[i].shape(), {pm[i].dtype()}, &g);
        pm[i].set_grad(grad);
        psg[i].set_grad(grad.clone());
        ref.step(i, grad, i < multi.a.size());
      }
      const uint64_t v_before = pm[0].version();
      om->step();
      os->step();
      CHECK(pm[0].version() > v_before);  // the update marks the parameter as written
      for (size_t i = 0; i < pm.size(); ++i) {
        CAPTURE(i);
        CHECK(same_bits(pm[i].detach(), ref.p[i]));
        CHECK(same_bits(psg[i].detach(), ref.p[i]));
      }
      om->zero_grad();  // drops the gradients
      os->zero_grad();
    }
  }
}

TEST_CASE("multi-tensor updates: a gradient of another dtype or device is refused, naming the parameter") {
  Tensor p = randn({3}, {DType::Float32});
  p.requires_grad_();
  p.set_grad(randn({3}, {DType::Float64}));
  Sgd opt({p}, SgdOptions{});
  CHECK_THROWS_CONTAINING(opt.step(), "SGD: the gradient of parameter 0 is float64");
  Adam adam({p}, AdamOptions{});
  CHECK_THROWS_CONTAINING(adam.step(), "Adam: the gradient of parameter 0 is float64");
}
