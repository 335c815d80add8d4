#include "framework/ops/reduce.h"

#include <algorithm>
#include <limits>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/elementwise_cpu.h"
#include "framework/ops/shape_ops.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_reduce.h"
#endif

namespace neurn {

namespace {

struct ReducePlan {
  std::vector<bool> reduced;  // per input axis
  Shape keep_shape;           // reduced axes set to 1
  Shape out_shape;            // with or without them, per keepdim
  int64_t count = 1;          // elements per output
};

ReducePlan plan_reduce(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim, const char* op) {
  ReducePlan p;
  p.reduced.assign(static_cast<size_t>(x.dim()), axes.empty());
  for (int64_t a : axes) {
    int64_t n = normalize_axis(a, x.dim(), op);
    NEURN_CHECK(!p.reduced[n] || axes.empty(), op, ": axis ", a, " is listed twice");
    p.reduced[n] = true;
  }
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (p.reduced[i]) {
      p.count *= x.shape()[i];
      p.keep_shape.push_back(1);
      if (keepdim) p.out_shape.push_back(1);
    } else {
      p.keep_shape.push_back(x.shape()[i]);
      p.out_shape.push_back(x.shape()[i]);
    }
  }
  return p;
}

// Index over the input shape: operand 0 walks the input, operand 1 the output.
BroadcastIndex reduce_index(const Tensor& x, const ReducePlan& p) {
  const Shape* shapes[2] = {&x.shape(), &p.keep_shape};
  BroadcastIndex idx = cpu::make_broadcast_index(x.shape(), shapes, 2);
  return idx;
}

enum class RKind { Sum, Max };

// Fills out (keep_shape) and, for Max, the flat input index of each maximum.
void reduce_cpu(const Tensor& x, const ReducePlan& p, RKind kind, Tensor& out, std::vector<int64_t>* arg) {
  BroadcastIndex idx = reduce_index(x, p);
  dispatch_float(x.dtype(), "reduce", [&](auto z) {
    using T = decltype(z);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    int64_t n_out = out.numel();
    if (kind == RKind::Sum) {
      // Accumulate in double for float32 inputs too: sums of many floats.
      std::vector<double> acc(static_cast<size_t>(n_out), 0.0);
      cpu::for_each_broadcast(idx, [&](int64_t, int64_t i, int64_t o, int64_t) { acc[o] += px[i]; });
      for (int64_t o = 0; o < n_out; ++o) po[o] = static_cast<T>(acc[o]);
    } else {
      std::fill(po, po + n_out, -std::numeric_limits<T>::infinity());
      arg->assign(static_cast<size_t>(n_out), -1);
      cpu::for_each_broadcast(idx, [&](int64_t, int64_t i, int64_t o, int64_t) {
        // NaN propagates; the first maximum wins ties.
        if ((*arg)[o] < 0 || px[i] > po[o] || (px[i] != px[i] && po[o] == po[o])) {
          po[o] = px[i];
          (*arg)[o] = i;
        }
      });
    }
  });
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  ReducePlan p = plan_reduce(x, axes, keepdim, "sum");
  Tensor out = Tensor::empty(p.keep_shape, x.options());
  count_flops(x.numel());
  if (x.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
    cuda::reduce_sum(x, out);
#endif
  } else if (x.device().is_cpu()) {
    reduce_cpu(x, p, RKind::Sum, out, nullptr);
  }
  out = out.detach().reshape(p.out_shape);
  Shape in_shape = x.shape(), keep = p.keep_shape;
  return attach_grad(out, "sum", {x}, [in_shape, keep](const Tensor& g) -> std::vector<Tensor> {
    return {expand(reshape(g, keep), in_shape)};
  });
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  ReducePlan p = plan_reduce(x, axes, keepdim, "mean");
  NEURN_CHECK(p.count > 0, "mean: reducing ", shape_str(x.shape()), " over an empty axis");
  return mul(sum(x, axes, keepdim), 1.0 / static_cast<double>(p.count));
}

Tensor max(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) {
  ReducePlan p = plan_reduce(x, axes, keepdim, "max");
  NEURN_CHECK(p.count > 0, "max: reducing ", shape_str(x.shape()), " over an empty axis");
  Tensor out = Tensor::empty(p.keep_shape, x.options());
  count_flops(x.numel());
  if (x.device().is_meta()) return out.detach().reshape(p.out_shape);
  // The index of each maximum is kept for the backward as an int64 tensor.
  Tensor arg_t;
  if (x.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
    arg_t = Tensor::empty(p.keep_shape, {DType::Int64, x.device(), false});
    cuda::reduce_max(x, out, arg_t);
#endif
  } else {
    std::vector<int64_t> arg;
    reduce_cpu(x, p, RKind::Max, out, &arg);
    arg_t = from_vector(arg, p.keep_shape);
  }
  out = out.detach().reshape(p.out_shape);
  Shape in_shape = x.shape();
  DType dt = x.dtype();
  return attach_grad(out, "max", {x}, [in_shape, arg_t, dt](const Tensor& g) -> std::vector<Tensor> {
    Tensor dx = zeros(in_shape, g.options());
    if (g.device().is_cuda()) {
#ifdef NEURN_WITH_CUDA
      cuda::scatter_add_flat(g, arg_t, dx);
#endif
      return {dx};
    }
    dispatch_float(dt, "max", [&](auto z) {
      using T = decltype(z);
      const int64_t* a = arg_t.data<int64_t>();
      const T* pg = g.data<T>();
      T* pd = dx.data<T>();
      for (int64_t o = 0; o < arg_t.numel(); ++o) pd[a[o]] += pg[o];
    });
    return {dx};
  });
}

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  int64_t ax = normalize_axis(axis, x.dim(), "argmax");
  ReducePlan p = plan_reduce(x, {ax}, keepdim, "argmax");
  NEURN_CHECK(p.count > 0, "argmax: axis ", axis, " of ", shape_str(x.shape()), " is empty");
  if (x.device().is_meta()) return Tensor::empty(p.out_shape, {DType::Int64, x.device(), false});
  if (x.device().is_cuda()) {
    Tensor arg_t = Tensor::empty(p.keep_shape, {DType::Int64, x.device(), false});
#ifdef NEURN_WITH_CUDA
    cuda::argmax(x, ax, arg_t);
#endif
    return arg_t.reshape(p.out_shape);
  }
  Tensor vals = Tensor::empty(p.keep_shape, x.options());
  std::vector<int64_t> arg;
  reduce_cpu(x, p, RKind::Max, vals, &arg);
  // Flat input index -> index along the axis.
  auto strides = contiguous_strides(x.shape());
  for (auto& a : arg) a = (a / strides[ax]) % x.shape()[ax];
  return from_vector(arg, p.out_shape, {DType::Int64, x.device(), false});
}

}  // namespace neurn
