// `syn`: synthetic digits rendered from TrueType fonts with stb_truetype, in
// the manner of the SynNumbers/SynDigits domain (Ganin & Lempitsky 2015): a
// centre digit with neighbouring distractors, random font, size, position,
// small rotation and colours over a flat, gradient or photo background, then
// blur and noise.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "datasets/checksum.h"
#include "datasets/generators.h"
#include "datasets/io.h"
#include "framework/error.h"
#include "framework/random.h"

#define STBTT_STATIC
#define STB_TRUETYPE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb_truetype.h>
#pragma GCC diagnostic pop

namespace fs = std::filesystem;

namespace neurn::data {
namespace {

struct Font {
  std::string path;
  std::vector<uint8_t> bytes;
  stbtt_fontinfo info{};
};

// A font is usable when it has glyphs with ink for all ten digits.
bool init_font(Font& f) {
  int off = stbtt_GetFontOffsetForIndex(f.bytes.data(), 0);
  if (off < 0 || !stbtt_InitFont(&f.info, f.bytes.data(), off)) return false;
  for (int c = '0'; c <= '9'; ++c) {
    int g = stbtt_FindGlyphIndex(&f.info, c);
    if (g == 0 || stbtt_IsGlyphEmpty(&f.info, g)) return false;
  }
  return true;
}

std::vector<std::unique_ptr<Font>> open_fonts(const std::vector<std::string>& paths) {
  std::vector<std::unique_ptr<Font>> fonts;
  for (const auto& p : paths) {
    auto f = std::make_unique<Font>();
    f->path = p;
    f->bytes = read_file(p);
    NEURN_CHECK(init_font(*f), "syn: font ", p, " cannot render the digits 0-9");
    fonts.push_back(std::move(f));
  }
  return fonts;
}

float luminance(const float* rgb) { return 0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2]; }

void random_colour(Generator& g, float* rgb) {
  for (int c = 0; c < 3; ++c) rgb[c] = static_cast<float>(g.uniform());
}

// Separable Gaussian blur of a (3, 32, 32) float image, clamped borders.
void blur(float* img, float sigma) {
  int r = std::max(1, static_cast<int>(std::ceil(2.5f * sigma)));
  std::vector<float> k(static_cast<size_t>(2 * r + 1));
  float s = 0;
  for (int i = -r; i <= r; ++i) s += k[static_cast<size_t>(i + r)] = std::exp(-0.5f * i * i / (sigma * sigma));
  for (float& v : k) v /= s;
  float tmp[1024];
  for (int c = 0; c < 3; ++c) {
    float* p = img + c * 1024;
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        float a = 0;
        for (int i = -r; i <= r; ++i) a += k[static_cast<size_t>(i + r)] * p[y * 32 + std::clamp(x + i, 0, 31)];
        tmp[y * 32 + x] = a;
      }
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        float a = 0;
        for (int i = -r; i <= r; ++i) a += k[static_cast<size_t>(i + r)] * tmp[std::clamp(y + i, 0, 31) * 32 + x];
        p[y * 32 + x] = a;
      }
  }
}

constexpr int kCanvasW = 160, kCanvasH = 96;  // glyph canvas, in pixels at the chosen font size

struct Renderer {
  const std::vector<std::unique_ptr<Font>>& fonts;
  const std::vector<Photo>& photos;
  uint64_t seed;

  // Renders record i into out (3, 32, 32) uint8; returns its label.
  void render(int64_t i, int label, uint8_t* out) const {
    Generator g(splitmix64(seed ^ 0x53594E) ^ splitmix64(static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull + 1));
    const Font& font = *fonts[g.below(fonts.size())];
    // Digit height between 45% and 80% of the image, as in house-number crops.
    float px_height = 32.f * static_cast<float>(0.45 + 0.35 * g.uniform());
    float scale = stbtt_ScaleForMappingEmToPixels(&font.info, px_height * 1.35f);

    // The string: the centre digit and, often, a neighbour on each side.
    int left = g.uniform() < 0.65 ? static_cast<int>(g.below(10)) : -1;
    int right = g.uniform() < 0.65 ? static_cast<int>(g.below(10)) : -1;
    int spacing = static_cast<int>(g.below(4)) - 1;  // extra pixels between digits
    std::vector<float> alpha(static_cast<size_t>(kCanvasW * kCanvasH), 0.f);
    // Place the centre digit's ink box at the canvas centre; neighbours by advance widths.
    int cx0, cy0, cx1, cy1;
    stbtt_GetCodepointBitmapBox(&font.info, '0' + label, scale, scale, &cx0, &cy0, &cx1, &cy1);
    int centre_x = kCanvasW / 2 - (cx0 + cx1) / 2;  // pen x of the centre digit
    int baseline = kCanvasH / 2 - (cy0 + cy1) / 2;
    auto draw = [&](int digit, int pen_x) {
      int x0, y0, x1, y1;
      stbtt_GetCodepointBitmapBox(&font.info, '0' + digit, scale, scale, &x0, &y0, &x1, &y1);
      int w = x1 - x0, h = y1 - y0;
      if (w <= 0 || h <= 0) return;
      std::vector<uint8_t> bmp(static_cast<size_t>(w * h));
      stbtt_MakeCodepointBitmap(&font.info, bmp.data(), w, h, w, scale, scale, '0' + digit);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          int X = pen_x + x0 + x, Y = baseline + y0 + y;
          if (X < 0 || Y < 0 || X >= kCanvasW || Y >= kCanvasH) continue;
          float& a = alpha[static_cast<size_t>(Y * kCanvasW + X)];
          a = std::max(a, bmp[static_cast<size_t>(y * w + x)] / 255.f);
        }
    };
    auto advance = [&](int digit) {
      int adv, lsb;
      stbtt_GetCodepointHMetrics(&font.info, '0' + digit, &adv, &lsb);
      return static_cast<int>(std::lround(adv * scale));
    };
    draw(label, centre_x);
    if (left >= 0) draw(left, centre_x - advance(left) - spacing);
    if (right >= 0) draw(right, centre_x + advance(label) + spacing);

    // Small rotation and shift: output pixel -> canvas by the inverse transform.
    double theta = (g.uniform() * 2 - 1) * 12.0 * 3.14159265358979 / 180.0;
    double shear = (g.uniform() * 2 - 1) * 0.15;
    double tx = (g.uniform() * 2 - 1) * 2.0, ty = (g.uniform() * 2 - 1) * 2.0;
    double ct = std::cos(theta), st = std::sin(theta);
    float a32[1024];
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        double u = x + 0.5 - 16.0 - tx, v = y + 0.5 - 16.0 - ty;
        double su = ct * u + st * v, sv = -st * u + ct * v;
        su -= shear * sv;
        double X = su + kCanvasW / 2.0 - 0.5, Y = sv + kCanvasH / 2.0 - 0.5;
        int ix = static_cast<int>(std::floor(X)), iy = static_cast<int>(std::floor(Y));
        float fx = static_cast<float>(X - ix), fy = static_cast<float>(Y - iy);
        auto at = [&](int xx, int yy) {
          return (xx < 0 || yy < 0 || xx >= kCanvasW || yy >= kCanvasH)
                     ? 0.f
                     : alpha[static_cast<size_t>(yy * kCanvasW + xx)];
        };
        a32[y * 32 + x] = (1 - fy) * ((1 - fx) * at(ix, iy) + fx * at(ix + 1, iy)) +
                          fy * ((1 - fx) * at(ix, iy + 1) + fx * at(ix + 1, iy + 1));
      }

    // Background: flat, gradient, or a photo crop (when photos are available).
    float img[3 * 1024];
    float bg[3], bg2[3], fg[3];
    int mode = static_cast<int>(g.below(photos.empty() ? 2 : 3));
    random_colour(g, bg);
    float bg_lum;
    if (mode == 0) {
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 1024; ++p) img[c * 1024 + p] = bg[c];
      bg_lum = luminance(bg);
    } else if (mode == 1) {
      random_colour(g, bg2);
      // Keep the gradient gentle enough that the digit still contrasts with both ends.
      for (int c = 0; c < 3; ++c) bg2[c] = 0.6f * bg[c] + 0.4f * bg2[c];
      double dir = g.uniform() * 6.283185307179586;
      float dx = static_cast<float>(std::cos(dir)), dy = static_cast<float>(std::sin(dir));
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
          float t = 0.5f + ((x - 15.5f) * dx + (y - 15.5f) * dy) / 45.f;
          for (int c = 0; c < 3; ++c) img[c * 1024 + y * 32 + x] = bg[c] + t * (bg2[c] - bg[c]);
        }
      float mid[3];
      for (int c = 0; c < 3; ++c) mid[c] = 0.5f * (bg[c] + bg2[c]);
      bg_lum = luminance(mid);
    } else {
      const Photo& ph = photos[g.below(photos.size())];
      int y0 = static_cast<int>(g.below(static_cast<uint64_t>(ph.height - 32 + 1)));
      int x0 = static_cast<int>(g.below(static_cast<uint64_t>(ph.width - 32 + 1)));
      // Photos are busy; soften them towards a flat colour so the digit reads.
      float keep = static_cast<float>(0.4 + 0.4 * g.uniform());
      double lum = 0;
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x)
          for (int c = 0; c < 3; ++c) {
            float v =
                ph.rgb[(static_cast<size_t>(y0 + y) * static_cast<size_t>(ph.width) + static_cast<size_t>(x0 + x)) * 3 +
                       static_cast<size_t>(c)] /
                255.f;
            img[c * 1024 + y * 32 + x] = keep * v + (1 - keep) * bg[c];
          }
      for (int p = 0; p < 1024; ++p) lum += 0.299 * img[p] + 0.587 * img[1024 + p] + 0.114 * img[2048 + p];
      bg_lum = static_cast<float>(lum / 1024.0);
    }
    // A foreground colour that contrasts with the background by at least 0.3 in luminance.
    for (int tries = 0;; ++tries) {
      random_colour(g, fg);
      if (std::abs(luminance(fg) - bg_lum) >= 0.3f) break;
      if (tries == 20) {
        float v = bg_lum > 0.5f ? 0.05f : 0.95f;
        fg[0] = fg[1] = fg[2] = v;
        break;
      }
    }
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) img[c * 1024 + p] += a32[p] * (fg[c] - img[c * 1024 + p]);

    if (g.uniform() < 0.6) blur(img, static_cast<float>(0.4 + 0.8 * g.uniform()));
    // Pixel noise: one hash per pixel gives four 16-bit uniforms; their
    // centred sum (Irwin-Hall, variance 4/12) is close enough to Gaussian here
    // and far cheaper than Box-Muller.
    float noise = static_cast<float>(0.06 * g.uniform());
    uint64_t nbase = g.advance(3 * 1024);
    for (int k = 0; k < 3 * 1024; ++k) {
      uint64_t h = splitmix64(g.seed() ^ (nbase + static_cast<uint64_t>(k)) * 0xD6E8FEB86659FD93ull);
      float z = static_cast<float>((h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48)) / 65535.f;
      float v = img[k] + noise * (z - 2.f) * 1.7320508f;
      out[k] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f));
    }
  }
};

}  // namespace

std::vector<std::string> find_fonts() {
  std::vector<std::string> out;
  for (const char* root : {"/usr/share/fonts", "/usr/local/share/fonts"}) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (!it->is_regular_file(ec)) continue;
      std::string name = it->path().filename().string();
      std::string ext = it->path().extension().string();
      if (ext != ".ttf" && ext != ".TTF") continue;
      // Math, symbol and dingbat fonts draw digits oddly or not at all.
      if (name.find("Math") != std::string::npos || name.find("Symbol") != std::string::npos ||
          name.find("Dingbat") != std::string::npos || name.find("Emoji") != std::string::npos)
        continue;
      Font f;
      f.bytes = read_file(it->path().string());
      if (init_font(f)) out.push_back(it->path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
// Photo files exactly as load_photos() picks them.
std::vector<std::string> photo_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png")) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The names (not the folders: the same files elsewhere are the same images)
// and bytes of `files`, digested in order; 12 hex digits are plenty to tell
// font sets apart.
std::string files_digest(const std::vector<std::string>& files) {
  Sha256 sha;
  for (const auto& f : files) {
    std::string name = fs::path(f).filename().string();
    std::vector<uint8_t> bytes = read_file(f);
    uint64_t sizes[2] = {name.size(), bytes.size()};
    sha.update(sizes, sizeof sizes);
    sha.update(name.data(), name.size());
    sha.update(bytes.data(), bytes.size());
  }
  return sha.hex().substr(0, 12);
}
}  // namespace

std::string syn_source_key(const SynOptions& opt) {
  std::vector<std::string> fonts = opt.fonts.empty() ? find_fonts() : opt.fonts;
  std::vector<std::string> photos = photo_files(opt.photo_dir);
  std::string key = "fonts " + std::to_string(fonts.size()) + " sha256:" + files_digest(fonts);
  key += photos.empty() ? " + photos none"
                        : " + photos " + std::to_string(photos.size()) + " sha256:" + files_digest(photos);
  return key;
}

Dataset generate_syn(int64_t count, uint64_t seed, const std::string& split, const SynOptions& opt) {
  NEURN_CHECK(count > 0, "generate_syn: count ", count, " (expected > 0)");
  std::vector<std::string> paths = opt.fonts.empty() ? find_fonts() : opt.fonts;
  NEURN_CHECK(!paths.empty(),
              "generate_syn: no TrueType fonts found under /usr/share/fonts (install e.g. "
              "fonts-dejavu-core fonts-liberation fonts-freefont-ttf: scripts/setup-deps.sh)");
  auto fonts = open_fonts(paths);
  std::vector<Photo> photos;
  std::error_code ec;
  if (!opt.photo_dir.empty() && fs::is_directory(opt.photo_dir, ec)) photos = load_photos(opt.photo_dir);
  Renderer r{fonts, photos, seed};

  std::vector<uint8_t> pixels(static_cast<size_t>(count) * 3072);
  std::vector<int64_t> labels(static_cast<size_t>(count));
  // Balanced classes: each block of ten records is a seeded permutation of 0..9.
  for (int64_t b = 0; b * 10 < count; ++b) {
    int perm[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    Generator g(splitmix64(seed + 0xB10C) ^ splitmix64(static_cast<uint64_t>(b)));
    for (int k = 9; k > 0; --k) std::swap(perm[k], perm[g.below(static_cast<uint64_t>(k + 1))]);
    for (int k = 0; k < 10 && b * 10 + k < count; ++k) labels[static_cast<size_t>(b * 10 + k)] = perm[k];
  }
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i; (i = next.fetch_add(64)) < count;)
      for (int64_t k = i; k < std::min(count, i + 64); ++k)
        r.render(k, static_cast<int>(labels[static_cast<size_t>(k)]), pixels.data() + static_cast<size_t>(k) * 3072);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, opt.threads); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return Dataset("syn", split, 3, 32, 32, std::move(pixels), std::move(labels));
}

}  // namespace neurn::data
