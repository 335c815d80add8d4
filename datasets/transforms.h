#pragma once
// Per-image transforms of the loader: uint8 (C, H, W) -> float (C', H', W')
// with bilinear resize, gray <-> RGB and normalization in one pass, and the
// optional training augmentation on the float image.
#include <cstdint>
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

}  // namespace neurn::data
