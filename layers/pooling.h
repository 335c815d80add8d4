#pragma once
// Pooling layers over framework/ops/pool.h.
#include "framework/ops/pool.h"
#include "layers/module.h"

namespace neurn {

// Token "MaxPool". stride 0 means stride = kernel (PyTorch's default).
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0, bool ceil_mode = false);
  explicit MaxPool2d(const Pool2dOptions& opt) : opt_(opt) {}
  Tensor forward(const Tensor& x) override { return max_pool2d(x, opt_); }
  std::string type() const override { return "MaxPool"; }

 private:
  Pool2dOptions opt_;
};

// Token "AvgPool".
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0, bool ceil_mode = false,
                     bool count_include_pad = true);
  explicit AvgPool2d(const Pool2dOptions& opt) : opt_(opt) {}
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, opt_); }
  std::string type() const override { return "AvgPool"; }

 private:
  Pool2dOptions opt_;
};

// (N, C, H, W) -> (N, C, out_h, out_w) with PyTorch's adaptive windows.
// Token "GlobalAvgPool" for a 1x1 output (what Keras writes as
// GlobalAveragePooling2D: the same layer for the N-W aligner), else
// "AdaptiveAvgPool".
class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : h_(out_h), w_(out_w) {}
  explicit AdaptiveAvgPool2d(int64_t out) : AdaptiveAvgPool2d(out, out) {}
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, h_, w_); }
  std::string type() const override { return h_ == 1 && w_ == 1 ? "GlobalAvgPool" : "AdaptiveAvgPool"; }

 private:
  int64_t h_, w_;
};

// Keras GlobalAveragePooling2D: (N, C, H, W) -> (N, C), already flat (or
// (N, C, 1, 1) with keepdim). Token "GlobalAvgPool".
class GlobalAvgPool : public Module {
 public:
  explicit GlobalAvgPool(bool keepdim = false) : keepdim_(keepdim) {}
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "GlobalAvgPool"; }

 private:
  bool keepdim_;
};

}  // namespace neurn
