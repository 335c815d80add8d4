#include "layers/dropout.h"

#include "framework/ops/loss.h"

namespace neurn {

Dropout::Dropout(double p, Generator* gen) : p_(p), gen_(gen) {
  NEURN_CHECK(p >= 0.0 && p < 1.0, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  return dropout(x, p_, true, gen_);
}

}  // namespace neurn
