#include "nas/spos/train_search.h"

#include <filesystem>
#include <map>
#include <random>
#include <sstream>

#include "framework/ops.h"
#include "framework/optim/sgd.h"
#include "framework/serialize/safetensors.h"
#include "layers/state_io.h"

namespace neurn::spos {

namespace {
bool in_range(int64_t v, int64_t lo, int64_t hi) { return (lo <= 0 || v >= lo) && (hi <= 0 || v <= hi); }

constexpr const char* kCheckpointFormat = "neurn spos supernet";

void save_checkpoint(const std::string& path, Supernet& net, const Sgd& sgd, int64_t step, const std::mt19937_64& rng) {
  NamedTensors all;
  for (auto& [k, t] : net.state_dict()) all.push_back({"model." + k, t});
  for (auto& [k, t] : sgd.state_dict()) all.push_back({"optim." + k, t});
  std::ostringstream rs;
  rs << rng;
  const Generator& g = default_generator();
  // save_safetensors replaces the file atomically and durably: an
  // interruption leaves the previous checkpoint.
  save_safetensors(path, all,
                   {{"step", std::to_string(step)},
                    {"format", kCheckpointFormat},
                    {"path_rng", rs.str()},
                    {"generator_seed", std::to_string(g.seed())},
                    {"generator_offset", std::to_string(g.offset())}});
}

int64_t load_checkpoint(const std::string& path, Supernet& net, Sgd& sgd, std::mt19937_64& rng) {
  std::map<std::string, std::string> meta;
  NamedTensors all = load_safetensors(path, &meta);
  NEURN_CHECK(meta["format"] == kCheckpointFormat && meta.count("step") && meta.count("path_rng"), "SPOS train: ",
              path, " is not a SPOS supernet checkpoint (format '", meta["format"], "')");
  NamedTensors model, opt;
  for (auto& [k, t] : all) {
    if (k.rfind("model.", 0) == 0) model.push_back({k.substr(6), t});
    else if (k.rfind("optim.", 0) == 0) opt.push_back({k.substr(6), t});
    else NEURN_FAIL("SPOS train: ", path, ": unexpected tensor ", k);
  }
  load_state(net, model, true, path);
  sgd.load_state_dict(opt);
  std::istringstream rs(meta["path_rng"]);
  rs >> rng;
  NEURN_CHECK(!rs.fail(), "SPOS train: ", path, ": unreadable path_rng");
  Generator& g = default_generator();
  g.manual_seed(std::stoull(meta["generator_seed"]));
  g.set_offset(std::stoull(meta["generator_offset"]));
  return std::stoll(meta["step"]);
}
}  // namespace

SupernetTrainResult train_supernet(Supernet& net, const SupernetTrainOptions& o, const BatchFn& batch,
                                   const std::function<void(const TrainProgress&)>& progress) {
  NEURN_CHECK(o.steps > 0 && o.lr > 0, "SPOS train: steps (", o.steps, ") and lr (", o.lr, ") must be positive");
  Sgd sgd(net.parameters(), SgdOptions{.lr = o.lr, .momentum = o.momentum, .weight_decay = o.weight_decay});
  std::mt19937_64 rng(o.seed);
  std::map<nas::Genome, int64_t> flops;  // memo of the meta-device FLOPs
  const bool ranged = o.min_flops > 0 || o.max_flops > 0;
  SupernetTrainResult result;
  int64_t start = 0;
  if (!o.checkpoint_path.empty() && o.resume && std::filesystem::exists(o.checkpoint_path)) {
    start = load_checkpoint(o.checkpoint_path, net, sgd, rng);
    NEURN_CHECK(start <= o.steps, "SPOS train: ", o.checkpoint_path, " is at step ", start, ", beyond steps ",
                o.steps);
    result.resumed_from = start;
  }
  net.train();
  for (int64_t step = start; step < o.steps; ++step) {
    SposArch arch = sample_arch(net.space(), rng);
    if (ranged) {
      int t = 0;
      for (;; ++t) {
        nas::Genome g = to_genome(arch);
        auto it = flops.find(g);
        if (it == flops.end()) it = flops.emplace(g, arch_cost(arch, o.num_classes, o.in_channels, o.input_size).flops).first;
        if (in_range(it->second, o.min_flops, o.max_flops)) break;
        NEURN_CHECK(t < o.max_tries, "SPOS train: no path with FLOPs in [", o.min_flops, ", ", o.max_flops, "] in ",
                    o.max_tries, " draws");
        arch = sample_arch(net.space(), rng);
      }
    }
    net.set_path(arch);
    // linear decay to 0 over the run (the reference's LambdaLR)
    const double lr = o.lr * (1.0 - static_cast<double>(step) / static_cast<double>(o.steps));
    sgd.set_lr(lr);
    auto [x, y] = batch(step);
    sgd.zero_grad();  // drops every gradient: parameters off this path get none
    Tensor loss = cross_entropy(net(x), y, o.label_smoothing);
    loss.backward();
    sgd.step();
    ++result.steps_done;
    if (progress) progress({step + 1, o.steps, loss.item(), lr, &arch});
    bool last = step + 1 == o.steps;
    if (!o.checkpoint_path.empty() && (last || (o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0)))
      save_checkpoint(o.checkpoint_path, net, sgd, step + 1, rng);
  }
  return result;
}

double path_accuracy(Supernet& net, const SposArch& arch, const std::vector<Tensor>& calib,
                     const std::vector<std::pair<Tensor, Tensor>>& val) {
  NEURN_CHECK(!val.empty(), "SPOS path_accuracy: no validation batches");
  recalibrate_bn(net, arch, calib);
  const bool was_training = net.is_training();
  SposArch before = net.path();
  net.set_path(arch);
  net.eval();
  int64_t correct = 0, total = 0;
  {
    NoGradGuard no_grad;
    for (auto& [x, y] : val) {
      auto pred = argmax(net(x), 1).to_vector<int64_t>();
      auto lab = y.to_vector<int64_t>();
      for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == lab[i];
      total += static_cast<int64_t>(pred.size());
    }
  }
  net.train(was_training);
  net.set_path(before);
  return static_cast<double>(correct) / static_cast<double>(total);
}

SposSearchResult search_spos(const SposSpace& space, const SposSearchOptions& o,
                             const std::function<double(const SposArch&)>& fitness) {
  space.validate();
  const std::vector<int> choices = gene_choices(space);
  std::map<nas::Genome, ArchCost> costs;
  auto cost = [&](const nas::Genome& g) {
    auto it = costs.find(g);
    if (it == costs.end())
      it = costs.emplace(g, arch_cost(from_genome(space, g), o.num_classes, o.in_channels, o.input_size)).first;
    return it->second;
  };
  nas::EvolutionProblem p;
  p.sample = [&](std::mt19937_64& r) { return nas::sample_uniform(choices, r); };
  p.mutate = [&](const nas::Genome& g, std::mt19937_64& r) { return nas::mutate_uniform(g, choices, o.mutation_prob, r); };
  p.crossover = [](const nas::Genome& a, const nas::Genome& b, std::mt19937_64& r) { return nas::crossover_uniform(a, b, r); };
  p.feasible = [&](const nas::Genome& g) {
    if (o.max_flops <= 0 && o.max_params <= 0) return true;
    ArchCost c = cost(g);
    return (o.max_flops <= 0 || c.flops <= o.max_flops) && (o.max_params <= 0 || c.params <= o.max_params);
  };
  p.fitness = [&](const nas::Genome& g) { return fitness(from_genome(space, g)); };
  p.describe = [&](const nas::Genome& g) { return describe(from_genome(space, g)); };
  SposSearchResult r;
  r.evolution = nas::evolve(p, o.evolution);
  r.best = from_genome(space, r.evolution.best.genome);
  r.fitness = r.evolution.best.fitness;
  r.cost = cost(r.evolution.best.genome);
  return r;
}

}  // namespace neurn::spos
