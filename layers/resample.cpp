#include "layers/resample.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "framework/autograd.h"
#include "framework/error.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

namespace {

constexpr double kCubicA = -0.75;  // PyTorch's (and OpenCV's) choice of Keys' a

// The four tap weights for offset t in [0, 1) from the tap left of the
// source coordinate: taps at distances 1 + t, t, 1 - t, 2 - t.
std::array<double, 4> cubic_weights(double t) {
  auto near = [](double d) { return ((kCubicA + 2) * d - (kCubicA + 3)) * d * d + 1; };                   // |d| <= 1
  auto far = [](double d) { return ((kCubicA * d - 5 * kCubicA) * d + 8 * kCubicA) * d - 4 * kCubicA; };  // 1 < |d| < 2
  return {far(1 + t), near(t), near(1 - t), far(2 - t)};
}

// Per output index along one axis: the first of the 4 taps and their weights.
struct Taps {
  std::vector<int64_t> first;
  std::vector<std::array<double, 4>> w;
};

Taps axis_taps(int64_t in, int64_t out, bool align_corners) {
  Taps taps;
  double scale = align_corners ? (out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0)
                               : static_cast<double>(in) / static_cast<double>(out);
  for (int64_t i = 0; i < out; ++i) {
    double src = align_corners ? scale * static_cast<double>(i) : scale * (static_cast<double>(i) + 0.5) - 0.5;
    double f = std::floor(src);
    taps.first.push_back(static_cast<int64_t>(f) - 1);
    taps.w.push_back(cubic_weights(src - f));
  }
  return taps;
}

}  // namespace

Tensor resize_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  NEURN_CHECK(x.defined() && x.dim() == 4, "resize_bicubic: expected (N, C, H, W), got ",
              x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  NEURN_CHECK(out_h > 0 && out_w > 0, "resize_bicubic: output size must be positive, got ", out_h, "x", out_w);
  NEURN_CHECK(is_floating(x.dtype()), "resize_bicubic: expected a floating tensor, got ", dtype_name(x.dtype()));
  NEURN_CHECK(!x.device().is_meta(), "resize_bicubic: a meta tensor has no values to resample");
  NoGradGuard no_grad;
  int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  std::vector<double> src = x.to_vector<double>();
  std::vector<double> dst(static_cast<size_t>(planes * out_h * out_w));
  Taps ty = axis_taps(h, out_h, align_corners), tx = axis_taps(w, out_w, align_corners);
  auto clamp = [](int64_t i, int64_t n) { return std::clamp<int64_t>(i, 0, n - 1); };
  for (int64_t p = 0; p < planes; ++p) {
    const double* s = src.data() + p * h * w;
    double* d = dst.data() + p * out_h * out_w;
    for (int64_t oy = 0; oy < out_h; ++oy)
      for (int64_t ox = 0; ox < out_w; ++ox) {
        double acc = 0;
        for (int a = 0; a < 4; ++a) {
          int64_t iy = clamp(ty.first[oy] + a, h);
          double row = 0;
          for (int b = 0; b < 4; ++b) row += tx.w[ox][b] * s[iy * w + clamp(tx.first[ox] + b, w)];
          acc += ty.w[oy][a] * row;
        }
        d[oy * out_w + ox] = acc;
      }
  }
  Tensor out = from_vector(dst, {x.size(0), x.size(1), out_h, out_w});
  return out.to(x.dtype()).to(x.device());
}

Tensor resize_position_embedding(const Tensor& pos, int64_t prefix, int64_t new_gh, int64_t new_gw,
                                 bool align_corners) {
  NEURN_CHECK(pos.defined() && pos.dim() == 3 && pos.size(0) == 1 && prefix >= 0 && pos.size(1) > prefix,
              "resize_position_embedding: expected (1, ", prefix, " + grid tokens, D), got ",
              pos.defined() ? shape_str(pos.shape()) : std::string("an undefined tensor"));
  int64_t grid_tokens = pos.size(1) - prefix, d = pos.size(2);
  auto g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(grid_tokens))));
  NEURN_CHECK(g * g == grid_tokens, "resize_position_embedding: ", grid_tokens, " grid tokens (after ", prefix,
              " prefix tokens) are not a square grid");
  NoGradGuard no_grad;
  Tensor head = slice(pos, 1, 0, prefix);                                                          // (1, prefix, D)
  Tensor grid = permute(reshape(slice(pos, 1, prefix, pos.size(1)), {1, g, g, d}), {0, 3, 1, 2});  // (1, D, g, g)
  Tensor resized = resize_bicubic(grid, new_gh, new_gw, align_corners);                            // (1, D, gh', gw')
  Tensor tokens = reshape(permute(resized, {0, 2, 3, 1}), {1, new_gh * new_gw, d});                // (1, gh' gw', D)
  return prefix > 0 ? concat({head, tokens}, 1) : tokens;
}

}  // namespace neurn
