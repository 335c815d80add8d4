#pragma once
#include "layers/module.h"

namespace neurn {

// Normalises over the trailing axes `normalized_shape`; parameters "weight"
// (ones) and "bias" (zeros) of that shape when affine. Token "LayerNorm".
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool affine = true);
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true) : LayerNorm(Shape{dim}, eps, affine) {}
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "LayerNorm"; }

 private:
  Shape shape_;
  double eps_;
  bool affine_;
};

}  // namespace neurn
