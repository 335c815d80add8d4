#pragma once
// 2-D transposed convolution layer over the conv_transpose2d op
// (torch.nn.ConvTranspose2d).
#include <array>

#include "framework/ops/conv_transpose.h"
#include "layers/module.h"

namespace neurn {

struct ConvTranspose2dSpec {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  std::array<int64_t, 2> kernel{2, 2};
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  std::array<int64_t, 2> output_padding{0, 0};
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
  bool bias = true;
};

// Parameters "weight" (in, out / groups, kH, kW) and "bias" (out), as torch's
// keys and layout, with torch's default init: kaiming-uniform a = sqrt(5) and
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias, where fan_in is computed
// from this weight shape (out / groups kH kW), as torch does. Token
// "ConvTranspose".
class ConvTranspose2d : public Module {
 public:
  explicit ConvTranspose2d(const ConvTranspose2dSpec& spec);
  ConvTranspose2d(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
                  int64_t output_padding = 0, int64_t groups = 1, bool bias = true, int64_t dilation = 1);
  Tensor forward(const Tensor& x) override;  // (N, C_in, H, W) -> (N, C_out, H', W')
  std::string type() const override { return "ConvTranspose"; }
  const ConvTranspose2dSpec& spec() const { return spec_; }
  // Redraws weight and bias with torch's default init.
  void reset_parameters();

 private:
  ConvTranspose2dSpec spec_;
};

}  // namespace neurn
