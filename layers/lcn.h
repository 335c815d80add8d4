#pragma once
// Local contrast normalization (Jarrett, Kavukcuoglu, Ranzato, LeCun, "What is
// the best multi-stage architecture for object recognition?", ICCV 2009,
// section 2): subtractive, then divisive normalization with a normalized
// Gaussian window w (sum over channels and positions = 1):
//   v = x - sum_{c,p,q} w_pq x_{c, i+p, j+q}
//   y = v / max(m, sigma),  sigma_ij = sqrt(sum_{c,p,q} w_pq v^2_{c, i+p, j+q})
// with m the mean of sigma over the image. Near the border the window is
// renormalized over the in-image pixels (as Torch's SpatialContrastive-
// Normalization does), and m gets + eps so a blank image gives 0, not NaN.
// A baseline to compare NeuRN with. Token "LCN".
#include "layers/module.h"

namespace neurn {

struct LCNOptions {
  int64_t kernel_size = 9;  // Jarrett et al.: 9 x 9
  double sigma = 2.0;       // std of the Gaussian in pixels (pylearn2's lecun_lcn uses 2 for 9 x 9)
  double eps = 1e-6;
};

class LocalContrastNorm : public Module {
 public:
  LocalContrastNorm(int64_t channels, LCNOptions opt = {});
  Tensor forward(const Tensor& x) override;  // (N, C, H, W) -> (N, C, H, W)
  std::string type() const override { return "LCN"; }

 private:
  int64_t channels_;
  LCNOptions opt_;
};

// The Gaussian window as a (1, C, k, k) convolution weight summing to 1.
Tensor lcn_window(int64_t channels, const LCNOptions& opt, DType dtype = DType::Float32);
// The op, composed of framework ops (conv2d, elementwise, reductions).
Tensor local_contrast_norm(const Tensor& x, const Tensor& window, const LCNOptions& opt = {});

}  // namespace neurn
