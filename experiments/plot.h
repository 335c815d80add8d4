#pragma once
// Figures for the reports, drawn through cairo: every figure is drawn once on
// a Canvas (a cairo recording surface) and saved as PNG, SVG or PDF from that
// one recording, so the three formats are the same picture. Text goes through
// cairo's font API with the fontconfig family "sans-serif" (DejaVu Sans on a
// Debian machine with fonts-dejavu-core); no font file is named here.
//
// The figures: heatmaps with a colour bar (viridis, or a diverging map for
// signed differences), the clustered similarity matrices with their
// dendrogram, the incidence plot of layer combinations, and line charts with
// 1-2-5 ticks and a legend placed where it covers no data.
#include <cstdint>
#include <string>
#include <vector>

typedef struct _cairo cairo_t;
typedef struct _cairo_surface cairo_surface_t;

namespace neurn::experiments {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  std::string hex() const;  // "#rrggbb"
};

// Viridis (perceptually uniform, for similarities in [lo, hi]) and ColorBrewer
// RdBu (diverging, for differences in [-m, m]); t in [0, 1], NaN gives grey.
Rgb colormap_sequential(double t);
Rgb colormap_diverging(double t);
// The i-th of a palette of distinguishable colours (matplotlib's tab10).
Rgb palette(size_t i);

// Tick values for an axis: multiples of a 1-2-5 step (1, 2, 5, 10, 20, ...,
// 0.1, 0.2, 0.5, ...), at most `max_ticks` of them. `integer`: the step is at
// least 1 (epochs, generations). covering = false: the ticks lie inside
// [lo, hi]; covering = true: the first is <= lo and the last >= hi (the axis
// then runs from first to last). A degenerate range (lo == hi) is widened.
struct Ticks {
  std::vector<double> values;
  double step = 1;
  int decimals = 0;  // enough to print every value exactly at this step
  double first() const { return values.front(); }
  double last() const { return values.back(); }
};
Ticks nice_ticks(double lo, double hi, int max_ticks = 6, bool integer = false, bool covering = false);
// v with `decimals` digits after the point; never "-0".
std::string tick_label(double v, int decimals);

enum class ImageFormat { Png, Svg, Pdf };
// From the path's extension (.png, .svg, .pdf, any case); anything else is an error.
ImageFormat image_format(const std::string& path);

enum class Anchor { Start, Middle, End };

// A drawing surface of width x height units (pixels in the PNG, points in the
// PDF and SVG). Coordinates grow right and down.
class Canvas {
 public:
  Canvas(double width, double height, Rgb background = {255, 255, 255});
  ~Canvas();
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;
  double width() const { return w_; }
  double height() const { return h_; }

  void fill_rect(double x, double y, double w, double h, Rgb c);
  void stroke_rect(double x, double y, double w, double h, Rgb c, double line_width = 1);
  void line(double x0, double y0, double x1, double y1, Rgb c, double line_width = 1, bool dashed = false);
  // A connected line through the points; a non-finite y breaks it.
  void polyline(const std::vector<double>& xs, const std::vector<double>& ys, Rgb c, double line_width = 1.5,
                bool dashed = false);
  void circle(double x, double y, double radius, Rgb c);
  // A vertical colour ramp from cmap(0) at the bottom to cmap(1) at the top.
  void vertical_ramp(double x, double y, double w, double h, bool diverging);
  // Text with its baseline at y, anchored at x (Start: x is the left end).
  // vertical: rotated to read upwards; the anchor then runs along y (Start:
  // the text begins at y and goes up) and x is the baseline.
  void text(double x, double y, const std::string& utf8, double px, Rgb c, Anchor a = Anchor::Start,
            bool vertical = false, bool bold = false);
  // The advance width of the text at this size (0 when no font is found).
  static double text_width(const std::string& utf8, double px, bool bold = false);

  // PNG, SVG or PDF by the path's extension; directories are created and the
  // file appears whole (written aside, then renamed).
  void save(const std::string& path) const;
  void save_png(const std::string& path) const;  // save() that insists on .png
  // The encoded file, without writing it.
  std::string encode(ImageFormat f) const;
  // SVG for inline use in HTML: encode(Svg) without the XML declaration.
  std::string inline_svg() const;

 private:
  double w_, h_;
  cairo_surface_t* rec_ = nullptr;
  cairo_t* cr_ = nullptr;
};

// ---- heatmaps --------------------------------------------------------------

// A similarity matrix in the order of a hierarchical clustering, with its
// dendrogram on the left and the flat clusters boxed (the paper's Figures 1
// and 4). `values` and `labels` are in the items' own order; `order` puts
// them in the dendrogram's leaf order.
struct DendrogramLink {
  int left, right;  // ids: 0..n-1 the items, n + k the cluster made by link k
  double height;    // merge distance
};
struct ClusteredHeatmap {
  std::string title, subtitle;  // subtitle: one line under the title (measure, linkage)
  std::vector<std::string> labels;
  std::vector<std::vector<double>> values;  // n x n
  std::vector<int> order;                   // the leaves left to right; empty: as given
  std::vector<DendrogramLink> links;        // n - 1, heights non-decreasing; empty: no dendrogram
  std::vector<int> clusters;                // cluster label per item (contiguous in `order`); empty: none
  std::vector<bool> highlight;              // items whose label is drawn in red (the shortlist)
  std::string highlight_note;               // what the red labels mean, printed under the title
  double lo = 0, hi = 1;
  bool diverging = false;
  int decimals = 2;                         // of the cell values (drawn only when the cells are large)
  std::string colorbar_label;               // what the colours measure; may be empty
};
void write_clustered_heatmap(const ClusteredHeatmap& h, const std::string& path);  // .png/.svg/.pdf
inline void write_clustered_heatmap_png(const ClusteredHeatmap& h, const std::string& path) {
  write_clustered_heatmap(h, path);
}
inline void write_clustered_heatmap_svg(const ClusteredHeatmap& h, const std::string& path) {
  write_clustered_heatmap(h, path);
}

// A plain square matrix with a colour bar (Table 1's functional similarities):
// the clustered heatmap with no order, dendrogram or clusters.
struct Heatmap {
  std::string title;
  std::vector<std::string> labels;            // rows = columns
  std::vector<std::vector<double>> values;    // NaN: no value
  double lo = 0, hi = 1;
  bool diverging = false;
  int decimals = 2;
  std::string colorbar_label;
};
void write_heatmap(const Heatmap& h, const std::string& path);  // .png/.svg/.pdf

// Which items hold which features (the paper's Figure 3: the most common layer
// combinations against the models that contain them): one row per feature,
// one column per item, a filled cell where rows_hold[r] lists the column, and
// the row's count at its right end.
struct IncidencePlot {
  std::string title, subtitle;
  std::vector<std::string> row_labels;   // the combinations
  std::vector<std::string> column_labels;  // the models
  std::vector<std::vector<int>> rows_hold;  // per row, the column indices it holds
  std::vector<std::string> row_notes;    // per row, a short note right of the count (occurrences); may be empty
};
void write_incidence(const IncidencePlot& p, const std::string& path);  // .png/.svg/.pdf
inline void write_incidence_png(const IncidencePlot& p, const std::string& path) { write_incidence(p, path); }
inline void write_incidence_svg(const IncidencePlot& p, const std::string& path) { write_incidence(p, path); }

// ---- line charts -------------------------------------------------------------

struct Series {
  std::string label;
  std::vector<double> x, y;  // a non-finite y is a gap
  Rgb color;
  bool dashed = false;
  std::vector<double> err;  // empty, or one per point: an error bar from y - err to y + err (0 or NaN: none)
};
struct LineChart {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  std::vector<double> xticks;  // the x ticks to draw (NeuRN's k: 3, 5, 7, 11); empty: 1-2-5 ticks
  std::vector<double> y_include;  // values the y axis must reach (room above a line at the data's maximum)
};
// x ticks are integers when every x is an integer (epochs, generations); the
// legend goes in the corner of the plot that covers the fewest data points,
// or right of the plot when every corner would cover some.
void write_line_chart(const LineChart& c, const std::string& path, int width = 640, int height = 380);
std::string line_chart_svg(const LineChart& c, int width = 640, int height = 380);  // for inline HTML

}  // namespace neurn::experiments
