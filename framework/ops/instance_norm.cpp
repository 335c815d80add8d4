// instance_norm, composed of ops that each have CPU and CUDA kernels and their
// own gradient checks: layer_norm over the spatial axes is exactly the
// per-plane normalisation; the per-channel affine is a broadcast multiply-add;
// eval with running statistics is batch_norm in eval mode (per-channel
// statistics, whatever the image).
#include "framework/ops/instance_norm.h"

#include "framework/autograd.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/norm.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

namespace {

void check_channel_tensor(const Tensor& p, const Tensor& x, const char* what) {
  if (!p.defined()) return;
  const int64_t c = x.size(1);
  NEURN_CHECK(p.dim() == 1 && p.size(0) == c, "instance_norm: ", what, " must have shape (", c, ") for input ",
              shape_str(x.shape()), ", got ", shape_str(p.shape()));
  NEURN_CHECK(p.dtype() == x.dtype() && p.device() == x.device(), "instance_norm: ", what, " is ",
              dtype_name(p.dtype()), " on ", p.device().str(), ", input is ", dtype_name(x.dtype()), " on ",
              x.device().str());
}

}  // namespace

Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                     const Tensor& running_var, bool use_input_stats, double momentum, double eps) {
  NEURN_CHECK(x.defined(), "instance_norm: undefined input");
  NEURN_CHECK(x.dim() >= 3, "instance_norm: input must be (N, C, *spatial) with a spatial axis, got ",
              shape_str(x.shape()));
  NEURN_CHECK(eps > 0, "instance_norm: eps must be > 0, got ", eps);
  NEURN_CHECK(running_mean.defined() == running_var.defined(),
              "instance_norm: running_mean and running_var must be both given or both undefined");
  check_channel_tensor(weight, x, "weight");
  check_channel_tensor(bias, x, "bias");
  check_channel_tensor(running_mean, x, "running_mean");
  check_channel_tensor(running_var, x, "running_var");
  const int64_t N = x.size(0), C = x.size(1), L = C == 0 || N == 0 ? 0 : x.numel() / (N * C);
  if (!use_input_stats) {
    NEURN_CHECK(running_mean.defined(), "instance_norm: use_input_stats=false needs running_mean and running_var");
    return batch_norm(x, weight, bias, running_mean, running_var, false, momentum, eps);
  }
  // PyTorch's rule: one value per plane has no spread to normalise by.
  NEURN_CHECK(L > 1 || x.device().is_meta(), "instance_norm: expected more than 1 spatial element per plane, got input ",
              shape_str(x.shape()));
  const int64_t spatial = x.dim() - 2;
  Tensor y = layer_norm(x, spatial, {}, {}, eps);
  if (weight.defined() || bias.defined()) {
    Shape cshape(static_cast<size_t>(x.dim()), 1);  // (1, C, 1, ...)
    cshape[1] = C;
    if (weight.defined()) y = mul(y, reshape(weight, cshape));
    if (bias.defined()) y = add(y, reshape(bias, cshape));
  }
  if (running_mean.defined() && !x.device().is_meta()) {
    NoGradGuard no_grad;
    Tensor planes = reshape(x.detach(), {N, C, L});                     // (N, C, L)
    Tensor mu = mean(planes, {2}, true);                                 // (N, C, 1)
    Tensor var = sum(square(sub(planes, mu)), {2}) / static_cast<double>(L - 1);  // (N, C), unbiased
    mul_(running_mean, 1.0 - momentum);
    add_(running_mean, mean(reshape(mu, {N, C}), {0}), momentum);
    mul_(running_var, 1.0 - momentum);
    add_(running_var, mean(var, {0}), momentum);
  }
  return y;
}

}  // namespace neurn
