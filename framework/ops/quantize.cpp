#include "framework/ops/quantize.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/quantize_math.h"
#include "framework/ops/reduce.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_quantize.h"
#endif

namespace neurn {

namespace {

template <typename T>
void quantize_cpu(const Tensor& x, const Tensor& y, double scale, double qmin, double qmax) {
  const T* xs = x.data<T>();
  T* ys = y.data<T>();
  for (int64_t i = 0, n = x.numel(); i < n; ++i) ys[i] = quantize_value(xs[i], scale, qmin, qmax);
}

template <typename T>
void straight_through_cpu(const Tensor& x, const Tensor& dy, const Tensor& dx, double lo, double hi) {
  const T* xs = x.data<T>();
  const T* g = dy.data<T>();
  T* out = dx.data<T>();
  for (int64_t i = 0, n = x.numel(); i < n; ++i) out[i] = straight_through(xs[i], g[i], lo, hi);
}

bool is_double(const Tensor& t) { return t.dtype() == DType::Float64; }

}  // namespace

Tensor fake_quantize(const Tensor& x, double scale, int64_t qmin, int64_t qmax) {
  NEURN_CHECK(x.defined(), "fake_quantize: undefined input");
  NEURN_CHECK(x.dtype() == DType::Float32 || x.dtype() == DType::Float64, "fake_quantize: float32 or float64 input, got ",
              dtype_name(x.dtype()));
  NEURN_CHECK(std::isfinite(scale) && scale > 0, "fake_quantize: scale must be positive and finite, got ", scale);
  NEURN_CHECK(qmin < qmax, "fake_quantize: qmin (", qmin, ") must be below qmax (", qmax, ")");
  count_flops(4 * x.numel());
  Tensor y = empty_like(x);
  const double lo = static_cast<double>(qmin) * scale, hi = static_cast<double>(qmax) * scale;
  if (x.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
    cuda::fake_quantize_forward(x.raw_data(), y.raw_data(), x.numel(), is_double(x), scale, qmin, qmax);
#endif
  } else if (x.device().is_cpu()) {
    if (is_double(x))
      quantize_cpu<double>(x, y, scale, static_cast<double>(qmin), static_cast<double>(qmax));
    else
      quantize_cpu<float>(x, y, scale, static_cast<double>(qmin), static_cast<double>(qmax));
  }
  SavedTensor xs(x, "fake_quantize", "input");
  return attach_grad(y, "fake_quantize", {x}, [xs, lo, hi](const Tensor& dy) -> std::vector<Tensor> {
    const Tensor& x = xs.get();
    Tensor g = dy;
    Tensor dx = empty_like(x);
    if (x.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
      cuda::fake_quantize_backward(x.raw_data(), g.raw_data(), dx.raw_data(), x.numel(), is_double(x), lo, hi);
#endif
    } else if (x.device().is_cpu()) {
      if (is_double(x))
        straight_through_cpu<double>(x, g, dx, lo, hi);
      else
        straight_through_cpu<float>(x, g, dx, lo, hi);
    }
    return {dx};
  });
}

namespace {

// max |x| (or max x) of the data, outside autograd; 0 on the meta device.
double data_max(const Tensor& x, bool absolute) {
  if (x.device().is_meta()) return 0;
  NoGradGuard no_grad;
  return max(absolute ? abs(x) : x).item();
}

Tensor quantize_range(const Tensor& x, int bits, bool symmetric) {
  NEURN_CHECK(bits >= 32 || (bits >= 2 && bits <= 16), "fake_quantize: bits must be 2..16 or 32 (full precision), got ",
              bits);
  if (bits >= 32) return x;
  const int64_t levels = symmetric ? (int64_t{1} << (bits - 1)) - 1 : (int64_t{1} << bits) - 1;
  if (x.device().is_meta()) return fake_quantize(x, 1.0, symmetric ? -levels : 0, levels);  // shape and FLOPs
  double m = data_max(x, symmetric);
  if (!(m > 0)) return x;  // all zero (or, unsigned, nothing positive): nothing to quantize
  return fake_quantize(x, m / static_cast<double>(levels), symmetric ? -levels : 0, levels);
}

}  // namespace

Tensor fake_quantize_symmetric(const Tensor& x, int bits) { return quantize_range(x, bits, true); }
Tensor fake_quantize_unsigned(const Tensor& x, int bits) { return quantize_range(x, bits, false); }

}  // namespace neurn
