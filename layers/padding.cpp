#include "layers/padding.h"

#include "framework/ops/shape_ops.h"

namespace neurn {

ZeroPad2d::ZeroPad2d(int64_t left, int64_t right, int64_t top, int64_t bottom) : pads_{left, right, top, bottom} {
  for (int64_t p : pads_)
    NEURN_CHECK(p >= 0, "ZeroPad2d: paddings must be >= 0, got ", left, ", ", right, ", ", top, ", ", bottom);
}

Tensor ZeroPad2d::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() >= 2, "ZeroPad2d: expected at least 2 axes, got ", shape_str(x.shape()));
  return pad(x, pads_, PadMode::Zero, 0.0);
}

}  // namespace neurn
