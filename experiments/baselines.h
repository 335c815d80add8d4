#pragma once
// Published results on the single-source digits protocol (train on the first
// 10,000 MNIST training images, test on SVHN, MNIST-M, SYN and USPS; Volpi et
// al. 2018, Qiao et al. 2020), so a report can put ours beside them.
//
// Every number here was read in a stated place (paper, venue, table, and the
// page it was read from when that is not the paper itself). A method the
// project wants beside its table but whose numbers could not be read in a
// source is listed in unsourced_digits_baselines(), never given a number.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "experiments/report.h"
#include "experiments/results.h"

namespace neurn::experiments {

struct PublishedResult {
  std::string method;    // "ERM", "RandConv"
  std::string citation;  // authors, title, venue and year of the paper whose table holds the numbers
  std::string table;     // "Table 1"
  std::string read_in;   // where the numbers were read: "the paper" or the page that quotes the table
  std::string backbone;  // the network the paper used
  std::map<std::string, double> accuracy;  // target domain (svhn, mnistm, syn, usps) -> accuracy in %
  double average = 0;                      // the table's own average over the four targets
};

// The four targets of the protocol, in the column order of the papers.
const std::vector<std::string>& digits_protocol_targets();

// The published results, in the order the report lists them.
const std::vector<PublishedResult>& published_digits_baselines();

// Methods asked for whose numbers were not found in a source this project
// could read ("M-ADA (Qiao et al., CVPR 2020)"), with why.
const std::vector<std::string>& unsourced_digits_baselines();

// True when `records` follow the protocol: every ok record trained on mnist
// with protocol.train_images == 10000 in its settings, and at least one such
// record.
bool follows_digits_protocol(const std::vector<RunRecord>& records);

// The comparison table: the published rows, then our rows trained on mnist
// (from `t`, mean ± std over seeds), with columns SVHN, MNIST-M, SYN, USPS
// and the average. Our SVHN is "not run" when no record tested it; SYN is
// marked, since ours is a generated stand-in for SynDigits (docs/data.md).
struct BaselineTable {
  std::vector<std::string> targets;  // digits_protocol_targets()
  struct Row {
    std::string name;    // "ERM [Choi et al. 2023, Table 1]" or our row's name
    bool ours = false;
    std::vector<std::optional<Cell>> cells;  // per target; published: seeds 0
    std::optional<double> average;           // published: the paper's; ours: only when all four targets ran
  };
  std::vector<Row> rows;
  std::vector<std::string> notes;  // the footnotes: sources, SYN, SVHN, what is not sourced
};
BaselineTable build_baseline_table(const Table1& ours);
std::string baseline_table_markdown(const BaselineTable& b);
std::string baseline_table_html(const BaselineTable& b);

}  // namespace neurn::experiments
