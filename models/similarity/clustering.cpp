#include "models/similarity/clustering.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "framework/error.h"

namespace neurn::similarity {

Dendrogram average_linkage(const Matrix& dist) {
  const int n = static_cast<int>(dist.size());
  for (auto& r : dist) NEURN_CHECK(static_cast<int>(r.size()) == n, "average_linkage: the matrix is not square");
  Dendrogram d;
  d.n = n;
  if (n == 0) return d;
  // Active clusters with their id, size and distances to every other active
  // cluster (Lance-Williams update for average linkage). n is small (tens of
  // models), so the O(n^3) scan is the readable choice.
  std::vector<int> id(static_cast<size_t>(n)), size(static_cast<size_t>(n), 1);
  std::vector<bool> active(static_cast<size_t>(n), true);
  Matrix D = dist;
  for (int i = 0; i < n; ++i) id[static_cast<size_t>(i)] = i;
  std::vector<std::vector<int>> members(static_cast<size_t>(2 * n - 1));
  for (int i = 0; i < n; ++i) members[static_cast<size_t>(i)] = {i};
  for (int step = 0; step < n - 1; ++step) {
    int bi = -1, bj = -1;
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < n; ++i) {
      if (!active[static_cast<size_t>(i)]) continue;
      for (int j = i + 1; j < n; ++j) {
        if (!active[static_cast<size_t>(j)]) continue;
        double v = D[static_cast<size_t>(i)][static_cast<size_t>(j)];
        if (v < best) best = v, bi = i, bj = j;
      }
    }
    NEURN_CHECK(bi >= 0, "average_linkage: a distance is NaN or infinite");
    const double si = size[static_cast<size_t>(bi)], sj = size[static_cast<size_t>(bj)];
    for (int k = 0; k < n; ++k) {
      if (!active[static_cast<size_t>(k)] || k == bi || k == bj) continue;
      double v = (si * D[static_cast<size_t>(bi)][static_cast<size_t>(k)] +
                  sj * D[static_cast<size_t>(bj)][static_cast<size_t>(k)]) /
                 (si + sj);
      D[static_cast<size_t>(bi)][static_cast<size_t>(k)] = D[static_cast<size_t>(k)][static_cast<size_t>(bi)] = v;
    }
    const int a = id[static_cast<size_t>(bi)], b = id[static_cast<size_t>(bj)];
    d.merges.push_back({std::min(a, b), std::max(a, b), best, static_cast<int>(si + sj)});
    id[static_cast<size_t>(bi)] = n + step;
    size[static_cast<size_t>(bi)] = static_cast<int>(si + sj);
    active[static_cast<size_t>(bj)] = false;
  }
  // Leaf order: depth first from the root, the left child (lower id) first.
  std::function<void(int)> walk = [&](int c) {
    if (c < n) {
      d.order.push_back(c);
      return;
    }
    const Merge& m = d.merges[static_cast<size_t>(c - n)];
    walk(m.left);
    walk(m.right);
  };
  walk(n == 1 ? 0 : 2 * n - 2);
  return d;
}

std::vector<int> cut_clusters(const Dendrogram& d, int k) {
  const int n = d.n;
  NEURN_CHECK(k >= 1 && k <= std::max(n, 1), "cut_clusters: k must be in 1..", n, ", got ", k);
  // Apply the first n - k merges with a union-find over leaves.
  std::vector<int> parent(static_cast<size_t>(2 * n));
  for (size_t i = 0; i < parent.size(); ++i) parent[i] = static_cast<int>(i);
  std::function<int(int)> find = [&](int x) {
    while (parent[static_cast<size_t>(x)] != x) x = parent[static_cast<size_t>(x)];
    return x;
  };
  for (int s = 0; s < n - k; ++s) {
    const Merge& m = d.merges[static_cast<size_t>(s)];
    parent[static_cast<size_t>(find(m.left))] = n + s;
    parent[static_cast<size_t>(find(m.right))] = n + s;
  }
  std::vector<int> labels(static_cast<size_t>(n), -1);
  std::map<int, int> root_label;
  for (int leaf : d.order) {
    int r = find(leaf);
    auto it = root_label.find(r);
    if (it == root_label.end()) it = root_label.emplace(r, static_cast<int>(root_label.size())).first;
    labels[static_cast<size_t>(leaf)] = it->second;
  }
  return labels;
}

std::vector<int> cluster_medoids(const Matrix& dist, const std::vector<int>& labels) {
  int k = 0;
  for (int l : labels) k = std::max(k, l + 1);
  std::vector<int> med(static_cast<size_t>(k), -1);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> best(static_cast<size_t>(k), inf), best_all(static_cast<size_t>(k), inf);
  for (size_t i = 0; i < labels.size(); ++i) {
    double s = 0, all = 0;
    for (size_t j = 0; j < labels.size(); ++j) {
      if (labels[j] == labels[i]) s += dist[i][j];
      all += dist[i][j];
    }
    auto l = static_cast<size_t>(labels[i]);
    // A two-member cluster always ties: the member closer to everything
    // else is the better representative of the whole set.
    const double eps = 1e-12 * std::max(1.0, std::abs(best[l]));
    if (s < best[l] - eps || (std::abs(s - best[l]) <= eps && all < best_all[l]))
      best[l] = s, best_all[l] = all, med[l] = static_cast<int>(i);
  }
  return med;
}

double adjusted_rand_index(const std::vector<int>& a, const std::vector<int>& b) {
  NEURN_CHECK(a.size() == b.size(), "adjusted_rand_index: labelings of ", a.size(), " and ", b.size(), " items");
  const size_t n = a.size();
  if (n < 2) return 1.0;
  std::map<std::pair<int, int>, double> nij;
  std::map<int, double> ai, bj;
  for (size_t i = 0; i < n; ++i) ++nij[{a[i], b[i]}], ++ai[a[i]], ++bj[b[i]];
  auto c2 = [](double x) { return x * (x - 1) / 2; };
  double index = 0, sa = 0, sb = 0;
  for (auto& [k, v] : nij) index += c2(v);
  for (auto& [k, v] : ai) sa += c2(v);
  for (auto& [k, v] : bj) sb += c2(v);
  const double expected = sa * sb / c2(static_cast<double>(n)), top = (sa + sb) / 2;
  if (top == expected) return 1.0;  // both partitions trivial (all singletons or one cluster) and equal
  return (index - expected) / (top - expected);
}

}  // namespace neurn::similarity
