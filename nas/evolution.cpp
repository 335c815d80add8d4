#include "nas/evolution.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "framework/error.h"
#include "framework/io/atomic_file.h"

namespace neurn::nas {

using nlohmann::json;
namespace fs = std::filesystem;

int random_below(std::mt19937_64& rng, int n) {
  NEURN_CHECK(n > 0, "random_below: n must be positive, got ", n);
  // Rejection sampling: no modulo bias, and the same draws on every library.
  const uint64_t un = static_cast<uint64_t>(n);
  const uint64_t limit = UINT64_MAX - UINT64_MAX % un;
  uint64_t x;
  do x = rng(); while (x >= limit);
  return static_cast<int>(x % un);
}

double random_unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); }

Genome sample_uniform(const std::vector<int>& choices, std::mt19937_64& rng) {
  Genome g;
  g.genes.reserve(choices.size());
  for (int c : choices) g.genes.push_back(random_below(rng, c));
  return g;
}

Genome mutate_uniform(const Genome& g, const std::vector<int>& choices, double prob, std::mt19937_64& rng) {
  NEURN_CHECK(g.genes.size() == choices.size(), "mutate_uniform: genome has ", g.genes.size(),
              " genes, the search space ", choices.size());
  Genome out = g;
  for (size_t i = 0; i < choices.size(); ++i)
    if (random_unit(rng) < prob) out.genes[i] = random_below(rng, choices[i]);
  return out;
}

std::optional<Genome> crossover_uniform(const Genome& a, const Genome& b, std::mt19937_64& rng) {
  if (a.genes.size() != b.genes.size()) return std::nullopt;
  Genome out = a;
  for (size_t i = 0; i < a.genes.size(); ++i)
    if (random_unit(rng) < 0.5) out.genes[i] = b.genes[i];
  return out;
}

std::string genes_string(const Genome& g) {
  std::string s;
  for (size_t i = 0; i < g.genes.size(); ++i) {
    if (i) s += '-';
    s += std::to_string(g.genes[i]);
  }
  return s;
}

std::string format_progress(const GenerationStats& s) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(4);
  os << "gen " << s.generation + 1 << "/" << s.generations << ": best " << s.best << " (mean " << s.mean
     << ", gen best " << s.generation_best << "), " << s.population << " scored (" << s.evaluated << " new";
  os.precision(2);
  if (s.seconds > 0) os << ", " << s.evaluated / s.seconds << "/s";
  os.precision(1);
  os << "), " << s.seconds << " s, ETA ";
  if (s.eta_seconds >= 120)
    os << s.eta_seconds / 60 << " min";
  else
    os << s.eta_seconds << " s";
  if (!s.best_description.empty()) os << ", best " << s.best_description;
  return os.str();
}

namespace {

json options_json(const EvolutionOptions& o) {
  return {{"population", o.population}, {"parents", o.parents},     {"mutations", o.mutations},
          {"crossovers", o.crossovers}, {"generations", o.generations}, {"max_tries", o.max_tries},
          {"seed", o.seed}};
}

json scored_json(const ScoredGenome& s, const EvolutionProblem* p) {
  json j = {{"genes", s.genome.genes}, {"fitness", s.fitness}};
  if (p && p->describe) j["arch"] = p->describe(s.genome);
  return j;
}

ScoredGenome scored_from(const json& j) {
  ScoredGenome s;
  s.genome.genes = j.at("genes").get<std::vector<int>>();
  s.fitness = j.at("fitness").get<double>();
  return s;
}

// The search's whole state between two generations.
struct State {
  std::map<Genome, double> memo;
  std::vector<GenerationRecord> history;
  std::vector<Genome> next;  // the population to score next
  std::string rng;           // std::mt19937_64's text form
  json options;
};

State parse_state(const std::string& path) {
  std::ifstream in(path);
  NEURN_CHECK(in, "evolution history: cannot read ", path);
  State st;
  try {
    json j = json::parse(in);
    NEURN_CHECK(j.value("format", "") == "neurn-evolution-1", "evolution history ", path,
                ": not a neurn evolution history (format ", j.value("format", "missing"), ")");
    st.options = j.at("options");
    for (auto& m : j.at("memo")) st.memo[Genome{m.at(0).get<std::vector<int>>()}] = m.at(1).get<double>();
    for (auto& h : j.at("history")) {
      GenerationRecord r;
      r.generation = h.at("generation").get<int>();
      r.best = h.at("best").get<double>();
      r.mean = h.at("mean").get<double>();
      r.seconds = h.at("seconds").get<double>();
      for (auto& c : h.at("population")) r.population.push_back(scored_from(c));
      st.history.push_back(std::move(r));
    }
    for (auto& g : j.at("next_population")) st.next.push_back(Genome{g.get<std::vector<int>>()});
    st.rng = j.at("rng").get<std::string>();
  } catch (const json::exception& e) {
    NEURN_FAIL("evolution history ", path, " is corrupt: ", e.what());
  }
  return st;
}

void save_state(const std::string& path, const State& st, const EvolutionProblem& problem) {
  json j;
  j["format"] = "neurn-evolution-1";
  j["options"] = st.options;
  j["completed"] = st.history.size();
  json hist = json::array();
  for (auto& r : st.history) {
    json pop = json::array();
    for (auto& c : r.population) pop.push_back(scored_json(c, &problem));
    hist.push_back({{"generation", r.generation}, {"best", r.best}, {"mean", r.mean}, {"seconds", r.seconds},
                    {"population", pop}});
  }
  j["history"] = hist;
  json memo = json::array();
  for (auto& [g, f] : st.memo) memo.push_back(json::array({g.genes, f}));
  j["memo"] = memo;
  json next = json::array();
  for (auto& g : st.next) next.push_back(g.genes);
  j["next_population"] = next;
  j["rng"] = st.rng;
  io::write_file_atomic(path, j.dump(1));
}

// Best first; ties broken by the genome so the order is the same everywhere.
std::vector<ScoredGenome> ranked(const std::map<Genome, double>& memo, size_t k) {
  std::vector<ScoredGenome> all;
  all.reserve(memo.size());
  for (auto& [g, f] : memo) all.push_back({g, f});
  std::sort(all.begin(), all.end(), [](const ScoredGenome& a, const ScoredGenome& b) {
    return a.fitness != b.fitness ? a.fitness > b.fitness : a.genome < b.genome;
  });
  if (all.size() > k) all.resize(k);
  return all;
}

}  // namespace

EvolutionResult evolve(const EvolutionProblem& problem, const EvolutionOptions& o) {
  NEURN_CHECK(problem.sample && problem.mutate && problem.crossover && problem.fitness,
              "evolve: the problem needs sample, mutate, crossover and fitness callbacks");
  NEURN_CHECK(o.population > 0 && o.parents > 0 && o.generations > 0 && o.mutations >= 0 && o.crossovers >= 0,
              "evolve: population (", o.population, "), parents (", o.parents, ") and generations (",
              o.generations, ") must be positive, mutations (", o.mutations, ") and crossovers (", o.crossovers,
              ") non-negative");
  NEURN_CHECK(o.mutations + o.crossovers <= o.population, "evolve: mutations + crossovers (",
              o.mutations + o.crossovers, ") exceed the population (", o.population, ")");
  NEURN_CHECK(o.max_tries >= 0, "evolve: max_tries must be >= 0, got ", o.max_tries);

  auto feasible = [&](const Genome& g) { return !problem.feasible || problem.feasible(g); };
  auto tries_for = [&](int want) { return o.max_tries > 0 ? o.max_tries : 10 * std::max(want, 1); };

  std::mt19937_64 rng(o.seed);
  State st;
  st.options = options_json(o);
  EvolutionResult result;

  bool resumed = false;
  if (!o.history_path.empty() && o.resume && fs::exists(o.history_path)) {
    st = parse_state(o.history_path);
    // A longer search may continue a shorter one; everything else must match
    // or the resumed search would not be the one that was started.
    json want = options_json(o), got = st.options;
    want.erase("generations");
    got.erase("generations");
    NEURN_CHECK(want == got, "evolution history ", o.history_path, " was written with options ", got.dump(),
                ", this search has ", want.dump(), ": delete the file or use the same options");
    std::istringstream is(st.rng);
    is >> rng;
    NEURN_CHECK(!is.fail(), "evolution history ", o.history_path, ": unreadable RNG state");
    st.options = options_json(o);
    result.resumed_from = static_cast<int>(st.history.size());
    resumed = true;
  }

  std::set<Genome> visited;
  for (auto& [g, f] : st.memo) visited.insert(g);
  for (auto& g : st.next) visited.insert(g);

  // Draws up to `want` new, feasible, unvisited candidates from `draw`.
  auto draw_into = [&](std::vector<Genome>& out, int want, const std::function<std::optional<Genome>()>& draw) {
    int added = 0;
    for (int t = 0, tries = tries_for(want); added < want && t < tries; ++t) {
      std::optional<Genome> g = draw();
      if (!g || visited.count(*g) || !feasible(*g)) continue;
      visited.insert(*g);
      out.push_back(std::move(*g));
      ++added;
    }
  };
  auto random_fill = [&](std::vector<Genome>& pop) {
    draw_into(pop, o.population - static_cast<int>(pop.size()),
              [&]() -> std::optional<Genome> { return problem.sample(rng); });
  };

  // The next population: mutants and children of the parents, then random
  // candidates up to the population size.
  auto breed = [&](const std::vector<ScoredGenome>& parents) {
    std::vector<Genome> next;
    const int np = static_cast<int>(parents.size());
    draw_into(next, o.mutations, [&]() -> std::optional<Genome> {
      return problem.mutate(parents[random_below(rng, np)].genome, rng);
    });
    draw_into(next, o.crossovers, [&]() -> std::optional<Genome> {
      const Genome& a = parents[random_below(rng, np)].genome;
      const Genome& b = parents[random_below(rng, np)].genome;
      return problem.crossover(a, b, rng);
    });
    random_fill(next);
    return next;
  };

  if (resumed && st.next.empty() && !st.history.empty() && static_cast<int>(st.history.size()) < o.generations) {
    // The file ended a shorter search (its last generation bred nothing): an
    // uninterrupted longer search would breed right here, from this RNG state.
    st.next = breed(ranked(st.memo, static_cast<size_t>(o.parents)));
  }
  if (!resumed) {
    random_fill(st.next);
    NEURN_CHECK(!st.next.empty(), "evolve: no feasible candidate in ", tries_for(o.population),
                " random draws: the limits (FLOPs / parameters) exclude the whole search space?");
  }

  double run_seconds = 0;
  int run_generations = 0;
  for (int gen = static_cast<int>(st.history.size()); gen < o.generations && !st.next.empty(); ++gen) {
    auto t0 = std::chrono::steady_clock::now();
    GenerationRecord rec;
    rec.generation = gen;
    int evaluated = 0;
    for (const Genome& g : st.next) {
      auto it = st.memo.find(g);
      if (it == st.memo.end()) {
        double f = problem.fitness(g);
        NEURN_CHECK(std::isfinite(f), "evolve: fitness of ", genes_string(g), " is not finite (", f, ")");
        it = st.memo.emplace(g, f).first;
        ++evaluated;
      }
      rec.population.push_back({g, it->second});
    }
    std::vector<ScoredGenome> parents = ranked(st.memo, static_cast<size_t>(o.parents));
    double sum = 0, gen_best = -INFINITY;
    for (auto& c : rec.population) {
      sum += c.fitness;
      gen_best = std::max(gen_best, c.fitness);
    }
    rec.mean = sum / static_cast<double>(rec.population.size());
    rec.best = parents.front().fitness;

    std::vector<Genome> next;
    if (gen + 1 < o.generations) next = breed(parents);
    rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st.next = std::move(next);
    st.history.push_back(rec);
    std::ostringstream rs;
    rs << rng;
    st.rng = rs.str();
    if (!o.history_path.empty()) save_state(o.history_path, st, problem);

    run_seconds += rec.seconds;
    ++run_generations;
    if (o.on_generation) {
      GenerationStats s;
      s.generation = gen;
      s.generations = o.generations;
      s.population = static_cast<int>(rec.population.size());
      s.evaluated = evaluated;
      s.best = rec.best;
      s.generation_best = gen_best;
      s.mean = rec.mean;
      s.seconds = rec.seconds;
      s.eta_seconds = run_seconds / run_generations * (o.generations - gen - 1);
      s.best_description = problem.describe ? problem.describe(parents.front().genome) : genes_string(parents.front().genome);
      o.on_generation(s);
    }
  }

  result.top = ranked(st.memo, static_cast<size_t>(o.parents));
  NEURN_CHECK(!result.top.empty(), "evolve: nothing was scored");
  result.best = result.top.front();
  result.history = std::move(st.history);
  result.evaluations = static_cast<int64_t>(st.memo.size());
  return result;
}

EvolutionResult load_evolution_history(const std::string& path) {
  State st = parse_state(path);
  EvolutionResult r;
  int parents = st.options.value("parents", 10);
  r.top = ranked(st.memo, static_cast<size_t>(std::max(parents, 1)));
  if (!r.top.empty()) r.best = r.top.front();
  r.history = std::move(st.history);
  r.evaluations = static_cast<int64_t>(st.memo.size());
  r.resumed_from = static_cast<int>(r.history.size());
  return r;
}

}  // namespace neurn::nas
