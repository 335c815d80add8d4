#pragma once
// Experiment configs: a YAML file checked against a schema. Every error names
// the file, line and column, what was found and what is allowed, so a typo in
// a 14-model sweep fails in a second instead of after a night of training.
//
// Two stages: load_config() checks the syntax and the schema (keys, types,
// values) and needs nothing else; check_availability() then checks the model
// and domain names against what this build and this data root provide (an
// unknown name lists the close ones).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "experiments/front.h"

namespace neurn::experiments {

// Where a value came from, for messages: "quickstart.yaml:12:5".
struct SourceMark {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown (defaults, flags)
  int column = 0;  // 1-based
  std::string str() const;
};

struct ExperimentConfig;

// One model entry of a config: a variant of a registry model. Everything
// here changes the result, so everything here is part of the run id (the
// variant label) and of the run's fingerprint (see run_identity.h).
struct ModelSpec {
  std::string name;            // registry name, "digits_convnet"
  std::string weights;         // optional file of initial weights (head replaced)
  std::string weights_format;  // where the weights come from: torchvision | keras | neurn ("" without weights)
  double width = 1.0;          // width multiplier passed to the model builder
  std::string arch;            // ModelOptions::arch of a searched model (spos, autoformer); "" : its default
  std::string label;           // the variant's name in run ids and tables; "" : derived (variant())
  std::string normalize;       // input normalization (none | imagenet | torch | tf | caffe); "" : from the weights
  SourceMark mark;
  std::map<std::string, SourceMark> marks;  // "weights", "arch", "normalize", "label"
  // The variant's name: label, else NAME[@wWIDTH][@ARCH][@WEIGHTS], with
  // ARCH the stem of an arch file (or the inline arch when it is short, else
  // "arch" + its hash) and WEIGHTS the stem of the weights file:
  // "resnet50@resnet50_imagenet", "mobilenet@w0.5".
  std::string variant() const;
};

// The weights formats (sources) a `weights:` entry names.
const std::vector<std::string>& weights_formats();
// The input normalization of `m` in `cfg`, as a mode name of
// datasets/transforms.h: the entry's normalize, else the config's, else what
// the weights were trained with: torchvision -> imagenet; keras -> the model's
// Keras Applications preprocessing (keras_preprocessing); neurn or no weights
// -> none ([0, 1]).
std::string effective_normalization(const ExperimentConfig& cfg, const ModelSpec& m);
// Keras Applications' preprocess_input mode of a model ("tf", "torch",
// "caffe"), "" when unknown.
std::string keras_preprocessing(const std::string& model);

struct OptimizerSpec {
  std::string name = "adam";  // adam | sgd
  double lr = 1e-3;
  double weight_decay = 0.0;
  double momentum = 0.9;      // sgd only
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam only
};

struct EarlyStoppingSpec {
  std::string metric = "val_acc";  // the only metric: source validation accuracy
  int patience = 5;                // epochs without improvement before stopping
  double min_delta = 0.0;          // an improvement must exceed this
};

// How the source and target splits are cut.
struct ProtocolSpec {
  std::string name = "single_source";  // train on one domain, test on the others
  int64_t train_images = 0;            // first N source training images (0: all)
  int64_t val_images = 0;              // held out from the source training split (0: 10% of the train images)
  int64_t test_images = 0;             // cap on each test split (0: all), for quick runs
};

struct ExperimentConfig {
  std::string file;  // the YAML it came from ("" for flags)
  std::string name;
  std::string output_dir;
  std::string data_root;  // "": $NEURN_DATA, else ./data
  std::vector<ModelSpec> models;
  std::vector<std::string> sources;
  std::vector<std::string> targets;  // empty: every other domain
  bool skip_missing_targets = false;
  bool skip_unavailable_models = false;
  // The input fronts to run (front.h). A config names them either as
  // `fronts:` (any of none, neurn with options, lrn, lcn) or, as the paper's
  // sweeps do, as `neurn: [false, true]` with one `neurn_options`; fronts
  // stays empty then and run_fronts() derives them.
  std::vector<FrontSpec> fronts;
  std::vector<bool> neurn{false, true};
  std::map<std::string, std::string> neurn_options;  // passed to the NeuRN layer, which validates them
  std::string normalize;  // input normalization of every model entry without its own; "" : from the weights
  std::vector<uint64_t> seeds{0};
  int image_size = 0;  // 0: the model's preferred input size
  ProtocolSpec protocol;
  OptimizerSpec optimizer;
  int batch_size = 256;
  int eval_batch_size = 512;
  int max_epochs = 30;
  EarlyStoppingSpec early_stopping;
  std::string device = "auto";      // auto | cpu | cuda | cuda:N
  std::string precision = "fp32";   // only fp32 is supported; bf16/fp16 are rejected with a clear error
  int num_workers = 1;              // loader prefetch threads
  bool report = true;               // write the report when the sweep ends

  // Marks of fields whose value is checked later (sources, targets).
  std::map<std::string, SourceMark> marks;
};

// Parses and checks `path`. Throws neurn::Error "FILE:LINE:COL: ..." on a
// malformed file, an unknown key, a wrong type or a bad value.
ExperimentConfig load_config(const std::string& path);
// The same from a string (tests; `file` names it in messages).
ExperimentConfig parse_config(const std::string& yaml_text, const std::string& file);

// The fronts a sweep of `cfg` runs, in the config's order: cfg.fronts, else
// one per entry of cfg.neurn (false: none; true: NeuRN with neurn_options,
// labelled "neurn").
std::vector<FrontSpec> run_fronts(const ExperimentConfig& cfg);

// The domains the experiments know, in the paper's column order.
const std::vector<std::string>& all_domains();
// Short names for table columns (datasets DomainInfo::short_name): mnist -> M, usps -> U, svhn -> S, mnistm -> MM, syn -> SYN.
std::string domain_short(const std::string& domain);
// The names papers use (DomainInfo::display_name): mnist -> MNIST, usps -> USPS, svhn -> SVHN, mnistm -> MNIST-M, syn -> SYN.
std::string domain_long(const std::string& domain);

// What check_availability needs to know about the build and the data root.
struct Availability {
  std::vector<std::string> registered_models;
  // domain -> "" when available, else why not ("SVHN files not found under data/svhn").
  std::map<std::string, std::string> domain_status;
};

struct AvailabilityReport {
  std::vector<std::string> unavailable_models;              // named in the config, not registered
  std::map<std::string, std::string> skipped_targets;       // domain -> why
  std::map<std::string, std::string> unavailable_sources;   // dry runs only (otherwise an error)
};

// Checks names against `avail`. A model not registered in this build is an
// error listing the close names, unless skip_unavailable_models (the run list
// then leaves it out) or dry_run (which only reports). An unavailable source
// is an error; an unavailable target is an error unless skip_missing_targets.
AvailabilityReport check_availability(const ExperimentConfig& cfg, const Availability& avail,
                                      bool dry_run = false);

// The targets of a run from `source`: cfg.targets minus the source, or every
// other domain when cfg.targets is empty.
std::vector<std::string> targets_for(const ExperimentConfig& cfg, const std::string& source);

// Levenshtein distance, and the candidates within a small distance of `name`
// (closest first), for "did you mean" lists.
int edit_distance(const std::string& a, const std::string& b);
std::vector<std::string> close_names(const std::string& name, const std::vector<std::string>& candidates,
                                     size_t max_results = 3);

// The config as YAML text (stored with every checkpoint and record).
std::string config_to_yaml(const ExperimentConfig& cfg);

}  // namespace neurn::experiments
