// U-Net (Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for
// Biomedical Image Segmentation", MICCAI 2015), as the paper's Fig. 1 draws
// it: a contracting path of two valid (unpadded) 3x3 convolutions + ReLU per
// level and 2x2 max pooling (64 -> 1024 channels), an expansive path of 2x2
// up-convolutions that halve the channels, concatenation with the centre crop
// of the contracting level's map, two valid 3x3 convolutions + ReLU, and a
// final 1x1 convolution to the classes. No batch norm, no padding, biases in
// every convolution: 31,030,658 parameters at 1 input channel and 2 classes
// (the paper's setting). A 572x572 input gives the paper's 388x388 map.
//
// Sizes: with b the side after the bottom level's convolutions, the input is
// 16 b + 124 (b = 28 at 572) and the output 16 b - 60. The decoder's second
// level leaves 2 b - 4 pixels, and every level of the decoder shrinks by 4:
// b >= 4 keeps all of them positive, so the smallest input is 188 (output
// 4x4). Other sides work too (pooling floors, crops are centred).
#include <cmath>
#include <optional>

#include "framework/ops/shape_ops.h"
#include "layers/conv_transpose.h"
#include "layers/layers.h"
#include "models/registry.h"

namespace neurn {

namespace {

constexpr int64_t kUNetMinInput = 188;

// The centre h x w window of x (N, C, H, W). Token "Cropping": the same layer
// as Keras's Cropping2D for the aligner.
Tensor center_crop(const Tensor& x, int64_t h, int64_t w) {
  NEURN_CHECK(x.size(2) >= h && x.size(3) >= w, "unet: cannot crop the skip map ", shape_str(x.shape()), " to ", h,
              "x", w);
  LayerTrace::record("Cropping");
  int64_t top = (x.size(2) - h) / 2, left = (x.size(3) - w) / 2;
  return slice(slice(x, 2, top, top + h), 3, left, left + w);
}

// conv 3x3 valid, ReLU, conv 3x3 valid, ReLU: keys <name>.0.*, <name>.2.*.
std::shared_ptr<Sequential> double_conv(int64_t in, int64_t out) {
  auto s = std::make_shared<Sequential>();
  s->emplace<Conv2d>(in, out, 3);
  s->emplace<ReLU>();
  s->emplace<Conv2d>(out, out, 3);
  s->emplace<ReLU>();
  return s;
}

class UNet : public Module {
 public:
  explicit UNet(const ModelOptions& o) {
    std::optional<DeferInit> defer(std::in_place);  // every weight is redrawn below
    const int64_t widths[5] = {64, 128, 256, 512, 1024};
    int64_t in = o.in_channels;
    for (int i = 0; i < 5; ++i) {  // down1..down4, then the bottom level "bottom"
      enc_.push_back(register_module(i < 4 ? "down" + std::to_string(i + 1) : "bottom", double_conv(in, widths[i])));
      in = widths[i];
    }
    pool_ = register_module("pool", std::make_shared<MaxPool2d>(2, 2));
    for (int i = 3; i >= 0; --i) {  // up4..up1: 2x2 up-convolution, then two convolutions
      const std::string level = std::to_string(i + 1);
      upconv_.push_back(register_module("upconv" + level, std::make_shared<ConvTranspose2d>(in, widths[i], 2, 2)));
      dec_.push_back(register_module("up" + level, double_conv(2 * widths[i], widths[i])));
      in = widths[i];
    }
    head_ = register_module("head", std::make_shared<Conv2d>(in, o.num_classes, 1));
    defer.reset();
    // The paper's init: Gaussian weights with std sqrt(2 / N), N the inputs
    // of one output unit (k k C_in for a convolution; C_in for a 2x2 stride-2
    // up-convolution, where each output pixel sees one tap per input
    // channel). It gives no bias init: zeros.
    apply([](const std::string&, Module& m) {
      if (m.type() == "Conv") {
        const Tensor& w = m.param("weight");  // (out, in, k, k)
        normal_(w, 0.0, std::sqrt(2.0 / static_cast<double>(w.size(1) * w.size(2) * w.size(3))));
        constant_(m.param("bias"), 0.0);
      } else if (m.type() == "ConvTranspose") {
        const Tensor& w = m.param("weight");  // (in, out, 2, 2)
        normal_(w, 0.0, std::sqrt(2.0 / static_cast<double>(w.size(0))));
        constant_(m.param("bias"), 0.0);
      }
    });
  }

  // x (N, C_in, H, W) -> (N, classes, H', W'), H' = H - 184 for H = 16 b + 124.
  Tensor forward(const Tensor& x) override {
    NEURN_CHECK(x.dim() == 4 && x.size(2) >= kUNetMinInput && x.size(3) >= kUNetMinInput, "unet: input ",
                shape_str(x.shape()), " is smaller than ", kUNetMinInput, "x", kUNetMinInput,
                ", the smallest for which every valid convolution keeps a positive size");
    std::vector<Tensor> skips;
    Tensor y = x;
    for (int i = 0; i < 4; ++i) {
      y = (*enc_[i])(y);
      skips.push_back(y);
      y = (*pool_)(y);
    }
    y = (*enc_[4])(y);
    for (int i = 0; i < 4; ++i) {
      Tensor up = (*upconv_[i])(y);
      Tensor skip = center_crop(skips[3 - i], up.size(2), up.size(3));
      y = (*dec_[i])(channel_concat({skip, up}));
    }
    return (*head_)(y);
  }

 private:
  std::vector<ModulePtr> enc_, upconv_, dec_;
  ModulePtr pool_, head_;
};

ModulePtr build_unet(const ModelOptions& o) { return std::make_shared<UNet>(o); }

}  // namespace

NEURN_REGISTER_MODEL(unet, (ModelInfo{.name = "unet",
                               .family = "U-Net",
                               .reference = "Ronneberger et al. 2015 (MICCAI), Fig. 1: valid convolutions, 2 classes",
                               .description = "encoder-decoder with valid 3x3 convolutions, 2x2 up-convolutions and "
                                              "crop-and-concatenate skips; 31,030,658 parameters at 1 input channel",
                               .min_input_size = kUNetMinInput,
                               .task = "segmentation",
                               .reference_input_size = 572,
                               .reference_classes = 2,
                               .reference_in_channels = 1}),
                     build_unet);

}  // namespace neurn
