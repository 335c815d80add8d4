#include "nas/autoformer/search.h"

#include <filesystem>
#include <map>

#include "framework/ops.h"
#include "framework/serialize/safetensors.h"
#include "layers/state_io.h"
#include "nas/autoformer/subnet_model.h"

namespace neurn::autoformer {

SubnetConfig subnet_for_step(const SearchSpace& space, uint64_t seed, int64_t step) {
  Generator gen(splitmix64(seed) ^ splitmix64(static_cast<uint64_t>(step) + 0x51ED));
  return sample_subnet(space, gen);
}

namespace {

void save_checkpoint(const std::string& path, Supernet& net, const SliceAdam& optim, int64_t step) {
  NamedTensors all;
  for (auto& [k, t] : net.state_dict()) all.push_back({"model." + k, t});
  for (auto& [k, t] : optim.state_dict()) all.push_back({"optim." + k, t});
  // save_safetensors replaces the file atomically and durably: an
  // interruption leaves the previous checkpoint.
  save_safetensors(path, all, {{"step", std::to_string(step)}, {"format", "neurn autoformer supernet"}});
}

int64_t load_checkpoint(const std::string& path, Supernet& net, SliceAdam& optim) {
  std::map<std::string, std::string> meta;
  NamedTensors all = load_safetensors(path, &meta);
  NEURN_CHECK(meta.count("step"), "autoformer: ", path, " is not a supernet checkpoint (no \"step\" metadata)");
  NamedTensors model, opt;
  for (auto& [k, t] : all) {
    if (k.rfind("model.", 0) == 0) model.push_back({k.substr(6), t});
    else if (k.rfind("optim.", 0) == 0) opt.push_back({k.substr(6), t});
    else NEURN_FAIL("autoformer: ", path, ": unexpected tensor ", k);
  }
  load_state(net, model, true, path);
  optim.load_state_dict(opt);
  return std::stoll(meta["step"]);
}

}  // namespace

SupernetTrainResult train_supernet(Supernet& net, const SupernetTrainOptions& o, const BatchFn& batch,
                                   const std::function<void(const TrainProgress&)>& progress) {
  NEURN_CHECK(o.steps >= 0 && o.lr > 0 && o.warmup_steps >= 0 && o.label_smoothing >= 0 && o.label_smoothing < 1,
              "autoformer train: steps >= 0, lr > 0, warmup >= 0 and label smoothing in [0, 1) are required");
  SliceAdam optim(net.parameters(), AdamOptions{.lr = o.lr, .weight_decay = o.weight_decay});
  SupernetTrainResult r;
  int64_t start = 0;
  if (!o.checkpoint_path.empty() && o.resume && std::filesystem::exists(o.checkpoint_path)) {
    start = load_checkpoint(o.checkpoint_path, net, optim);
    r.resumed_from = start;
  }
  net.train();
  double loss_sum = 0;
  for (int64_t s = start; s < o.steps; ++s) {
    double lr = o.warmup_steps > 0 && s < o.warmup_steps ? o.lr * static_cast<double>(s + 1) / o.warmup_steps : o.lr;
    optim.set_lr(lr);
    SubnetConfig c = subnet_for_step(net.space(), o.seed, s);
    net.set_subnet(c);
    auto [x, y] = batch(s);
    optim.zero_grad();
    Tensor loss = cross_entropy(net(x), y, o.label_smoothing);
    loss.backward();
    optim.set_active(net.active_slices());
    optim.step();
    double l = loss.item();
    NEURN_CHECK(std::isfinite(l), "autoformer train: the loss is ", l, " at step ", s + 1, " (subnet ",
                encode_subnet(c), "); lower the lr or add warm-up");
    loss_sum += l;
    ++r.steps_done;
    if (progress) progress(TrainProgress{s + 1, o.steps, l, lr, c});
    bool last = s + 1 == o.steps;
    if (!o.checkpoint_path.empty() && (last || (o.checkpoint_every > 0 && (s + 1) % o.checkpoint_every == 0)))
      save_checkpoint(o.checkpoint_path, net, optim, s + 1);
  }
  r.mean_loss = r.steps_done ? loss_sum / static_cast<double>(r.steps_done) : 0.0;
  return r;
}

// ---- search -------------------------------------------------------------------

namespace {

template <typename T>
int index_of(const std::vector<T>& v, T x, const char* what) {
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] == x) return static_cast<int>(i);
  NEURN_FAIL("autoformer genome: ", what, " ", x, " is not a choice of the space");
}

}  // namespace

nas::Genome to_genome(const SearchSpace& s, const SubnetConfig& c) {
  check_subnet(s, c);
  nas::Genome g;
  g.genes.push_back(index_of(s.embed_dims, c.embed_dim, "embed dim"));
  g.genes.push_back(static_cast<int>(c.depth() - s.min_depth));
  for (int64_t h : c.heads) g.genes.push_back(index_of(s.heads, h, "heads"));
  for (double r : c.mlp_ratios) g.genes.push_back(index_of(s.mlp_ratios, r, "MLP ratio"));
  return g;
}

SubnetConfig from_genome(const SearchSpace& s, const nas::Genome& g) {
  NEURN_CHECK(g.genes.size() >= 2, "autoformer genome: fewer than 2 genes");
  int64_t depth = s.min_depth + g.genes[1];
  NEURN_CHECK(static_cast<int64_t>(g.genes.size()) == 2 + 2 * depth, "autoformer genome ", nas::genes_string(g),
              ": depth ", depth, " needs ", 2 + 2 * depth, " genes");
  auto at = [&](const auto& v, int i, const char* what) {
    NEURN_CHECK(i >= 0 && i < static_cast<int>(v.size()), "autoformer genome ", nas::genes_string(g), ": ", what,
                " index ", i, " out of range");
    return v[i];
  };
  SubnetConfig c;
  c.embed_dim = at(s.embed_dims, g.genes[0], "embed");
  for (int64_t i = 0; i < depth; ++i) c.heads.push_back(at(s.heads, g.genes[2 + i], "heads"));
  for (int64_t i = 0; i < depth; ++i) c.mlp_ratios.push_back(at(s.mlp_ratios, g.genes[2 + depth + i], "MLP ratio"));
  return c;
}

nas::EvolutionProblem make_problem(const SearchSpace& s, const SubnetSearchOptions& opt,
                                   std::function<double(const SubnetConfig&)> fitness) {
  nas::EvolutionProblem p;
  const int ne = static_cast<int>(s.embed_dims.size()), nh = static_cast<int>(s.heads.size()),
            nm = static_cast<int>(s.mlp_ratios.size()), nd = static_cast<int>(s.max_depth - s.min_depth + 1);
  p.sample = [=](std::mt19937_64& rng) {
    int d = nas::random_below(rng, nd);
    int depth = static_cast<int>(s.min_depth) + d;
    nas::Genome g{{nas::random_below(rng, ne), d}};
    for (int i = 0; i < depth; ++i) g.genes.push_back(nas::random_below(rng, nh));
    for (int i = 0; i < depth; ++i) g.genes.push_back(nas::random_below(rng, nm));
    return g;
  };
  p.mutate = [=](const nas::Genome& g, std::mt19937_64& rng) {
    SubnetConfig c = from_genome(s, g);
    std::vector<int> heads(g.genes.begin() + 2, g.genes.begin() + 2 + c.depth());
    std::vector<int> ratios(g.genes.begin() + 2 + c.depth(), g.genes.end());
    int embed = g.genes[0], d = g.genes[1];
    if (nas::random_unit(rng) < opt.depth_mutation_prob) {
      d = nas::random_below(rng, nd);
      size_t depth = static_cast<size_t>(s.min_depth + d);
      while (heads.size() < depth) heads.push_back(nas::random_below(rng, nh));
      while (ratios.size() < depth) ratios.push_back(nas::random_below(rng, nm));
      heads.resize(depth), ratios.resize(depth);
    }
    for (auto& r : ratios)
      if (nas::random_unit(rng) < opt.layer_mutation_prob) r = nas::random_below(rng, nm);
    for (auto& h : heads)
      if (nas::random_unit(rng) < opt.layer_mutation_prob) h = nas::random_below(rng, nh);
    if (nas::random_unit(rng) < opt.embed_mutation_prob) embed = nas::random_below(rng, ne);
    nas::Genome out{{embed, d}};
    out.genes.insert(out.genes.end(), heads.begin(), heads.end());
    out.genes.insert(out.genes.end(), ratios.begin(), ratios.end());
    return out;
  };
  p.crossover = [](const nas::Genome& a, const nas::Genome& b, std::mt19937_64& rng) -> std::optional<nas::Genome> {
    if (a.genes[1] != b.genes[1]) return std::nullopt;  // different depths
    return nas::crossover_uniform(a, b, rng);
  };
  p.feasible = [=](const nas::Genome& g) {
    int64_t n = subnet_params_meta(s, from_genome(s, g));
    return (opt.max_params <= 0 || n <= opt.max_params) && n >= opt.min_params;
  };
  p.fitness = [=](const nas::Genome& g) { return fitness(from_genome(s, g)); };
  p.describe = [=](const nas::Genome& g) { return encode_subnet(from_genome(s, g)); };
  return p;
}

SubnetSearchResult search_subnet(const SearchSpace& s, const SubnetSearchOptions& opt,
                                 std::function<double(const SubnetConfig&)> fitness) {
  SubnetSearchResult r;
  r.evolution = nas::evolve(make_problem(s, opt, std::move(fitness)), opt.evolution);
  r.best = from_genome(s, r.evolution.best.genome);
  r.fitness = r.evolution.best.fitness;
  r.params = subnet_params_meta(s, r.best);
  return r;
}

double subnet_accuracy(Supernet& net, const SubnetConfig& c, const std::vector<std::pair<Tensor, Tensor>>& batches) {
  NoGradGuard ng;
  bool was = net.is_training();
  net.eval();
  net.set_subnet(c);
  int64_t right = 0, total = 0;
  for (const auto& [x, y] : batches) {
    Tensor pred = argmax(net(x), 1).cpu();
    auto p = pred.to_vector<int64_t>();
    auto t = y.cpu().to_vector<int64_t>();
    for (size_t i = 0; i < p.size(); ++i) right += p[i] == t[i];
    total += static_cast<int64_t>(p.size());
  }
  net.train(was);
  return total ? static_cast<double>(right) / static_cast<double>(total) : 0.0;
}

}  // namespace neurn::autoformer
