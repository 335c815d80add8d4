#pragma once
// The evolutionary search both NAS methods share (SPOS, AutoFormer).
//
// A candidate is a vector of integer genes; what a gene means, how it mutates,
// which parents can cross and which candidates are allowed (FLOPs, parameter
// limits) is the problem's business, supplied as callbacks. The loop is the
// one of Guo et al. 2019 (megvii-model/SinglePathOneShot, search.py):
//   population 0 = random feasible candidates;
//   each generation: score every candidate (memoised per genome), the parents
//   are the best `parents` candidates seen so far (over all generations), the
//   next population is `mutations` mutants and `crossovers` children of
//   random parents plus random candidates up to `population`. A genome that
//   was already visited or is infeasible is rejected and drawn again.
// Nothing here knows datasets or models: the caller's fitness does.
//
// History and resume: after each generation the whole state (every
// generation's population with scores, the fitness memo, the RNG state and
// the next population) is written atomically as JSON to history_path, so an
// interrupted search resumes where it stopped and ends with the same result
// as an uninterrupted one (fitness values come back from the memo, so even a
// fitness with noise replays identically).
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace neurn::nas {

struct Genome {
  std::vector<int> genes;
  auto operator<=>(const Genome&) const = default;
};

struct EvolutionProblem {
  std::function<Genome(std::mt19937_64&)> sample;                 // a random candidate
  std::function<Genome(const Genome&, std::mt19937_64&)> mutate;  // the method's per-gene probabilities
  // nullopt: the parents cannot be crossed (AutoFormer: different depths).
  std::function<std::optional<Genome>(const Genome&, const Genome&, std::mt19937_64&)> crossover;
  std::function<bool(const Genome&)> feasible;   // FLOPs / parameter limits; empty: everything is
  std::function<double(const Genome&)> fitness;  // higher is better (validation accuracy)
  // For progress lines and the history file; empty: the genes joined by '-'.
  std::function<std::string(const Genome&)> describe;
};

struct GenerationStats {
  int generation = 0;   // 0-based
  int generations = 0;  // total
  int population = 0;   // candidates scored this generation
  int evaluated = 0;    // new fitness evaluations this generation (the rest came from the memo)
  double best = 0;      // best fitness seen so far (all generations)
  double generation_best = 0;
  double mean = 0;      // mean fitness of this generation's population
  double seconds = 0;   // wall time of this generation
  double eta_seconds = 0;  // remaining generations x mean time per generation so far
  std::string best_description;
};

// "gen 3/20: best 0.9712 (mean 0.8810, gen best 0.9650), 50 scored (31 new, 2.4/s), 13.0 s, ETA 3.7 min"
std::string format_progress(const GenerationStats& s);

struct EvolutionOptions {
  int population = 50;
  int parents = 10;  // top-k kept as parents
  int mutations = 25;
  int crossovers = 25;
  int generations = 20;
  // Attempts per phase (random fill, mutations, crossovers) before it gives up
  // with fewer children (a small or tightly constrained space); 0: 10x the
  // number the phase wants (the reference's max_iters).
  int max_tries = 0;
  uint64_t seed = 0;
  // JSON history, rewritten after every generation; empty: none (no resume).
  std::string history_path;
  bool resume = true;  // continue from history_path when it exists
  std::function<void(const GenerationStats&)> on_generation;  // progress (after each generation)
};

struct ScoredGenome {
  Genome genome;
  double fitness = 0;
};

struct GenerationRecord {
  int generation = 0;
  std::vector<ScoredGenome> population;  // in the order it was drawn
  double best = 0;                       // best so far
  double mean = 0;                       // of this population
  double seconds = 0;
};

struct EvolutionResult {
  ScoredGenome best;
  std::vector<ScoredGenome> top;  // the final parents, best first
  std::vector<GenerationRecord> history;
  int64_t evaluations = 0;  // distinct genomes scored (memo size)
  int resumed_from = -1;    // generations read back from the history file; -1: a fresh search
};

// Runs the search (or resumes it). Throws if the problem lacks sample, mutate,
// crossover or fitness, if the options are inconsistent, if no feasible
// candidate can be drawn, or if history_path belongs to a search with other
// options.
EvolutionResult evolve(const EvolutionProblem& problem, const EvolutionOptions& options);

// Reads a history file written by evolve (for reports and plots).
EvolutionResult load_evolution_history(const std::string& path);

// Portable draws (std::uniform_int_distribution differs between standard
// libraries; these give the same numbers everywhere).
int random_below(std::mt19937_64& rng, int n);  // uniform in [0, n)
double random_unit(std::mt19937_64& rng);       // uniform in [0, 1)

// Helpers for gene vectors where gene i takes values 0 .. choices[i]-1.
Genome sample_uniform(const std::vector<int>& choices, std::mt19937_64& rng);
// Each gene is redrawn uniformly (it may land on its old value, as in the
// reference) with probability `prob`.
Genome mutate_uniform(const Genome& g, const std::vector<int>& choices, double prob, std::mt19937_64& rng);
// Each gene from either parent with probability 1/2; nullopt if the lengths differ.
std::optional<Genome> crossover_uniform(const Genome& a, const Genome& b, std::mt19937_64& rng);

std::string genes_string(const Genome& g);  // "0-3-1-2"

}  // namespace neurn::nas
