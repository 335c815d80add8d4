#include "layers/init.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

namespace neurn {

namespace {
thread_local TensorOptions g_opt{};
thread_local Generator* g_gen = nullptr;
thread_local bool g_defer = false;

int64_t receptive_field(const Shape& s) {
  int64_t r = 1;
  for (size_t i = 2; i < s.size(); ++i) r *= s[i];
  return r;
}

// Writes f(counter) for counters base .. base + numel - 1 into t, the same
// values rand()/randn() give for that generator state. Large tensors are
// filled by several threads (VGG19's 103M-element layer otherwise dominates
// model construction).
template <typename F>
void draw(const Tensor& t, F f) {
  Generator& g = param_generator();
  uint64_t base = g.advance(static_cast<uint64_t>(t.numel()));
  if (t.device().is_meta() || t.numel() == 0) return;
  Tensor host = t.device().is_cpu() && (t.dtype() == DType::Float32 || t.dtype() == DType::Float64)
                    ? t
                    : Tensor::empty(t.shape(), {DType::Float64, Device::cpu(), false});
  int64_t n = host.numel();
  auto fill = [&, f](int64_t begin, int64_t end) mutable {  // each thread its own copy of f
    if (host.dtype() == DType::Float32) {
      float* p = static_cast<float*>(host.raw_data());
      for (int64_t i = begin; i < end; ++i) p[i] = static_cast<float>(f(base + static_cast<uint64_t>(i)));
    } else {
      double* p = static_cast<double*>(host.raw_data());
      for (int64_t i = begin; i < end; ++i) p[i] = f(base + static_cast<uint64_t>(i));
    }
  };
  int64_t threads = std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()), n >> 18);
  if (threads <= 1) {
    fill(0, n);
  } else {
    std::vector<std::thread> pool;
    int64_t per = (n + threads - 1) / threads;
    for (int64_t k = 1; k < threads; ++k) pool.emplace_back(fill, k * per, std::min(n, (k + 1) * per));  // copies
    fill(0, std::min(n, per));
    for (auto& th : pool) th.join();
  }
  if (!host.same(t)) t.copy_(host);
}

// Copies host values into t (any device and dtype).
void assign(const Tensor& t, const std::vector<double>& v) { t.copy_(from_vector(v, t.shape(), {DType::Float64})); }
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

DeferInit::DeferInit() : prev_(g_defer) { g_defer = true; }
DeferInit::~DeferInit() { g_defer = prev_; }

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
  if (g_defer) return zeros(shape, param_options());
  Tensor t = Tensor::empty(shape, param_options());
  uniform_(t, lo, hi);
  return t;
}

Tensor new_normal(const Shape& shape, double mean, double std) {
  if (g_defer) return zeros(shape, param_options());
  Tensor t = Tensor::empty(shape, param_options());
  normal_(t, mean, std);
  return t;
}

Tensor new_full(const Shape& shape, double value) { return full(shape, value, param_options()); }

Tensor new_kaiming_uniform(const Shape& shape, double a) {
  double gain = std::sqrt(2.0 / (1.0 + a * a));
  double bound = gain * std::sqrt(3.0 / static_cast<double>(fan_in(shape)));
  return new_uniform(shape, -bound, bound);
}

void uniform_(const Tensor& t, double lo, double hi) {
  uint64_t seed = param_generator().seed();
  draw(t, [=](uint64_t c) { return lo + (hi - lo) * counter_uniform(seed, c); });
}

void normal_(const Tensor& t, double mean, double std) {
  uint64_t seed = param_generator().seed();
  // Box-Muller gives two normals per pair of uniforms: counters 2k and 2k+1
  // share one pair (cosine and sine), half the hashing and logarithms of
  // counter_normal (the draw loop visits counters in order, so the pair is
  // computed once and reused).
  struct Pair {
    uint64_t k = ~0ull;
    double c = 0, s = 0;
  };
  draw(t, [=, cache = Pair{}](uint64_t c) mutable {
    uint64_t k = c >> 1;
    if (k != cache.k) {
      double u1 = counter_uniform(seed, 2 * k), u2 = counter_uniform(seed, 2 * k + 1);
      if (u1 < 1e-300) u1 = 1e-300;
      double r = std::sqrt(-2.0 * std::log(u1)), a = 6.283185307179586 * u2;
      cache = {k, r * std::cos(a), r * std::sin(a)};
    }
    return mean + std * ((c & 1) ? cache.s : cache.c);
  });
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
