#include "experiments/plot.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "experiments/results.h"
#include "framework/error.h"

namespace neurn::experiments {

std::string Rgb::hex() const {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
}

// ---- colours -------------------------------------------------------------------

namespace {

const Rgb kNoValue{220, 220, 220};

Rgb ramp(const std::vector<Rgb>& stops, double t) {
  if (!std::isfinite(t)) return kNoValue;
  t = std::clamp(t, 0.0, 1.0) * static_cast<double>(stops.size() - 1);
  size_t i = std::min(static_cast<size_t>(t), stops.size() - 2);
  double f = t - static_cast<double>(i);
  auto m = [&](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a + (b - a) * f)); };
  return {m(stops[i].r, stops[i + 1].r), m(stops[i].g, stops[i + 1].g), m(stops[i].b, stops[i + 1].b)};
}

}  // namespace

Rgb colormap_sequential(double t) {
  // Viridis (van der Walt and Smith, matplotlib's default map): its published
  // 256-entry table sampled every 16 entries, linear in between.
  static const std::vector<Rgb> stops{
      {0x44, 0x01, 0x54}, {0x48, 0x18, 0x6a}, {0x47, 0x2d, 0x7b}, {0x42, 0x40, 0x86}, {0x3b, 0x52, 0x8b},
      {0x33, 0x63, 0x8d}, {0x2c, 0x72, 0x8e}, {0x26, 0x82, 0x8e}, {0x21, 0x91, 0x8c}, {0x1f, 0xa0, 0x88},
      {0x28, 0xae, 0x80}, {0x3f, 0xbc, 0x73}, {0x5e, 0xc9, 0x62}, {0x84, 0xd4, 0x4b}, {0xad, 0xdc, 0x30},
      {0xd8, 0xe2, 0x19}, {0xfd, 0xe7, 0x25}};
  return ramp(stops, t);
}

Rgb colormap_diverging(double t) {
  // ColorBrewer RdBu (blue for negative, red for positive), white at 0.
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

// ---- ticks -----------------------------------------------------------------------

Ticks nice_ticks(double lo, double hi, int max_ticks, bool integer, bool covering) {
  NEURN_CHECK(std::isfinite(lo) && std::isfinite(hi), "nice_ticks: range [", lo, ", ", hi, "] is not finite");
  NEURN_CHECK(max_ticks >= 2, "nice_ticks: max_ticks must be >= 2, got ", max_ticks);
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo <= 1e-12 * std::max(1.0, std::abs(lo))) {  // one value: a range around it
    double d = integer ? 1.0 : (lo == 0 ? 1.0 : std::abs(lo) * 0.1);
    lo -= d, hi += d;
  }
  // Candidate steps in increasing order, from well below the range / max_ticks:
  // the first whose tick count fits is the finest that does.
  const double raw = (hi - lo) / max_ticks;
  int e = static_cast<int>(std::floor(std::log10(raw))) - 1;
  const double tol = 1e-9;
  for (;; ++e) {
    for (double m : {1.0, 2.0, 5.0}) {
      double step = m * std::pow(10.0, e);
      if (integer && step < 1) continue;
      double k0 = covering ? std::floor(lo / step + tol) : std::ceil(lo / step - tol);
      double k1 = covering ? std::ceil(hi / step - tol) : std::floor(hi / step + tol);
      if (k1 - k0 + 1 > max_ticks) continue;
      Ticks t;
      t.step = step;
      t.decimals = std::max(0, -e);
      for (double k = k0; k <= k1; ++k) {
        double v = k * step;
        t.values.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
      }
      if (t.values.empty()) t.values.push_back(std::round(lo / step) * step);  // unreachable for sane input
      return t;
    }
  }
}

std::string tick_label(double v, int decimals) {
  if (!std::isfinite(v)) return "";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", std::max(0, decimals), v);
  std::string s = buf;
  if (s[0] == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);  // "-0.00" -> "0.00"
  return s;
}

ImageFormat image_format(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".png") return ImageFormat::Png;
  if (ext == ".svg") return ImageFormat::Svg;
  if (ext == ".pdf") return ImageFormat::Pdf;
  NEURN_FAIL("figure ", path, ": unknown extension '", ext, "' (expected .png, .svg or .pdf)");
}

// ---- canvas ----------------------------------------------------------------------

namespace {

// The one font of every figure: fontconfig resolves the generic family. Hinted
// metrics are off so that a text measured for the layout has the same width
// in every format.
void set_font(cairo_t* cr, double px, bool bold) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, px);
}

void set_font_options(cairo_t* cr) {
  cairo_font_options_t* fo = cairo_font_options_create();
  cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
  cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
  cairo_set_font_options(cr, fo);
  cairo_font_options_destroy(fo);
}

void set_color(cairo_t* cr, Rgb c) { cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0); }

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

void check_status(cairo_status_t s, const char* what) {
  NEURN_CHECK(s == CAIRO_STATUS_SUCCESS, "figure: cairo ", what, ": ", cairo_status_to_string(s));
}

}  // namespace

// Whole pixels: a fractional size would leave the PNG's last row and column
// outside the background.
Canvas::Canvas(double width, double height, Rgb background) : w_(std::ceil(width)), h_(std::ceil(height)) {
  NEURN_CHECK(width > 0 && height > 0 && width < 1e5 && height < 1e5, "Canvas: bad size ", width, "x", height);
  cairo_rectangle_t extents{0, 0, w_, h_};
  rec_ = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &extents);
  cr_ = cairo_create(rec_);
  check_status(cairo_status(cr_), "recording surface");
  set_font_options(cr_);
  fill_rect(0, 0, w_, h_, background);
}

Canvas::~Canvas() {
  cairo_destroy(cr_);
  cairo_surface_destroy(rec_);
}

void Canvas::fill_rect(double x, double y, double w, double h, Rgb c) {
  set_color(cr_, c);
  cairo_rectangle(cr_, x, y, w, h);
  cairo_fill(cr_);
}

void Canvas::stroke_rect(double x, double y, double w, double h, Rgb c, double line_width) {
  set_color(cr_, c);
  cairo_set_line_width(cr_, line_width);
  cairo_set_dash(cr_, nullptr, 0, 0);
  cairo_rectangle(cr_, x, y, w, h);
  cairo_stroke(cr_);
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, double line_width, bool dashed) {
  polyline({x0, x1}, {y0, y1}, c, line_width, dashed);
}

void Canvas::polyline(const std::vector<double>& xs, const std::vector<double>& ys, Rgb c, double line_width,
                      bool dashed) {
  set_color(cr_, c);
  cairo_set_line_width(cr_, line_width);
  cairo_set_line_join(cr_, CAIRO_LINE_JOIN_ROUND);
  const double dash[2] = {6, 4};
  cairo_set_dash(cr_, dashed ? dash : nullptr, dashed ? 2 : 0, 0);
  bool pen_down = false;
  for (size_t i = 0; i < xs.size() && i < ys.size(); ++i) {
    if (!std::isfinite(xs[i]) || !std::isfinite(ys[i])) {
      pen_down = false;
      continue;
    }
    if (pen_down)
      cairo_line_to(cr_, xs[i], ys[i]);
    else
      cairo_move_to(cr_, xs[i], ys[i]);
    pen_down = true;
  }
  cairo_stroke(cr_);
  cairo_set_dash(cr_, nullptr, 0, 0);
}

void Canvas::circle(double x, double y, double radius, Rgb c) {
  set_color(cr_, c);
  cairo_new_sub_path(cr_);
  cairo_arc(cr_, x, y, radius, 0, 2 * M_PI);
  cairo_fill(cr_);
}

void Canvas::vertical_ramp(double x, double y, double w, double h, bool diverging) {
  cairo_pattern_t* g = cairo_pattern_create_linear(0, y + h, 0, y);
  // 16 segments: the viridis stops above are 1/16 apart, so this is exact.
  for (int k = 0; k <= 16; ++k) {
    double t = k / 16.0;
    Rgb c = diverging ? colormap_diverging(t) : colormap_sequential(t);
    cairo_pattern_add_color_stop_rgb(g, t, c.r / 255.0, c.g / 255.0, c.b / 255.0);
  }
  cairo_set_source(cr_, g);
  cairo_rectangle(cr_, x, y, w, h);
  cairo_fill(cr_);
  cairo_pattern_destroy(g);
}

double Canvas::text_width(const std::string& utf8, double px, bool bold) {
  if (utf8.empty()) return 0;
  // A private context: measuring must not disturb a drawing in progress.
  thread_local cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
  thread_local cairo_t* cr = [] {
    cairo_t* c = cairo_create(s);
    set_font_options(c);
    return c;
  }();
  set_font(cr, px, bold);
  cairo_text_extents_t e;
  cairo_text_extents(cr, utf8.c_str(), &e);
  return e.x_advance;
}

void Canvas::text(double x, double y, const std::string& utf8, double px, Rgb c, Anchor a, bool vertical, bool bold) {
  if (utf8.empty()) return;
  double w = text_width(utf8, px, bold);
  double off = a == Anchor::Start ? 0 : (a == Anchor::Middle ? w / 2 : w);
  cairo_save(cr_);
  set_font(cr_, px, bold);
  set_color(cr_, c);
  cairo_translate(cr_, x, y);
  if (vertical) cairo_rotate(cr_, -M_PI / 2);  // the text's x axis now points up the page
  cairo_move_to(cr_, -off, 0);
  cairo_show_text(cr_, utf8.c_str());
  cairo_restore(cr_);
}

std::string Canvas::encode(ImageFormat f) const {
  check_status(cairo_status(cr_), "drawing");
  cairo_surface_flush(rec_);
  std::string out;
  const int pw = static_cast<int>(std::ceil(w_)), ph = static_cast<int>(std::ceil(h_));
  cairo_surface_t* target = nullptr;
  switch (f) {
    case ImageFormat::Png: target = cairo_image_surface_create(CAIRO_FORMAT_RGB24, pw, ph); break;
    case ImageFormat::Svg:
      target = cairo_svg_surface_create_for_stream(append_to_string, &out, w_, h_);
      cairo_svg_surface_set_document_unit(target, CAIRO_SVG_UNIT_PX);  // as wide in a browser as the PNG
      break;
    case ImageFormat::Pdf: target = cairo_pdf_surface_create_for_stream(append_to_string, &out, w_, h_); break;
  }
  check_status(cairo_surface_status(target), "output surface");
  cairo_t* cr = cairo_create(target);
  cairo_set_source_surface(cr, rec_, 0, 0);
  cairo_paint(cr);
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  if (f == ImageFormat::Png && st == CAIRO_STATUS_SUCCESS)
    st = cairo_surface_write_to_png_stream(target, append_to_string, &out);
  cairo_surface_finish(target);  // the vector formats write their end here
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(target);
  cairo_surface_destroy(target);
  check_status(st, "encoding");
  return out;
}

std::string Canvas::inline_svg() const {
  std::string s = encode(ImageFormat::Svg);
  size_t at = s.find("<svg");
  return at == std::string::npos ? s : s.substr(at);
}

void Canvas::save(const std::string& path) const {
  std::string bytes = encode(image_format(path));
  std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  NEURN_CHECK(!ec, "figure: cannot create directory ", p.parent_path().string(), ": ", ec.message());
  write_file_atomic(path, bytes);
}

void Canvas::save_png(const std::string& path) const {
  NEURN_CHECK(image_format(path) == ImageFormat::Png, "figure ", path, ": save_png needs a .png path");
  save(path);
}

// ---- shared pieces of the figures ----------------------------------------------

namespace {

const Rgb kBlack{0, 0, 0}, kGrey{90, 90, 90}, kLightGrey{200, 200, 200}, kRed{200, 20, 20};

std::string fmt(double v, int decimals) { return std::isfinite(v) ? tick_label(v, decimals) : ""; }

// Dark text on light cells and light text on dark ones.
Rgb text_on(Rgb bg) {
  double lum = 0.299 * bg.r + 0.587 * bg.g + 0.114 * bg.b;
  return lum > 140 ? kBlack : Rgb{255, 255, 255};
}

double widest(const std::vector<std::string>& xs, double px) {
  double w = 0;
  for (auto& s : xs) w = std::max(w, Canvas::text_width(s, px));
  return w;
}

// A colour bar of height h at (x, y) with 1-2-5 ticks; returns its width with
// the tick labels and the bar's label.
struct ColorBar {
  double lo, hi;
  bool diverging;
  std::string label;
  static constexpr double kBar = 16, kTickPx = 11, kLabelPx = 12;
  Ticks ticks() const { return nice_ticks(lo, hi, 6); }
  double width() const {
    double w = 0;
    Ticks t = ticks();
    for (double v : t.values) w = std::max(w, Canvas::text_width(tick_label(v, t.decimals), kTickPx));
    return kBar + 6 + w + (label.empty() ? 0 : 8 + kLabelPx);
  }
  void draw(Canvas& c, double x, double y, double h) const {
    c.vertical_ramp(x, y, kBar, h, diverging);
    c.stroke_rect(x, y, kBar, h, kGrey, 0.6);
    Ticks t = ticks();
    double tw = 0;
    for (double v : t.values) {
      double ty = y + (1 - (v - lo) / (hi - lo)) * h;
      c.line(x + kBar, ty, x + kBar + 4, ty, kGrey, 1);
      std::string s = tick_label(v, t.decimals);
      c.text(x + kBar + 6, ty + kTickPx * 0.35, s, kTickPx, kBlack);
      tw = std::max(tw, Canvas::text_width(s, kTickPx));
    }
    if (!label.empty())
      c.text(x + kBar + 6 + tw + 8 + kLabelPx * 0.8, y + h / 2, label, kLabelPx, kGrey, Anchor::Middle, true);
  }
};

// ---- clustered heatmap ---------------------------------------------------------

struct ClusterLayout {
  int n;
  double cell, dendro_x, dendro_w, grid_x, grid_y, label_w, bar_x, bar_h, width, height, label_px, value_px;
};

ClusterLayout cluster_layout(const ClusteredHeatmap& h) {
  ClusterLayout l{};
  l.n = static_cast<int>(h.labels.size());
  l.cell = l.n <= 8 ? 48 : (l.n <= 20 ? 30 : (l.n <= 50 ? 18 : 12));
  l.label_px = l.cell >= 18 ? 12 : 10;
  l.value_px = l.cell >= 48 ? 12 : 9;
  l.label_w = widest(h.labels, l.label_px) + 12;
  l.dendro_x = 10;
  l.dendro_w = h.links.empty() ? 0 : std::max(120.0, l.n * l.cell / 3);
  l.grid_x = l.dendro_x + l.dendro_w + 6;
  l.grid_y = 62 + (h.highlight_note.empty() ? 0 : 16);
  l.bar_x = l.grid_x + l.n * l.cell + l.label_w + 12;
  l.bar_h = std::max(140.0, l.n * l.cell * 0.6);
  ColorBar bar{h.lo, h.hi, h.diverging, h.colorbar_label};
  double title_w = std::max({Canvas::text_width(h.title, 16, true), Canvas::text_width(h.subtitle, 12),
                             Canvas::text_width(h.highlight_note, 12)}) + 20;
  l.width = std::max(l.bar_x + bar.width() + 12, title_w);
  double below = std::max(l.label_w, h.links.empty() ? 0.0 : 44.0);  // column labels or the dendrogram axis
  l.height = std::max(l.grid_y + l.n * l.cell + below + 10, l.grid_y + l.bar_h + 20);
  return l;
}

void check_clustered(const ClusteredHeatmap& h) {
  const size_t n = h.labels.size();
  NEURN_CHECK(n >= 1, "clustered heatmap '", h.title, "': no items");
  NEURN_CHECK(h.values.size() == n, "clustered heatmap: ", h.values.size(), " rows for ", n, " labels");
  for (auto& r : h.values) NEURN_CHECK(r.size() == n, "clustered heatmap: a row of ", r.size(), " values for ", n, " labels");
  NEURN_CHECK(h.order.empty() || h.order.size() == n, "clustered heatmap: order of ", h.order.size(), " for ", n);
  if (!h.order.empty()) {
    std::vector<bool> seen(n, false);
    for (int i : h.order) {
      NEURN_CHECK(i >= 0 && static_cast<size_t>(i) < n && !seen[static_cast<size_t>(i)],
                  "clustered heatmap: order is not a permutation of 0..", n - 1);
      seen[static_cast<size_t>(i)] = true;
    }
  }
  NEURN_CHECK(h.links.empty() || h.links.size() + 1 == n, "clustered heatmap: ", h.links.size(), " links for ", n,
              " items");
  for (size_t k = 0; k < h.links.size(); ++k) {
    auto ok = [&](int id) { return id >= 0 && static_cast<size_t>(id) < n + k; };
    NEURN_CHECK(ok(h.links[k].left) && ok(h.links[k].right), "clustered heatmap: link ", k, " joins an id not made yet");
  }
  NEURN_CHECK(h.clusters.empty() || h.clusters.size() == n, "clustered heatmap: ", h.clusters.size(),
              " cluster labels for ", n, " items");
  NEURN_CHECK(std::isfinite(h.lo) && std::isfinite(h.hi), "clustered heatmap '", h.title, "': colour range [", h.lo,
              ", ", h.hi, "] is not finite");
}

void draw_clustered(const ClusteredHeatmap& h, const ClusterLayout& l, Canvas& p) {
  const int n = l.n;
  std::vector<int> order = h.order;
  if (order.empty())
    for (int i = 0; i < n; ++i) order.push_back(i);
  std::vector<int> pos(static_cast<size_t>(n));  // item -> row
  for (int r = 0; r < n; ++r) pos[static_cast<size_t>(order[static_cast<size_t>(r)])] = r;
  p.text(10, 24, h.title, 16, kBlack, Anchor::Start, false, true);
  if (!h.subtitle.empty()) p.text(10, 43, h.subtitle, 12, kGrey);
  if (!h.highlight_note.empty()) p.text(10, 59, h.highlight_note, 12, kRed);
  auto color = [&](double v) {
    double t = (v - h.lo) / (h.hi - h.lo);
    return h.diverging ? colormap_diverging(t) : colormap_sequential(t);
  };
  for (int r = 0; r < n; ++r) {
    int i = order[static_cast<size_t>(r)];
    for (int c = 0; c < n; ++c) {
      int j = order[static_cast<size_t>(c)];
      double v = h.values[static_cast<size_t>(i)][static_cast<size_t>(j)];
      Rgb bg = color(v);
      double x = l.grid_x + c * l.cell, y = l.grid_y + r * l.cell;
      // Cells overlap by a hair so that no background shows between them.
      p.fill_rect(x, y, l.cell + 0.3, l.cell + 0.3, bg);
      if (l.cell >= 30) p.text(x + l.cell / 2, y + l.cell / 2 + 4, fmt(v, h.decimals), l.value_px, text_on(bg), Anchor::Middle);
    }
    bool hl = static_cast<size_t>(i) < h.highlight.size() && h.highlight[static_cast<size_t>(i)];
    const std::string& lab = h.labels[static_cast<size_t>(i)];
    double cy = l.grid_y + r * l.cell + l.cell / 2 + l.label_px * 0.35;
    p.text(l.grid_x + n * l.cell + 6, cy, lab, l.label_px, hl ? kRed : kBlack);
    double cx = l.grid_x + r * l.cell + l.cell / 2 + l.label_px * 0.35;
    p.text(cx, l.grid_y + n * l.cell + 6, lab, l.label_px, hl ? kRed : kBlack, Anchor::End, true);
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
      p.stroke_rect(x, l.grid_y + start * l.cell, len, len, h.diverging ? kBlack : Rgb{255, 255, 255}, 2);
      start = r;
    }
  }
  // Dendrogram: leaves at the grid's left edge, height growing to the left.
  if (!h.links.empty()) {
    double hmax = 0;
    for (auto& k : h.links) hmax = std::max(hmax, k.height);
    Ticks t = nice_ticks(0, hmax > 0 ? hmax : 1, 4, false, true);
    const double hscale = t.last();  // the axis runs to a round value at or above the top merge
    std::vector<double> ny(static_cast<size_t>(2 * n)), nx(static_cast<size_t>(2 * n));
    const double right = l.dendro_x + l.dendro_w;
    for (int i = 0; i < n; ++i) {
      ny[static_cast<size_t>(i)] = l.grid_y + pos[static_cast<size_t>(i)] * l.cell + l.cell / 2;
      nx[static_cast<size_t>(i)] = right;
    }
    const Rgb branch{70, 70, 70};
    for (size_t k = 0; k < h.links.size(); ++k) {
      auto& lk = h.links[k];
      double x = right - lk.height / hscale * l.dendro_w;
      auto a = static_cast<size_t>(lk.left), b = static_cast<size_t>(lk.right);
      p.polyline({nx[a], x, x, nx[b]}, {ny[a], ny[a], ny[b], ny[b]}, branch, 1);
      nx[static_cast<size_t>(n) + k] = x;
      ny[static_cast<size_t>(n) + k] = (ny[a] + ny[b]) / 2;
    }
    // Height axis under the dendrogram.
    double ay = l.grid_y + n * l.cell + 6;
    p.line(l.dendro_x, ay, right, ay, kGrey, 1);
    for (double v : t.values) {
      double x = right - v / hscale * l.dendro_w;
      p.line(x, ay, x, ay + 4, kGrey, 1);
      // The 0 at the right end is right-aligned, clear of the column labels.
      p.text(x, ay + 16, tick_label(v, t.decimals), 10, kGrey, v == 0 ? Anchor::End : Anchor::Middle);
    }
    p.text(l.dendro_x + l.dendro_w / 2, ay + 32, "linkage distance", 11, kGrey, Anchor::Middle);
  }
  ColorBar{h.lo, h.hi, h.diverging, h.colorbar_label}.draw(p, l.bar_x, l.grid_y, l.bar_h);
}

// ---- incidence plot ------------------------------------------------------------

struct IncidenceLayout {
  int rows, cols;
  double cell_w, cell_h, left, top, grid_w, width, height;
};

IncidenceLayout incidence_layout(const IncidencePlot& p) {
  IncidenceLayout l{};
  l.rows = static_cast<int>(p.row_labels.size());
  l.cols = static_cast<int>(p.column_labels.size());
  l.cell_w = l.cols <= 20 ? 18 : 14;
  l.cell_h = 14;
  l.left = widest(p.row_labels, 10) + 16;
  l.top = 56 + widest(p.column_labels, 11) + 10;
  l.grid_w = l.cols * l.cell_w;
  double notes = Canvas::text_width("models  occurrences", 10);
  for (size_t r = 0; r < p.row_notes.size(); ++r)
    notes = std::max(notes, Canvas::text_width("99  " + p.row_notes[r], 10));
  l.width = std::max(l.left + l.grid_w + notes + 24,
                     std::max(Canvas::text_width(p.title, 16, true), Canvas::text_width(p.subtitle, 12)) + 20);
  l.height = l.top + l.rows * l.cell_h + 16;
  return l;
}

void draw_incidence(const IncidencePlot& p, const IncidenceLayout& l, Canvas& pa) {
  const Rgb light{236, 236, 236}, on{33, 102, 172};
  pa.text(10, 24, p.title, 16, kBlack, Anchor::Start, false, true);
  if (!p.subtitle.empty()) pa.text(10, 43, p.subtitle, 12, kGrey);
  pa.text(l.left + l.grid_w + 8, l.top - 6, "models  occurrences", 10, kGrey);
  for (int c = 0; c < l.cols; ++c)
    pa.text(l.left + c * l.cell_w + l.cell_w / 2 + 4, l.top - 6, p.column_labels[static_cast<size_t>(c)], 11, kBlack,
            Anchor::Start, true);
  for (int r = 0; r < l.rows; ++r) {
    double y = l.top + r * l.cell_h;
    if (r % 2 == 0) pa.fill_rect(l.left, y, l.grid_w, l.cell_h, {250, 250, 250});
    pa.text(l.left - 6, y + l.cell_h - 3.5, p.row_labels[static_cast<size_t>(r)], 10, kBlack, Anchor::End);
    std::vector<bool> holds(static_cast<size_t>(l.cols), false);
    for (int c : p.rows_hold[static_cast<size_t>(r)])
      if (c >= 0 && c < l.cols) holds[static_cast<size_t>(c)] = true;
    for (int c = 0; c < l.cols; ++c)
      pa.fill_rect(l.left + c * l.cell_w + 1, y + 1, l.cell_w - 2, l.cell_h - 2, holds[static_cast<size_t>(c)] ? on : light);
    std::string note = std::to_string(p.rows_hold[static_cast<size_t>(r)].size());
    if (static_cast<size_t>(r) < p.row_notes.size() && !p.row_notes[static_cast<size_t>(r)].empty())
      note += "  " + p.row_notes[static_cast<size_t>(r)];
    pa.text(l.left + l.grid_w + 8, y + l.cell_h - 3.5, note, 10, kGrey);
  }
}

void check_incidence(const IncidencePlot& p) {
  NEURN_CHECK(p.rows_hold.size() == p.row_labels.size(), "incidence plot: ", p.rows_hold.size(), " rows of cells for ",
              p.row_labels.size(), " row labels");
  NEURN_CHECK(!p.row_labels.empty() && !p.column_labels.empty(), "incidence plot: no rows or no columns");
}

// ---- line chart ------------------------------------------------------------------

struct ChartLayout {
  double left, top, pw, ph, width, height;
  double xmin, xmax, ymin, ymax;
  Ticks xt, yt;
  bool legend_outside;
  double lx, ly, lw, lh;  // legend box
  // x keeps a few pixels from the frame, so the first and last markers show whole.
  static constexpr double kInset = 6;
  double X(double x) const { return left + kInset + (x - xmin) / (xmax - xmin) * (pw - 2 * kInset); }
  double Y(double y) const { return top + (1 - (y - ymin) / (ymax - ymin)) * ph; }
};

constexpr double kTickPx = 11, kAxisPx = 12, kTitlePx = 15, kLegendPx = 11, kLegendRow = 16, kSample = 26;

// Points along the drawn lines (the vertices and 8 points on each segment), in
// canvas coordinates: what a legend must not cover.
std::vector<std::pair<double, double>> drawn_points(const LineChart& c, const ChartLayout& l) {
  std::vector<std::pair<double, double>> pts;
  for (auto& s : c.series) {
    bool have_prev = false;
    double px = 0, py = 0;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        have_prev = false;
        continue;
      }
      double x = l.X(s.x[i]), y = l.Y(s.y[i]);
      if (i < s.err.size() && std::isfinite(s.err[i]) && s.err[i] != 0) {  // the bar's ends
        pts.emplace_back(x, l.Y(s.y[i] - s.err[i]));
        pts.emplace_back(x, l.Y(s.y[i] + s.err[i]));
      }
      if (have_prev)
        for (int k = 1; k < 8; ++k) pts.emplace_back(px + (x - px) * k / 8.0, py + (y - py) * k / 8.0);
      pts.emplace_back(x, y);
      px = x, py = y, have_prev = true;
    }
  }
  return pts;
}

ChartLayout chart_layout(const LineChart& c, int width, int height) {
  ChartLayout l{};
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  bool integer_x = true;
  for (auto& s : c.series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
      double e = i < s.err.size() && std::isfinite(s.err[i]) ? std::abs(s.err[i]) : 0.0;
      ymin = std::min(ymin, s.y[i] - e), ymax = std::max(ymax, s.y[i] + e);
      integer_x = integer_x && s.x[i] == std::round(s.x[i]);
    }
  for (double v : c.xticks)
    if (std::isfinite(v)) xmin = std::min(xmin, v), xmax = std::max(xmax, v);
  if (std::isfinite(xmin))
    for (double v : c.y_include)
      if (std::isfinite(v)) ymin = std::min(ymin, v), ymax = std::max(ymax, v);
  if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1, integer_x = false;
  // x: the data's own range (epochs 1..N), ticks inside it; y: a round range
  // around the data, so the top and bottom of the plot carry labels.
  if (xmax > xmin) {
    l.xt = nice_ticks(xmin, xmax, 8, integer_x);
  } else {
    l.xt = nice_ticks(xmin, xmax, 8, integer_x, true);
    xmin = l.xt.first(), xmax = l.xt.last();
  }
  if (!c.xticks.empty()) {  // the caller's ticks, with as many decimals as they need (at most 3)
    l.xt.values = c.xticks;
    std::sort(l.xt.values.begin(), l.xt.values.end());
    l.xt.decimals = 0;
    for (double v : l.xt.values)
      while (l.xt.decimals < 3 && std::abs(v * std::pow(10.0, l.xt.decimals) -
                                           std::round(v * std::pow(10.0, l.xt.decimals))) > 1e-9)
        ++l.xt.decimals;
  }
  l.yt = nice_ticks(ymin, ymax, 6, false, true);
  l.xmin = xmin, l.xmax = xmax, l.ymin = l.yt.first(), l.ymax = l.yt.last();

  double ytick_w = 0;
  for (double v : l.yt.values) ytick_w = std::max(ytick_w, Canvas::text_width(tick_label(v, l.yt.decimals), kTickPx));
  l.left = 12 + (c.ylabel.empty() ? 0 : kAxisPx + 8) + ytick_w + 8;
  l.top = 14 + kTitlePx + 14;
  double bottom = 8 + kTickPx + 8 + (c.xlabel.empty() ? 0 : kAxisPx + 8);
  // The last x tick label may stick out right of the plot by half its width.
  double right = 12 + Canvas::text_width(tick_label(l.xt.last(), l.xt.decimals), kTickPx) / 2;
  l.width = width, l.height = height;
  l.pw = width - l.left - right, l.ph = height - l.top - bottom;
  NEURN_CHECK(l.pw > 40 && l.ph > 40, "line chart '", c.title, "': ", width, "x", height, " leaves no room to plot");

  // Legend: the first corner of the plot (top right, top left, bottom right,
  // bottom left) that covers no drawn point; else right of the plot.
  std::vector<std::string> labels;
  for (auto& s : c.series) labels.push_back(s.label);
  l.lw = 10 + kSample + 6 + widest(labels, kLegendPx) + 10;
  l.lh = 6 + kLegendRow * static_cast<double>(c.series.size()) + 4;
  auto pts = drawn_points(c, l);
  auto covers = [&](double x, double y) {
    for (auto& [px, py] : pts)
      if (px >= x - 4 && px <= x + l.lw + 4 && py >= y - 4 && py <= y + l.lh + 4) return true;
    return false;
  };
  const double m = 8;
  const std::pair<double, double> corners[] = {{l.left + l.pw - l.lw - m, l.top + m},
                                               {l.left + m, l.top + m},
                                               {l.left + l.pw - l.lw - m, l.top + l.ph - l.lh - m},
                                               {l.left + m, l.top + l.ph - l.lh - m}};
  l.legend_outside = true;
  if (l.lw + 2 * m < l.pw && l.lh + 2 * m < l.ph)
    for (auto& [x, y] : corners)
      if (!covers(x, y)) {
        l.lx = x, l.ly = y, l.legend_outside = false;
        break;
      }
  if (l.legend_outside) {
    l.lx = l.left + l.pw + right, l.ly = l.top;
    l.width = l.lx + l.lw + 10;
    l.height = std::max(l.height, l.ly + l.lh + 10);
  }
  l.width = std::max(l.width, Canvas::text_width(c.title, kTitlePx, true) + 24);
  return l;
}

void draw_chart(const LineChart& c, const ChartLayout& l, Canvas& p) {
  const Rgb grid{232, 232, 232}, axis{110, 110, 110};
  p.text(12, 14 + kTitlePx, c.title, kTitlePx, kBlack, Anchor::Start, false, true);
  // Grid lines, then the frame, ticks and their labels.
  for (double v : l.yt.values) p.line(l.left, l.Y(v), l.left + l.pw, l.Y(v), grid, 1);
  for (double v : l.xt.values) p.line(l.X(v), l.top, l.X(v), l.top + l.ph, grid, 1);
  p.stroke_rect(l.left, l.top, l.pw, l.ph, axis, 1);
  for (double v : l.yt.values) {
    p.line(l.left - 4, l.Y(v), l.left, l.Y(v), axis, 1);
    p.text(l.left - 7, l.Y(v) + kTickPx * 0.35, tick_label(v, l.yt.decimals), kTickPx, kBlack, Anchor::End);
  }
  for (double v : l.xt.values) {
    p.line(l.X(v), l.top + l.ph, l.X(v), l.top + l.ph + 4, axis, 1);
    p.text(l.X(v), l.top + l.ph + 8 + kTickPx, tick_label(v, l.xt.decimals), kTickPx, kBlack, Anchor::Middle);
  }
  if (!c.xlabel.empty())
    p.text(l.left + l.pw / 2, l.top + l.ph + 8 + kTickPx + 8 + kAxisPx, c.xlabel, kAxisPx, kBlack, Anchor::Middle);
  if (!c.ylabel.empty()) p.text(12 + kAxisPx, l.top + l.ph / 2, c.ylabel, kAxisPx, kBlack, Anchor::Middle, true);
  // The series, with markers on the points when there are few of them.
  for (auto& s : c.series) {
    std::vector<double> xs, ys;
    size_t finite = 0;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      xs.push_back(std::isfinite(s.x[i]) ? l.X(s.x[i]) : NAN);
      ys.push_back(std::isfinite(s.y[i]) ? l.Y(s.y[i]) : NAN);
      finite += std::isfinite(xs.back()) && std::isfinite(ys.back());
    }
    p.polyline(xs, ys, s.color, 1.8, s.dashed);
    for (size_t i = 0; i < xs.size() && i < s.err.size(); ++i) {
      if (!std::isfinite(xs[i]) || !std::isfinite(ys[i]) || !std::isfinite(s.err[i]) || s.err[i] == 0) continue;
      double lo = l.Y(s.y[i] - std::abs(s.err[i])), hi = l.Y(s.y[i] + std::abs(s.err[i]));
      p.line(xs[i], lo, xs[i], hi, s.color, 1.2);
      p.line(xs[i] - 4, lo, xs[i] + 4, lo, s.color, 1.2);
      p.line(xs[i] - 4, hi, xs[i] + 4, hi, s.color, 1.2);
    }
    if (finite <= 30)
      for (size_t i = 0; i < xs.size(); ++i)
        if (std::isfinite(xs[i]) && std::isfinite(ys[i])) p.circle(xs[i], ys[i], 2.4, s.color);
  }
  if (c.series.empty()) return;
  p.fill_rect(l.lx, l.ly, l.lw, l.lh, {255, 255, 255});
  p.stroke_rect(l.lx, l.ly, l.lw, l.lh, kLightGrey, 1);
  for (size_t k = 0; k < c.series.size(); ++k) {
    auto& s = c.series[k];
    double y = l.ly + 6 + kLegendRow * static_cast<double>(k) + kLegendRow / 2;
    p.line(l.lx + 10, y, l.lx + 10 + kSample, y, s.color, 1.8, s.dashed);
    p.circle(l.lx + 10 + kSample / 2, y, 2.4, s.color);
    p.text(l.lx + 10 + kSample + 6, y + kLegendPx * 0.35, s.label, kLegendPx, kBlack);
  }
}

void check_chart(const LineChart& c) {
  for (auto& s : c.series) {
    NEURN_CHECK(s.x.size() == s.y.size(), "line chart '", c.title, "': series '", s.label, "' has ", s.x.size(),
                " x values and ", s.y.size(), " y values");
    NEURN_CHECK(s.err.empty() || s.err.size() == s.y.size(), "line chart '", c.title, "': series '", s.label,
                "' has ", s.err.size(), " error bars for ", s.y.size(), " points");
  }
}

}  // namespace

void write_clustered_heatmap(const ClusteredHeatmap& given, const std::string& path) {
  check_clustered(given);
  ClusteredHeatmap h = given;
  if (h.hi <= h.lo) {  // one value everywhere (two identical models): a range around it, cells mid-map
    double c = h.lo;
    h.lo = c - 0.5, h.hi = c + 0.5;
  }
  ClusterLayout l = cluster_layout(h);
  Canvas c(l.width, l.height);
  draw_clustered(h, l, c);
  c.save(path);
}

void write_heatmap(const Heatmap& h, const std::string& path) {
  ClusteredHeatmap c;
  c.title = h.title;
  c.labels = h.labels;
  c.values = h.values;
  c.lo = h.lo, c.hi = h.hi;
  c.diverging = h.diverging;
  c.decimals = h.decimals;
  c.colorbar_label = h.colorbar_label;
  write_clustered_heatmap(c, path);
}

void write_incidence(const IncidencePlot& ip, const std::string& path) {
  check_incidence(ip);
  IncidenceLayout l = incidence_layout(ip);
  Canvas c(l.width, l.height);
  draw_incidence(ip, l, c);
  c.save(path);
}

void write_line_chart(const LineChart& lc, const std::string& path, int width, int height) {
  check_chart(lc);
  ChartLayout l = chart_layout(lc, width, height);
  Canvas c(l.width, l.height);
  draw_chart(lc, l, c);
  c.save(path);
}

std::string line_chart_svg(const LineChart& lc, int width, int height) {
  check_chart(lc);
  ChartLayout l = chart_layout(lc, width, height);
  Canvas c(l.width, l.height);
  draw_chart(lc, l, c);
  return c.inline_svg();
}

}  // namespace neurn::experiments
