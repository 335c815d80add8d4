#pragma once
// The all-pairs analyses over a set of traced models: the N-W score and index
// matrices, the row-correlation measure, the pattern matrix, their average-
// linkage clusterings and the shortlist (one medoid per cluster).
#include <string>
#include <vector>

#include "models/similarity/clustering.h"
#include "models/similarity/needleman_wunsch.h"
#include "models/similarity/patterns.h"

namespace neurn::similarity {

struct NamedTrace {
  std::string name;
  std::vector<std::string> tokens;  // vocabulary tokens (to_vocabulary)
};

// The vocabulary trace of registry model `name` at its minimum input size
// (the layer sequence does not depend on the size; tests check it).
NamedTrace registry_trace(const std::string& name);
// Every registry model (list_models()), or the comma-separated LIST, less
// the comma-separated `exclude` (names or aliases; each must be registered).
std::vector<NamedTrace> registry_traces(const std::string& all_or_list, const std::string& exclude = "");

struct PairMatrices {
  std::vector<std::vector<int64_t>> score;  // raw N-W scores
  Matrix index;                             // similarity_index of each score
  double seconds = 0;                       // wall time of the alignments
  int64_t cells = 0;                        // DP cells computed
};
// All pairs (i < j, mirrored; the diagonal is the self-score) on `threads`
// threads (0: the hardware's).
PairMatrices nw_all_pairs(const std::vector<Sequence>& seqs, const NwParams& p, int threads = 0);

// The Pearson correlation of the rows of a similarity matrix (the "correlation
// similarity" of the paper's Figure 1): two models are alike when they are
// alike to the same others. In [-1, 1], 1 on the diagonal.
Matrix row_correlation(const Matrix& m);

struct PatternMatrix {
  Matrix index;
  double seconds = 0;
};
PatternMatrix pattern_all_pairs(const std::vector<Sequence>& seqs, int threads = 0);

// 1 - similarity (for correlations: (1 - r) / 2, in [0, 1]).
Matrix to_distance(const Matrix& similarity, bool correlation);

struct Clusters {
  Dendrogram dendrogram;
  std::vector<int> labels;   // per model
  std::vector<int> medoids;  // per cluster: the model index of its representative
};
// Average linkage on `distance`, cut into k clusters, medoid of each.
Clusters cluster(const Matrix& distance, int k);

}  // namespace neurn::similarity
