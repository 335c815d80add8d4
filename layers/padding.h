#pragma once
#include "layers/module.h"

namespace neurn {

// Zero padding of the last two axes (Keras ZeroPadding2D, PyTorch ZeroPad2d):
// (N, C, H, W) -> (N, C, H + top + bottom, W + left + right). Token "ZeroPad".
class ZeroPad2d : public Module {
 public:
  explicit ZeroPad2d(int64_t all) : ZeroPad2d(all, all, all, all) {}
  ZeroPad2d(int64_t left, int64_t right, int64_t top, int64_t bottom);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "ZeroPad"; }

 private:
  std::vector<int64_t> pads_;  // left, right, top, bottom
};

}  // namespace neurn
