// `neurn run CONFIG.yaml`: the sweep of a config, then its report.
#include <cstdio>
#include <iostream>

#include "experiments/cli/cli.h"
#include "experiments/sweep.h"
#include "framework/error.h"

namespace neurn::cli {
namespace {

const char* kHelp = R"(usage: neurn run CONFIG.yaml [--resume [--as-new]] [--only PATTERN] [--shard I/N] [--dry-run]

Trains and evaluates every run of the config's grid (models x sources x
{without, with NeuRN} x seeds), appends one record per finished run to
OUTPUT_DIR/results.jsonl, then writes the report (OUTPUT_DIR/report/index.html)
and prints Table 1.

  --resume        skip the runs already recorded with the same settings and
                  continue an interrupted run from its last checkpoint. A run
                  recorded or started with other settings (its fingerprint
                  differs: see docs/experiments.md) stops the sweep before any
                  training, naming the keys that changed. Without --resume, an
                  output directory that already holds results or run folders
                  is an error: nothing is ever overwritten
  --as-new        with --resume (implied): start the runs whose settings
                  changed as new runs, in new folders beside the old ones; the
                  old records and folders are kept
  --only PATTERN  only the runs whose id matches: comma-separated patterns,
                  with * and ? wildcards, else substrings. Run ids look like
                  digits_convnet+neurn/mnist/seed0 or
                  resnet50@resnet50_imagenet/svhn/seed1
  --shard I/N     run every N-th run of the grid starting at the I-th
                  (0 <= I < N); results go to OUTPUT_DIR/shards/I-of-N/. Merge
                  with `neurn report OUTPUT_DIR`
  --dry-run       print the runs, their state (done, to run, resumable) and
                  which models and domains are unavailable; train nothing

The config format is described in docs/experiments.md.
)";

int cmd_run(const Args& args) {
  Flags f(args, {"resume", "as-new", "dry-run", "help"});
  if (f.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  f.allow_only({"resume", "as-new", "only", "shard", "dry-run", "help"});
  NEURN_CHECK(f.positional().size() == 1, "expected one CONFIG.yaml, got ", f.positional().size(),
              " arguments (see neurn run --help)");
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
    std::cout << "\nTable 1 (accuracy %, target test splits; bold: NeuRN better):\n\n" << s.table_markdown << "\n";
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

Register reg{"run", "run the sweep of a YAML config (train, evaluate, report)", cmd_run};

}  // namespace
}  // namespace neurn::cli
