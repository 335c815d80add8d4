// AutoFormer training and search: resumable supernet training (an
// interrupted run ends where an uninterrupted one does), genomes, the
// reference's mutation and equal-depth crossover, the evolution under a
// parameter limit, and a resumed search.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "gradcheck.h"
#include "layers/layers.h"
#include "nas/autoformer/search.h"
#include "nas/autoformer/subnet_model.h"

namespace fs = std::filesystem;
using namespace neurn;
using namespace neurn::autoformer;

namespace {

fs::path scratch(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("neurn_test_af_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::shared_ptr<Supernet> micro_net(DType dt, uint64_t seed) {
  Generator gen(seed);
  ParamScope scope({dt}, &gen);
  return std::make_shared<Supernet>(search_space("micro"));
}

// A learnable toy: the class is which quadrant is bright.
BatchFn quadrant_batches(DType dt) {
  return [dt](int64_t step) {
    Generator gen(1000 + static_cast<uint64_t>(step));
    Tensor x = mul(randn({8, 3, 16, 16}, {dt}, &gen), 0.1);
    std::vector<int64_t> labels;
    auto px = x.data<double>();
    for (int64_t n = 0; n < 8; ++n) {
      int64_t q = static_cast<int64_t>(gen.below(4));
      labels.push_back(q);
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t i = 0; i < 8; ++i)
          for (int64_t j = 0; j < 8; ++j) px[((n * 3 + c) * 16 + (q / 2) * 8 + i) * 16 + (q % 2) * 8 + j] += 1.0;
    }
    return std::make_pair(x, from_vector<int64_t>(labels, {8}));
  };
}

}  // namespace

TEST_CASE("autoformer: supernet training resumes where it stopped (float64, identical weights)") {
  fs::path dir = scratch("resume");
  SupernetTrainOptions o;
  o.steps = 6, o.lr = 0.01, o.warmup_steps = 2, o.label_smoothing = 0.1, o.seed = 3;
  auto straight = micro_net(DType::Float64, 1);
  auto r1 = train_supernet(*straight, o, quadrant_batches(DType::Float64));
  CHECK(r1.steps_done == 6);
  CHECK(r1.resumed_from == 0);

  auto interrupted = micro_net(DType::Float64, 1);
  SupernetTrainOptions first = o;
  first.checkpoint_path = (dir / "ckpt.safetensors").string();
  first.checkpoint_every = 1;
  first.steps = 4;  // "interrupted" after step 4 (the checkpoint of step 4 is on disk)
  train_supernet(*interrupted, first, quadrant_batches(DType::Float64));
  auto resumed = micro_net(DType::Float64, 99);  // a fresh process: other initial weights
  SupernetTrainOptions second = first;
  second.steps = 6;
  std::vector<int64_t> steps_seen;
  auto r2 = train_supernet(*resumed, second, quadrant_batches(DType::Float64),
                           [&](const TrainProgress& p) { steps_seen.push_back(p.step); });
  CHECK(r2.resumed_from == 4);
  CHECK(r2.steps_done == 2);
  CHECK(steps_seen == std::vector<int64_t>{5, 6});
  auto a = straight->named_parameters(), b = resumed->named_parameters();
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    INFO(a[k].first);
    CHECK(max(abs(sub(a[k].second, b[k].second))).item() == 0.0);
  }
  fs::remove_all(dir);
}

TEST_CASE("autoformer: the supernet learns a toy task and the subnets share what it learned") {
  SupernetTrainOptions o;
  o.steps = 150, o.lr = 0.003, o.seed = 1;
  auto net = micro_net(DType::Float64, 2);
  std::vector<double> losses;
  train_supernet(*net, o, quadrant_batches(DType::Float64), [&](const TrainProgress& p) { losses.push_back(p.loss); });
  double first = 0, last = 0;
  for (int i = 0; i < 20; ++i) first += losses[i], last += losses[losses.size() - 1 - i];
  CHECK(last < 0.5 * first);
  std::vector<std::pair<Tensor, Tensor>> val;
  for (int i = 0; i < 8; ++i) val.push_back(quadrant_batches(DType::Float64)(100000 + i));
  SearchSpace s = search_space("micro");
  CHECK(subnet_accuracy(*net, largest_subnet(s), val) >= 0.8);
  CHECK(subnet_accuracy(*net, smallest_subnet(s), val) >= 0.5);  // chance is 0.25
}

TEST_CASE("autoformer: genomes, the reference's mutation and equal-depth crossover") {
  SearchSpace s = search_space("tiny");
  SubnetSearchOptions opt;
  auto p = make_problem(s, opt, [](const SubnetConfig&) { return 0.0; });
  std::mt19937_64 rng(5);
  std::set<int64_t> depths;
  int crossed = 0, refused = 0;
  for (int i = 0; i < 200; ++i) {
    nas::Genome g = p.sample(rng);
    SubnetConfig c = from_genome(s, g);
    check_subnet(s, c);
    CHECK(to_genome(s, c) == g);
    nas::Genome m = p.mutate(g, rng);
    SubnetConfig mc = from_genome(s, m);  // throws on a malformed genome
    check_subnet(s, mc);
    depths.insert(mc.depth());
    nas::Genome h = p.sample(rng);
    auto x = p.crossover(g, h, rng);
    if (g.genes[1] != h.genes[1]) {
      CHECK(!x.has_value());
      ++refused;
    } else {
      REQUIRE(x.has_value());
      CHECK(from_genome(s, *x).depth() == c.depth());
      ++crossed;
    }
  }
  CHECK(depths == std::set<int64_t>{12, 13, 14});
  CHECK(crossed > 0);
  CHECK(refused > 0);
  // no mutation at all with zero probabilities
  SubnetSearchOptions none;
  none.layer_mutation_prob = none.depth_mutation_prob = none.embed_mutation_prob = 0;
  auto q = make_problem(s, none, [](const SubnetConfig&) { return 0.0; });
  nas::Genome g = q.sample(rng);
  CHECK(q.mutate(g, rng) == g);
}

TEST_CASE("autoformer: evolution respects the parameter limit and resumes after an interruption") {
  SearchSpace s = search_space("tiny");
  SubnetSearchOptions opt;
  opt.evolution.population = 12, opt.evolution.parents = 4, opt.evolution.mutations = 4;
  opt.evolution.crossovers = 4, opt.evolution.generations = 4, opt.evolution.seed = 8;
  // between the smallest and the largest subnet, so the limit bites
  int64_t lo = subnet_param_count(s, smallest_subnet(s)), hi = subnet_param_count(s, largest_subnet(s));
  opt.max_params = lo + (hi - lo) / 2;
  // fitness: prefers big subnets, so the best sits at the limit
  auto fitness = [&](const SubnetConfig& c) { return static_cast<double>(subnet_param_count(s, c)) / hi; };
  SubnetSearchResult full = search_subnet(s, opt, fitness);
  CHECK(full.params <= opt.max_params);
  CHECK(full.params == subnet_param_count(s, full.best));
  for (const auto& gen : full.evolution.history)
    for (const auto& sg : gen.population) CHECK(subnet_param_count(s, from_genome(s, sg.genome)) <= opt.max_params);
  CHECK(full.fitness > static_cast<double>(lo) / hi);

  fs::path dir = scratch("search");
  SubnetSearchOptions interrupted = opt;
  interrupted.evolution.history_path = (dir / "history.json").string();
  int calls = 0;
  auto failing = [&](const SubnetConfig& c) {
    if (++calls > 20) throw std::runtime_error("interrupted");
    return fitness(c);
  };
  CHECK_THROWS(search_subnet(s, interrupted, failing));
  REQUIRE(fs::exists(interrupted.evolution.history_path));
  SubnetSearchResult resumed = search_subnet(s, interrupted, fitness);
  CHECK(resumed.evolution.resumed_from >= 1);
  CHECK(resumed.best == full.best);
  CHECK(resumed.fitness == full.fitness);
  fs::remove_all(dir);
}
