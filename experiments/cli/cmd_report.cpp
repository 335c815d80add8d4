// `neurn report RESULTS_DIR`: Table 1, similarity heatmaps, curves, HTML.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "experiments/cli/cli.h"
#include "experiments/report.h"
#include "framework/error.h"

namespace neurn::cli {
namespace {

int cmd_report(const Flags& f) {
  std::string dir = f.positional()[0];
  experiments::LoadedResults res = experiments::load_results_dir(dir);
  for (auto& w : res.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::string base = std::filesystem::is_regular_file(dir) ? std::filesystem::path(dir).parent_path().string() : dir;
  if (base.empty()) base = ".";
  std::string out = f.get("output", base + "/report");
  experiments::ReportOptions ro;
  const std::string b = f.get("baselines", "auto");
  NEURN_CHECK(b == "auto" || b == "yes" || b == "no", "--baselines takes auto, yes or no, got '", b, "'");
  ro.baselines = b == "yes"  ? experiments::ReportOptions::Baselines::Always
                 : b == "no" ? experiments::ReportOptions::Baselines::Never
                             : experiments::ReportOptions::Baselines::Auto;
  experiments::ReportFiles rf = experiments::write_report(res, out, f.get("title", "neurn report: " + dir), ro);
  std::cout << res.records.size() << " runs\n\n"
            << experiments::table1_markdown(experiments::build_table1(res.records)) << "\n";
  if (!rf.baselines.empty()) {
    std::ifstream in(rf.baselines);
    std::cout << "Published single-source baselines (train on MNIST 10k):\n\n" << in.rdbuf() << "\n";
  }
  auto sim = experiments::functional_similarity(experiments::build_table1(res.records));
  if (sim)
    std::printf("functional similarity (mean off-diagonal cosine): %.3f without NeuRN, %.3f with NeuRN\n",
                sim->mean_offdiag_before, sim->mean_offdiag_after);
  std::cout << "report: " << rf.html << "\n";
  return 0;
}

Register reg{{
    .name = "report",
    .summary = "write Table 1, similarity heatmaps and the HTML report of RESULTS_DIR",
    .positionals = "RESULTS_DIR",
    .min_positionals = 1,
    .max_positionals = 1,
    .flags = {text("output", "DIR", "(RESULTS_DIR/report)"), text("title", "TEXT", "(neurn report: RESULTS_DIR)"),
              text("baselines", "auto|yes|no",
                   "the published single-source digits baselines as a second table (auto: when every run trained "
                   "on the first 10000 MNIST images)")},
    .details = "Reads every results.jsonl under RESULTS_DIR (the shards of a sweep are merged; a run recorded twice "
               "is kept once; corrupt lines are reported and skipped) and writes into DIR: table1.md, table1.csv, "
               "table1.tex (Table 1: a row per model and per model with each input front (NeuRN, NeuRN of other "
               "options, LRN, LCN), mean and sample std over seeds, improvements over the model without a front "
               "marked and counted); baselines.md (published results beside ours, see --baselines); "
               "accuracy_vs_k.{png,svg} (when NeuRN ran at several k); "
               "similarity_{without,with}_neurn.{png,svg}, similarity_difference.{png,svg} "
               "(functional similarity: cosine of accuracy rows); curves_<source>_{val_acc,train_loss}.svg; "
               "index.html (all of it on one page). RESULTS_DIR may also be a single results.jsonl file.",
    .fn = cmd_report}};

}  // namespace
}  // namespace neurn::cli
