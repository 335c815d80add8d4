#include "layers/lcn.h"

#include <cmath>
#include <vector>

namespace neurn {

Tensor lcn_window(int64_t channels, const LCNOptions& opt, DType dtype) {
  NEURN_CHECK(opt.kernel_size >= 1 && opt.kernel_size % 2 == 1, "LCN: kernel_size must be odd and >= 1, got ",
              opt.kernel_size);
  NEURN_CHECK(opt.sigma > 0, "LCN: sigma must be > 0, got ", opt.sigma);
  NEURN_CHECK(channels >= 1, "LCN: channels must be >= 1, got ", channels);
  const int64_t k = opt.kernel_size, r = k / 2;
  std::vector<double> w(static_cast<size_t>(channels * k * k));
  double total = 0;
  for (int64_t p = 0; p < k; ++p)
    for (int64_t q = 0; q < k; ++q) {
      double g = std::exp(-static_cast<double>((p - r) * (p - r) + (q - r) * (q - r)) / (2 * opt.sigma * opt.sigma));
      for (int64_t c = 0; c < channels; ++c) w[(c * k + p) * k + q] = g;
      total += g * static_cast<double>(channels);
    }
  for (double& v : w) v /= total;
  return from_vector(w, {1, channels, k, k}, {dtype});
}

Tensor local_contrast_norm(const Tensor& x, const Tensor& window, const LCNOptions& opt) {
  NEURN_CHECK(x.defined() && x.dim() == 4, "LCN: expected x of shape (N, C, H, W), got ",
              x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  NEURN_CHECK(window.dim() == 4 && window.size(1) == x.size(1), "LCN: window ", shape_str(window.shape()),
              " does not match the ", x.size(1), " channels of x ", shape_str(x.shape()));
  const int64_t r = window.size(2) / 2;
  Conv2dOptions co;
  co.padding = {r, r};
  // Weight of the in-image part of the window at each pixel (1 inside, less
  // near the border), to renormalize there; a constant, no gradient.
  Tensor coef;
  {
    NoGradGuard no_grad;
    coef = conv2d(ones({1, x.size(1), x.size(2), x.size(3)}, x.options()), window, {}, co);  // (1, 1, H, W)
  }
  Tensor local_mean = div(conv2d(x, window, {}, co), coef);  // (N, 1, H, W)
  Tensor v = sub(x, local_mean);
  Tensor sigma = sqrt(div(conv2d(square(v), window, {}, co), coef));  // (N, 1, H, W)
  Tensor m = add(mean(sigma, {1, 2, 3}, true), opt.eps);              // (N, 1, 1, 1)
  return div(v, maximum(sigma, m));
}

LocalContrastNorm::LocalContrastNorm(int64_t channels, LCNOptions opt) : channels_(channels), opt_(opt) {
  register_buffer("window", lcn_window(channels, opt_));
}

Tensor LocalContrastNorm::forward(const Tensor& x) {
  Tensor& w = buffer("window");
  Tensor win = w.dtype() == x.dtype() && w.device() == x.device() ? w : w.to(x.dtype()).to(x.device());
  return local_contrast_norm(x, win, opt_);
}

}  // namespace neurn
