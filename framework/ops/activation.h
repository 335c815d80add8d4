#pragma once
// Activations, element-wise, differentiable. At kinks the gradient is 0, as
// in PyTorch: relu at 0, relu6 at 0 and at 6.
#include "framework/tensor.h"

namespace neurn {

enum class GeluApprox { None, Tanh };  // erf form, or the tanh approximation

Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor silu(const Tensor& x);  // x * sigmoid(x), a.k.a. swish
Tensor gelu(const Tensor& x, GeluApprox approx = GeluApprox::None);
Tensor hardswish(const Tensor& x);    // x * relu6(x + 3) / 6
Tensor hardsigmoid(const Tensor& x);  // relu6(x + 3) / 6

}  // namespace neurn
