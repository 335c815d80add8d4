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
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/reduce.h"
#include "framework/random.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_loss.h"
#endif

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

template <typename T>
void softmax_cpu(const T* x, T* y, const Slices& sl, bool log_out) {
  const int64_t st = sl.inner;
  // Slices are independent: split them over threads.
  cpu::parallel_for(sl.outer * sl.inner, 8 * sl.dim, [&](int64_t begin, int64_t end) {
    for (int64_t s_idx = begin; s_idx < end; ++s_idx) {
      const int64_t o = s_idx / sl.inner, in = s_idx % sl.inner;
      const T* xs = x + o * sl.dim * sl.inner + in;
      T* ys = y + o * sl.dim * sl.inner + in;
      T m = -std::numeric_limits<T>::infinity();
      for (int64_t d = 0; d < sl.dim; ++d) m = std::max(m, xs[d * st]);
      if (m == -std::numeric_limits<T>::infinity()) m = 0;  // an all -inf slice: avoid inf - inf
      T s = 0;
      if (log_out) {
        for (int64_t d = 0; d < sl.dim; ++d) s += std::exp(xs[d * st] - m);
        T shift = m + std::log(s);
        for (int64_t d = 0; d < sl.dim; ++d) ys[d * st] = xs[d * st] - shift;
      } else {
        for (int64_t d = 0; d < sl.dim; ++d) {
          T e = std::exp(xs[d * st] - m);
          ys[d * st] = e;
          s += e;
        }
        T inv = T(1) / s;
        for (int64_t d = 0; d < sl.dim; ++d) ys[d * st] *= inv;
      }
    }
  });
}

template <typename T>
void softmax_backward_cpu(const T* y, const T* g, T* dx, const Slices& sl, bool log_out) {
  const int64_t st = sl.inner;
  cpu::parallel_for(sl.outer * sl.inner, 4 * sl.dim, [&](int64_t begin, int64_t end) {
    for (int64_t s_idx = begin; s_idx < end; ++s_idx) {
      int64_t base = (s_idx / sl.inner) * sl.dim * sl.inner + s_idx % sl.inner;
      const T *ys = y + base, *gs = g + base;
      T* ds = dx + base;
      T s = 0;
      if (log_out) {
        for (int64_t d = 0; d < sl.dim; ++d) s += gs[d * st];
        for (int64_t d = 0; d < sl.dim; ++d) ds[d * st] = gs[d * st] - std::exp(ys[d * st]) * s;
      } else {
        for (int64_t d = 0; d < sl.dim; ++d) s += gs[d * st] * ys[d * st];
        for (int64_t d = 0; d < sl.dim; ++d) ds[d * st] = ys[d * st] * (gs[d * st] - s);
      }
    }
  });
}

Tensor softmax_run(const Tensor& x, const Slices& sl, bool log_out, const char* op) {
  Tensor y = Tensor::empty(x.shape(), x.options());
  if (x.device().is_meta() || x.numel() == 0) return y;
  if (x.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
    cuda::softmax_forward(x.dtype(), x.raw_data(), y.raw_data(), sl.outer, sl.dim, sl.inner, log_out);
#endif
    return y;
  }
  dispatch_float(x.dtype(), op, [&](auto z) {
    using T = decltype(z);
    softmax_cpu<T>(x.data<T>(), y.data<T>(), sl, log_out);
  });
  return y;
}

Tensor softmax_common(const Tensor& x, int64_t axis, bool log_out, const char* op) {
  check_float(x, op);
  Tensor xs = x.dim() == 0 ? x.reshape({1}) : x;
  int64_t a = axis_of(axis, xs, op);
  Slices sl = slices_of(xs.shape(), a);
  count_flops(4 * x.numel());  // max, exp, sum, normalise
  Tensor y = softmax_run(xs, sl, log_out, op).reshape(x.shape());
  SavedTensor ys(y, op, "output");
  return attach_grad(y, op, {x}, [ys, sl, log_out, op](const Tensor& g) -> std::vector<Tensor> {
    const Tensor& yd = ys.get();
    Tensor dx = Tensor::empty(g.shape(), g.options());
    if (g.numel() == 0) return {dx};
    if (g.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
      cuda::softmax_backward(g.dtype(), yd.raw_data(), g.raw_data(), dx.raw_data(), sl.outer, sl.dim, sl.inner,
                             log_out);
#endif
      return {dx};
    }
    dispatch_float(g.dtype(), op, [&](auto z) {
      using T = decltype(z);
      softmax_backward_cpu<T>(yd.data<T>(), g.data<T>(), dx.data<T>(), sl, log_out);
    });
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
  if (target.device().is_cpu()) {
    const int64_t* t = target.data<int64_t>();
    int64_t c = x.shape()[1];
    for (int64_t i = 0; i < target.numel(); ++i)
      NEURN_CHECK(t[i] >= 0 && t[i] < c, op, ": target ", t[i], " at position ", i, " is outside [0, ", c,
                  ") for ", x_name, " ", shape_str(x.shape()));
  }
#ifdef NEURN_WITH_CUDA
  if (target.device().is_cuda()) {  // the same check on the device (one flag copied back)
    int64_t c = x.shape()[1], value = 0;
    int64_t i =
        cuda::first_target_out_of_range(static_cast<const int64_t*>(target.raw_data()), target.numel(), c, &value);
    NEURN_CHECK(i < 0, op, ": target ", value, " at position ", i, " is outside [0, ", c, ") for ", x_name, " ",
                shape_str(x.shape()));
  }
#endif
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
  if (log_probs.device().is_meta()) {
    return reduction == Reduction::None ? rows : Tensor::empty({}, log_probs.options());
  }
  if (log_probs.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
    cuda::nll_loss_forward(log_probs.dtype(), log_probs.raw_data(), target.data<int64_t>(), rows.raw_data(), n, c);
#endif
  } else {
    dispatch_float(log_probs.dtype(), "nll_loss", [&](auto z) {
      using T = decltype(z);
      const T* lp = log_probs.data<T>();
      const int64_t* t = target.data<int64_t>();
      T* pr = rows.data<T>();
      for (int64_t i = 0; i < n; ++i) pr[i] = -lp[i * c + t[i]];
    });
  }
  Tensor out = reduce_rows(rows, reduction);
  SavedTensor ts(target, "nll_loss", "target");
  double scale = row_scale(reduction, n);
  int64_t stride = reduction == Reduction::None ? 1 : 0;
  return attach_grad(out, "nll_loss", {log_probs}, [ts, n, c, scale, stride](const Tensor& g) -> std::vector<Tensor> {
    const Tensor& td = ts.get();
    Tensor dx = Tensor::empty({n, c}, g.options());
    if (dx.numel() == 0) return {dx};
    if (g.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
      cuda::nll_loss_backward(g.dtype(), static_cast<const int64_t*>(td.raw_data()),
                              g.raw_data(), stride, scale, dx.raw_data(), n, c);
#endif
      return {dx};
    }
    dispatch_float(g.dtype(), "nll_loss", [&](auto z) {
      using T = decltype(z);
      const int64_t* t = td.data<int64_t>();
      const T* pg = g.data<T>();
      T* pd = dx.data<T>();
      std::fill(pd, pd + n * c, T(0));
      for (int64_t i = 0; i < n; ++i) pd[i * c + t[i]] = -static_cast<T>(scale) * pg[i * stride];
    });
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
  if (logits.device().is_meta()) {
    return reduction == Reduction::None ? rows : Tensor::empty({}, logits.options());
  }
  const double eps = label_smoothing;
  if (logits.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
    cuda::cross_entropy_forward(logits.dtype(), logits.raw_data(), static_cast<const int64_t*>(target.raw_data()),
                                rows.raw_data(), lse.raw_data(), n, c, eps);
#endif
  } else {
    dispatch_float(logits.dtype(), "cross_entropy", [&](auto z) {
      using T = decltype(z);
      const T* x = logits.data<T>();
      const int64_t* t = target.data<int64_t>();
      T *pr = rows.data<T>(), *pl = lse.data<T>();
      cpu::parallel_for(n, 8 * c, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const T* xi = x + i * c;
        T m = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j < c; ++j) m = std::max(m, xi[j]);
        T s = 0, sx = 0;
        for (int64_t j = 0; j < c; ++j) {
          s += std::exp(xi[j] - m);
          sx += xi[j];
        }
        T l = m + std::log(s);
        pl[i] = l;
        pr[i] = l - static_cast<T>(1.0 - eps) * xi[t[i]] - static_cast<T>(eps / static_cast<double>(c)) * sx;
      }
      });
    });
  }
  Tensor out = reduce_rows(rows, reduction);
  SavedTensor xs(logits, "cross_entropy", "logits"), ts(target, "cross_entropy", "target");
  double scale = row_scale(reduction, n);
  int64_t stride = reduction == Reduction::None ? 1 : 0;
  return attach_grad(out, "cross_entropy", {logits},
                     [xs, ts, lse, n, c, eps, scale, stride](const Tensor& g) -> std::vector<Tensor> {
                       const Tensor &xd = xs.get(), &td = ts.get();
                       Tensor dx = Tensor::empty({n, c}, g.options());
                       if (dx.numel() == 0) return {dx};
                       if (g.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
                         cuda::cross_entropy_backward(g.dtype(), xd.raw_data(),
                                                      static_cast<const int64_t*>(td.raw_data()), lse.raw_data(),
                                                      g.raw_data(), stride, scale, dx.raw_data(), n, c, eps);
#endif
                         return {dx};
                       }
                       dispatch_float(g.dtype(), "cross_entropy", [&](auto z) {
                         using T = decltype(z);
                         const T *x = xd.data<T>(), *pl = lse.data<T>(), *pg = g.data<T>();
                         const int64_t* t = td.data<int64_t>();
                         T* pd = dx.data<T>();
                         const T smooth = static_cast<T>(eps / static_cast<double>(c));
                         cpu::parallel_for(n, 8 * c, [&](int64_t begin, int64_t end) {
                           for (int64_t i = begin; i < end; ++i) {
                             T gi = static_cast<T>(scale) * pg[i * stride];
                             const T* xi = x + i * c;
                             T* di = pd + i * c;
                             for (int64_t j = 0; j < c; ++j) di[j] = gi * (std::exp(xi[j] - pl[i]) - smooth);
                             di[t[i]] -= gi * static_cast<T>(1.0 - eps);
                           }
                         });
                       });
                       return {dx};
                     });
}

namespace {

// Applies the dropout mask of (seed, offset) with `scale` to src (forward and
// backward are the same map).
Tensor dropout_apply(const Tensor& src, double p, double scale, uint64_t seed, uint64_t offset, bool backward) {
  Tensor out = Tensor::empty(src.shape(), src.options());
  if (src.numel() == 0) return out;
  if (src.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
    if (backward)
      cuda::dropout_backward(src.dtype(), src.raw_data(), out.raw_data(), src.numel(), p, scale, seed, offset);
    else
      cuda::dropout_forward(src.dtype(), src.raw_data(), out.raw_data(), src.numel(), p, scale, seed, offset);
#endif
    return out;
  }
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
  return out;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_float(x, "dropout");
  NEURN_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability ", p, " is outside [0, 1]");
  if (!training || p == 0.0) return x;
  count_flops(x.numel());
  if (x.device().is_meta()) return Tensor::empty(x.shape(), x.options());
  Generator& g = gen ? *gen : default_generator();
  uint64_t seed = g.seed();
  uint64_t offset = g.advance(static_cast<uint64_t>(x.numel()));
  double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  Tensor y = dropout_apply(x, p, scale, seed, offset, false);
  return attach_grad(y, "dropout", {x}, [p, scale, seed, offset](const Tensor& gy) -> std::vector<Tensor> {
    return {dropout_apply(gy, p, scale, seed, offset, true)};
  });
}

}  // namespace neurn
