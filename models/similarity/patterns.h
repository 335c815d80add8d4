#pragma once
// Pattern similarity (the paper's Figures 3 and 4): how many contiguous layer
// combinations (n-grams) of length 2 to n - 1 two traces share, n the length
// of the shorter trace, weighted by how often each occurs in both.
//
// Weighting: a combination g counts c_a(g) * c_b(g) times, c_x(g) its number
// of occurrences in x (every pair of occurrences is one shared pattern).
// The raw score is then the inner product of the two n-gram count vectors
// (the "spectrum kernel" of string classification), so
//   pattern index = K(a, b) / sqrt(K(a, a) K(b, b))
// is a cosine in [0, 1], symmetric, 1 for identical traces. A repeated block
// (ResNet's 16 bottlenecks) weighs in proportion to how often both models
// repeat it, and the cosine removes the length of the models.
//
// K(a, b) is computed without listing the n-grams: the occurrence pairs of
// all shared n-grams are the pairs (i, j) of end positions with a common run
// r(i, j) = (a_i == b_j ? r(i-1, j-1) + 1 : 0) and, there, the n-grams of
// length 2..L ending at (i, j) number max(0, min(r, L) - 1). One O(m n) pass
// with a row of ints, like N-W; the self terms come from each trace's
// histogram of runs. count_ngrams (hashed) is the direct definition and the
// tests check one against the other.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/similarity/needleman_wunsch.h"

namespace neurn::similarity {

// K restricted to n-gram lengths 2..max_len.
int64_t pattern_kernel(const Sequence& a, const Sequence& b, int64_t max_len);

// A trace with its self-run histogram, so that K(a, a) at any length limit is
// O(length) instead of O(length^2).
struct PatternProfile {
  Sequence seq;
  std::vector<int64_t> runs;  // runs[r] = cells (i, j) of the self-comparison with common run r
  int64_t self_kernel(int64_t max_len) const;
};
PatternProfile make_profile(const Sequence& s);

// The pattern index of two traces (lengths 2..min(m, n) - 1); 0 when the
// shorter trace has fewer than 3 tokens (no admissible length) unless the
// traces are identical (1).
double pattern_index(const PatternProfile& a, const PatternProfile& b);

// Direct counting by hashing: every n-gram of length min_len..max_len of s
// with its number of occurrences (keys are the token ids joined by ',').
std::map<std::string, int64_t> count_ngrams(const Sequence& s, int64_t min_len, int64_t max_len);

// The combinations that occur in the most models (ties: more occurrences in
// total, then longer, then alphabetical), with which models hold them.
struct CommonPattern {
  Sequence tokens;
  int64_t occurrences = 0;      // over all models
  std::vector<int> models;      // indices of the models that contain it
};
std::vector<CommonPattern> most_common_patterns(const std::vector<Sequence>& traces, int64_t min_len,
                                                int64_t max_len, size_t top);

}  // namespace neurn::similarity
