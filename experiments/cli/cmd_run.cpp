// `neurn run CONFIG.yaml`: the sweep of a config, then its report.
#include <cstdio>
#include <iostream>

#include "experiments/cli/cli.h"
#include "experiments/sweep.h"
#include "framework/error.h"

namespace neurn::cli {
namespace {

int cmd_run(const Flags& f) {
  experiments::ExperimentConfig cfg = experiments::load_config(f.positional()[0]);
  experiments::SweepOptions opt;
  opt.resume = f.has("resume") || f.has("as-new");
  opt.as_new = f.has("as-new");
  opt.dry_run = f.has("dry-run");
  opt.only = f.get("only");
  if (f.has("shard")) experiments::parse_shard(f.get("shard"), opt.shard_index, opt.shard_count);
  experiments::SweepSummary s = experiments::run_sweep(cfg, opt);
  if (opt.dry_run) return 0;
  if (!s.table_markdown.empty()) {
    // A `fronts:` sweep compares every front with the model alone.
    const char* bold = cfg.fronts.empty() ? "NeuRN better" : "better than no front";
    std::cout << "\nTable 1 (accuracy %, target test splits; bold: " << bold << "):\n\n" << s.table_markdown << "\n";
  }
  if (!s.similarity.empty()) std::cout << s.similarity << "\n";
  if (!s.report_html.empty()) std::cout << "report: " << s.report_html << "\n";
  std::cout << "results: " << s.results_file << "\n";
  if (s.failed > 0) {
    std::fprintf(stderr, "neurn run: %d runs failed (see the messages above and failures.jsonl); --resume retries them\n",
                 s.failed);
    return 1;
  }
  return 0;
}

Register reg{{
    .name = "run",
    .summary = "run the sweep of a YAML config (train, evaluate, report)",
    .positionals = "CONFIG.yaml",
    .min_positionals = 1,
    .max_positionals = 1,
    .flags = {on_off("resume", "skip the runs already recorded with the same settings and continue an interrupted "
                               "run from its last checkpoint. A run recorded or started with other settings (its "
                               "fingerprint differs: see docs/experiments.md) stops the sweep before any training, "
                               "naming the keys that changed. Without --resume, an output directory that already "
                               "holds results or run folders is an error: nothing is ever overwritten"),
              on_off("as-new", "with --resume (implied): start the runs whose settings changed as new runs, in new "
                               "folders beside the old ones; the old records and folders are kept"),
              text("only", "PATTERN", "only the runs whose id matches: comma-separated patterns, with * and ? "
                                      "wildcards, else substrings. Run ids look like digits_convnet+neurn/mnist/seed0 "
                                      "or resnet50@resnet50_imagenet/svhn/seed1"),
              text("shard", "I/N", "run every N-th run of the grid starting at the I-th (0 <= I < N); results go to "
                                   "OUTPUT_DIR/shards/I-of-N/. Merge with `neurn report OUTPUT_DIR`"),
              on_off("dry-run", "print the runs, their state (done, to run, resumable) and which models and domains "
                                "are unavailable; train nothing")},
    .details = "Trains and evaluates every run of the config's grid (models x sources x {without, with NeuRN} x "
               "seeds), appends one record per finished run to OUTPUT_DIR/results.jsonl, then writes the report "
               "(OUTPUT_DIR/report/index.html) and prints Table 1. The config format is described in "
               "docs/experiments.md.",
    .fn = cmd_run}};

}  // namespace
}  // namespace neurn::cli
