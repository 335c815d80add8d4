#pragma once
// Figures for the reports, with no plotting library: a small RGB canvas with
// text (stb_truetype and a system font) saved as PNG (stb_image_write), and
// the same figures as SVG. Only what the reports draw: heatmaps and line
// charts.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace neurn::experiments {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  std::string hex() const;  // "#rrggbb"
};

// Sequential (viridis-like, for similarities in [lo, hi]) and diverging
// (blue-white-red, for differences in [-m, m]) colour maps; t in [0, 1].
Rgb colormap_sequential(double t);
Rgb colormap_diverging(double t);

class Canvas {
 public:
  Canvas(int width, int height, Rgb background = {255, 255, 255});
  int width() const { return w_; }
  int height() const { return h_; }
  void fill_rect(int x, int y, int w, int h, Rgb c);
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
  // Text with its left end at x and baseline at y (vertical: rotated 90
  // degrees counter-clockwise, reading upwards from (x, y)). Returns the
  // advance in pixels; 0 when no font was found (the PNG then has no labels).
  int text(int x, int y, const std::string& utf8, double px, Rgb c, bool vertical = false);
  int text_width(const std::string& utf8, double px);
  void save_png(const std::string& path) const;

  // The font used for text, or "" when none of the known system fonts exists.
  static const std::string& font_path();

 private:
  int w_, h_;
  std::vector<uint8_t> rgb_;
  void blend(int x, int y, Rgb c, double alpha);
};

struct Heatmap {
  std::string title;
  std::vector<std::string> labels;            // rows = columns
  std::vector<std::vector<double>> values;    // NaN: no value
  double lo = 0, hi = 1;
  bool diverging = false;
  int decimals = 2;
};
void write_heatmap_png(const Heatmap& h, const std::string& path);
void write_heatmap_svg(const Heatmap& h, const std::string& path);

struct Series {
  std::string label;
  std::vector<double> x, y;
  Rgb color;
  bool dashed = false;
};
struct LineChart {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
};
std::string line_chart_svg(const LineChart& c, int width = 640, int height = 360);

// The i-th of a palette of distinguishable colours.
Rgb palette(size_t i);

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
};
void write_clustered_heatmap_png(const ClusteredHeatmap& h, const std::string& path);
void write_clustered_heatmap_svg(const ClusteredHeatmap& h, const std::string& path);

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
void write_incidence_png(const IncidencePlot& p, const std::string& path);
void write_incidence_svg(const IncidencePlot& p, const std::string& path);

}  // namespace neurn::experiments
