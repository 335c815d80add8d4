#pragma once
// Local response normalization across channels (AlexNet, Krizhevsky et al.
// 2012, section 3.3), in the form cuDNN and PyTorch compute it:
//   b_c = a_c / (k + alpha / n * sum_{c' in window(c)} a_{c'}^2)^beta
// where the window holds the n channels c - n/2 .. c + (n-1)/2 (those outside
// 0..C-1 count as zeros). AlexNet's values are n = 5, k = 2, alpha = 1e-4,
// beta = 0.75; AlexNet writes alpha without the 1/n (alpha_AlexNet = alpha / n).
// A baseline to compare NeuRN with. Token "LRN".
#include "layers/module.h"

namespace neurn {

struct LRNOptions {
  int64_t size = 5;
  double alpha = 1e-4;
  double beta = 0.75;
  double k = 2.0;
};

class LocalResponseNorm : public Module {
 public:
  explicit LocalResponseNorm(LRNOptions opt = {});
  Tensor forward(const Tensor& x) override;  // (N, C, H, W) -> (N, C, H, W)
  std::string type() const override { return "LRN"; }
  const LRNOptions& options() const { return opt_; }

 private:
  LRNOptions opt_;
};

// The op itself, composed of framework ops (so its gradient is theirs).
Tensor local_response_norm(const Tensor& x, const LRNOptions& opt = {});

}  // namespace neurn
