#include "experiments/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "experiments/results.h"
#include "framework/error.h"

// Static linkage keeps these implementations private to this file, so another
// library that also compiles stb cannot clash with it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#define STBIW_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#define STBTT_STATIC
#define STB_TRUETYPE_IMPLEMENTATION
#include <stb_truetype.h>
#pragma GCC diagnostic pop

namespace neurn::experiments {

std::string Rgb::hex() const {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
}

namespace {

Rgb lerp(Rgb a, Rgb b, double t) {
  auto m = [&](uint8_t x, uint8_t y) { return static_cast<uint8_t>(std::lround(x + (y - x) * t)); };
  return {m(a.r, b.r), m(a.g, b.g), m(a.b, b.b)};
}

Rgb ramp(const std::vector<Rgb>& stops, double t) {
  if (!std::isfinite(t)) return {220, 220, 220};
  t = std::clamp(t, 0.0, 1.0) * static_cast<double>(stops.size() - 1);
  size_t i = std::min(static_cast<size_t>(t), stops.size() - 2);
  return lerp(stops[i], stops[i + 1], t - static_cast<double>(i));
}

// UTF-8 to code points (invalid bytes become U+FFFD).
std::vector<int> decode_utf8(const std::string& s) {
  std::vector<int> out;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int cp = 0xFFFD, len = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c >> 5) == 6 && i + 1 < s.size()) {
      cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F), len = 2;
    } else if ((c >> 4) == 14 && i + 2 < s.size()) {
      cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F), len = 3;
    } else if ((c >> 3) == 30 && i + 3 < s.size()) {
      cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F), len = 4;
    }
    out.push_back(cp);
    i += static_cast<size_t>(len);
  }
  return out;
}

struct Font {
  std::vector<unsigned char> data;
  stbtt_fontinfo info{};
  bool ok = false;
};

Font& font() {
  static Font f = [] {
    Font f;
    const std::string& p = Canvas::font_path();
    if (p.empty()) return f;
    std::ifstream in(p, std::ios::binary);
    f.data.assign(std::istreambuf_iterator<char>(in), {});
    f.ok = !f.data.empty() && stbtt_InitFont(&f.info, f.data.data(), stbtt_GetFontOffsetForIndex(f.data.data(), 0));
    return f;
  }();
  return f;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string fmt(double v, int decimals) {
  if (!std::isfinite(v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

Rgb colormap_sequential(double t) {
  // Approximate stops of matplotlib's viridis (a perceptually uniform map).
  static const std::vector<Rgb> stops{{68, 1, 84},    {59, 82, 139},  {33, 145, 140},
                                      {94, 201, 98},  {253, 231, 37}};
  return ramp(stops, t);
}

Rgb colormap_diverging(double t) {
  static const std::vector<Rgb> stops{{33, 102, 172}, {146, 197, 222}, {247, 247, 247}, {244, 165, 130},
                                      {178, 24, 43}};
  return ramp(stops, t);
}

Rgb palette(size_t i) {
  static const std::vector<Rgb> p{{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                  {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                  {188, 189, 34}, {23, 190, 207}};
  return p[i % p.size()];
}

const std::string& Canvas::font_path() {
  static const std::string p = [] {
    for (const char* c : {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                          "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                          "/usr/share/fonts/truetype/freefont/FreeSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"})
      if (std::filesystem::exists(c)) return std::string(c);
    return std::string();
  }();
  return p;
}

Canvas::Canvas(int width, int height, Rgb bg) : w_(width), h_(height), rgb_(static_cast<size_t>(width) * height * 3) {
  NEURN_CHECK(width > 0 && height > 0, "Canvas: bad size ", width, "x", height);
  fill_rect(0, 0, width, height, bg);
}

void Canvas::blend(int x, int y, Rgb c, double a) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_ || a <= 0) return;
  uint8_t* p = &rgb_[(static_cast<size_t>(y) * w_ + x) * 3];
  a = std::min(a, 1.0);
  p[0] = static_cast<uint8_t>(std::lround(p[0] + (c.r - p[0]) * a));
  p[1] = static_cast<uint8_t>(std::lround(p[1] + (c.g - p[1]) * a));
  p[2] = static_cast<uint8_t>(std::lround(p[2] + (c.b - p[2]) * a));
}

void Canvas::fill_rect(int x, int y, int w, int h, Rgb c) {
  for (int j = std::max(0, y); j < std::min(h_, y + h); ++j)
    for (int i = std::max(0, x); i < std::min(w_, x + w); ++i) {
      uint8_t* p = &rgb_[(static_cast<size_t>(j) * w_ + i) * 3];
      p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, int thickness) {
  double len = std::hypot(x1 - x0, y1 - y0);
  int steps = std::max(1, static_cast<int>(std::ceil(len * 2)));
  for (int s = 0; s <= steps; ++s) {
    double t = static_cast<double>(s) / steps;
    int cx = static_cast<int>(std::lround(x0 + (x1 - x0) * t)), cy = static_cast<int>(std::lround(y0 + (y1 - y0) * t));
    for (int dy = -(thickness - 1) / 2; dy <= thickness / 2; ++dy)
      for (int dx = -(thickness - 1) / 2; dx <= thickness / 2; ++dx) blend(cx + dx, cy + dy, c, 1.0);
  }
}

int Canvas::text_width(const std::string& utf8, double px) {
  Font& f = font();
  if (!f.ok) return 0;
  float scale = stbtt_ScaleForPixelHeight(&f.info, static_cast<float>(px));
  auto cps = decode_utf8(utf8);
  double w = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    int adv, lsb;
    stbtt_GetCodepointHMetrics(&f.info, cps[i], &adv, &lsb);
    w += adv * scale;
    if (i + 1 < cps.size()) w += scale * stbtt_GetCodepointKernAdvance(&f.info, cps[i], cps[i + 1]);
  }
  return static_cast<int>(std::ceil(w));
}

int Canvas::text(int x, int y, const std::string& utf8, double px, Rgb c, bool vertical) {
  Font& f = font();
  if (!f.ok) return 0;
  float scale = stbtt_ScaleForPixelHeight(&f.info, static_cast<float>(px));
  auto cps = decode_utf8(utf8);
  double pen = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    int adv, lsb, x0, y0, x1, y1;
    stbtt_GetCodepointHMetrics(&f.info, cps[i], &adv, &lsb);
    stbtt_GetCodepointBitmapBox(&f.info, cps[i], scale, scale, &x0, &y0, &x1, &y1);
    int bw = x1 - x0, bh = y1 - y0;
    if (bw > 0 && bh > 0) {
      std::vector<unsigned char> bmp(static_cast<size_t>(bw) * bh);
      stbtt_MakeCodepointBitmap(&f.info, bmp.data(), bw, bh, bw, scale, scale, cps[i]);
      int gx = static_cast<int>(std::lround(pen)) + x0;  // glyph origin along the text
      for (int j = 0; j < bh; ++j)
        for (int k = 0; k < bw; ++k) {
          double a = bmp[static_cast<size_t>(j) * bw + k] / 255.0;
          // Horizontal: (gx + k, y + y0 + j). Vertical (reading upwards): the
          // text axis runs to -y and the glyph's "down" runs to +x.
          if (vertical)
            blend(x + y0 + j, y - (gx + k), c, a);
          else
            blend(x + gx + k, y + y0 + j, c, a);
        }
    }
    pen += adv * scale;
    if (i + 1 < cps.size()) pen += scale * stbtt_GetCodepointKernAdvance(&f.info, cps[i], cps[i + 1]);
  }
  return static_cast<int>(std::ceil(pen));
}

void Canvas::save_png(const std::string& path) const {
  std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  NEURN_CHECK(!ec, "cannot create directory ", p.parent_path().string(), ": ", ec.message());
  NEURN_CHECK(stbi_write_png(path.c_str(), w_, h_, 3, rgb_.data(), w_ * 3) != 0, "cannot write PNG ", path);
}

namespace {

struct HeatmapLayout {
  int cell, left, top, n, legend_x, width, height;
};

HeatmapLayout layout(const Heatmap& h, Canvas* measure) {
  HeatmapLayout l{};
  l.n = static_cast<int>(h.labels.size());
  l.cell = l.n <= 6 ? 64 : (l.n <= 16 ? 44 : 30);
  int longest = 0;
  for (auto& s : h.labels)
    longest = std::max(longest, measure ? measure->text_width(s, 13) : static_cast<int>(s.size()) * 8);
  l.left = longest + 16;
  l.top = longest + 40;
  l.legend_x = l.left + l.n * l.cell + 20;
  l.width = l.legend_x + 90;
  l.height = std::max(l.top + l.n * l.cell + 20, l.top + 220);
  return l;
}

double norm01(const Heatmap& h, double v) { return h.hi > h.lo ? (v - h.lo) / (h.hi - h.lo) : 0.5; }
Rgb cell_color(const Heatmap& h, double v) {
  return h.diverging ? colormap_diverging(norm01(h, v)) : colormap_sequential(norm01(h, v));
}
// Dark text on light cells and light text on dark ones.
Rgb text_on(Rgb bg) {
  double lum = 0.299 * bg.r + 0.587 * bg.g + 0.114 * bg.b;
  return lum > 140 ? Rgb{0, 0, 0} : Rgb{255, 255, 255};
}

}  // namespace

void write_heatmap_png(const Heatmap& h, const std::string& path) {
  Canvas probe(1, 1);
  HeatmapLayout l = layout(h, &probe);
  Canvas c(l.width, l.height);
  c.text(10, 22, h.title, 16, {0, 0, 0});
  for (int i = 0; i < l.n; ++i) {
    c.text(l.left - 8 - c.text_width(h.labels[i], 13), l.top + i * l.cell + l.cell / 2 + 5, h.labels[i], 13,
           {0, 0, 0});
    c.text(l.left + i * l.cell + l.cell / 2 + 5, l.top - 8, h.labels[i], 13, {0, 0, 0}, true);
    for (int j = 0; j < l.n; ++j) {
      double v = h.values[i][j];
      Rgb bg = cell_color(h, v);
      c.fill_rect(l.left + j * l.cell, l.top + i * l.cell, l.cell - 1, l.cell - 1, bg);
      std::string s = fmt(v, h.decimals);
      double px = l.cell >= 44 ? 12 : 9;
      c.text(l.left + j * l.cell + (l.cell - c.text_width(s, px)) / 2, l.top + i * l.cell + l.cell / 2 + 4, s, px,
             text_on(bg));
    }
  }
  // Colour bar with its end values.
  int bar_h = std::max(160, l.n * l.cell - 20);
  for (int k = 0; k < bar_h; ++k) {
    double t = 1.0 - static_cast<double>(k) / (bar_h - 1);
    c.fill_rect(l.legend_x, l.top + k, 18, 1, h.diverging ? colormap_diverging(t) : colormap_sequential(t));
  }
  c.text(l.legend_x + 24, l.top + 10, fmt(h.hi, h.decimals), 12, {0, 0, 0});
  c.text(l.legend_x + 24, l.top + bar_h, fmt(h.lo, h.decimals), 12, {0, 0, 0});
  c.save_png(path);
}

void write_heatmap_svg(const Heatmap& h, const std::string& path) {
  HeatmapLayout l = layout(h, nullptr);
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << l.width << "\" height=\"" << l.height
    << "\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"10\" y=\"22\" font-size=\"16\">" << xml_escape(h.title) << "</text>\n";
  for (int i = 0; i < l.n; ++i) {
    s << "<text x=\"" << l.left - 8 << "\" y=\"" << l.top + i * l.cell + l.cell / 2 + 5
      << "\" font-size=\"13\" text-anchor=\"end\">" << xml_escape(h.labels[i]) << "</text>\n";
    int tx = l.left + i * l.cell + l.cell / 2 + 5, ty = l.top - 8;
    s << "<text x=\"" << tx << "\" y=\"" << ty << "\" font-size=\"13\" transform=\"rotate(-90 " << tx << " " << ty
      << ")\">" << xml_escape(h.labels[i]) << "</text>\n";
    for (int j = 0; j < l.n; ++j) {
      double v = h.values[i][j];
      Rgb bg = cell_color(h, v);
      int x = l.left + j * l.cell, y = l.top + i * l.cell;
      s << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << l.cell - 1 << "\" height=\"" << l.cell - 1
        << "\" fill=\"" << bg.hex() << "\"><title>" << xml_escape(h.labels[i]) << " / " << xml_escape(h.labels[j])
        << ": " << fmt(v, 4) << "</title></rect>\n";
      s << "<text x=\"" << x + l.cell / 2 << "\" y=\"" << y + l.cell / 2 + 4 << "\" font-size=\""
        << (l.cell >= 44 ? 12 : 9) << "\" text-anchor=\"middle\" fill=\"" << text_on(bg).hex() << "\">"
        << fmt(v, h.decimals) << "</text>\n";
    }
  }
  int bar_h = std::max(160, l.n * l.cell - 20);
  s << "<defs><linearGradient id=\"bar\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int k = 0; k <= 10; ++k) {
    double t = k / 10.0;
    s << "<stop offset=\"" << t << "\" stop-color=\""
      << (h.diverging ? colormap_diverging(t) : colormap_sequential(t)).hex() << "\"/>";
  }
  s << "</linearGradient></defs>\n";
  s << "<rect x=\"" << l.legend_x << "\" y=\"" << l.top << "\" width=\"18\" height=\"" << bar_h
    << "\" fill=\"url(#bar)\"/>\n";
  s << "<text x=\"" << l.legend_x + 24 << "\" y=\"" << l.top + 10 << "\" font-size=\"12\">" << fmt(h.hi, h.decimals)
    << "</text>\n";
  s << "<text x=\"" << l.legend_x + 24 << "\" y=\"" << l.top + bar_h << "\" font-size=\"12\">"
    << fmt(h.lo, h.decimals) << "</text>\n";
  s << "</svg>\n";
  write_file_atomic(path, s.str());
}

std::string line_chart_svg(const LineChart& c, int width, int height) {
  const int left = 60, right = 200, top = 36, bottom = 46;
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (auto& s : c.series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]), ymax = std::max(ymax, s.y[i]);
    }
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  if (xmax == xmin) xmax = xmin + 1;
  if (ymax == ymin) ymax = ymin + 1;
  double pad = (ymax - ymin) * 0.05;
  ymin -= pad, ymax += pad;
  int pw = width - left - right, ph = height - top - bottom;
  auto X = [&](double x) { return left + (x - xmin) / (xmax - xmin) * pw; };
  auto Y = [&](double y) { return top + (1 - (y - ymin) / (ymax - ymin)) * ph; };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << left << "\" y=\"20\" font-size=\"14\">" << xml_escape(c.title) << "</text>\n";
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    double yv = ymin + (ymax - ymin) * k / 4.0, xv = xmin + (xmax - xmin) * k / 4.0;
    s << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << Y(yv) << "\" y2=\"" << Y(yv)
      << "\" stroke=\"#eee\"/>";
    s << "<text x=\"" << left - 6 << "\" y=\"" << Y(yv) + 4 << "\" text-anchor=\"end\">" << fmt(yv, 3) << "</text>";
    s << "<text x=\"" << X(xv) << "\" y=\"" << top + ph + 16 << "\" text-anchor=\"middle\">"
      << fmt(xv, xmax - xmin >= 4 ? 0 : 1) << "</text>\n";
  }
  s << "<text x=\"" << left + pw / 2 << "\" y=\"" << height - 8 << "\" text-anchor=\"middle\">"
    << xml_escape(c.xlabel) << "</text>\n";
  s << "<text x=\"14\" y=\"" << top + ph / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
    << top + ph / 2 << ")\">" << xml_escape(c.ylabel) << "</text>\n";
  for (size_t k = 0; k < c.series.size(); ++k) {
    const Series& se = c.series[k];
    s << "<polyline fill=\"none\" stroke=\"" << se.color.hex() << "\" stroke-width=\"2\""
      << (se.dashed ? " stroke-dasharray=\"6 4\"" : "") << " points=\"";
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i)
      if (std::isfinite(se.y[i])) s << X(se.x[i]) << "," << Y(se.y[i]) << " ";
    s << "\"/>\n";
    int ly = top + 8 + static_cast<int>(k) * 16;
    s << "<line x1=\"" << left + pw + 10 << "\" x2=\"" << left + pw + 34 << "\" y1=\"" << ly << "\" y2=\"" << ly
      << "\" stroke=\"" << se.color.hex() << "\" stroke-width=\"2\"" << (se.dashed ? " stroke-dasharray=\"6 4\"" : "")
      << "/>";
    s << "<text x=\"" << left + pw + 40 << "\" y=\"" << ly + 4 << "\">" << xml_escape(se.label) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

// ---- clustered heatmap and incidence plot --------------------------------
// Both figures are laid out once and drawn through a Painter, so the PNG and
// the SVG are the same picture.
namespace {

enum class Anchor { Start, Middle, End };

class Painter {
 public:
  virtual ~Painter() = default;
  virtual void rect(double x, double y, double w, double h, Rgb c, const std::string& tooltip = "") = 0;
  virtual void frame(double x, double y, double w, double h, Rgb c, double width) = 0;  // outline only
  virtual void line(double x0, double y0, double x1, double y1, Rgb c, double width) = 0;
  // Horizontal text: baseline at y, anchored at x. Vertical text reads
  // upwards, its anchor on the reading axis at y, its baseline at x.
  virtual void text(double x, double y, const std::string& s, double px, Rgb c, Anchor a = Anchor::Start,
                    bool vertical = false) = 0;
};

// Text widths for the layout: the font's when there is one, else an average
// advance (the SVG is then laid out the same way the PNG would be).
int measure(const std::string& s, double px) {
  static Canvas probe(1, 1);
  int w = probe.text_width(s, px);
  return w > 0 ? w : static_cast<int>(std::ceil(0.6 * px * static_cast<double>(s.size())));
}

class PngPainter : public Painter {
 public:
  explicit PngPainter(Canvas& c) : c_(c) {}
  void rect(double x, double y, double w, double h, Rgb c, const std::string&) override {
    c_.fill_rect(static_cast<int>(std::lround(x)), static_cast<int>(std::lround(y)), static_cast<int>(std::lround(w)),
                 static_cast<int>(std::lround(h)), c);
  }
  void frame(double x, double y, double w, double h, Rgb c, double width) override {
    int t = std::max(1, static_cast<int>(std::lround(width)));
    line(x, y, x + w, y, c, t), line(x + w, y, x + w, y + h, c, t);
    line(x + w, y + h, x, y + h, c, t), line(x, y + h, x, y, c, t);
  }
  void line(double x0, double y0, double x1, double y1, Rgb c, double width) override {
    c_.line(x0, y0, x1, y1, c, std::max(1, static_cast<int>(std::lround(width))));
  }
  void text(double x, double y, const std::string& s, double px, Rgb c, Anchor a, bool vertical) override {
    double w = measure(s, px), off = a == Anchor::Start ? 0 : (a == Anchor::Middle ? w / 2 : w);
    if (vertical)
      c_.text(static_cast<int>(std::lround(x)), static_cast<int>(std::lround(y + off)), s, px, c, true);
    else
      c_.text(static_cast<int>(std::lround(x - off)), static_cast<int>(std::lround(y)), s, px, c);
  }

 private:
  Canvas& c_;
};

class SvgPainter : public Painter {
 public:
  SvgPainter(int w, int h) {
    s_ << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
       << "\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  }
  void rect(double x, double y, double w, double h, Rgb c, const std::string& tooltip) override {
    s_ << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << w << "\" height=\"" << h << "\" fill=\"" << c.hex()
       << "\"";
    if (tooltip.empty())
      s_ << "/>\n";
    else
      s_ << "><title>" << xml_escape(tooltip) << "</title></rect>\n";
  }
  void frame(double x, double y, double w, double h, Rgb c, double width) override {
    s_ << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << w << "\" height=\"" << h
       << "\" fill=\"none\" stroke=\"" << c.hex() << "\" stroke-width=\"" << width << "\"/>\n";
  }
  void line(double x0, double y0, double x1, double y1, Rgb c, double width) override {
    s_ << "<line x1=\"" << x0 << "\" y1=\"" << y0 << "\" x2=\"" << x1 << "\" y2=\"" << y1 << "\" stroke=\"" << c.hex()
       << "\" stroke-width=\"" << width << "\"/>\n";
  }
  void text(double x, double y, const std::string& t, double px, Rgb c, Anchor a, bool vertical) override {
    const char* anchor = a == Anchor::Start ? "start" : (a == Anchor::Middle ? "middle" : "end");
    // Rotated -90 degrees the text reads upwards, as the PNG's vertical text.
    s_ << "<text x=\"" << x << "\" y=\"" << y << "\" font-size=\"" << px << "\" text-anchor=\"" << anchor
       << "\" fill=\"" << c.hex() << "\"";
    if (vertical) s_ << " transform=\"rotate(-90 " << x << " " << y << ")\"";
    s_ << ">" << xml_escape(t) << "</text>\n";
  }
  std::string finish() { return s_.str() + "</svg>\n"; }

 private:
  std::ostringstream s_;
};

struct ClusterLayout {
  int n, cell, dendro_x, dendro_w, grid_x, grid_y, label_w, legend_x, width, height;
  double label_px, value_px;
};

ClusterLayout cluster_layout(const ClusteredHeatmap& h) {
  ClusterLayout l{};
  l.n = static_cast<int>(h.labels.size());
  l.cell = l.n <= 8 ? 48 : (l.n <= 20 ? 30 : (l.n <= 50 ? 18 : 12));
  l.label_px = l.cell >= 18 ? 12 : 10;
  l.value_px = l.cell >= 48 ? 12 : 9;
  int longest = 0;
  for (auto& s : h.labels) longest = std::max(longest, measure(s, l.label_px));
  l.label_w = longest * 11 / 10 + 12;  // slack for a wider substitute font in SVG viewers
  l.dendro_x = 10;
  l.dendro_w = h.links.empty() ? 0 : std::max(120, l.n * l.cell / 3);
  l.grid_x = l.dendro_x + l.dendro_w + 6;
  l.grid_y = 62 + (h.highlight_note.empty() ? 0 : 16);
  l.legend_x = l.grid_x + l.n * l.cell + l.label_w + 16;
  int title_w = std::max(measure(h.title, 16), measure(h.subtitle, 12)) + 20;
  l.width = std::max(l.legend_x + 70, title_w);
  l.height = l.grid_y + l.n * l.cell + l.label_w + 10;
  return l;
}

void draw_clustered(const ClusteredHeatmap& h, const ClusterLayout& l, Painter& p) {
  const int n = l.n;
  std::vector<int> order = h.order;
  if (order.empty())
    for (int i = 0; i < n; ++i) order.push_back(i);
  std::vector<int> pos(static_cast<size_t>(n));  // item -> row
  for (int r = 0; r < n; ++r) pos[static_cast<size_t>(order[static_cast<size_t>(r)])] = r;
  const Rgb black{0, 0, 0}, red{200, 20, 20}, grey{90, 90, 90};
  p.text(10, 22, h.title, 16, black);
  if (!h.subtitle.empty()) p.text(10, 42, h.subtitle, 12, grey);
  if (!h.highlight_note.empty()) p.text(10, 58, h.highlight_note, 12, red);
  auto color = [&](double v) {
    double t = h.hi > h.lo ? (v - h.lo) / (h.hi - h.lo) : 0.5;
    return h.diverging ? colormap_diverging(t) : colormap_sequential(t);
  };
  for (int r = 0; r < n; ++r) {
    int i = order[static_cast<size_t>(r)];
    for (int c = 0; c < n; ++c) {
      int j = order[static_cast<size_t>(c)];
      double v = h.values[static_cast<size_t>(i)][static_cast<size_t>(j)];
      Rgb bg = color(v);
      double x = l.grid_x + c * l.cell, y = l.grid_y + r * l.cell;
      p.rect(x, y, l.cell, l.cell, bg, h.labels[static_cast<size_t>(i)] + " / " + h.labels[static_cast<size_t>(j)] +
                                           ": " + fmt(v, 4));
      if (l.cell >= 30) p.text(x + l.cell / 2.0, y + l.cell / 2.0 + 4, fmt(v, h.decimals), l.value_px, text_on(bg), Anchor::Middle);
    }
    bool hl = static_cast<size_t>(i) < h.highlight.size() && h.highlight[static_cast<size_t>(i)];
    const std::string& lab = h.labels[static_cast<size_t>(i)];
    double cy = l.grid_y + r * l.cell + l.cell / 2.0 + l.label_px * 0.35;
    p.text(l.grid_x + n * l.cell + 6, cy, lab, l.label_px, hl ? red : black);
    double cx = l.grid_x + r * l.cell + l.cell / 2.0 + l.label_px * 0.35;
    p.text(cx, l.grid_y + n * l.cell + 6, lab, l.label_px, hl ? red : black, Anchor::End, true);
  }
  // Cluster boxes: the clusters are contiguous runs of rows.
  if (static_cast<int>(h.clusters.size()) == n) {
    int start = 0;
    for (int r = 1; r <= n; ++r) {
      if (r < n && h.clusters[static_cast<size_t>(order[static_cast<size_t>(r)])] ==
                       h.clusters[static_cast<size_t>(order[static_cast<size_t>(start)])])
        continue;
      double x = l.grid_x + start * l.cell, len = (r - start) * l.cell;
      // White on the dark viridis cells; black on the diverging map's light middle.
      p.frame(x, l.grid_y + start * l.cell, len, len, h.diverging ? Rgb{0, 0, 0} : Rgb{255, 255, 255}, 2);
      start = r;
    }
  }
  // Dendrogram: leaves at the grid's left edge, height growing to the left.
  if (!h.links.empty()) {
    double hmax = 0;
    for (auto& k : h.links) hmax = std::max(hmax, k.height);
    if (hmax <= 0) hmax = 1;
    std::vector<double> ny(static_cast<size_t>(2 * n)), nx(static_cast<size_t>(2 * n));
    const double right = l.dendro_x + l.dendro_w;
    for (int i = 0; i < n; ++i) {
      ny[static_cast<size_t>(i)] = l.grid_y + pos[static_cast<size_t>(i)] * l.cell + l.cell / 2.0;
      nx[static_cast<size_t>(i)] = right;
    }
    for (size_t k = 0; k < h.links.size(); ++k) {
      auto& lk = h.links[k];
      double x = right - lk.height / hmax * l.dendro_w;
      auto a = static_cast<size_t>(lk.left), b = static_cast<size_t>(lk.right);
      p.line(nx[a], ny[a], x, ny[a], grey, 1);
      p.line(nx[b], ny[b], x, ny[b], grey, 1);
      p.line(x, ny[a], x, ny[b], grey, 1);
      nx[static_cast<size_t>(n) + k] = x;
      ny[static_cast<size_t>(n) + k] = (ny[a] + ny[b]) / 2;
    }
    // Height axis under the dendrogram.
    double ay = l.grid_y + n * l.cell + 6;
    p.line(l.dendro_x, ay, right, ay, grey, 1);
    for (int t = 0; t <= 2; ++t) {
      double x = right - t / 2.0 * l.dendro_w;
      p.line(x, ay, x, ay + 4, grey, 1);
      p.text(x, ay + 16, fmt(hmax * t / 2.0, 2), 10, grey, Anchor::Middle);
    }
    p.text(l.dendro_x + l.dendro_w / 2.0, ay + 30, "linkage distance", 10, grey, Anchor::Middle);
  }
  // Colour bar.
  int bar_h = std::max(120, n * l.cell / 2);
  for (int k = 0; k < bar_h; k += 2) {
    double t = 1.0 - static_cast<double>(k) / (bar_h - 1);
    p.rect(l.legend_x, l.grid_y + k, 16, 2, h.diverging ? colormap_diverging(t) : colormap_sequential(t));
  }
  p.text(l.legend_x + 20, l.grid_y + 10, fmt(h.hi, 2), 11, black);
  p.text(l.legend_x + 20, l.grid_y + bar_h, fmt(h.lo, 2), 11, black);
}

void check_clustered(const ClusteredHeatmap& h) {
  const size_t n = h.labels.size();
  NEURN_CHECK(h.values.size() == n, "clustered heatmap: ", h.values.size(), " rows for ", n, " labels");
  for (auto& r : h.values) NEURN_CHECK(r.size() == n, "clustered heatmap: a row of ", r.size(), " values for ", n, " labels");
  NEURN_CHECK(h.order.empty() || h.order.size() == n, "clustered heatmap: order of ", h.order.size(), " for ", n);
  NEURN_CHECK(h.links.empty() || h.links.size() + 1 == n, "clustered heatmap: ", h.links.size(), " links for ", n,
              " items");
}

struct IncidenceLayout {
  int rows, cols, cell_w, cell_h, left, top, grid_w, width, height;
};

IncidenceLayout incidence_layout(const IncidencePlot& p) {
  IncidenceLayout l{};
  l.rows = static_cast<int>(p.row_labels.size());
  l.cols = static_cast<int>(p.column_labels.size());
  l.cell_w = l.cols <= 20 ? 18 : 14;
  l.cell_h = 13;
  int longest_row = 0, longest_col = 0;
  for (auto& s : p.row_labels) longest_row = std::max(longest_row, measure(s, 10));
  for (auto& s : p.column_labels) longest_col = std::max(longest_col, measure(s, 11));
  // 10% slack: an SVG viewer may substitute a wider font than the one measured.
  l.left = longest_row * 11 / 10 + 16;
  l.top = 56 + longest_col * 11 / 10 + 8;
  l.grid_w = l.cols * l.cell_w;
  l.width = std::max(l.left + l.grid_w + 150, std::max(measure(p.title, 16), measure(p.subtitle, 12)) + 20);
  l.height = l.top + l.rows * l.cell_h + 16;
  return l;
}

void draw_incidence(const IncidencePlot& p, const IncidenceLayout& l, Painter& pa) {
  const Rgb black{0, 0, 0}, grey{90, 90, 90}, light{238, 238, 238}, on{33, 102, 172};
  pa.text(10, 22, p.title, 16, black);
  if (!p.subtitle.empty()) pa.text(10, 42, p.subtitle, 12, grey);
  pa.text(l.left + l.grid_w + 8, l.top - 6, "models  occurrences", 10, grey);
  for (int c = 0; c < l.cols; ++c)
    pa.text(l.left + c * l.cell_w + l.cell_w / 2.0 + 4, l.top - 6, p.column_labels[static_cast<size_t>(c)], 11, black,
            Anchor::Start, true);
  for (int r = 0; r < l.rows; ++r) {
    double y = l.top + r * l.cell_h;
    if (r % 2 == 0) pa.rect(l.left, y, l.grid_w, l.cell_h, {250, 250, 250});
    pa.text(l.left - 6, y + l.cell_h - 3, p.row_labels[static_cast<size_t>(r)], 10, black, Anchor::End);
    std::vector<bool> holds(static_cast<size_t>(l.cols), false);
    for (int c : p.rows_hold[static_cast<size_t>(r)])
      if (c >= 0 && c < l.cols) holds[static_cast<size_t>(c)] = true;
    for (int c = 0; c < l.cols; ++c)
      pa.rect(l.left + c * l.cell_w + 1, y + 1, l.cell_w - 2, l.cell_h - 2, holds[static_cast<size_t>(c)] ? on : light,
              holds[static_cast<size_t>(c)] ? p.row_labels[static_cast<size_t>(r)] + " in " +
                                                  p.column_labels[static_cast<size_t>(c)]
                                            : "");
    std::string note = std::to_string(p.rows_hold[static_cast<size_t>(r)].size());
    if (static_cast<size_t>(r) < p.row_notes.size() && !p.row_notes[static_cast<size_t>(r)].empty())
      note += "  " + p.row_notes[static_cast<size_t>(r)];
    pa.text(l.left + l.grid_w + 8, y + l.cell_h - 3, note, 10, grey);
  }
}

void check_incidence(const IncidencePlot& p) {
  NEURN_CHECK(p.rows_hold.size() == p.row_labels.size(), "incidence plot: ", p.rows_hold.size(), " rows of cells for ",
              p.row_labels.size(), " row labels");
  NEURN_CHECK(!p.row_labels.empty() && !p.column_labels.empty(), "incidence plot: no rows or no columns");
}

}  // namespace

void write_clustered_heatmap_png(const ClusteredHeatmap& h, const std::string& path) {
  check_clustered(h);
  ClusterLayout l = cluster_layout(h);
  Canvas c(l.width, l.height);
  PngPainter p(c);
  draw_clustered(h, l, p);
  c.save_png(path);
}

void write_clustered_heatmap_svg(const ClusteredHeatmap& h, const std::string& path) {
  check_clustered(h);
  ClusterLayout l = cluster_layout(h);
  SvgPainter p(l.width, l.height);
  draw_clustered(h, l, p);
  write_file_atomic(path, p.finish());
}

void write_incidence_png(const IncidencePlot& ip, const std::string& path) {
  check_incidence(ip);
  IncidenceLayout l = incidence_layout(ip);
  Canvas c(l.width, l.height);
  PngPainter p(c);
  draw_incidence(ip, l, p);
  c.save_png(path);
}

void write_incidence_svg(const IncidencePlot& ip, const std::string& path) {
  check_incidence(ip);
  IncidenceLayout l = incidence_layout(ip);
  SvgPainter p(l.width, l.height);
  draw_incidence(ip, l, p);
  write_file_atomic(path, p.finish());
}

}  // namespace neurn::experiments
