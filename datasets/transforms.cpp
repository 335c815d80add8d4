#include "datasets/transforms.h"

#include <algorithm>
#include <cmath>

#include "framework/error.h"

namespace neurn::data {
namespace {

// Half-pixel-centre source coordinate of output index i, clamped taps.
void taps(int64_t in, int64_t out, std::vector<int32_t>& t0, std::vector<int32_t>& t1, std::vector<float>& wt) {
  t0.resize(static_cast<size_t>(out));
  t1.resize(static_cast<size_t>(out));
  wt.resize(static_cast<size_t>(out));
  double s = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t i = 0; i < out; ++i) {
    double x = std::max(0.0, (static_cast<double>(i) + 0.5) * s - 0.5);
    int64_t a = std::min<int64_t>(static_cast<int64_t>(x), in - 1);
    int64_t b = std::min<int64_t>(a + 1, in - 1);
    t0[static_cast<size_t>(i)] = static_cast<int32_t>(a);
    t1[static_cast<size_t>(i)] = static_cast<int32_t>(b);
    wt[static_cast<size_t>(i)] = static_cast<float>(x - static_cast<double>(a));
  }
}

}  // namespace

ImageConverter::ImageConverter(int64_t c_in, int64_t h_in, int64_t w_in, int64_t c_out, int64_t h_out, int64_t w_out)
    : c_in_(c_in), h_in_(h_in), w_in_(w_in), c_out_(c_out), h_out_(h_out), w_out_(w_out) {
  NEURN_CHECK((c_in == 1 || c_in == 3) && (c_out == 1 || c_out == 3), "ImageConverter: channels ", c_in, " -> ", c_out,
              " (expected 1 or 3)");
  NEURN_CHECK(h_out > 0 && w_out > 0, "ImageConverter: output size ", h_out, "x", w_out);
  identity_size_ = (h_in == h_out && w_in == w_out);
  taps(w_in, w_out, x0_, x1_, wx_);
  taps(h_in, h_out, y0_, y1_, wy_);
}

void ImageConverter::operator()(const uint8_t* src, float* dst, const float* mean, const float* inv_std) const {
  const int64_t hw_in = h_in_ * w_in_, hw_out = h_out_ * w_out_;
  if (identity_size_ && (c_in_ == c_out_ || c_in_ == 1)) {
    // No resize and no colour mixing: one multiply-add per value.
    for (int64_t co = 0; co < c_out_; ++co) {
      const float scale = inv_std[co] / 255.f, shift = -mean[co] * inv_std[co];
      const uint8_t* plane = src + (c_in_ == 1 ? 0 : co) * hw_in;
      float* out = dst + co * hw_out;
      for (int64_t p = 0; p < hw_out; ++p) out[p] = static_cast<float>(plane[p]) * scale + shift;
    }
    return;
  }
  // Source planes as float (luma for RGB -> gray), resized separably: rows
  // first (h_in x w_out), then columns, each inner loop contiguous.
  const int64_t planes = (c_in_ == 3 && c_out_ == 3) ? 3 : 1;
  thread_local std::vector<float> plane, rows, resized;
  plane.resize(static_cast<size_t>(hw_in));
  rows.resize(static_cast<size_t>(h_in_ * w_out_));
  resized.resize(static_cast<size_t>(planes * hw_out));
  for (int64_t pl = 0; pl < planes; ++pl) {
    if (c_in_ == 3 && c_out_ == 1) {
      for (int64_t p = 0; p < hw_in; ++p)
        plane[static_cast<size_t>(p)] = 0.299f * src[p] + 0.587f * src[hw_in + p] + 0.114f * src[2 * hw_in + p];
    } else {
      const uint8_t* s = src + pl * hw_in;
      for (int64_t p = 0; p < hw_in; ++p) plane[static_cast<size_t>(p)] = s[p];
    }
    for (int64_t y = 0; y < h_in_; ++y) {
      const float* r = plane.data() + y * w_in_;
      float* o = rows.data() + y * w_out_;
      for (int64_t x = 0; x < w_out_; ++x) {
        float a = r[x0_[static_cast<size_t>(x)]], b = r[x1_[static_cast<size_t>(x)]];
        o[x] = a + wx_[static_cast<size_t>(x)] * (b - a);
      }
    }
    float* out = resized.data() + pl * hw_out;
    for (int64_t y = 0; y < h_out_; ++y) {
      const float* t0 = rows.data() + y0_[static_cast<size_t>(y)] * w_out_;
      const float* t1 = rows.data() + y1_[static_cast<size_t>(y)] * w_out_;
      const float fy = wy_[static_cast<size_t>(y)];
      float* o = out + y * w_out_;
      for (int64_t x = 0; x < w_out_; ++x) o[x] = t0[x] + fy * (t1[x] - t0[x]);
    }
  }
  for (int64_t co = 0; co < c_out_; ++co) {
    const float scale = inv_std[co] / 255.f, shift = -mean[co] * inv_std[co];
    const float* in = resized.data() + (planes == 1 ? 0 : co) * hw_out;
    float* out = dst + co * hw_out;
    for (int64_t p = 0; p < hw_out; ++p) out[p] = in[p] * scale + shift;
  }
}

void resize_bilinear(const float* src, int64_t c, int64_t h, int64_t w, float* dst, int64_t oh, int64_t ow) {
  std::vector<int32_t> x0, x1, y0, y1;
  std::vector<float> wx, wy;
  taps(w, ow, x0, x1, wx);
  taps(h, oh, y0, y1, wy);
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x) {
        const float* p = src + ch * h * w;
        float a = p[y0[y] * w + x0[x]], b = p[y0[y] * w + x1[x]], cc = p[y1[y] * w + x0[x]], d = p[y1[y] * w + x1[x]];
        float top = a + wx[x] * (b - a), bot = cc + wx[x] * (d - cc);
        dst[(ch * oh + y) * ow + x] = top + wy[y] * (bot - top);
      }
}

void augment_image(float* img, int64_t c, int64_t h, int64_t w, const Augmentation& aug, Generator& gen) {
  const int64_t hw = h * w;
  std::vector<float> tmp(static_cast<size_t>(c * hw));
  if (aug.crop_padding > 0) {
    // Random crop of the zero-padded image: a shift by (dy, dx) in [-p, p].
    int64_t p = aug.crop_padding;
    int64_t dy = static_cast<int64_t>(gen.below(static_cast<uint64_t>(2 * p + 1))) - p;
    int64_t dx = static_cast<int64_t>(gen.below(static_cast<uint64_t>(2 * p + 1))) - p;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          int64_t sy = y + dy, sx = x + dx;
          tmp[static_cast<size_t>(ch * hw + y * w + x)] =
              (sy < 0 || sx < 0 || sy >= h || sx >= w) ? 0.f : img[ch * hw + sy * w + sx];
        }
    std::copy(tmp.begin(), tmp.end(), img);
  }
  if (aug.max_rotate_deg > 0 || aug.max_scale > 0 || aug.max_translate > 0) {
    double th = (gen.uniform() * 2 - 1) * aug.max_rotate_deg * 3.14159265358979 / 180.0;
    double s = 1.0 + (gen.uniform() * 2 - 1) * aug.max_scale;
    double tx = (gen.uniform() * 2 - 1) * aug.max_translate * static_cast<double>(w);
    double ty = (gen.uniform() * 2 - 1) * aug.max_translate * static_cast<double>(h);
    double ct = std::cos(th) / s, st = std::sin(th) / s;  // inverse of rotate-then-scale
    double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        double u = x - cx - tx, v = y - cy - ty;
        double X = ct * u + st * v + cx, Y = -st * u + ct * v + cy;
        int64_t ix = static_cast<int64_t>(std::floor(X)), iy = static_cast<int64_t>(std::floor(Y));
        float fx = static_cast<float>(X - ix), fy = static_cast<float>(Y - iy);
        for (int64_t ch = 0; ch < c; ++ch) {
          const float* p = img + ch * hw;
          auto at = [&](int64_t xx, int64_t yy) {
            return (xx < 0 || yy < 0 || xx >= w || yy >= h) ? 0.f : p[yy * w + xx];
          };
          tmp[static_cast<size_t>(ch * hw + y * w + x)] = (1 - fy) * ((1 - fx) * at(ix, iy) + fx * at(ix + 1, iy)) +
                                                          fy * ((1 - fx) * at(ix, iy + 1) + fx * at(ix + 1, iy + 1));
        }
      }
    std::copy(tmp.begin(), tmp.end(), img);
  }
  if (aug.brightness > 0) {
    float b = 1.f + static_cast<float>((gen.uniform() * 2 - 1) * aug.brightness);
    for (int64_t k = 0; k < c * hw; ++k) img[k] *= b;
  }
  if (aug.contrast > 0) {
    float f = 1.f + static_cast<float>((gen.uniform() * 2 - 1) * aug.contrast);
    double m = 0;
    for (int64_t k = 0; k < c * hw; ++k) m += img[k];
    float mean = static_cast<float>(m / static_cast<double>(c * hw));
    for (int64_t k = 0; k < c * hw; ++k) img[k] = mean + f * (img[k] - mean);
  }
  if (aug.saturation > 0 && c == 3) {
    float f = 1.f + static_cast<float>((gen.uniform() * 2 - 1) * aug.saturation);
    for (int64_t p = 0; p < hw; ++p) {
      float g = 0.299f * img[p] + 0.587f * img[hw + p] + 0.114f * img[2 * hw + p];
      for (int64_t ch = 0; ch < 3; ++ch) img[ch * hw + p] = g + f * (img[ch * hw + p] - g);
    }
  }
  for (int64_t k = 0; k < c * hw; ++k) img[k] = std::clamp(img[k], 0.f, 1.f);
}

const std::vector<std::string>& input_normalization_modes() {
  static const std::vector<std::string> m{"none", "imagenet", "torch", "tf", "caffe"};
  return m;
}

InputNormalization input_normalization(const std::string& mode) {
  InputNormalization n;
  if (mode == "none") return n;
  if (mode == "imagenet" || mode == "torch") {
    n.mode = "imagenet";
    n.mean = {0.485f, 0.456f, 0.406f};
    n.std = {0.229f, 0.224f, 0.225f};
    return n;
  }
  if (mode == "tf") {
    // x / 127.5 - 1 = (x / 255 - 0.5) / 0.5
    n.mode = "tf";
    n.mean = {0.5f, 0.5f, 0.5f};
    n.std = {0.5f, 0.5f, 0.5f};
    return n;
  }
  if (mode == "caffe") {
    // x - m in 0-255 = (x / 255 - m / 255) / (1 / 255); the mean is given per
    // input (RGB) channel here; the channels are then reversed.
    n.mode = "caffe";
    n.mean = {123.68f / 255.f, 116.779f / 255.f, 103.939f / 255.f};
    n.std = {1.f / 255.f, 1.f / 255.f, 1.f / 255.f};
    n.bgr = true;
    return n;
  }
  std::string all;
  for (auto& m : input_normalization_modes()) all += (all.empty() ? "" : ", ") + m;
  NEURN_FAIL("unknown input normalization '", mode, "'; allowed: ", all);
}

std::string InputNormalization::describe() const {
  if (mode == "none") return "none: x / 255, in [0, 1]";
  if (mode == "imagenet") return "imagenet: (x / 255 - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225), RGB";
  if (mode == "tf") return "tf: x / 127.5 - 1, in [-1, 1]";
  if (mode == "caffe") return "caffe: BGR, x - (103.939, 116.779, 123.68) in 0-255";
  return mode;
}

Normalization loader_normalization(const InputNormalization& n) {
  if (n.mode == "none") return Normalization::none();
  return Normalization::fixed(n.mean, n.std);
}

}  // namespace neurn::data
