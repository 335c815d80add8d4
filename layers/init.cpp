#include "layers/init.h"

#include <cmath>
#include <vector>

namespace neurn {

namespace {
thread_local TensorOptions g_opt{};
thread_local Generator* g_gen = nullptr;

int64_t receptive_field(const Shape& s) {
  int64_t r = 1;
  for (size_t i = 2; i < s.size(); ++i) r *= s[i];
  return r;
}

// Copies host values into t (any device and dtype).
void assign(const Tensor& t, const std::vector<double>& v) {
  t.copy_(from_vector(v, t.shape(), {DType::Float64}));
}
}  // namespace

ParamScope::ParamScope(TensorOptions opt, Generator* gen) : prev_opt_(g_opt), prev_gen_(g_gen) {
  opt.requires_grad = false;
  g_opt = opt;
  g_gen = gen ? gen : prev_gen_;
}

ParamScope::~ParamScope() {
  g_opt = prev_opt_;
  g_gen = prev_gen_;
}

TensorOptions param_options() { return g_opt; }
Generator& param_generator() { return g_gen ? *g_gen : default_generator(); }

int64_t fan_in(const Shape& s) {
  NEURN_CHECK(s.size() >= 2, "fan_in: a weight needs at least 2 axes, got ", shape_str(s));
  return s[1] * receptive_field(s);
}

int64_t fan_out(const Shape& s) {
  NEURN_CHECK(s.size() >= 2, "fan_out: a weight needs at least 2 axes, got ", shape_str(s));
  return s[0] * receptive_field(s);
}

Tensor new_uniform(const Shape& shape, double lo, double hi) {
  TensorOptions opt = param_options();
  if (opt.device.is_meta()) return Tensor::empty(shape, opt);
  return rand(shape, opt, &param_generator(), lo, hi);
}

Tensor new_normal(const Shape& shape, double mean, double std) {
  TensorOptions opt = param_options();
  if (opt.device.is_meta()) return Tensor::empty(shape, opt);
  return randn(shape, opt, &param_generator(), mean, std);
}

Tensor new_full(const Shape& shape, double value) { return full(shape, value, param_options()); }

Tensor new_kaiming_uniform(const Shape& shape, double a) {
  double gain = std::sqrt(2.0 / (1.0 + a * a));
  double bound = gain * std::sqrt(3.0 / static_cast<double>(fan_in(shape)));
  return new_uniform(shape, -bound, bound);
}

void uniform_(const Tensor& t, double lo, double hi) {
  if (t.device().is_meta()) return;
  t.copy_(rand(t.shape(), {DType::Float64}, &param_generator(), lo, hi));
}

void normal_(const Tensor& t, double mean, double std) {
  if (t.device().is_meta()) return;
  t.copy_(randn(t.shape(), {DType::Float64}, &param_generator(), mean, std));
}

void constant_(const Tensor& t, double value) { t.fill_(value); }

void kaiming_normal_(const Tensor& t, FanMode mode, double a) {
  double fan = static_cast<double>(mode == FanMode::FanIn ? fan_in(t.shape()) : fan_out(t.shape()));
  normal_(t, 0.0, std::sqrt(2.0 / (1.0 + a * a)) / std::sqrt(fan));
}

void kaiming_uniform_(const Tensor& t, FanMode mode, double a) {
  double fan = static_cast<double>(mode == FanMode::FanIn ? fan_in(t.shape()) : fan_out(t.shape()));
  double bound = std::sqrt(2.0 / (1.0 + a * a)) * std::sqrt(3.0 / fan);
  uniform_(t, -bound, bound);
}

void xavier_uniform_(const Tensor& t, double gain) {
  double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in(t.shape()) + fan_out(t.shape())));
  uniform_(t, -bound, bound);
}

void trunc_normal_(const Tensor& t, double std, double mean, double lo, double hi) {
  NEURN_CHECK(lo < hi, "trunc_normal_: empty interval [", lo, ", ", hi, "]");
  NEURN_CHECK(std > 0 && (lo - mean) / std < 5 && (hi - mean) / std > -5, "trunc_normal_: [", lo, ", ", hi,
              "] holds almost no mass of N(", mean, ", ", std, ")");
  if (t.device().is_meta()) return;
  Generator& g = param_generator();
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (auto& x : v) {
    // Rejection sampling; the interval always holds mass, so this ends (for
    // the usual +-2 std it keeps 95% of the draws).
    do x = mean + std * g.normal();
    while (x < lo || x > hi);
  }
  assign(t, v);
}

}  // namespace neurn
