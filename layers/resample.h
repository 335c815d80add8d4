#pragma once
// Resampling of loaded weights (not an op of the graph: no autograd, any
// device in, computed on the CPU in float64, returned in the input's dtype
// and device). A ViT loading weights made for another input size resamples
// its position embedding with these (see Module::adapt_state).
#include "framework/tensor.h"

namespace neurn {

// Bicubic resampling of (N, C, H, W) to (N, C, out_h, out_w) as PyTorch's
// interpolate(mode="bicubic") computes it: Keys' cubic convolution kernel with
// a = -0.75 over the 4x4 neighbourhood, taps beyond the border clamped to it,
// no antialiasing. align_corners = false (half-pixel centres): source
// coordinate (i + 0.5) * in / out - 0.5; true: i * (in - 1) / (out - 1).
Tensor resize_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners = false);

// A ViT position embedding (1, prefix + gh * gw, D) for a new patch grid:
// the first `prefix` tokens (the class token) are kept as they are, the
// gh x gw grid (square: gh = gw) is resampled bicubically (align_corners
// false, as timm's resample_abs_pos_embed) to new_gh x new_gw. Gives (1,
// prefix + new_gh * new_gw, D).
Tensor resize_position_embedding(const Tensor& pos, int64_t prefix, int64_t new_gh, int64_t new_gw,
                                 bool align_corners = false);

}  // namespace neurn
