// The figures (experiments/plot.h): tick values, colour maps, the three
// output formats (PNG decoded back through cairo, SVG parsed by expat, PDF's
// header and trailer), and each kind of figure on a tiny input.
#include <cairo.h>
#include <doctest/doctest.h>
#include <expat.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "experiments/plot.h"
#include "framework/error.h"
#include "test_files.h"

using namespace neurn::experiments;
using neurn::testing::fresh_dir;
using neurn::testing::slurp;

namespace {

// The decoded pixels of a PNG (cairo's own reader), as 0xRRGGBB.
struct Image {
  int w = 0, h = 0;
  std::vector<uint32_t> px;
  uint32_t at(int x, int y) const { return px[static_cast<size_t>(y) * w + x]; }
  bool has(Rgb c) const {
    uint32_t v = (uint32_t{c.r} << 16) | (uint32_t{c.g} << 8) | c.b;
    for (uint32_t p : px)
      if (p == v) return true;
    return false;
  }
};

struct Reader {
  const std::string* s;
  size_t pos = 0;
};

cairo_status_t read_from(void* closure, unsigned char* data, unsigned int n) {
  auto* r = static_cast<Reader*>(closure);
  if (r->pos + n > r->s->size()) return CAIRO_STATUS_READ_ERROR;
  std::memcpy(data, r->s->data() + r->pos, n);
  r->pos += n;
  return CAIRO_STATUS_SUCCESS;
}

Image decode_png(const std::string& bytes) {
  Reader r{&bytes};
  cairo_surface_t* s = cairo_image_surface_create_from_png_stream(read_from, &r);
  Image img;
  REQUIRE(cairo_surface_status(s) == CAIRO_STATUS_SUCCESS);
  img.w = cairo_image_surface_get_width(s);
  img.h = cairo_image_surface_get_height(s);
  const int stride = cairo_image_surface_get_stride(s);
  const unsigned char* d = cairo_image_surface_get_data(s);
  for (int y = 0; y < img.h; ++y)
    for (int x = 0; x < img.w; ++x) {
      uint32_t p;
      std::memcpy(&p, d + static_cast<size_t>(y) * stride + 4 * static_cast<size_t>(x), 4);
      img.px.push_back(p & 0xFFFFFF);
    }
  cairo_surface_destroy(s);
  return img;
}

bool is_png(const std::string& b) { return b.size() > 33 && b.compare(0, 8, "\x89PNG\r\n\x1a\n", 8) == 0; }
// Width and height from the IHDR chunk (big-endian, right after the signature and chunk header).
std::pair<int, int> png_size(const std::string& b) {
  auto be = [&](size_t at) {
    return (static_cast<int>(static_cast<unsigned char>(b[at])) << 24) |
           (static_cast<int>(static_cast<unsigned char>(b[at + 1])) << 16) |
           (static_cast<int>(static_cast<unsigned char>(b[at + 2])) << 8) | static_cast<unsigned char>(b[at + 3]);
  };
  return {be(16), be(20)};
}

// Parses the whole document with expat; returns the root element's name ("" on an error).
struct XmlCheck {
  std::string root, error;
  int elements = 0;
};
XmlCheck parse_xml(const std::string& doc) {
  XmlCheck c;
  XML_Parser p = XML_ParserCreate("UTF-8");
  XML_SetUserData(p, &c);
  XML_SetStartElementHandler(p, [](void* ud, const XML_Char* name, const XML_Char**) {
    auto* c = static_cast<XmlCheck*>(ud);
    if (c->elements++ == 0) c->root = name;
  });
  if (XML_Parse(p, doc.data(), static_cast<int>(doc.size()), 1) == XML_STATUS_ERROR)
    c.error = std::string(XML_ErrorString(XML_GetErrorCode(p))) + " at line " +
              std::to_string(XML_GetCurrentLineNumber(p));
  XML_ParserFree(p);
  return c;
}

// Header, trailer, a page, and (the figures all have text) an embedded font.
bool is_pdf(const std::string& b) {
  return b.compare(0, 5, "%PDF-") == 0 && b.find("%%EOF", b.size() > 16 ? b.size() - 16 : 0) != std::string::npos &&
         b.find("/Type /Page") != std::string::npos && b.find("/FontFile") != std::string::npos;
}

void check_all_formats(const std::filesystem::path& dir, const std::string& stem,
                       const std::function<void(const std::string&)>& write) {
  for (const char* ext : {".png", ".svg", ".pdf"}) {
    std::string path = (dir / (stem + ext)).string();
    write(path);
    std::string b = slurp(path);
    INFO(path);
    if (std::string(ext) == ".png") {
      CHECK(is_png(b));
    } else if (std::string(ext) == ".svg") {
      XmlCheck x = parse_xml(b);
      CHECK(x.error == "");
      CHECK(x.root == "svg");
      CHECK(x.elements > 5);
    } else {
      CHECK(is_pdf(b));
    }
  }
}

bool one_two_five(double step) {
  double e = std::floor(std::log10(step) + 1e-9);
  double m = step / std::pow(10.0, e);
  return std::abs(m - 1) < 1e-9 || std::abs(m - 2) < 1e-9 || std::abs(m - 5) < 1e-9;
}

}  // namespace

TEST_CASE("nice_ticks: 1-2-5 steps inside the range, never 0.941") {
  Ticks t = nice_ticks(0.941, 0.999, 6);
  CHECK(t.step == doctest::Approx(0.01));
  CHECK(t.decimals == 2);
  std::vector<std::string> labels;
  for (double v : t.values) labels.push_back(tick_label(v, t.decimals));
  CHECK(labels == std::vector<std::string>{"0.95", "0.96", "0.97", "0.98", "0.99"});

  Ticks c = nice_ticks(0.941, 0.999, 6, false, true);  // covering: the axis runs 0.94 .. 1.00
  CHECK(c.step == doctest::Approx(0.02));
  CHECK(c.first() == doctest::Approx(0.94));
  CHECK(c.last() == doctest::Approx(1.0));
  CHECK(c.values.size() == 4);

  Ticks u = nice_ticks(0, 1, 6);
  CHECK(u.values.size() == 6);
  CHECK(tick_label(u.values[3], u.decimals) == "0.6");
  CHECK(u.decimals == 1);

  Ticks big = nice_ticks(0, 2.6e6, 6);
  CHECK(big.step == doctest::Approx(5e5));
  CHECK(big.decimals == 0);
}

TEST_CASE("nice_ticks: integer ticks for epochs") {
  CHECK(nice_ticks(1, 20, 8, true).values == std::vector<double>{5, 10, 15, 20});
  CHECK(nice_ticks(1, 3, 8, true).values == std::vector<double>{1, 2, 3});
  // Two epochs: 1 and 2, never 1.5.
  CHECK(nice_ticks(1, 2, 8, true).values == std::vector<double>{1, 2});
  CHECK(nice_ticks(1, 2, 8, false).step < 1);  // without the flag a finer step would be chosen
  Ticks one = nice_ticks(4, 4, 8, true, true);  // one epoch: a range around it
  CHECK(one.first() <= 4);
  CHECK(one.last() >= 4);
  for (double v : one.values) CHECK(v == std::round(v));
}

TEST_CASE("nice_ticks: signed ranges, zero printed as 0") {
  Ticks t = nice_ticks(-0.013, 0.013, 6);
  CHECK(t.step == doctest::Approx(0.005));
  CHECK(t.values.size() == 5);
  CHECK(t.values[2] == 0.0);
  CHECK(tick_label(t.values[2], t.decimals) == "0.000");
  CHECK(tick_label(-1e-9, 2) == "0.00");
  CHECK(tick_label(-0.5, 1) == "-0.5");
  CHECK(tick_label(NAN, 2) == "");
}

TEST_CASE("nice_ticks: properties over random ranges") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> mag(-6, 6), frac(0, 1);
  for (int trial = 0; trial < 2000; ++trial) {
    double scale = std::pow(10.0, mag(rng));
    double lo = (frac(rng) - 0.5) * scale, hi = lo + frac(rng) * scale + 1e-12 * scale;
    int max_ticks = 2 + trial % 9;
    bool integer = trial % 3 == 0, covering = trial % 2 == 0;
    Ticks t = nice_ticks(lo, hi, max_ticks, integer, covering);
    INFO("lo=" << lo << " hi=" << hi << " max=" << max_ticks << " integer=" << integer << " covering=" << covering);
    REQUIRE(!t.values.empty());
    CHECK(static_cast<int>(t.values.size()) <= max_ticks);
    CHECK(one_two_five(t.step));
    if (integer) CHECK(t.step >= 1);
    std::set<std::string> labels;
    for (size_t i = 0; i < t.values.size(); ++i) {
      double k = t.values[i] / t.step;
      CHECK(std::abs(k - std::round(k)) < 1e-6);  // a multiple of the step
      if (i > 0) CHECK(t.values[i] - t.values[i - 1] == doctest::Approx(t.step));
      labels.insert(tick_label(t.values[i], t.decimals));
    }
    CHECK(labels.size() == t.values.size());  // the decimals tell every tick apart
    if (covering && hi - lo > 1e-9 * std::max(1.0, std::abs(lo))) {
      CHECK(t.first() <= lo + t.step * 1e-6);
      CHECK(t.last() >= hi - t.step * 1e-6);
    }
  }
}

TEST_CASE("nice_ticks and image_format: bad input is an error") {
  CHECK_THROWS_WITH_AS(nice_ticks(NAN, 1), doctest::Contains("not finite"), neurn::Error);
  CHECK_THROWS_WITH_AS(nice_ticks(0, 1, 1), doctest::Contains("max_ticks"), neurn::Error);
  CHECK(image_format("a/b.PNG") == ImageFormat::Png);
  CHECK(image_format("x.svg") == ImageFormat::Svg);
  CHECK(image_format("x.pdf") == ImageFormat::Pdf);
  CHECK_THROWS_WITH_AS(image_format("fig.jpg"), doctest::Contains("fig.jpg: unknown extension '.jpg'"), neurn::Error);
}

TEST_CASE("colour maps: viridis and RdBu at their control points") {
  CHECK(colormap_sequential(0).hex() == "#440154");
  CHECK(colormap_sequential(0.5).hex() == "#21918c");
  CHECK(colormap_sequential(1).hex() == "#fde725");
  CHECK(colormap_sequential(2).hex() == "#fde725");  // clamped
  CHECK(colormap_diverging(0.5).hex() == "#f7f7f7");
  CHECK(colormap_diverging(0).hex() == "#2166ac");
  CHECK(colormap_diverging(1).hex() == "#b2182b");
  CHECK(colormap_sequential(NAN).hex() == colormap_diverging(NAN).hex());  // no value: one grey
  // Viridis grows lighter from end to end (what makes it readable in grey).
  double prev = -1;
  for (int k = 0; k <= 64; ++k) {
    Rgb c = colormap_sequential(k / 64.0);
    double lum = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
    CHECK(lum > prev);
    prev = lum;
  }
}

TEST_CASE("Canvas: PNG, SVG and PDF of one drawing") {
  Canvas c(120, 80);
  c.fill_rect(10, 10, 20, 20, {255, 0, 0});
  c.line(0, 70, 120, 70, {0, 0, 255}, 2, true);
  c.text(60, 50, "Ag & <x>", 14, {0, 0, 0}, Anchor::Middle);
  c.text(110, 70, "up", 10, {0, 0, 0}, Anchor::Start, true);
  std::string png = c.encode(ImageFormat::Png);
  REQUIRE(is_png(png));
  CHECK(png_size(png) == std::pair<int, int>{120, 80});
  Image img = decode_png(png);
  CHECK(img.at(20, 20) == 0xFF0000);  // inside the red square
  CHECK(img.at(5, 5) == 0xFFFFFF);    // the background
  std::string svg = c.encode(ImageFormat::Svg);
  XmlCheck x = parse_xml(svg);
  CHECK(x.error == "");
  CHECK(x.root == "svg");
  CHECK(svg.find("width=\"120px\"") != std::string::npos);  // px, so a browser shows it at the PNG's size
  CHECK(c.inline_svg().rfind("<svg", 0) == 0);
  CHECK(is_pdf(c.encode(ImageFormat::Pdf)));
  // A fractional size is rounded up, and the background covers the last row and column.
  Canvas frac(30.4, 20.6, {0, 128, 0});
  Image fimg = decode_png(frac.encode(ImageFormat::Png));
  CHECK(fimg.w == 31);
  CHECK(fimg.h == 21);
  CHECK(fimg.at(30, 20) == 0x008000);
  CHECK_THROWS_WITH_AS(c.save("x.gif"), doctest::Contains("unknown extension"), neurn::Error);
  CHECK_THROWS_WITH_AS(c.save_png("x.svg"), doctest::Contains("needs a .png"), neurn::Error);
}

TEST_CASE("Canvas: text is drawn through fontconfig") {
  double w = Canvas::text_width("similarity", 12);
  REQUIRE(w > 20);  // no font found would measure 0: fonts-dejavu-core (scripts/setup-deps.sh)
  CHECK(Canvas::text_width("similarity", 24) == doctest::Approx(2 * w).epsilon(0.02));
  CHECK(Canvas::text_width("ii", 12) < Canvas::text_width("WW", 12));  // proportional, not a fixed advance
  Canvas c(100, 30);
  c.text(5, 20, "Hello", 16, {0, 0, 0});
  Image img = decode_png(c.encode(ImageFormat::Png));
  int ink = 0;
  for (uint32_t p : img.px) ink += p != 0xFFFFFF;
  CHECK(ink > 40);
}

TEST_CASE("figures: each kind renders on a tiny input in every format") {
  auto dir = fresh_dir("plot_figures");

  Heatmap hm;
  hm.title = "tiny";
  hm.labels = {"a", "b"};
  hm.values = {{1.0, 0.25}, {0.25, 1.0}};
  hm.colorbar_label = "cosine similarity";
  check_all_formats(dir, "heatmap", [&](const std::string& p) { write_heatmap(hm, p); });
  // The cells of value hi are viridis' top colour, exactly (they are 48 pixels wide).
  Image himg = decode_png(slurp(dir / "heatmap.png"));
  CHECK(himg.has(colormap_sequential(1.0)));
  CHECK(himg.has(colormap_sequential(0.25)));

  Heatmap diff = hm;
  diff.values = {{0, -0.01}, {0.01, NAN}};
  diff.diverging = true, diff.lo = -0.01, diff.hi = 0.01, diff.decimals = 3;
  write_heatmap(diff, (dir / "diff.png").string());
  Image dimg = decode_png(slurp(dir / "diff.png"));
  CHECK(dimg.has(colormap_diverging(0)));
  CHECK(dimg.has(colormap_diverging(NAN)));  // the NaN cell is grey

  ClusteredHeatmap ch;
  ch.title = "clustered";
  ch.subtitle = "average linkage";
  ch.labels = {"x", "y", "z"};
  ch.values = {{1, 0.2, 0.9}, {0.2, 1, 0.1}, {0.9, 0.1, 1}};
  ch.order = {0, 2, 1};
  ch.links = {{0, 2, 0.1}, {3, 1, 0.85}};
  ch.clusters = {0, 1, 0};
  ch.highlight = {true, false, false};
  ch.highlight_note = "red: the shortlist";
  check_all_formats(dir, "clustered", [&](const std::string& p) { write_clustered_heatmap(ch, p); });
  CHECK(decode_png(slurp(dir / "clustered.png")).has({200, 20, 20}));  // the red label

  Heatmap flat = hm;  // every value equal and lo == hi: still drawn, in the map's middle colour
  flat.values = {{1, 1}, {1, 1}};
  flat.lo = flat.hi = 1;
  write_heatmap(flat, (dir / "flat.png").string());
  CHECK(decode_png(slurp(dir / "flat.png")).has(colormap_sequential(0.5)));

  ClusteredHeatmap bad = ch;
  bad.values.pop_back();
  CHECK_THROWS_WITH_AS(write_clustered_heatmap(bad, (dir / "bad.png").string()), doctest::Contains("2 rows for 3"),
                       neurn::Error);
  bad = ch;
  bad.order = {0, 0, 1};
  CHECK_THROWS_WITH_AS(write_clustered_heatmap(bad, (dir / "bad.png").string()), doctest::Contains("permutation"),
                       neurn::Error);
  bad = ch;
  bad.links = {{0, 4, 0.1}, {3, 1, 0.85}};
  CHECK_THROWS_WITH_AS(write_clustered_heatmap(bad, (dir / "bad.png").string()), doctest::Contains("link 0"),
                       neurn::Error);

  IncidencePlot ip;
  ip.title = "combinations";
  ip.row_labels = {"Conv BN", "BN ReLU"};
  ip.column_labels = {"m1", "m2", "m3"};
  ip.rows_hold = {{0, 2}, {1}};
  ip.row_notes = {"x4", ""};
  check_all_formats(dir, "incidence", [&](const std::string& p) { write_incidence(ip, p); });
  CHECK(decode_png(slurp(dir / "incidence.png")).has({33, 102, 172}));  // a held cell

  LineChart lc;
  lc.title = "Validation accuracy";
  lc.xlabel = "epoch";
  lc.ylabel = "accuracy";
  lc.series = {{"with NeuRN", {1, 2, 3}, {0.94, 0.97, 0.99}, palette(0)},
               {"without", {1, 2, 3}, {0.941, NAN, 0.95}, palette(1), true}};
  check_all_formats(dir, "chart", [&](const std::string& p) { write_line_chart(lc, p); });
  CHECK(parse_xml(line_chart_svg(lc)).error == "");
  LineChart badc = lc;
  badc.series[0].y.pop_back();
  CHECK_THROWS_WITH_AS(write_line_chart(badc, (dir / "c.png").string()), doctest::Contains("'with NeuRN' has 3 x"),
                       neurn::Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("line chart: the legend goes where it covers no data") {
  auto dir = fresh_dir("plot_legend");
  // Few points, low on the left: a corner inside the plot is free, the canvas keeps its width.
  LineChart sparse;
  sparse.title = "sparse";
  sparse.series = {{"a series with a long label", {1, 2}, {0, 0.1}, palette(0)}, {"b", {1, 2}, {0.05, 0}, palette(1)}};
  sparse.series[0].x.push_back(3), sparse.series[0].y.push_back(1);  // reaches the top right
  write_line_chart(sparse, (dir / "sparse.png").string(), 500, 300);
  CHECK(png_size(slurp(dir / "sparse.png")).first == 500);
  // A zigzag over the whole plot: no corner is free, the legend moves right of the plot.
  LineChart dense;
  dense.title = "dense";
  Series z{"zigzag", {}, {}, palette(2)};
  for (int i = 0; i <= 200; ++i) z.x.push_back(i), z.y.push_back(i % 2);
  dense.series = {z};
  write_line_chart(dense, (dir / "dense.png").string(), 500, 300);
  CHECK(png_size(slurp(dir / "dense.png")).first > 500);
  std::filesystem::remove_all(dir);
}
