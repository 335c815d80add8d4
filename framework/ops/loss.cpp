// softmax, log_softmax, nll_loss, cross_entropy (fused log-softmax + NLL with
// label smoothing) and dropout. Each slice is handled in one sweep of the
// row: max, then sum of exp, then the write, so the row stays in cache.
#include "framework/ops/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/loss_kernels.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/reduce.h"
#include "framework/ops/softmax_math.h"
#include "framework/random.h"

namespace neurn {

namespace {

int64_t axis_of(int64_t axis, const Tensor& x, const char* op) {
  int64_t n = x.dim();
  NEURN_CHECK(axis >= -n && axis < n, op, ": axis ", axis, " is out of range for a tensor of shape ",
              shape_str(x.shape()), " (expected ", -n, " <= axis < ", n, ")");
  return axis < 0 ? axis + n : axis;
}

void check_float(const Tensor& x, const char* op) {
  NEURN_CHECK(x.defined(), op, ": undefined input");
  NEURN_CHECK(x.dtype() == DType::Float32 || x.dtype() == DType::Float64, op, ": dtype ", dtype_name(x.dtype()),
              " of ", shape_str(x.shape()), " is not supported (expected float32 or float64)");
}

// x viewed as (outer, dim, inner) around `axis`.
struct Slices {
  int64_t outer = 1, dim = 1, inner = 1;
};

Slices slices_of(const Shape& s, int64_t axis) {
  Slices r;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
    if (i < axis) r.outer *= s[i];
    else if (i == axis) r.dim = s[i];
    else r.inner *= s[i];
  }
  return r;
}

// ---- CPU kernels ------------------------------------------------------------------

// The slices [begin, end) of x viewed as (outer, dim, inner). A contiguous
// slice (inner == 1) is passed with a literal stride so its loops vectorise.
template <typename T>
void softmax_slices(const T* px, T* py, int64_t begin, int64_t end, int64_t dim, int64_t inner, bool log_out) {
  for (int64_t s = begin; s < end; ++s) {
    const int64_t base = (s / inner) * dim * inner + s % inner;
    if (inner == 1) softmax_slice<T>(px + base, py + base, dim, 1, log_out);
    else softmax_slice<T>(px + base, py + base, dim, inner, log_out);
  }
}

template <typename T>
void softmax_backward_slices(const T* py, const T* pg, T* pd, int64_t begin, int64_t end, int64_t dim, int64_t inner,
                             bool log_out) {
  for (int64_t s = begin; s < end; ++s) {
    const int64_t base = (s / inner) * dim * inner + s % inner;
    if (inner == 1) softmax_backward_slice<T>(py + base, pg + base, pd + base, dim, 1, log_out);
    else softmax_backward_slice<T>(py + base, pg + base, pd + base, dim, inner, log_out);
  }
}

// One copy of the loops per instruction set, picked once at load time for the
// CPU that runs them (GCC's function multiversioning). "avx2" adds no FMA, so
// both copies do the same IEEE operations in the same order: the same bits
// on every machine, twice the vector width where AVX2 exists.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NEURN_CPU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NEURN_CPU_CLONES
#endif

NEURN_CPU_CLONES void softmax_slices_f32(const float* px, float* py, int64_t begin, int64_t end, int64_t dim,
                                         int64_t inner, bool log_out) {
  softmax_slices<float>(px, py, begin, end, dim, inner, log_out);
}
NEURN_CPU_CLONES void softmax_slices_f64(const double* px, double* py, int64_t begin, int64_t end, int64_t dim,
                                         int64_t inner, bool log_out) {
  softmax_slices<double>(px, py, begin, end, dim, inner, log_out);
}
NEURN_CPU_CLONES void softmax_backward_slices_f32(const float* py, const float* pg, float* pd, int64_t begin,
                                                  int64_t end, int64_t dim, int64_t inner, bool log_out) {
  softmax_backward_slices<float>(py, pg, pd, begin, end, dim, inner, log_out);
}
NEURN_CPU_CLONES void softmax_backward_slices_f64(const double* py, const double* pg, double* pd, int64_t begin,
                                                  int64_t end, int64_t dim, int64_t inner, bool log_out) {
  softmax_backward_slices<double>(py, pg, pd, begin, end, dim, inner, log_out);
}

void run_slices(const float* px, float* py, int64_t b, int64_t e, int64_t d, int64_t i, bool l) {
  softmax_slices_f32(px, py, b, e, d, i, l);
}
void run_slices(const double* px, double* py, int64_t b, int64_t e, int64_t d, int64_t i, bool l) {
  softmax_slices_f64(px, py, b, e, d, i, l);
}
void run_backward_slices(const float* py, const float* pg, float* pd, int64_t b, int64_t e, int64_t d, int64_t i,
                         bool l) {
  softmax_backward_slices_f32(py, pg, pd, b, e, d, i, l);
}
void run_backward_slices(const double* py, const double* pg, double* pd, int64_t b, int64_t e, int64_t d, int64_t i,
                         bool l) {
  softmax_backward_slices_f64(py, pg, pd, b, e, d, i, l);
}

// Slices are independent: split them over threads.
void softmax_cpu(const Tensor& x, const Tensor& y, int64_t outer, int64_t dim, int64_t inner, bool log_out) {
  dispatch_float(x.dtype(), log_out ? "log_softmax" : "softmax", [&](auto z) {
    using T = decltype(z);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    cpu::parallel_for(outer * inner, 8 * dim, [&](int64_t begin, int64_t end) {
      run_slices(px, py, begin, end, dim, inner, log_out);
    });
  });
}

void softmax_backward_cpu(const Tensor& y, const Tensor& g, const Tensor& dx, int64_t outer, int64_t dim,
                          int64_t inner, bool log_out) {
  dispatch_float(y.dtype(), log_out ? "log_softmax backward" : "softmax backward", [&](auto z) {
    using T = decltype(z);
    const T *py = y.data<T>(), *pg = g.data<T>();
    T* pd = dx.data<T>();
    cpu::parallel_for(outer * inner, 4 * dim, [&](int64_t begin, int64_t end) {
      run_backward_slices(py, pg, pd, begin, end, dim, inner, log_out);
    });
  });
}

int64_t target_check_cpu(const Tensor& target, int64_t c, int64_t* value) {
  const int64_t* t = target.data<int64_t>();
  for (int64_t i = 0; i < target.numel(); ++i)
    if (t[i] < 0 || t[i] >= c) {
      *value = t[i];
      return i;
    }
  return -1;
}

// A meta target has no values to check.
int64_t target_check_meta(const Tensor&, int64_t, int64_t*) { return -1; }

void nll_forward_cpu(const Tensor& log_probs, const Tensor& target, const Tensor& rows) {
  dispatch_float(log_probs.dtype(), "nll_loss", [&](auto z) {
    using T = decltype(z);
    const int64_t n = log_probs.size(0), c = log_probs.size(1);
    const T* lp = log_probs.data<T>();
    const int64_t* t = target.data<int64_t>();
    T* pr = rows.data<T>();
    for (int64_t i = 0; i < n; ++i) pr[i] = -lp[i * c + t[i]];
  });
}

void nll_backward_cpu(const Tensor& target, const Tensor& grad, int64_t stride, double scale, const Tensor& dx) {
  dispatch_float(grad.dtype(), "nll_loss backward", [&](auto z) {
    using T = decltype(z);
    const int64_t n = dx.size(0), c = dx.size(1);
    const int64_t* t = target.data<int64_t>();
    const T* pg = grad.data<T>();
    T* pd = dx.data<T>();
    std::fill(pd, pd + n * c, T(0));
    for (int64_t i = 0; i < n; ++i) pd[i * c + t[i]] = -static_cast<T>(scale) * pg[i * stride];
  });
}

void cross_entropy_forward_cpu(const Tensor& logits, const Tensor& target, const Tensor& rows, const Tensor& lse,
                               double eps) {
  dispatch_float(logits.dtype(), "cross_entropy", [&](auto z) {
    using T = decltype(z);
    const int64_t n = logits.size(0), c = logits.size(1);
    const T* x = logits.data<T>();
    const int64_t* t = target.data<int64_t>();
    T *pr = rows.data<T>(), *pl = lse.data<T>();
    const T keep = static_cast<T>(1.0 - eps), smooth = static_cast<T>(eps / static_cast<double>(c));
    cpu::parallel_for(n, 8 * c, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const T* xi = x + i * c;
        const T l = log_sum_exp<T>(xi, c, 1);
        pl[i] = l;
        pr[i] = cross_entropy_row_loss<T>(l, xi[t[i]], sum_lanes<T>(xi, nullptr, c, 1), keep, smooth);
      }
    });
  });
}

void cross_entropy_backward_cpu(const Tensor& logits, const Tensor& target, const Tensor& lse, const Tensor& grad,
                                int64_t stride, double scale, const Tensor& dx, double eps) {
  dispatch_float(grad.dtype(), "cross_entropy backward", [&](auto z) {
    using T = decltype(z);
    const int64_t n = dx.size(0), c = dx.size(1);
    const T *x = logits.data<T>(), *pl = lse.data<T>(), *pg = grad.data<T>();
    const int64_t* t = target.data<int64_t>();
    T* pd = dx.data<T>();
    const T keep = static_cast<T>(1.0 - eps), smooth = static_cast<T>(eps / static_cast<double>(c));
    cpu::parallel_for(n, 8 * c, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const T gi = static_cast<T>(scale) * pg[i * stride];
        const T* xi = x + i * c;
        T* di = pd + i * c;
        for (int64_t j = 0; j < c; ++j) di[j] = cross_entropy_grad_at<T>(xi[j], pl[i], gi, smooth, keep, false);
        di[t[i]] -= gi * keep;
      }
    });
  });
}

void dropout_cpu(const Tensor& src, const Tensor& out, double p, double scale, uint64_t seed, uint64_t offset) {
  dispatch_float(src.dtype(), "dropout", [&](auto z) {
    using T = decltype(z);
    const T* s = src.data<T>();
    T* o = out.data<T>();
    const T sc = static_cast<T>(scale);
    cpu::parallel_for(src.numel(), 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        o[i] = counter_uniform(seed, offset + static_cast<uint64_t>(i)) >= p ? s[i] * sc : T(0);
    });
  });
}

Tensor softmax_run(const Tensor& x, const Slices& sl, bool log_out) {
  Tensor y = Tensor::empty(x.shape(), x.options());
  if (x.numel() > 0) softmax_kernel(x.device(), x, y, sl.outer, sl.dim, sl.inner, log_out);
  return y;
}

Tensor softmax_common(const Tensor& x, int64_t axis, bool log_out, const char* op) {
  check_float(x, op);
  Tensor xs = x.dim() == 0 ? x.reshape({1}) : x;
  int64_t a = axis_of(axis, xs, op);
  Slices sl = slices_of(xs.shape(), a);
  count_flops(4 * x.numel());  // max, exp, sum, normalise
  Tensor y = softmax_run(xs, sl, log_out).reshape(x.shape());
  SavedTensor ys(y, op, "output");
  return attach_grad(y, op, {x}, [ys, sl, log_out](const Tensor& g) -> std::vector<Tensor> {
    const Tensor& yd = ys.get();
    Tensor dx = Tensor::empty(g.shape(), g.options());
    if (g.numel() > 0) softmax_backward_kernel(g.device(), yd, g, dx, sl.outer, sl.dim, sl.inner, log_out);
    return {dx};
  });
}

// Shared checks of nll_loss and cross_entropy: x (N, C), target int64 (N).
void check_classification(const Tensor& x, const Tensor& target, const char* op, const char* x_name) {
  check_float(x, op);
  NEURN_CHECK(target.defined(), op, ": undefined target");
  NEURN_CHECK(x.dim() == 2, op, ": ", x_name, " must be (N, C), got ", shape_str(x.shape()));
  NEURN_CHECK(target.dtype() == DType::Int64, op, ": target must hold int64 class indices, got ",
              dtype_name(target.dtype()), " ", shape_str(target.shape()));
  NEURN_CHECK(target.dim() == 1 && target.shape()[0] == x.shape()[0], op, ": target ", shape_str(target.shape()),
              " does not match ", x_name, " ", shape_str(x.shape()), " (expected (", x.shape()[0], ",))");
  NEURN_CHECK(target.device() == x.device(), op, ": target is on ", target.device().str(), ", ", x_name, " on ",
              x.device().str());
  const int64_t c = x.shape()[1];
  int64_t value = 0;
  const int64_t i = target_check_kernel(target.device(), target, c, &value);
  NEURN_CHECK(i < 0, op, ": target ", value, " at position ", i, " is outside [0, ", c, ") for ", x_name, " ",
              shape_str(x.shape()));
}

// Per-row losses (N) -> the requested reduction; the upstream gradient of
// the result maps back to rows as grad[i * stride] * scale.
Tensor reduce_rows(const Tensor& rows, Reduction r) {
  if (r == Reduction::None) return rows;
  NoGradGuard ng;
  Tensor s = sum(rows);
  return r == Reduction::Mean ? mul(s, 1.0 / static_cast<double>(rows.numel())) : s;
}

double row_scale(Reduction r, int64_t n) { return r == Reduction::Mean ? 1.0 / static_cast<double>(n) : 1.0; }

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) { return softmax_common(x, axis, false, "softmax"); }
Tensor log_softmax(const Tensor& x, int64_t axis) { return softmax_common(x, axis, true, "log_softmax"); }

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction) {
  check_classification(log_probs, target, "nll_loss", "log_probs");
  int64_t n = log_probs.shape()[0], c = log_probs.shape()[1];
  count_flops(n);
  Tensor rows = Tensor::empty({n}, log_probs.options());
  if (n > 0) nll_forward_kernel(log_probs.device(), log_probs, target, rows);
  Tensor out = reduce_rows(rows, reduction);
  SavedTensor ts(target, "nll_loss", "target");
  double scale = row_scale(reduction, n);
  int64_t stride = reduction == Reduction::None ? 1 : 0;
  return attach_grad(out, "nll_loss", {log_probs}, [ts, n, c, scale, stride](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = Tensor::empty({n, c}, g.options());
    if (dx.numel() > 0) nll_backward_kernel(g.device(), ts.get(), g, stride, scale, dx);
    return {dx};
  });
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing, Reduction reduction) {
  check_classification(logits, target, "cross_entropy", "logits");
  NEURN_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, "cross_entropy: label_smoothing ", label_smoothing,
              " is outside [0, 1]");
  int64_t n = logits.shape()[0], c = logits.shape()[1];
  count_flops(5 * n * c);  // log-softmax and the weighted sum
  Tensor rows = Tensor::empty({n}, logits.options());
  Tensor lse = Tensor::empty({n}, logits.options());
  const double eps = label_smoothing;
  if (n > 0) cross_entropy_forward_kernel(logits.device(), logits, target, rows, lse, eps);
  Tensor out = reduce_rows(rows, reduction);
  SavedTensor xs(logits, "cross_entropy", "logits"), ts(target, "cross_entropy", "target");
  double scale = row_scale(reduction, n);
  int64_t stride = reduction == Reduction::None ? 1 : 0;
  return attach_grad(out, "cross_entropy", {logits},
                     [xs, ts, lse, n, c, eps, scale, stride](const Tensor& g) -> std::vector<Tensor> {
                       Tensor dx = Tensor::empty({n, c}, g.options());
                       if (dx.numel() > 0)
                         cross_entropy_backward_kernel(g.device(), xs.get(), ts.get(), lse, g, stride, scale, dx, eps);
                       return {dx};
                     });
}

namespace {

// Applies the dropout mask of (seed, offset) with `scale` to src (forward and
// backward are the same map).
Tensor dropout_apply(const Tensor& src, double p, double scale, uint64_t seed, uint64_t offset) {
  Tensor out = Tensor::empty(src.shape(), src.options());
  if (src.numel() > 0) dropout_kernel(src.device(), src, out, p, scale, seed, offset);
  return out;
}

}  // namespace

NEURN_DEFINE_KERNEL(softmax_kernel);
NEURN_DEFINE_KERNEL(softmax_backward_kernel);
NEURN_DEFINE_KERNEL(target_check_kernel);
NEURN_DEFINE_KERNEL(nll_forward_kernel);
NEURN_DEFINE_KERNEL(nll_backward_kernel);
NEURN_DEFINE_KERNEL(cross_entropy_forward_kernel);
NEURN_DEFINE_KERNEL(cross_entropy_backward_kernel);
NEURN_DEFINE_KERNEL(dropout_kernel);
NEURN_REGISTER_KERNEL(softmax_kernel, DeviceType::CPU, softmax_cpu);
NEURN_REGISTER_KERNEL(softmax_backward_kernel, DeviceType::CPU, softmax_backward_cpu);
NEURN_REGISTER_KERNEL(target_check_kernel, DeviceType::CPU, target_check_cpu);
NEURN_REGISTER_KERNEL(target_check_kernel, DeviceType::Meta, target_check_meta);
NEURN_REGISTER_KERNEL(nll_forward_kernel, DeviceType::CPU, nll_forward_cpu);
NEURN_REGISTER_KERNEL(nll_backward_kernel, DeviceType::CPU, nll_backward_cpu);
NEURN_REGISTER_KERNEL(cross_entropy_forward_kernel, DeviceType::CPU, cross_entropy_forward_cpu);
NEURN_REGISTER_KERNEL(cross_entropy_backward_kernel, DeviceType::CPU, cross_entropy_backward_cpu);
NEURN_REGISTER_KERNEL(dropout_kernel, DeviceType::CPU, dropout_cpu);

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_float(x, "dropout");
  NEURN_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability ", p, " is outside [0, 1]");
  if (!training || p == 0.0) return x;
  count_flops(x.numel());
  Generator& g = gen ? *gen : default_generator();
  uint64_t seed = g.seed();
  uint64_t offset = g.advance(static_cast<uint64_t>(x.numel()));
  double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  Tensor y = dropout_apply(x, p, scale, seed, offset);
  return attach_grad(y, "dropout", {x}, [p, scale, seed, offset](const Tensor& gy) -> std::vector<Tensor> {
    return {dropout_apply(gy, p, scale, seed, offset)};
  });
}

}  // namespace neurn
