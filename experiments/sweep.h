#pragma once
// Sweeps: the grid models x sources x {without, with NeuRN} x seeds of a
// config, run one after the other. Every finished run appends one record to
// results.jsonl; --resume skips the runs recorded there and continues an
// interrupted run from its last checkpoint, so killing the process at any
// moment loses at most the epoch in progress. --shard I/N runs every N-th run
// of the grid (from the I-th, 0-based) and writes its own
// shards/I-of-N/results.jsonl, so machines sharing the output directory never
// write the same file; `neurn report` merges them.
#include <iosfwd>
#include <string>
#include <vector>

#include "experiments/config.h"
#include "experiments/report.h"
#include "experiments/trainer.h"

namespace neurn::experiments {

struct SweepOptions {
  // Skip the runs recorded with the same settings, continue interrupted runs
  // from their checkpoints. A run recorded or started with other settings
  // (its fingerprint differs) stops the sweep before any training, naming
  // the keys that changed, unless as_new.
  bool resume = false;
  // With resume (implied): runs whose settings changed start as new runs in
  // new folders beside the old ones; nothing recorded is touched.
  bool as_new = false;
  std::string only;         // comma-separated patterns matched against run ids (* and ? wildcards; else substring)
  int shard_index = 0;      // 0-based
  int shard_count = 1;
  bool dry_run = false;     // print the plan and what is available; run nothing
  std::ostream* log = nullptr;  // nullptr: std::cout
};

// "I/N" with 0 <= I < N.
void parse_shard(const std::string& s, int& index, int& count);

// Every run of the grid, in order: models, then sources, then seeds, then
// without/with NeuRN (so the two variants of a model run back to back).
std::vector<RunSpec> expand_grid(const ExperimentConfig& cfg);
// Whether `run_id` matches the --only patterns (empty: everything).
bool matches_only(const std::string& run_id, const std::string& patterns);

// The results file this invocation writes.
std::string results_path(const ExperimentConfig& cfg, const SweepOptions& opt);

struct SweepSummary {
  int planned = 0;       // runs of this shard after --only
  int already_done = 0;  // recorded before (skipped by --resume)
  int finished = 0;      // recorded by this invocation (ok or diverged)
  int diverged = 0;
  int failed = 0;        // errors (written to failures.jsonl, not recorded as finished)
  int started_as_new = 0;  // changed runs started anew (as_new)
  std::vector<std::string> unavailable_models;
  std::vector<std::string> missing_weights;  // "vgg19: weights/vgg19.safetensors"
  std::string results_file;
  std::string report_html;  // "" when no report was written
  std::string table_markdown;
  std::string similarity;  // "functional similarity ...: 0.71 without NeuRN, 0.80 with" when there are 2+ models
};

// Runs the sweep (or only plans it, with dry_run). Throws neurn::Error for
// problems found before any training: availability, an output directory that
// cannot be written, results present without --resume, a bad --shard.
SweepSummary run_sweep(const ExperimentConfig& cfg, const SweepOptions& opt);

}  // namespace neurn::experiments
