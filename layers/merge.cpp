#include "layers/merge.h"

#include "framework/ops/elementwise.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

Tensor residual_add(const Tensor& a, const Tensor& b) {
  NEURN_CHECK(a.shape() == b.shape(), "residual_add: branch shapes differ: ", shape_str(a.shape()), " and ",
              shape_str(b.shape()));
  LayerTrace::record("Add");
  return add(a, b);
}

Tensor channel_concat(const std::vector<Tensor>& xs) {
  NEURN_CHECK(!xs.empty(), "channel_concat: no tensors");
  LayerTrace::record("Concat");
  return concat(xs, 1);
}

Residual::Residual(ModulePtr body, ModulePtr shortcut) {
  NEURN_CHECK(body != nullptr, "Residual: the body is null");
  body_ = register_module("body", std::move(body));
  if (shortcut) shortcut_ = register_module("shortcut", std::move(shortcut));
}

Tensor Residual::forward(const Tensor& x) {
  Tensor y = (*body_)(x);
  return residual_add(y, shortcut_ ? (*shortcut_)(x) : x);
}

}  // namespace neurn
