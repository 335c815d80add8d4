#include "layers/batch_norm.h"

#include "framework/ops/norm.h"
#include "layers/init.h"

namespace neurn {

BatchNorm2d::BatchNorm2d(int64_t channels, const BatchNormSpec& spec) : channels_(channels), spec_(spec) {
  NEURN_CHECK(channels > 0, "BatchNorm2d: channels must be positive, got ", channels);
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

BatchNorm2d::BatchNorm2d(int64_t channels, double eps, double momentum)
    : BatchNorm2d(channels, BatchNormSpec{eps, momentum, true, true}) {}

Tensor BatchNorm2d::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() >= 2 && x.size(1) == channels_, "BatchNorm2d(", channels_, "): expected input (N, ", channels_,
              ", ...), got ", shape_str(x.shape()));
  Tensor w = spec_.affine ? param("weight") : Tensor();
  Tensor b = spec_.affine ? param("bias") : Tensor();
  if (!spec_.track_running_stats) return batch_norm(x, w, b, {}, {}, true, spec_.momentum, spec_.eps);
  if (is_training()) {
    Tensor& n = buffer("num_batches_tracked");
    if (n.device().is_cpu()) {
      ++n.data<int64_t>()[0];
    } else if (!n.device().is_meta()) {
      Tensor host = n.cpu();
      ++host.data<int64_t>()[0];
      n.copy_(host);
    }
  }
  return batch_norm(x, w, b, buffer("running_mean"), buffer("running_var"), is_training(), spec_.momentum, spec_.eps);
}

}  // namespace neurn
