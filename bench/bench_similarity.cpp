// `neurn bench similarity`: the speed of the Needleman-Wunsch aligner. Two
// parts: (1) all pairs of --count traces (the registry's, completed to
// --count with concatenations of two registry traces, longest first, so some exceed 1,000
// tokens as the paper's 44 do), N-W and pattern similarity, on --threads
// threads; (2) one alignment of two pseudo-random sequences of --pair-length
// tokens on one thread, in DP cells per second, the number
// bench/similarity_py.py compares with the same alignment in Python.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "experiments/cli/cli.h"
#include "framework/error.h"
#include "models/registry.h"
#include "models/similarity/analysis.h"

namespace neurn::cli {
namespace {

using namespace neurn::similarity;
using Clock = std::chrono::steady_clock;

// The generator bench/similarity_py.py reproduces: 64-bit LCG (Knuth's MMIX
// constants), token = (state >> 33) % alphabet.
Sequence lcg_sequence(uint64_t seed, size_t n, uint32_t alphabet) {
  Sequence s(n);
  uint64_t x = seed;
  for (auto& t : s) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    t = static_cast<int32_t>((x >> 33) % alphabet);
  }
  return s;
}

int bench_similarity(const Flags& f) {
  const int64_t count = f.get_int("count", 44), reps = f.get_int("reps", 5), len = f.get_int("pair-length", 2000);
  const int threads = static_cast<int>(f.get_int("threads", 2));
  NEURN_CHECK(count >= 2 && reps >= 1 && len >= 1 && threads >= 1,
              "bench similarity: need --count >= 2, --reps, --pair-length and --threads >= 1");

  std::vector<NamedTrace> reg = registry_traces("all");
  Encoder enc;
  std::vector<Sequence> seqs;
  for (auto& t : reg) seqs.push_back(enc.encode(t.tokens));
  const size_t base = seqs.size();
  // Partners longest first, so the first concatenations are the long ones.
  std::vector<size_t> by_length(base);
  for (size_t i = 0; i < base; ++i) by_length[i] = i;
  std::stable_sort(by_length.begin(), by_length.end(),
                   [&](size_t x, size_t y) { return seqs[x].size() > seqs[y].size(); });
  for (size_t k = 0; seqs.size() < static_cast<size_t>(count); ++k) {
    Sequence s = seqs[by_length[k % base]];
    const Sequence& t = seqs[by_length[(k + 1 + k / base) % base]];
    s.insert(s.end(), t.begin(), t.end());
    seqs.push_back(std::move(s));
  }
  seqs.resize(static_cast<size_t>(count));
  size_t longest = 0, over_1000 = 0, total = 0;
  for (auto& s : seqs) longest = std::max(longest, s.size()), over_1000 += s.size() > 1000, total += s.size();
  std::printf("%lld traces (%zu from the registry, the rest concatenations of two): %zu tokens, longest %zu, %zu over "
              "1000\n",
              static_cast<long long>(count), base, total, longest, over_1000);

  std::vector<double> nw_s, pat_s;
  PairMatrices nw;
  for (int64_t r = 0; r < reps; ++r) {
    nw = nw_all_pairs(seqs, {}, threads);
    nw_s.push_back(nw.seconds);
    pat_s.push_back(pattern_all_pairs(seqs, threads).seconds);
  }
  std::sort(nw_s.begin(), nw_s.end());
  std::sort(pat_s.begin(), pat_s.end());
  const double nw_med = nw_s[nw_s.size() / 2], pat_med = pat_s[pat_s.size() / 2];
  std::printf("all pairs, %d threads: N-W %.3f s (%.3g cells, %.0f Mcells/s), patterns %.3f s (median of %lld)\n",
              threads, nw_med, static_cast<double>(nw.cells), static_cast<double>(nw.cells) / nw_med / 1e6, pat_med,
              static_cast<long long>(reps));

  Sequence a = lcg_sequence(1, static_cast<size_t>(len), 8), b = lcg_sequence(2, static_cast<size_t>(len), 8);
  std::vector<double> ps;
  int64_t score = 0;
  for (int64_t r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    score = nw_score(a, b);
    ps.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(ps.begin(), ps.end());
  const double cells = static_cast<double>(len) * static_cast<double>(len);
  std::printf("one pair %lld x %lld, 1 thread: %.4f s (median of %lld)\n", static_cast<long long>(len),
              static_cast<long long>(len), ps[ps.size() / 2], static_cast<long long>(reps));
  std::printf("pair_score=%lld\npair_cells_per_second=%.0f\n", static_cast<long long>(score),
              cells / ps[ps.size() / 2]);
  return 0;
}

Register reg{{
    .name = "bench similarity",
    .summary = "Needleman-Wunsch all pairs and one long pair, cells per second",
    .flags = {integer("count", "N", "(44)"), integer("threads", "T", "(2)"), integer("reps", "N", "(5)"),
              integer("pair-length", "N", "(2000)")},
    .details = "All pairs of --count traces (the registry's, then concatenations of two registry traces up to "
               "--count): the median of --reps runs of N-W (default scores) and of the pattern similarity, on "
               "--threads threads. Then one N-W alignment of two LCG sequences of --pair-length tokens (8 token "
               "kinds, seeds 1 and 2) on one thread. The last lines are pair_score=<S> and "
               "pair_cells_per_second=<N> (bench/similarity_py.py reads them).",
    .fn = bench_similarity}};

}  // namespace
}  // namespace neurn::cli
