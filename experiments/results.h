#pragma once
// Run records and results.jsonl: one JSON object per finished run, one line
// each. Appends are a single write() with O_APPEND followed by fsync, so a
// killed process leaves either the whole line or none of it; a line that is
// nonetheless corrupt (a disk full, a hand edit) is reported and skipped, and
// never overwritten: new records start on a fresh line after it.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "framework/io/atomic_file.h"

namespace neurn::experiments {

// Evaluation of one model on one test split.
struct SplitMetrics {
  std::string domain;
  int64_t images = 0;
  double accuracy = 0;                           // in [0, 1]
  std::vector<double> per_class;                 // accuracy per true class (NaN, stored as null, when absent)
  std::vector<std::vector<int64_t>> confusion;   // [true][predicted]
};

// One line of the training log.
struct EpochLog {
  int epoch = 0;  // 1-based
  double train_loss = 0;
  double train_acc = 0;
  double val_acc = 0;
  double seconds = 0;
  double images_per_second = 0;
};

struct RunRecord {
  std::string run_id;      // "digits_convnet+neurn/mnist/seed0": the grid point --resume matches
  std::string experiment;  // the config's name
  std::string model;       // the bare registry name
  // The run's identity (experiments/run_identity.h); empty in records
  // written before fingerprints existed.
  std::string variant;              // "resnet50@resnet50_imagenet": what Table 1 groups by
  std::string fingerprint;          // sha256 of the canonical settings
  std::string variant_fingerprint;  // the same without source, seed and NeuRN
  std::string settings_json;        // the canonical settings themselves
  std::string normalize = "none";   // the input normalization applied (datasets/transforms.h mode)
  bool neurn = false;       // NeuRN in front (front_kind == "neurn")
  // The front's label ("" without one, "neurn" for the default NeuRN,
  // "neurn_k5", "lrn", ...) and kind (none | neurn | lrn | lcn); its options
  // are in settings_json. Records written before fronts existed have none:
  // reading them gives "neurn"/"neurn" when neurn is true, else ""/"none".
  std::string front;
  std::string front_kind = "none";
  std::string source;
  uint64_t seed = 0;
  // ok: trained and evaluated. diverged: the loss became NaN or infinite;
  // the record has the history up to there and no test metrics. (Runs that
  // an error stopped are not recorded here but in failures.jsonl.)
  std::string status = "ok";
  std::string message;
  int epochs_run = 0;
  int best_epoch = 0;
  double best_val_acc = 0;
  SplitMetrics source_test;
  std::map<std::string, SplitMetrics> targets;          // target domain -> metrics
  std::map<std::string, std::string> skipped_targets;   // target domain -> why it was not tested
  // Generated domain the run used -> what its images were made from
  // (data::domain_source_key: syn's fonts and photo backgrounds), so two
  // records of syn made from other fonts are told apart. Absent: none used.
  std::map<std::string, std::string> data_sources;
  std::vector<EpochLog> history;
  int64_t parameters = 0;
  double wall_seconds = 0;
  std::string device;
  std::string code_version;
  std::string finished_at;  // ISO 8601 UTC
  std::string config_yaml;  // the whole config of the sweep
};

std::string record_to_json(const RunRecord& r);  // one line, no newline
// Throws neurn::Error naming what is missing or malformed.
RunRecord record_from_json(const std::string& line);

// Appends `r` as one line to `path` (created if missing) and fsyncs it.
void append_record(const std::string& path, const RunRecord& r);

struct LoadedResults {
  std::vector<RunRecord> records;
  std::vector<std::string> warnings;  // "results.jsonl:7: corrupt record skipped: ..."
};

// The variant of a record: its variant, else (records before fingerprints)
// the model part of its run id ("mobilenet@w0.5").
std::string record_variant(const RunRecord& r);

// Reads every record of `path` (missing file: none). Corrupt lines and
// repeated records (the same run id and fingerprint; the first one wins)
// become warnings. One run id with two fingerprints is two runs (a changed
// config run with --as-new) and both are kept.
LoadedResults load_results(const std::string& path);
// Every results.jsonl under `dir` (the shards of a sweep), merged.
LoadedResults load_results_dir(const std::string& dir);

// Writes `content` to `path` durably and atomically (framework/io/atomic_file.h:
// temporary file, fsync, rename, fsync of the folder): a reader sees the old
// file or the new one, never half of either.
using io::write_file_atomic;

// The source version for records and checkpoints: "git <hash>[-dirty]" when
// the working directory is a git checkout, else the project version.
std::string code_version();
// Now, as ISO 8601 UTC ("2026-11-27T18:05:00Z").
std::string utc_now();

}  // namespace neurn::experiments
