#pragma once
// What the Keras Applications models share: Keras's batch norm defaults and
// its initialisation, Glorot-uniform kernels and zero biases.
#include <cmath>
#include <memory>

#include "layers/batch_norm.h"
#include "layers/conv.h"
#include "layers/init.h"

namespace neurn {

// BatchNormalization(epsilon = eps, momentum = 0.99): PyTorch momentum 0.01.
inline std::shared_ptr<BatchNorm2d> keras_batch_norm(int64_t channels, double eps = 1e-3) {
  return std::make_shared<BatchNorm2d>(channels, eps, 0.01);
}

// Glorot-uniform kernels of every Conv, DepthwiseConv and Linear below `m`,
// zero biases. Keras's depthwise kernel is (k, k, C, multiplier), so its
// fans are k^2 C and k^2 multiplier, not those of the (C m, 1, k, k) layout.
inline void keras_glorot_init(Module& root) {
  root.apply([](const std::string&, Module& m) {
    std::string t = m.type();
    if (t != "Conv" && t != "DepthwiseConv" && t != "GroupConv" && t != "Linear") return;
    Tensor& w = m.param("weight");
    if (t == "DepthwiseConv") {
      const Conv2dSpec& s = static_cast<Conv2d&>(m).spec();
      double k2 = static_cast<double>(s.kernel[0] * s.kernel[1]);
      double mult = static_cast<double>(s.out_channels / s.in_channels);
      double limit = std::sqrt(6.0 / (k2 * static_cast<double>(s.in_channels) + k2 * mult));
      uniform_(w, -limit, limit);
    } else {
      xavier_uniform_(w);
    }
    if (m.has_param("bias")) constant_(m.param("bias"), 0.0);
  });
}

}  // namespace neurn
