#include "layers/linear.h"

#include <cmath>

#include "framework/ops/linalg.h"
#include "layers/init.h"

namespace neurn {

Linear::Linear(int64_t in_features, int64_t out_features, bool bias) : in_(in_features), out_(out_features) {
  NEURN_CHECK(in_ > 0 && out_ > 0, "Linear: sizes must be positive, got ", in_, " -> ", out_);
  register_parameter("weight", new_kaiming_uniform({out_, in_}, std::sqrt(5.0)));
  if (bias) {
    double bound = 1.0 / std::sqrt(static_cast<double>(in_));
    register_parameter("bias", new_uniform({out_}, -bound, bound));
  }
}

void Linear::reset_parameters() {
  kaiming_uniform_(param("weight"), FanMode::FanIn, std::sqrt(5.0));
  if (has_param("bias")) {
    double bound = 1.0 / std::sqrt(static_cast<double>(in_));
    uniform_(param("bias"), -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() >= 1 && x.size(-1) == in_, "Linear(", in_, " -> ", out_, "): expected input (..., ", in_,
              "), got ", shape_str(x.shape()));
  return linear(x, param("weight"), has_param("bias") ? param("bias") : Tensor());
}

}  // namespace neurn
