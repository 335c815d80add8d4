#include "layers/same_pool.h"

#include <limits>

#include "framework/ops/elementwise.h"
#include "framework/ops/pool.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

namespace {
// TensorFlow's "same": (before, after) padding of an axis of size n.
std::pair<int64_t, int64_t> same_pads(int64_t n, int64_t kernel, int64_t stride) {
  int64_t out = (n + stride - 1) / stride;
  int64_t total = std::max<int64_t>((out - 1) * stride + kernel - n, 0);
  return {total / 2, total - total / 2};
}
}  // namespace

SamePool2d::SamePool2d(PoolKind kind, int64_t kernel, int64_t stride) : kind_(kind), kernel_(kernel), stride_(stride) {
  NEURN_CHECK(kernel > 0 && stride > 0, "SamePool2d: kernel (", kernel, ") and stride (", stride, ") must be positive");
}

Tensor SamePool2d::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4, "SamePool2d: expected (N, C, H, W), got ", shape_str(x.shape()));
  auto [top, bottom] = same_pads(x.size(2), kernel_, stride_);
  auto [left, right] = same_pads(x.size(3), kernel_, stride_);
  std::vector<int64_t> pads = {left, right, top, bottom};
  Pool2dOptions opt{.kernel = {kernel_, kernel_}, .stride = {stride_, stride_}};
  bool padded = top + bottom + left + right > 0;
  if (kind_ == PoolKind::Max)
    return max_pool2d(padded ? pad(x, pads, PadMode::Zero, -std::numeric_limits<double>::infinity()) : x, opt);
  if (!padded) return avg_pool2d(x, opt);
  // the zero-padded window mean, divided by the fraction of the window inside the image
  Tensor inside = avg_pool2d(pad(ones({1, 1, x.size(2), x.size(3)}, x.options()), pads), opt);  // (1, 1, H', W')
  return div(avg_pool2d(pad(x, pads), opt), inside);
}

}  // namespace neurn
