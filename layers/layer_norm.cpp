#include "layers/layer_norm.h"

#include "framework/ops/norm.h"
#include "layers/init.h"

namespace neurn {

LayerNorm::LayerNorm(Shape normalized_shape, double eps, bool affine)
    : shape_(std::move(normalized_shape)), eps_(eps), affine_(affine) {
  NEURN_CHECK(!shape_.empty() && shape_numel(shape_) > 0, "LayerNorm: normalized_shape must be non-empty, got ",
              shape_str(shape_));
  if (affine_) {
    register_parameter("weight", new_full(shape_, 1.0));
    register_parameter("bias", new_full(shape_, 0.0));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  int64_t k = static_cast<int64_t>(shape_.size());
  bool ok = x.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = x.size(x.dim() - k + i) == shape_[i];
  NEURN_CHECK(ok, "LayerNorm", shape_str(shape_), ": input ", shape_str(x.shape()), " does not end with ",
              shape_str(shape_));
  return layer_norm(x, k, affine_ ? param("weight") : Tensor(), affine_ ? param("bias") : Tensor(), eps_);
}

}  // namespace neurn
