#include "layers/stochastic_depth.h"

#include "framework/ops/elementwise.h"
#include "framework/ops/loss.h"

namespace neurn {

StochasticDepth::StochasticDepth(double p, Generator* gen) : p_(0.0), gen_(gen) { set_p(p); }

void StochasticDepth::set_p(double p) {
  NEURN_CHECK(p >= 0.0 && p <= 1.0, "StochasticDepth: p must be in [0, 1], got ", p);
  p_ = p;
}

Tensor StochasticDepth::forward(const Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  NEURN_CHECK(x.dim() >= 1, "StochasticDepth: expected a batch (N, ...), got a scalar");
  Shape s(x.shape().size(), 1);
  s[0] = x.size(0);
  // one draw per sample: 0 or 1 / (1 - p), (N, 1, ..., 1)
  Tensor keep = dropout(ones(s, x.options()), p_, true, gen_);
  return mul(x, keep);
}

}  // namespace neurn
