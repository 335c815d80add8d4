#include "layers/pooling.h"

namespace neurn {

namespace {
Pool2dOptions make(int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode, bool count_include_pad) {
  NEURN_CHECK(kernel > 0 && stride >= 0 && padding >= 0, "pooling layer: kernel ", kernel, ", stride ", stride,
              ", padding ", padding, " (expected kernel > 0, stride >= 0, padding >= 0)");
  Pool2dOptions o;
  o.kernel = {kernel, kernel};
  o.stride = {stride, stride};
  o.padding = {padding, padding};
  o.ceil_mode = ceil_mode;
  o.count_include_pad = count_include_pad;
  return o;
}
}  // namespace

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode)
    : opt_(make(kernel, stride, padding, ceil_mode, true)) {}

AvgPool2d::AvgPool2d(int64_t kernel, int64_t stride, int64_t padding, bool ceil_mode, bool count_include_pad)
    : opt_(make(kernel, stride, padding, ceil_mode, count_include_pad)) {}

Tensor GlobalAvgPool::forward(const Tensor& x) {
  Tensor y = global_avg_pool2d(x);  // (N, C)
  return keepdim_ ? y.reshape({y.size(0), y.size(1), 1, 1}) : y;
}

}  // namespace neurn
