#pragma once
// Reports from run records: the paper's Table 1 (Markdown, CSV, LaTeX) with
// a row per model and input front (none, NeuRN and its variants, LRN, LCN),
// the published single-source baselines beside it (experiments/baselines.h),
// target accuracy against NeuRN's k, the functional similarity of the models
// (cosine similarity of their accuracy rows, without and with NeuRN) as
// heatmaps, training curves, and one HTML page that brings them together.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "experiments/results.h"

namespace neurn::experiments {

// Accuracy of one (model, NeuRN or not, source -> target) over seeds, in %.
struct Cell {
  double mean = 0, std = 0;  // std: sample standard deviation (0 for one seed)
  int seeds = 0;
};

struct Transfer {
  std::string source, target;
  std::string label() const;  // "M->U"
};

// A row is one variant (model + weights + width + arch + options, as its
// records' variant and variant fingerprint say) with one input front (none,
// NeuRN, a NeuRN of other options, LRN, LCN: the records' front label and
// options): the seeds of that variant and front are averaged; two variants
// of one model (pretrained and from scratch, two widths, a config changed
// and run --as-new) are never.
struct Table1Row {
  std::string model;    // the bare registry name
  std::string variant;  // the row's label: the variant, plus a short fingerprint when one label has two settings
  std::string group;    // variant label + variant fingerprint: what a front's row is compared against
  bool neurn = false;   // the front is a NeuRN (front_kind == "neurn")
  std::string front;    // the front's label: "" without one, "neurn" (the default NeuRN), "neurn_k5", "lrn", ...
  std::string front_kind = "none";  // none | neurn | lrn | lcn
  std::string front_options;        // the front's options as JSON (from the records' settings; "" when unknown)
  std::vector<std::optional<Cell>> cells;  // one per transfer
  std::vector<bool> improved;              // rows with a front: mean above the same variant's row without one
  int improved_count = 0, compared = 0;    // "9 of 12"
  int min_seeds = 0, max_seeds = 0;        // over the row's cells
};

struct Table1 {
  std::vector<Transfer> transfers;  // the paper's 12 in its order, then any other pairs present
  // Per variant: without a front, then the default NeuRN (label "neurn"),
  // the other NeuRN rows, LRN, LCN, other kinds; within a kind, in the
  // order the records first name them.
  std::vector<Table1Row> rows;
  std::vector<std::string> models;  // the variants' labels, in first-appearance order
  std::vector<std::string> groups;  // their Table1Row::group, in the same order
};

// The paper's column order: M->U, M->S, M->MM, U->M, U->S, U->MM, S->M, S->U,
// S->MM, MM->M, MM->U, MM->S.
const std::vector<Transfer>& paper_transfers();

// Only records with status ok count. Columns: the paper's transfers that have
// at least one value, in the paper's order, then other transfers present.
Table1 build_table1(const std::vector<RunRecord>& records);
// "digits_convnet", "digits_convnet + NeuRN", "digits_convnet + neurn_k5",
// "digits_convnet + LRN": the variant and the front's display name.
std::string table1_row_name(const Table1Row& r);
// What a front's label reads as in tables: neurn -> NeuRN, lrn -> LRN,
// lcn -> LCN; any other label as it is.
std::string front_display_name(const std::string& label);
std::string table1_markdown(const Table1& t);
std::string table1_csv(const Table1& t);
std::string table1_latex(const Table1& t);

struct Similarity {
  std::vector<std::string> models;  // variant labels
  std::vector<Transfer> transfers;                   // the columns every model has, with and without NeuRN
  std::vector<std::vector<double>> before, after, difference;
  double mean_offdiag_before = 0, mean_offdiag_after = 0;
};
// Cosine similarity of the models' accuracy rows (mean over seeds), over the
// transfers every model has in both variants. Empty when fewer than two
// models qualify.
std::optional<Similarity> functional_similarity(const Table1& t);
double cosine_similarity(const std::vector<double>& a, const std::vector<double>& b);

// NeuRN's patch size against target accuracy, for one variant: the NeuRN
// rows whose options differ from the default row's (label "neurn", else the
// first NeuRN row of the variant) in k alone, so a padding or scope change
// is never read as a k change. Only variants with two k values or more.
struct KSweep {
  std::string variant;              // the variant's label
  std::vector<int> k;               // ascending
  std::vector<Transfer> transfers;  // the columns with a value at some k
  std::vector<std::vector<std::optional<Cell>>> cells;  // [transfer][k index]
  std::vector<std::optional<Cell>> no_front;            // [transfer]: the variant without a front
};
std::vector<KSweep> neurn_k_sweeps(const Table1& t);
// The chart of one sweep: a line per transfer with error bars of one sample
// standard deviation, and the accuracy without a front dashed in the same
// colour. Writes PNG or SVG by the extension.
void write_k_plot(const KSweep& s, const std::string& path);

struct ReportFiles {
  std::string dir, html, markdown, csv, latex;
  std::string baselines;  // baselines.md, when the published baselines were shown ("" otherwise)
  std::vector<std::string> figures;
};

struct ReportOptions {
  // The published single-source baselines (experiments/baselines.h) as a
  // second table: Auto shows them when the records follow the protocol
  // (source mnist, train_images 10000).
  enum class Baselines { Auto, Always, Never } baselines = Baselines::Auto;
};

// Writes the report of `results` into `out_dir`; `title` heads the page.
ReportFiles write_report(const LoadedResults& results, const std::string& out_dir, const std::string& title,
                         const ReportOptions& options = {});

}  // namespace neurn::experiments
