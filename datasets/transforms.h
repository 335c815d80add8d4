#pragma once
// Per-image transforms of the loader: uint8 (C, H, W) -> float (C', H', W')
// with bilinear resize, gray <-> RGB and normalization in one pass, and the
// optional training augmentation on the float image.
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/datasets.h"
#include "framework/random.h"

namespace neurn::data {

// Bilinear resize with half-pixel centres (PyTorch's align_corners=False, no
// antialiasing), gray -> RGB by replication, RGB -> gray by ITU-R BT.601 luma
// (0.299 R + 0.587 G + 0.114 B), then (x / 255 - mean[c]) * inv_std[c].
class ImageConverter {
 public:
  ImageConverter(int64_t c_in, int64_t h_in, int64_t w_in, int64_t c_out, int64_t h_out, int64_t w_out);
  // src (c_in, h_in, w_in) uint8 -> dst (c_out, h_out, w_out) float; mean/inv_std have c_out values.
  void operator()(const uint8_t* src, float* dst, const float* mean, const float* inv_std) const;

 private:
  int64_t c_in_, h_in_, w_in_, c_out_, h_out_, w_out_;
  bool identity_size_;
  std::vector<int32_t> x0_, x1_, y0_, y1_;  // source taps per output column / row
  std::vector<float> wx_, wy_;              // weight of the second tap
};

// Bilinear resize of a float (C, H, W) image, same convention (a reference for tests).
void resize_bilinear(const float* src, int64_t c, int64_t h, int64_t w, float* dst, int64_t oh, int64_t ow);

// Applies `aug` to a float (C, H, W) image with values in [0, 1] (in place),
// drawing from `gen`. Off-image pixels of the crop and the affine are 0.
void augment_image(float* img, int64_t c, int64_t h, int64_t w, const Augmentation& aug, Generator& gen);

// The input normalization a model's weights were trained with, as the
// trainer applies it (the loader's Fixed mode, then the channel order):
//   none      x / 255, in [0, 1]                      (runs without weights)
//   imagenet  (x / 255 - mean) / std, ImageNet's mean (0.485, 0.456, 0.406)
//             and std (0.229, 0.224, 0.225), RGB      (torchvision; Keras's "torch" mode)
//   tf        x / 127.5 - 1, in [-1, 1]               (Keras's "tf" mode)
//   caffe     BGR order, x - mean in 0-255 with the BGR mean (103.939,
//             116.779, 123.68), no scaling            (Keras's "caffe" mode)
// (The constants are those of torchvision's transforms and
// keras.applications.imagenet_utils.preprocess_input.)
struct InputNormalization {
  std::string mode = "none";
  std::vector<float> mean{0.f, 0.f, 0.f};  // per RGB input channel, on x / 255
  std::vector<float> std{1.f, 1.f, 1.f};   // per RGB input channel, on x / 255
  bool bgr = false;                        // the model reads the channels as B, G, R
  // "tf: x / 127.5 - 1" etc., for logs and records.
  std::string describe() const;
};

// The names `input_normalization` accepts ("torch" is "imagenet").
const std::vector<std::string>& input_normalization_modes();
// Throws neurn::Error naming the modes for an unknown one.
InputNormalization input_normalization(const std::string& mode);
// The loader's normalization for `n` (channel order aside: see bgr).
Normalization loader_normalization(const InputNormalization& n);

}  // namespace neurn::data
