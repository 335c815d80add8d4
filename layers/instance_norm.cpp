#include "layers/instance_norm.h"

#include "framework/ops/instance_norm.h"
#include "layers/init.h"

namespace neurn {

InstanceNorm2d::InstanceNorm2d(int64_t channels, const InstanceNormSpec& spec) : channels_(channels), spec_(spec) {
  NEURN_CHECK(channels > 0, "InstanceNorm2d: channels must be positive, got ", channels);
  if (spec_.affine) {
    register_parameter("weight", new_full({channels}, 1.0));
    register_parameter("bias", new_full({channels}, 0.0));
  }
  if (spec_.track_running_stats) {
    register_buffer("running_mean", new_full({channels}, 0.0));
    register_buffer("running_var", new_full({channels}, 1.0));
    TensorOptions opt = param_options();
    opt.dtype = DType::Int64;
    register_buffer("num_batches_tracked", zeros({}, opt));
  }
}

Tensor InstanceNorm2d::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4 && x.size(1) == channels_, "InstanceNorm2d(", channels_, "): expected input (N, ",
              channels_, ", H, W), got ", shape_str(x.shape()));
  Tensor w = spec_.affine ? param("weight") : Tensor();
  Tensor b = spec_.affine ? param("bias") : Tensor();
  if (!spec_.track_running_stats) return instance_norm(x, w, b, {}, {}, true, spec_.momentum, spec_.eps);
  // torch registers num_batches_tracked here but never advances it (it has no
  // cumulative-average momentum for instance norm): neither does neurn.
  return instance_norm(x, w, b, buffer("running_mean"), buffer("running_var"), is_training(), spec_.momentum,
                       spec_.eps);
}

}  // namespace neurn
