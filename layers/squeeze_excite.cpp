#include "layers/squeeze_excite.h"

#include "framework/ops/elementwise.h"
#include "layers/activation.h"
#include "layers/conv.h"
#include "layers/pooling.h"

namespace neurn {

SqueezeExcite::SqueezeExcite(int64_t channels, int64_t squeeze_channels, ModulePtr activation,
                             ModulePtr scale_activation)
    : channels_(channels) {
  avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  fc1_ = register_module("fc1", std::make_shared<Conv2d>(channels, squeeze_channels, 1));
  fc2_ = register_module("fc2", std::make_shared<Conv2d>(squeeze_channels, channels, 1));
  act_ = register_module("activation", activation ? activation : std::make_shared<ReLU>());
  scale_ = register_module("scale_activation", scale_activation ? scale_activation : std::make_shared<Sigmoid>());
}

Tensor SqueezeExcite::forward(const Tensor& x) {
  Tensor s = (*scale_)((*fc2_)((*act_)((*fc1_)((*avgpool_)(x)))));  // (N, C, 1, 1)
  LayerTrace::record("Multiply");
  return mul(x, s);
}

}  // namespace neurn
