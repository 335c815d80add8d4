#pragma once
#include "framework/ops/shape_ops.h"
#include "layers/module.h"

namespace neurn {

// Merges axes start..end: (N, C, H, W) -> (N, C*H*W) by default. Token "Flatten".
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_axis = 1, int64_t end_axis = -1) : start_(start_axis), end_(end_axis) {}
  Tensor forward(const Tensor& x) override { return flatten(x, start_, end_); }
  std::string type() const override { return "Flatten"; }

 private:
  int64_t start_, end_;
};

}  // namespace neurn
