#pragma once
// Average-linkage (UPGMA) hierarchical clustering of a distance matrix, the
// dendrogram's leaf order for the heatmaps, flat clusters cut from it, the
// medoid of each cluster (the shortlist), and the adjusted Rand index that
// compares two clusterings.
#include <cstdint>
#include <vector>

namespace neurn::similarity {

using Matrix = std::vector<std::vector<double>>;  // square, symmetric

struct Merge {
  int left, right;  // cluster ids: 0..n-1 the leaves, n + k the cluster made by merge k
  double height;    // the average distance between the two merged clusters
  int size;         // leaves under the new cluster
};
struct Dendrogram {
  int n = 0;
  std::vector<Merge> merges;  // n - 1 of them, heights non-decreasing
  std::vector<int> order;     // leaves left to right (the heatmap's row order)
};

// Average linkage on `distance` (square, symmetric, zero diagonal). Ties go to
// the pair of lowest ids, so the result does not depend on the platform.
Dendrogram average_linkage(const Matrix& distance);
// Flat clusters: undo the last k - 1 merges. Labels 0..k-1, numbered in the
// order the clusters appear in dendrogram.order (so the heatmap reads them
// top to bottom). 1 <= k <= n.
std::vector<int> cut_clusters(const Dendrogram& d, int k);
// For each cluster label, the member with the least total distance to the
// other members; on a tie (a two-member cluster always ties) the one with the
// least total distance to all items, then the lowest index.
std::vector<int> cluster_medoids(const Matrix& distance, const std::vector<int>& labels);
// Hubert and Arabie's adjusted Rand index of two labelings of the same items:
// 1 for identical partitions, about 0 for independent ones.
double adjusted_rand_index(const std::vector<int>& a, const std::vector<int>& b);

}  // namespace neurn::similarity
