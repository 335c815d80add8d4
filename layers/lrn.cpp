#include "layers/lrn.h"

namespace neurn {

Tensor local_response_norm(const Tensor& x, const LRNOptions& opt) {
  NEURN_CHECK(x.defined() && x.dim() == 4, "LRN: expected x of shape (N, C, H, W), got ",
              x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  NEURN_CHECK(opt.size >= 1, "LRN: size must be >= 1, got ", opt.size);
  NEURN_CHECK(opt.k > 0 || opt.alpha > 0, "LRN: k + alpha * (...) must stay positive (k = ", opt.k,
              ", alpha = ", opt.alpha, ")");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  // Sum of squares over the channel window: channels become the rows of a
  // (N, 1, C, H*W) image, zero-padded above and below, then averaged by an
  // (n, 1) window (divides by n: that is the alpha / n).
  Tensor sq = reshape(square(x), {N, 1, C, H * W});
  sq = pad(sq, {0, 0, opt.size / 2, (opt.size - 1) / 2}, PadMode::Zero);
  Pool2dOptions po;
  po.kernel = {opt.size, 1};
  po.stride = {1, 1};
  Tensor avg = reshape(avg_pool2d(sq, po), {N, C, H, W});
  Tensor div = pow(add(mul(avg, opt.alpha), opt.k), opt.beta);
  return neurn::div(x, div);
}

LocalResponseNorm::LocalResponseNorm(LRNOptions opt) : opt_(opt) {
  NEURN_CHECK(opt_.size >= 1, "LocalResponseNorm: size must be >= 1, got ", opt_.size);
}

Tensor LocalResponseNorm::forward(const Tensor& x) { return local_response_norm(x, opt_); }

}  // namespace neurn
