#include "layers/channel_shuffle.h"

#include "framework/ops/shape_ops.h"

namespace neurn {

ChannelShuffle::ChannelShuffle(int64_t groups) : groups_(groups) {
  NEURN_CHECK(groups > 0, "ChannelShuffle: groups must be positive, got ", groups);
}

Tensor ChannelShuffle::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4 && x.size(1) % groups_ == 0, "ChannelShuffle(", groups_,
              "): expected (N, C, H, W) with C divisible by ", groups_, ", got ", shape_str(x.shape()));
  int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  Tensor y = transpose(reshape(x, {n, groups_, c / groups_, h, w}), 1, 2);  // (N, k, g, H, W)
  return reshape(y, {n, c, h, w});
}

}  // namespace neurn
