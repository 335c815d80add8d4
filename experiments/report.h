#pragma once
// Reports from run records: the paper's Table 1 (Markdown, CSV, LaTeX), the
// functional similarity of the models (cosine similarity of their accuracy
// rows, without and with NeuRN) as heatmaps, training curves, and one HTML
// page that brings them together.
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
// records' variant and variant fingerprint say), without or with NeuRN: the
// seeds of that variant are averaged; two variants of one model (pretrained
// and from scratch, two widths, a config changed and run --as-new) are never.
struct Table1Row {
  std::string model;    // the bare registry name
  std::string variant;  // the row's label: the variant, plus a short fingerprint when one label has two settings
  std::string group;    // variant label + variant fingerprint: what the NeuRN row is compared against
  bool neurn = false;
  std::vector<std::optional<Cell>> cells;  // one per transfer
  std::vector<bool> improved;              // NeuRN rows: mean above the row without NeuRN
  int improved_count = 0, compared = 0;    // "9 of 12"
};

struct Table1 {
  std::vector<Transfer> transfers;  // the paper's 12 in its order, then any other pairs present
  std::vector<Table1Row> rows;      // per variant: without NeuRN, then with
  std::vector<std::string> models;  // the variants' labels, in first-appearance order
  std::vector<std::string> groups;  // their Table1Row::group, in the same order
};

// The paper's column order: M->U, M->S, M->MM, U->M, U->S, U->MM, S->M, S->U,
// S->MM, MM->M, MM->U, MM->S.
const std::vector<Transfer>& paper_transfers();

// Only records with status ok count. Columns: the paper's transfers that have
// at least one value, in the paper's order, then other transfers present.
Table1 build_table1(const std::vector<RunRecord>& records);
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

struct ReportFiles {
  std::string dir, html, markdown, csv, latex;
  std::vector<std::string> figures;
};

// Writes the report of `results` into `out_dir`; `title` heads the page.
ReportFiles write_report(const LoadedResults& results, const std::string& out_dir, const std::string& title);

}  // namespace neurn::experiments
