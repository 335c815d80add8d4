// Fake quantization (contract in quantize.h): the front functions check the
// arguments and call the kernel tables of quantize_kernels.h; the CPU kernels
// are here, the CUDA ones in framework/cuda/quantize.cu, both over
// quantize_math.h. The data-driven range is a one-element tensor on the
// input's device (max of |x| or x), read by the kernels: no host sync.
#include "framework/ops/quantize.h"

#include <cmath>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/quantize_kernels.h"
#include "framework/ops/quantize_math.h"
#include "framework/ops/reduce.h"

namespace neurn {

namespace {

// The range's one element as a double (0 when undefined: a fixed scale).
template <typename T>
double range_of(const Tensor& range) {
  return range.defined() ? static_cast<double>(range.data<T>()[0]) : 0.0;
}

void quantize_cpu(const QuantParams& p, const Tensor& range, const Tensor& x, const Tensor& y) {
  dispatch_float(x.dtype(), "fake_quantize", [&](auto z) {
    using T = decltype(z);
    const QuantGrid g = quant_grid(p, range_of<T>(range));
    const T* xs = x.data<T>();
    T* ys = y.data<T>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) ys[i] = g.identity ? xs[i] : quantize_value(xs[i], g.scale, g.qmin, g.qmax);
  });
}

void quantize_backward_cpu(const QuantParams& p, const Tensor& range, const Tensor& x, const Tensor& dy,
                           const Tensor& dx) {
  dispatch_float(x.dtype(), "fake_quantize backward", [&](auto z) {
    using T = decltype(z);
    const QuantGrid g = quant_grid(p, range_of<T>(range));
    const T* xs = x.data<T>();
    const T* gs = dy.data<T>();
    T* out = dx.data<T>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) out[i] = g.identity ? gs[i] : straight_through(xs[i], gs[i], g.lo, g.hi);
  });
}

void check_input(const Tensor& x) {
  NEURN_CHECK(x.defined(), "fake_quantize: undefined input");
  NEURN_CHECK(x.dtype() == DType::Float32 || x.dtype() == DType::Float64, "fake_quantize: float32 or float64 input, got ",
              dtype_name(x.dtype()));
}

// y = x on the grid of p and range (see quantize_kernels.h), with the
// straight-through gradient.
Tensor quantize_on_grid(const Tensor& x, const QuantParams& p, const Tensor& range) {
  count_flops(4 * x.numel());
  Tensor y = empty_like(x);
  if (x.numel() > 0) fake_quantize_kernel(x.device(), p, range, x, y);
  SavedTensor xs(x, "fake_quantize", "input");
  return attach_grad(y, "fake_quantize", {x}, [xs, p, range](const Tensor& dy) -> std::vector<Tensor> {
    const Tensor& xd = xs.get();
    Tensor dx = empty_like(xd);
    if (dx.numel() > 0) fake_quantize_backward_kernel(xd.device(), p, range, xd, dy, dx);
    return {dx};
  });
}

}  // namespace

NEURN_DEFINE_KERNEL(fake_quantize_kernel);
NEURN_DEFINE_KERNEL(fake_quantize_backward_kernel);
NEURN_REGISTER_KERNEL(fake_quantize_kernel, DeviceType::CPU, quantize_cpu);
NEURN_REGISTER_KERNEL(fake_quantize_backward_kernel, DeviceType::CPU, quantize_backward_cpu);

Tensor fake_quantize(const Tensor& x, double scale, int64_t qmin, int64_t qmax) {
  check_input(x);
  NEURN_CHECK(std::isfinite(scale) && scale > 0, "fake_quantize: scale must be positive and finite, got ", scale);
  NEURN_CHECK(qmin < qmax, "fake_quantize: qmin (", qmin, ") must be below qmax (", qmax, ")");
  QuantParams p;
  p.scale = scale, p.qmin = qmin, p.qmax = qmax;
  return quantize_on_grid(x, p, Tensor());
}

namespace {

Tensor quantize_range(const Tensor& x, int bits, bool symmetric) {
  NEURN_CHECK(bits >= 32 || (bits >= 2 && bits <= 16), "fake_quantize: bits must be 2..16 or 32 (full precision), got ",
              bits);
  if (bits >= 32) return x;
  check_input(x);
  const int64_t levels = symmetric ? (int64_t{1} << (bits - 1)) - 1 : (int64_t{1} << bits) - 1;
  QuantParams p;
  p.qmin = symmetric ? -levels : 0, p.qmax = levels, p.levels = levels;
  // max |x| (or max x) of the data, outside autograd, as a tensor on x's
  // device (0-d, x's dtype): the kernels divide it by `levels` themselves.
  Tensor range;
  {
    NoGradGuard no_grad;
    range = x.numel() > 0 ? max(symmetric ? abs(x) : x) : Tensor();
  }
  if (!range.defined()) p.levels = 0;  // empty x: nothing to read, any scale will do
  return quantize_on_grid(x, p, range);
}

}  // namespace

Tensor fake_quantize_symmetric(const Tensor& x, int bits) { return quantize_range(x, bits, true); }
Tensor fake_quantize_unsigned(const Tensor& x, int bits) { return quantize_range(x, bits, false); }

}  // namespace neurn
