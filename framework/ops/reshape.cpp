// reshape, flatten, squeeze, unsqueeze (views: they share storage) and
// expand (a broadcast copy).
#include <cstring>

#include "framework/autograd.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/elementwise_cpu.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      NEURN_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      NEURN_CHECK(s[i] >= 0, "reshape: invalid size in ", shape_str(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    NEURN_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot reshape ", shape_str(x.shape()), " (",
                x.numel(), " elements) into ", shape_str(shape));
    s[infer] = x.numel() / known;
  }
  NEURN_CHECK(shape_numel(s) == x.numel(), "reshape: cannot reshape ", shape_str(x.shape()), " (", x.numel(),
              " elements) into ", shape_str(shape));
  if (s == x.shape()) return x;
  Tensor out = Tensor::from_storage(x.storage(), s, x.dtype());
  Shape in_shape = x.shape();
  return attach_grad(out, "reshape", {x}, [in_shape](const Tensor& g) -> std::vector<Tensor> {
    return {reshape(g, in_shape)};
  });
}

Tensor Tensor::reshape(const Shape& s) const { return neurn::reshape(*this, s); }

Tensor flatten(const Tensor& x, int64_t start_axis, int64_t end_axis) {
  if (x.dim() == 0) return reshape(x, {1});
  int64_t s = normalize_axis(start_axis, x.dim(), "flatten");
  int64_t e = normalize_axis(end_axis, x.dim(), "flatten");
  NEURN_CHECK(s <= e, "flatten: start axis ", start_axis, " is after end axis ", end_axis, " for ", shape_str(x.shape()));
  Shape out;
  int64_t merged = 1;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i < s || i > e) {
      out.push_back(x.shape()[i]);
    } else {
      merged *= x.shape()[i];
      if (i == e) out.push_back(merged);
    }
  }
  return reshape(x, out);
}

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  int64_t a = normalize_axis(axis, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(s.begin() + a, 1);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, int64_t axis) {
  int64_t a = normalize_axis(axis, x.dim(), "squeeze");
  NEURN_CHECK(x.shape()[a] == 1, "squeeze: axis ", axis, " of ", shape_str(x.shape()), " has size ", x.shape()[a],
              ", not 1");
  Shape s = x.shape();
  s.erase(s.begin() + a);
  return reshape(x, s);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Shape out_shape = broadcast_shapes(x.shape(), shape, "expand");
  NEURN_CHECK(out_shape == shape, "expand: ", shape_str(x.shape()), " cannot be expanded to ", shape_str(shape));
  if (out_shape == x.shape()) return x;
  Tensor out = Tensor::empty(out_shape, x.options());
  if (x.device().is_cpu() && out.numel() > 0) {
    const Shape* shapes[1] = {&x.shape()};
    BroadcastIndex idx = cpu::make_broadcast_index(out_shape, shapes, 1);
    size_t es = dtype_size(x.dtype());
    const char* src = static_cast<const char*>(x.raw_data());
    char* dst = static_cast<char*>(out.raw_data());
    if (es == 4) {
      auto* s = reinterpret_cast<const uint32_t*>(src);
      auto* d = reinterpret_cast<uint32_t*>(dst);
      cpu::for_each_broadcast(idx, [&](int64_t o, int64_t i, int64_t, int64_t) { d[o] = s[i]; });
    } else if (es == 8) {
      auto* s = reinterpret_cast<const uint64_t*>(src);
      auto* d = reinterpret_cast<uint64_t*>(dst);
      cpu::for_each_broadcast(idx, [&](int64_t o, int64_t i, int64_t, int64_t) { d[o] = s[i]; });
    } else {
      cpu::for_each_broadcast(idx, [&](int64_t o, int64_t i, int64_t, int64_t) {
        std::memcpy(dst + o * es, src + i * es, es);
      });
    }
  } else if (x.device().is_cuda()) {
    // x + zeros(shape) broadcasts on the device with the element-wise kernels.
    NoGradGuard ng;
    Tensor z = zeros(shape, x.options());
    out = add(z, x);
  }
  Shape in_shape = x.shape();
  return attach_grad(out, "expand", {x}, [in_shape](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to_shape(g, in_shape)};
  });
}

}  // namespace neurn
