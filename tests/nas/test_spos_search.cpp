// SPOS training and search drivers (nas/spos/train_search.h) on tiny
// synthetic data: the loss falls, the FLOPs range and limits hold, the
// search finds a synthetic optimum, path_accuracy after recalibration.
#include <doctest/doctest.h>

#include "gradcheck.h"
#include "nas/spos/train_search.h"

using namespace neurn;
using namespace neurn::spos;

namespace {
SposSpace tiny_space() {
  SposSpace s;
  s.stage_repeats = {1, 1, 1, 1};
  s.stage_channels = {16, 24, 32, 48};
  s.stage_strides = {1, 2, 2, 2};
  s.stem_channels = 8;
  s.last_channels = 32;
  s.search_channels = true;
  s.channel_scales = {0.4, 0.8, 1.2};
  s.dropout = 0.0;
  return s;
}
}  // namespace

TEST_CASE("spos: supernet training lowers the loss on a learnable problem, within a FLOPs range") {
  SposSpace s = tiny_space();
  // the operator search alone (the paper's main setting); with channel search
  // too the paths share less and 100 steps are not enough at this size
  s.search_channels = false;
  Generator gen(1);
  ParamScope scope({}, &gen);
  Supernet net(s, 2, 1);
  // class 1 = bright images, class 0 = dark ones
  Tensor x = rand({16, 1, 8, 8}, {}, &gen);
  std::vector<int64_t> labels;
  auto xv = x.to_vector<float>();
  std::vector<float> shifted(xv.size());
  for (int64_t i = 0; i < 16; ++i) {
    labels.push_back(i % 2);
    for (int64_t p = 0; p < 64; ++p) shifted[i * 64 + p] = xv[i * 64 + p] + (i % 2 ? 1.0f : -1.0f);
  }
  Tensor images = from_vector<float>(shifted, {16, 1, 8, 8});
  Tensor y = from_vector<int64_t>(labels, {16});
  SposArch all_min = from_genome(s, nas::Genome{std::vector<int>(16, 0)});
  SposArch all_max = all_min;
  for (auto& l : all_max.layers) l.op = 3;
  int64_t lo = arch_cost(all_min, 2, 1, 8).flops, hi = arch_cost(all_max, 2, 1, 8).flops;
  SupernetTrainOptions o;
  o.steps = 100;
  o.lr = 0.1;
  o.input_size = 8, o.num_classes = 2, o.in_channels = 1;
  o.max_flops = (lo + hi) / 2;
  std::vector<double> losses;
  train_supernet(net, o, [&](int64_t) { return std::make_pair(images, y); }, [&](const TrainProgress& p) {
    losses.push_back(p.loss);
    CHECK(arch_cost(*p.path, 2, 1, 8).flops <= o.max_flops);
    CHECK(p.lr <= o.lr);
  });
  REQUIRE(losses.size() == 100);
  double first = 0, last = 0;
  for (int i = 0; i < 10; ++i) first += losses[i] / 10, last += losses[90 + i] / 10;
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.8 * first);
  // Paths inside the FLOPs range score well on the training data after
  // recalibration: the cheapest one, and on average eight drawn at random.
  // (all_max lies outside the range and is never trained as a whole: what
  // its composition of shared blocks scores is left to chance, so it is not
  // checked; it swung between 0.06 and 1.0 with last-bit changes of exp.)
  const double acc_min = path_accuracy(net, all_min, {images}, {{images, y}});
  MESSAGE("trained supernet, path " << describe(all_min) << ": accuracy " << acc_min);
  CHECK(acc_min >= 0.9);
  Generator pick(7);
  const std::vector<int> choices = gene_choices(s);
  double acc_sum = 0;
  int drawn = 0;
  while (drawn < 8) {
    nas::Genome g;
    for (int c : choices) g.genes.push_back(static_cast<int>(pick.below(static_cast<uint64_t>(c))));
    SposArch a = from_genome(s, g);
    if (arch_cost(a, 2, 1, 8).flops > o.max_flops) continue;
    const double acc = path_accuracy(net, a, {images}, {{images, y}});
    MESSAGE("trained supernet, path " << describe(a) << ": accuracy " << acc);
    acc_sum += acc;
    ++drawn;
  }
  CHECK(acc_sum / drawn >= 0.85);
  o.min_flops = int64_t{1} << 50;
  o.max_flops = 0;
  CHECK_THROWS_CONTAINING(train_supernet(net, o, [&](int64_t) { return std::make_pair(images, y); }), "no path with FLOPs");
}

TEST_CASE("spos: the search respects its FLOPs and parameter limits and finds a synthetic optimum") {
  SposSpace s = tiny_space();
  SposSearchOptions o;
  o.evolution.population = 20, o.evolution.parents = 5, o.evolution.mutations = 8, o.evolution.crossovers = 8;
  o.evolution.generations = 8;
  o.evolution.seed = 3;
  SposArch big = from_genome(s, nas::Genome{std::vector<int>(16, 0)});
  for (auto& l : big.layers) l.op = 3, l.scale = 2;
  ArchCost bc = arch_cost(big, 10, 3, 32);
  o.max_flops = bc.flops * 3 / 4;
  o.max_params = bc.params * 3 / 4;
  // fitness: the number of Xception layers plus width: the best unconstrained
  // path (all xception, widest) is over the limits.
  int calls = 0;
  SposSearchResult r = search_spos(s, o, [&](const SposArch& a) {
    ++calls;
    double f = 0;
    for (auto& l : a.layers) f += (l.op == 3) + 0.1 * l.scale;
    return f;
  });
  CHECK(calls == r.evolution.evaluations);
  CHECK(r.cost.flops <= o.max_flops);
  CHECK(r.cost.params <= o.max_params);
  for (auto& g : r.evolution.history)
    for (auto& c : g.population) {
      ArchCost ac = arch_cost(from_genome(s, c.genome), 10, 3, 32);
      CHECK(ac.flops <= o.max_flops);
      CHECK(ac.params <= o.max_params);
    }
  CHECK(r.fitness > r.evolution.history.front().best);
  CHECK(r.fitness < 4.8);  // the unconstrained optimum (4 + 4 x 0.2) is infeasible
  CHECK(r.fitness >= 3.0);
}
