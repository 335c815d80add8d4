// The shared evolutionary search (nas/evolution.h) on synthetic problems:
// limits respected, fitness improves, memo, resume == uninterrupted.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "framework/error.h"
#include "gradcheck.h"
#include "nas/evolution.h"

namespace fs = std::filesystem;
using namespace neurn;
using namespace neurn::nas;

namespace {

fs::path scratch(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("neurn_test_evo_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// 20 genes of 4 choices; fitness = matches with a hidden target (max 20).
struct Synthetic {
  std::vector<int> choices = std::vector<int>(20, 4);
  std::vector<int> target;
  int calls = 0;
  Synthetic() {
    std::mt19937_64 r(99);
    for (int c : choices) target.push_back(random_below(r, c));
  }
  EvolutionProblem problem() {
    EvolutionProblem p;
    p.sample = [this](std::mt19937_64& r) { return sample_uniform(choices, r); };
    p.mutate = [this](const Genome& g, std::mt19937_64& r) { return mutate_uniform(g, choices, 0.1, r); };
    p.crossover = [](const Genome& a, const Genome& b, std::mt19937_64& r) { return crossover_uniform(a, b, r); };
    p.fitness = [this](const Genome& g) {
      ++calls;
      int m = 0;
      for (size_t i = 0; i < g.genes.size(); ++i) m += g.genes[i] == target[i];
      return static_cast<double>(m);
    };
    return p;
  }
};

void check_same(const EvolutionResult& a, const EvolutionResult& b) {
  REQUIRE(a.history.size() == b.history.size());
  for (size_t g = 0; g < a.history.size(); ++g) {
    REQUIRE(a.history[g].population.size() == b.history[g].population.size());
    for (size_t i = 0; i < a.history[g].population.size(); ++i) {
      CHECK(a.history[g].population[i].genome == b.history[g].population[i].genome);
      CHECK(a.history[g].population[i].fitness == b.history[g].population[i].fitness);
    }
  }
  CHECK(a.best.genome == b.best.genome);
  CHECK(a.best.fitness == b.best.fitness);
  CHECK(a.evaluations == b.evaluations);
  REQUIRE(a.top.size() == b.top.size());
  for (size_t i = 0; i < a.top.size(); ++i) CHECK(a.top[i].genome == b.top[i].genome);
}

}  // namespace

TEST_CASE("evolution: the search improves a synthetic fitness and scores each genome once") {
  Synthetic s;
  EvolutionOptions o;
  o.seed = 7;
  std::vector<GenerationStats> lines;
  o.on_generation = [&](const GenerationStats& st) { lines.push_back(st); };
  EvolutionResult r = evolve(s.problem(), o);
  REQUIRE(r.history.size() == 20);
  CHECK(lines.size() == 20);
  // Random candidates match 1/4 of the genes on average; the search must do
  // much better than the best of the random first population.
  double first_best = r.history.front().best;
  INFO("first generation best " << first_best << ", final best " << r.best.fitness);
  CHECK(r.best.fitness > first_best + 3);
  CHECK(r.history.back().mean > r.history.front().mean + 3);
  for (size_t g = 1; g < r.history.size(); ++g) CHECK(r.history[g].best >= r.history[g - 1].best);
  // Memo: one fitness call per distinct genome, and no genome is drawn twice.
  CHECK(s.calls == r.evaluations);
  std::set<Genome> seen;
  size_t scored = 0;
  for (auto& gen : r.history)
    for (auto& c : gen.population) {
      seen.insert(c.genome);
      ++scored;
    }
  CHECK(seen.size() == scored);
  CHECK(r.top.size() == 10);
  for (size_t i = 1; i < r.top.size(); ++i) CHECK(r.top[i - 1].fitness >= r.top[i].fitness);
  CHECK(format_progress(lines.back()).find("gen 20/20: best") == 0);
}

TEST_CASE("evolution: only feasible candidates are scored") {
  Synthetic s;
  EvolutionProblem p = s.problem();
  // A "FLOPs limit": the sum of genes (0..3 each, 30 on average) at most
  // `limit`, below the target's sum, so the unconstrained optimum is infeasible.
  auto cost = [](const Genome& g) {
    int c = 0;
    for (int v : g.genes) c += v;
    return c;
  };
  const int limit = 26;
  REQUIRE(cost(Genome{s.target}) > limit);
  int checks = 0;
  p.feasible = [&](const Genome& g) {
    ++checks;
    return cost(g) <= limit;
  };
  EvolutionOptions o;
  o.seed = 3;
  o.generations = 8;
  EvolutionResult r = evolve(p, o);
  CHECK(checks > 0);
  for (auto& gen : r.history)
    for (auto& c : gen.population) CHECK(cost(c.genome) <= limit);
  CHECK(cost(r.best.genome) <= limit);
  CHECK(r.best.fitness > r.history.front().best);
  CHECK(r.best.fitness < 20);

  SUBCASE("no feasible candidate at all is an error") {
    p.feasible = [](const Genome&) { return false; };
    CHECK_THROWS_CONTAINING(evolve(p, o), "no feasible candidate");
  }
}

TEST_CASE("evolution: incompatible parents (crossover nullopt) and a tiny space end cleanly") {
  // 3 genes of 2 choices: 8 genomes in all, fewer than one population.
  std::vector<int> choices(3, 2);
  EvolutionProblem p;
  p.sample = [&](std::mt19937_64& r) { return sample_uniform(choices, r); };
  p.mutate = [&](const Genome& g, std::mt19937_64& r) { return mutate_uniform(g, choices, 0.5, r); };
  p.crossover = [](const Genome&, const Genome&, std::mt19937_64&) { return std::optional<Genome>(); };
  p.fitness = [](const Genome& g) { return static_cast<double>(g.genes[0] + g.genes[1] + g.genes[2]); };
  EvolutionOptions o;
  o.generations = 5;
  o.max_tries = 500;
  EvolutionResult r = evolve(p, o);
  CHECK(r.evaluations == 8);  // every genome, each once
  CHECK(r.best.fitness == 3);
  CHECK(r.history.size() < 5);  // stops when nothing new can be drawn
}

TEST_CASE("evolution: an interrupted search resumes to the same result as an uninterrupted one") {
  fs::path dir = scratch("resume");
  Synthetic s;
  EvolutionOptions o;
  o.seed = 11;
  o.generations = 10;
  o.history_path = (dir / "whole.json").string();
  EvolutionResult whole = evolve(s.problem(), o);
  CHECK(whole.resumed_from == -1);

  // Interrupt inside generation 5 (a fitness that dies after 230 calls).
  Synthetic s2;
  EvolutionProblem dying = s2.problem();
  auto base = dying.fitness;
  int calls = 0;
  dying.fitness = [&](const Genome& g) {
    if (++calls > 230) throw std::runtime_error("killed");
    return base(g);
  };
  o.history_path = (dir / "cut.json").string();
  CHECK_THROWS_AS(evolve(dying, o), std::runtime_error);
  REQUIRE(fs::exists(o.history_path));
  EvolutionResult partial = load_evolution_history(o.history_path);
  CHECK(partial.history.size() >= 2);
  CHECK(partial.history.size() < 10);

  Synthetic s3;
  EvolutionResult resumed = evolve(s3.problem(), o);
  CHECK(resumed.resumed_from == static_cast<int>(partial.history.size()));
  check_same(whole, resumed);
  // The memo came back from the file: the resumed run scored only new genomes.
  CHECK(s3.calls == whole.evaluations - partial.evaluations);

  SUBCASE("a finished search read back is the same search") { check_same(whole, load_evolution_history((dir / "whole.json").string())); }

  SUBCASE("a shorter search continued to more generations == the longer one") {
    Synthetic s4, s5;
    EvolutionOptions shorter = o;
    shorter.history_path = (dir / "short.json").string();
    shorter.generations = 4;
    evolve(s4.problem(), shorter);
    shorter.generations = 10;
    check_same(whole, evolve(s5.problem(), shorter));
  }

  SUBCASE("a history of other options is refused") {
    EvolutionOptions other = o;
    other.seed = 12;
    CHECK_THROWS_CONTAINING(evolve(s3.problem(), other), "was written with options");
  }
  SUBCASE("a corrupt history names the file") {
    fs::path bad = dir / "bad.json";
    { std::ofstream(bad) << "{ not json"; }
    EvolutionOptions other = o;
    other.history_path = bad.string();
    CHECK_THROWS_CONTAINING(evolve(s3.problem(), other), "bad.json");
  }
  fs::remove_all(dir);
}

TEST_CASE("evolution: bad options and missing callbacks are refused") {
  Synthetic s;
  EvolutionOptions o;
  o.mutations = 40;
  CHECK_THROWS_CONTAINING(evolve(s.problem(), o), "exceed the population");
  EvolutionProblem p = s.problem();
  p.mutate = nullptr;
  CHECK_THROWS_CONTAINING(evolve(p, EvolutionOptions{}), "callbacks");
  std::mt19937_64 r(1);
  CHECK_THROWS_CONTAINING(random_below(r, 0), "random_below");
  CHECK_THROWS_CONTAINING(mutate_uniform(Genome{{1, 2}}, {3}, 0.1, r), "2 genes");
}
