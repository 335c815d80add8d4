#pragma once
// One run of an experiment: a model (optionally with NeuRN in front) trained
// on one source domain with early stopping on the source validation accuracy,
// then evaluated on the source test split and every target's test split.
//
// A run directory holds
//   last.safetensors + last.json   the state after the latest finished epoch
//                                  (model, optimizer, generator, history):
//                                  what a resumed run starts from
//   best.safetensors + best.json   the weights of the best validation epoch,
//                                  with config, seed, epoch, metrics and code
//                                  version
// Both pairs are written atomically (temporary file, fsync, rename), the JSON
// after its tensors, so a kill at any moment loses at most the epoch in
// progress.
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "datasets/datasets.h"
#include "experiments/config.h"
#include "experiments/results.h"
#include "framework/device.h"
#include "layers/module.h"

namespace neurn::experiments {

// One point of the sweep grid.
struct RunSpec {
  ModelSpec model;
  bool neurn = false;
  std::string source;
  uint64_t seed = 0;
  // "digits_convnet+neurn/mnist/seed0": unique within a sweep, stable across
  // invocations (what --resume and --only match).
  std::string run_id() const;
  // The run's folder under the output directory ("digits_convnet+neurn_mnist_seed0").
  std::string dir_name() const;
};

struct TrainOptions {
  std::string run_dir;             // checkpoints go here
  bool resume = true;              // continue from run_dir/last.* when present
  std::ostream* log = nullptr;     // progress lines (nullptr: std::cout)
  // Targets to leave out (domain -> why), decided by the sweep.
  std::map<std::string, std::string> skipped_targets;
  std::string data_root;           // "" : $NEURN_DATA or ./data
};

// The device a config asks for ("auto": CUDA when present, else the CPU).
Device resolve_device(const std::string& spec);

// The input size of a run: cfg.image_size, else 32 or the model's minimum.
int64_t run_image_size(const ExperimentConfig& cfg, const RunSpec& spec);

// Builds the model of `spec` for `cfg` (NeuRN in front when spec.neurn), with
// parameters drawn from a generator seeded by spec.seed, on `device`; loads
// spec.model.weights when set (the classifier head is left as initialised
// when its shape differs).
ModulePtr build_run_model(const ExperimentConfig& cfg, const RunSpec& spec, Device device);

// Trains and evaluates one run; never throws for a diverged loss (the record
// says status "diverged"), throws neurn::Error for anything else.
RunRecord train_run(const ExperimentConfig& cfg, const RunSpec& spec, const TrainOptions& opt);

// Accuracy, per-class accuracy and the confusion matrix of `model` (switched
// to eval mode) on every image of `ds`.
SplitMetrics evaluate(Module& model, const data::Dataset& ds, const ExperimentConfig& cfg, Device device,
                      int64_t image_size);

}  // namespace neurn::experiments
