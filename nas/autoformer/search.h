#pragma once
// AutoFormer's two phases on top of the supernet: training with one subnet
// drawn uniformly per step (Adam through SliceAdam, lr 0.01, batch 24 as the
// paper; linear warm-up and label smoothing available), and the evolutionary
// search of nas/evolution.h under a parameter limit counted on the meta
// device. Nothing here knows datasets: the caller hands batches and a fitness.
#include <functional>
#include <string>
#include <utility>

#include "nas/autoformer/slice_adam.h"
#include "nas/autoformer/supernet.h"
#include "nas/evolution.h"

namespace neurn::autoformer {

struct SupernetTrainOptions {
  int64_t steps = 1000;
  double lr = 0.01;             // the paper's
  int64_t warmup_steps = 0;     // linear from lr / warmup_steps to lr
  double label_smoothing = 0.0;
  double weight_decay = 0.0;
  uint64_t seed = 0;            // the subnet of step s is drawn from (seed, s): resumable
  // Written every checkpoint_every steps and at the end (model "model.*",
  // optimizer "optim.*", the step in the metadata); an existing file is
  // resumed from when resume is set. Empty: no checkpoint.
  std::string checkpoint_path;
  int64_t checkpoint_every = 100;
  bool resume = true;
};

struct TrainProgress {
  int64_t step = 0;  // 1-based, after the update
  int64_t steps = 0;
  double loss = 0;
  double lr = 0;
  SubnetConfig subnet;
};

struct SupernetTrainResult {
  int64_t steps_done = 0;
  int64_t resumed_from = 0;  // steps read back from the checkpoint (0: fresh)
  double mean_loss = 0;      // over the steps this call ran
};

// images (N, C, H, W) float32 and labels (N) int64 for step `step` (0-based),
// on the supernet's device.
using BatchFn = std::function<std::pair<Tensor, Tensor>(int64_t step)>;

SubnetConfig subnet_for_step(const SearchSpace& space, uint64_t seed, int64_t step);

SupernetTrainResult train_supernet(Supernet& net, const SupernetTrainOptions& opt, const BatchFn& batch,
                                   const std::function<void(const TrainProgress&)>& progress = {});

// ---- search -------------------------------------------------------------------

struct SubnetSearchOptions {
  nas::EvolutionOptions evolution;  // population 50, parents 10, 25 + 25, 20 generations by default
  int64_t max_params = 0;           // 0: no upper limit
  int64_t min_params = 0;
  double layer_mutation_prob = 0.2;  // heads and MLP ratio of each layer
  double depth_mutation_prob = 0.4;
  double embed_mutation_prob = 0.4;
};

struct SubnetSearchResult {
  SubnetConfig best;
  double fitness = 0;
  int64_t params = 0;
  nas::EvolutionResult evolution;
};

// Genome: [embed index, depth - min_depth, heads index per layer, MLP ratio
// index per layer] (2 + 2 depth genes), so parents of equal depth are the
// ones of equal length.
nas::Genome to_genome(const SearchSpace& space, const SubnetConfig& c);
SubnetConfig from_genome(const SearchSpace& space, const nas::Genome& g);
// The problem for nas::evolve: the reference's mutation (depth redrawn with
// depth_mutation_prob, new layers random; per layer heads and ratio with
// layer_mutation_prob; embed with embed_mutation_prob), crossover of equal
// depths gene by gene, feasibility by the meta-device parameter count.
nas::EvolutionProblem make_problem(const SearchSpace& space, const SubnetSearchOptions& opt,
                                   std::function<double(const SubnetConfig&)> fitness);
SubnetSearchResult search_subnet(const SearchSpace& space, const SubnetSearchOptions& opt,
                                 std::function<double(const SubnetConfig&)> fitness);

// Top-1 accuracy of the supernet's subnet c over batches (no gradients, eval mode).
double subnet_accuracy(Supernet& net, const SubnetConfig& c, const std::vector<std::pair<Tensor, Tensor>>& batches);

}  // namespace neurn::autoformer
