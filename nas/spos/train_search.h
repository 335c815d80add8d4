#pragma once
// SPOS supernet training and the evolutionary search over it. nas/ knows no
// datasets: the caller hands in batches and, for the search, a fitness
// (validation accuracy after BN recalibration: path_accuracy below).
#include <functional>
#include <string>
#include <utility>

#include "nas/evolution.h"
#include "nas/spos/supernet.h"

namespace neurn::spos {

// Step s's batch: images (N, C, H, W) and int64 labels (N), on the supernet's device.
using BatchFn = std::function<std::pair<Tensor, Tensor>(int64_t step)>;

struct SupernetTrainOptions {
  int64_t steps = 1000;
  // The paper's SGD: lr 0.5 at batch 128 decaying linearly to 0, momentum
  // 0.9, weight decay 4e-5, label smoothing 0.1.
  double lr = 0.5;
  double momentum = 0.9;
  double weight_decay = 4e-5;
  double label_smoothing = 0.1;
  uint64_t seed = 0;  // path sampling
  // Only paths with FLOPs in [min_flops, max_flops] (0: no bound), as the
  // reference's supernet training does; computed on the meta device at input_size.
  int64_t min_flops = 0, max_flops = 0;
  int64_t input_size = 32, num_classes = 10, in_channels = 3;
  int max_tries = 1000;  // draws per step to find a path in the FLOPs range
  // Checkpoint and resume: written atomically every checkpoint_every steps
  // and at the end (model "model.*", SGD state "optim.*"; the step, the path
  // sampler's std::mt19937_64 state and the default generator's counter,
  // which dropout draws from, in the metadata). An existing file is resumed
  // from when resume is set: the run then ends as the uninterrupted one
  // would, given batch(step) depends on the step only. Empty: none.
  std::string checkpoint_path;
  int64_t checkpoint_every = 100;
  bool resume = true;
};

struct SupernetTrainResult {
  int64_t steps_done = 0;    // steps this call ran
  int64_t resumed_from = 0;  // steps read back from the checkpoint (0: fresh)
};

struct TrainProgress {
  int64_t step = 0, steps = 0;  // step is 1-based
  double loss = 0, lr = 0;
  const SposArch* path = nullptr;
};

// One uniformly sampled path per step (SGD over all parameters; a parameter
// off the path has no gradient, so neither it nor its momentum changes).
SupernetTrainResult train_supernet(Supernet& net, const SupernetTrainOptions& opt, const BatchFn& batch,
                    const std::function<void(const TrainProgress&)>& progress = {});

// Validation accuracy of a path: BN recalibrated on `calib` images, then
// eval-mode forward passes over `val` (images, labels).
double path_accuracy(Supernet& net, const SposArch& arch, const std::vector<Tensor>& calib,
                     const std::vector<std::pair<Tensor, Tensor>>& val);

struct SposSearchOptions {
  nas::EvolutionOptions evolution;
  double mutation_prob = 0.1;  // per gene (the paper's)
  // Limits from the meta device at input_size (0: none).
  int64_t max_flops = 0, max_params = 0;
  int64_t input_size = 32, num_classes = 10, in_channels = 3;
};

struct SposSearchResult {
  SposArch best;
  double fitness = 0;
  ArchCost cost;
  nas::EvolutionResult evolution;
};

SposSearchResult search_spos(const SposSpace& space, const SposSearchOptions& opt,
                             const std::function<double(const SposArch&)>& fitness);

}  // namespace neurn::spos
