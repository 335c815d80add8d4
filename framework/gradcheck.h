#pragma once
// Gradient checking: analytic gradients against central differences in
// float64, through a random projection of the output (L = sum(f(x) * R)),
// with a tolerance scaled to the values. The op tests use it, and so can a
// user's own op or layer (examples/custom_op).
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "framework/ops.h"

namespace neurn {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckResult {
  bool ok = true;
  std::string message;
};

// inputs: float64 CPU tensors; those with requires_grad are checked.
inline GradcheckResult gradcheck(const OpFn& f, std::vector<Tensor> inputs, double eps = 1e-6, double atol = 1e-6,
                                 double rtol = 1e-4, uint64_t seed = 1234) {
  GradcheckResult res;
  for (auto& t : inputs)
    if (t.defined() && t.requires_grad()) t.zero_grad();
  Tensor out = f(inputs);
  Generator gen(seed);
  Tensor R = randn(out.shape(), {DType::Float64}, &gen);
  Tensor loss = sum(mul(out, R));
  loss.backward();
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor analytic = x.grad();
    if (!analytic.defined()) {
      res.ok = false;
      res.message += "input " + std::to_string(k) + " received no gradient\n";
      continue;
    }
    std::vector<double> an = analytic.to_vector<double>();
    double* px = x.data<double>();
    NoGradGuard ng;
    for (int64_t i = 0; i < x.numel(); ++i) {
      double orig = px[i];
      px[i] = orig + eps;
      double lp = sum(mul(f(inputs), R)).item();
      px[i] = orig - eps;
      double lm = sum(mul(f(inputs), R)).item();
      px[i] = orig;
      double num = (lp - lm) / (2 * eps);
      double tol = atol + rtol * std::max(std::abs(num), std::abs(an[i]));
      if (!(std::abs(num - an[i]) <= tol)) {
        res.ok = false;
        if (res.message.size() < 2000)
          res.message += "input " + std::to_string(k) + " element " + std::to_string(i) + ": analytic " +
                         std::to_string(an[i]) + ", numeric " + std::to_string(num) + "\n";
      }
    }
  }
  return res;
}

// Backward must add into gradients that are already there.
inline bool accumulates(const OpFn& f, std::vector<Tensor> inputs) {
  for (auto& t : inputs)
    if (t.defined() && t.requires_grad()) t.zero_grad();
  Generator gen(7);
  Tensor out = f(inputs);
  Tensor R = randn(out.shape(), {DType::Float64}, &gen);
  sum(mul(out, R)).backward();
  std::vector<std::vector<double>> first;
  for (auto& t : inputs)
    first.push_back(t.defined() && t.requires_grad() ? t.grad().to_vector<double>() : std::vector<double>{});
  sum(mul(f(inputs), R)).backward();
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (first[k].empty()) continue;
    auto second = inputs[k].grad().to_vector<double>();
    for (size_t i = 0; i < second.size(); ++i)
      if (std::abs(second[i] - 2 * first[k][i]) > 1e-9 * (1 + std::abs(second[i]))) return false;
  }
  return true;
}

// A float64 leaf with values drawn uniformly from [lo, hi).
inline Tensor leaf(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Generator g(seed);
  Tensor t = rand(s, {DType::Float64}, &g, lo, hi);
  t.requires_grad_();
  return t;
}

// Values away from kinks: |x| >= margin (for relu-like ops at 0).
inline Tensor leaf_away_from(const Shape& s, uint64_t seed, std::vector<double> kinks, double margin = 0.05) {
  Generator g(seed);
  Tensor t = rand(s, {DType::Float64}, &g, -3.0, 3.0);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i)
    for (double k : kinks)
      if (std::abs(p[i] - k) < margin) p[i] = k + (p[i] >= k ? margin : -margin) * 2;
  t.requires_grad_();
  return t;
}

}  // namespace neurn
