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
#include "datasets/transforms.h"
#include "experiments/config.h"
#include "experiments/results.h"
#include "framework/device.h"
#include "layers/module.h"

namespace neurn::experiments {

// One point of the sweep grid.
struct RunSpec {
  ModelSpec model;
  bool neurn = false;  // the config's NeuRN in front (neurn: [.., true] with neurn_options); see front
  std::string source;
  uint64_t seed = 0;
  // The run's front when the config lists `fronts:`; its kind "none" with an
  // empty label means "as `neurn` says" (effective_front()).
  FrontSpec front;
  // VARIANT[+FRONT]/SOURCE/seedN ("digits_convnet+neurn/mnist/seed0",
  // "digits_convnet+neurn_k5/mnist/seed0",
  // "resnet50@resnet50_imagenet/svhn/seed1"; VARIANT: ModelSpec::variant(),
  // FRONT: the front's label):
  // unique within a sweep, stable across invocations (what --resume and
  // --only match). The settings behind it are the run's fingerprint
  // (run_identity.h).
  std::string run_id() const;
  // The run id as a file name ("digits_convnet+neurn_mnist_seed0"); the run's
  // folder adds the fingerprint (RunIdentity::folder).
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

// The front of `spec` under `cfg`: spec.front when it has one, else NeuRN
// with cfg.neurn_options (label "neurn") when spec.neurn, else none.
FrontSpec effective_front(const ExperimentConfig& cfg, const RunSpec& spec);

// The device a config asks for ("auto": CUDA when present, else the CPU).
Device resolve_device(const std::string& spec);

// The input size of a run: cfg.image_size, else 32 or the model's minimum.
int64_t run_image_size(const ExperimentConfig& cfg, const RunSpec& spec);

// The input normalization of a run (effective_normalization of its model entry).
data::InputNormalization run_normalization(const ExperimentConfig& cfg, const RunSpec& spec);
// What the model reads: the loader's batch (already scaled and shifted by
// loader_normalization) with the channels reversed when `norm.bgr`.
Tensor model_input(const Tensor& images, const data::InputNormalization& norm);
// The loader options of a run's training (shuffle) or evaluation batches.
data::LoaderOptions run_loader_options(const ExperimentConfig& cfg, int64_t batch, bool shuffle, uint64_t seed,
                                       int64_t size, Device device, const data::InputNormalization& norm);

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
// `norm`: the run's input normalization (run_normalization).
SplitMetrics evaluate(Module& model, const data::Dataset& ds, const ExperimentConfig& cfg, Device device,
                      int64_t image_size, const data::InputNormalization& norm = {});

}  // namespace neurn::experiments
