#include "models/similarity/analysis.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "framework/error.h"
#include "models/registry.h"
#include "models/similarity/vocabulary.h"

namespace neurn::similarity {

NamedTrace registry_trace(const std::string& name) {
  const ModelInfo& info = model_info(name);
  ModelOptions o;
  o.input_size = info.min_input_size;
  return {info.name, to_vocabulary(trace_model(info.name, o).tokens)};
}

namespace {
std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    std::string n = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!n.empty()) out.push_back(n);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}
}  // namespace

std::vector<NamedTrace> registry_traces(const std::string& spec, const std::string& exclude) {
  std::vector<std::string> names;
  if (spec == "all") {
    for (auto& i : list_models()) names.push_back(i.name);
  } else {
    names = split_commas(spec);
  }
  for (auto& x : split_commas(exclude)) {
    NEURN_CHECK(has_model(x), "--exclude: '", x, "' is not a registry model");
    const std::string canon = canonical_model_name(x);
    std::erase_if(names, [&](const std::string& n) { return has_model(n) && canonical_model_name(n) == canon; });
  }
  NEURN_CHECK(!names.empty(), "--models: expected 'all' or a comma-separated list of registry names, got '", spec,
              "'", exclude.empty() ? "" : " (less --exclude)");
  std::vector<NamedTrace> out;
  for (auto& n : names) {
    out.push_back(registry_trace(n));
    for (size_t i = 0; i + 1 < out.size(); ++i)
      NEURN_CHECK(out[i].name != out.back().name, "--models: '", out.back().name, "' is listed twice (as '", n, "')");
  }
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

// Runs fn(i, j) for every pair i <= j, longest pairs first, on `threads`
// threads pulling from one counter (the pairs differ in cost by 100x).
template <typename Fn>
void for_pairs(const std::vector<Sequence>& seqs, int threads, Fn fn) {
  std::vector<std::pair<int, int>> pairs;
  const int n = static_cast<int>(seqs.size());
  for (int i = 0; i < n; ++i)
    for (int j = i; j < n; ++j) pairs.push_back({i, j});
  auto cost = [&](const std::pair<int, int>& p) {
    return seqs[static_cast<size_t>(p.first)].size() * seqs[static_cast<size_t>(p.second)].size();
  };
  std::stable_sort(pairs.begin(), pairs.end(), [&](auto& x, auto& y) { return cost(x) > cost(y); });
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < pairs.size();) fn(pairs[k].first, pairs[k].second);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

}  // namespace

PairMatrices nw_all_pairs(const std::vector<Sequence>& seqs, const NwParams& p, int threads) {
  const size_t n = seqs.size();
  PairMatrices r;
  r.score.assign(n, std::vector<int64_t>(n, 0));
  r.index.assign(n, std::vector<double>(n, 0));
  auto t0 = Clock::now();
  for_pairs(seqs, threads, [&](int i, int j) {
    const Sequence &a = seqs[static_cast<size_t>(i)], &b = seqs[static_cast<size_t>(j)];
    const int64_t s = nw_score(a, b, p);
    const double x = similarity_index(s, a.size(), b.size(), p);
    r.score[static_cast<size_t>(i)][static_cast<size_t>(j)] = r.score[static_cast<size_t>(j)][static_cast<size_t>(i)] = s;
    r.index[static_cast<size_t>(i)][static_cast<size_t>(j)] = r.index[static_cast<size_t>(j)][static_cast<size_t>(i)] = x;
  });
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i; j < n; ++j) r.cells += static_cast<int64_t>(seqs[i].size() * seqs[j].size());
  return r;
}

Matrix row_correlation(const Matrix& m) {
  const size_t n = m.size();
  Matrix c(n, std::vector<double>(n, 0));
  std::vector<double> mean(n, 0), sd(n, 0);
  for (size_t i = 0; i < n; ++i) {
    for (double v : m[i]) mean[i] += v;
    mean[i] /= static_cast<double>(n);
    for (double v : m[i]) sd[i] += (v - mean[i]) * (v - mean[i]);
    sd[i] = std::sqrt(sd[i]);
  }
  for (size_t i = 0; i < n; ++i)
    for (size_t j = i; j < n; ++j) {
      double s = 0;
      for (size_t k = 0; k < n; ++k) s += (m[i][k] - mean[i]) * (m[j][k] - mean[j]);
      // A constant row (one model, or all equal) has no correlation: 1 with
      // itself, 0 with the others.
      double r = i == j ? 1.0 : (sd[i] > 0 && sd[j] > 0 ? s / (sd[i] * sd[j]) : 0.0);
      c[i][j] = c[j][i] = std::clamp(r, -1.0, 1.0);
    }
  return c;
}

PatternMatrix pattern_all_pairs(const std::vector<Sequence>& seqs, int threads) {
  const size_t n = seqs.size();
  PatternMatrix r;
  r.index.assign(n, std::vector<double>(n, 0));
  auto t0 = Clock::now();
  std::vector<PatternProfile> prof(n);
  // The profiles are the diagonal's O(L^2) work: built in the same pool.
  for_pairs(seqs, threads, [&](int i, int j) {
    if (i == j) prof[static_cast<size_t>(i)] = make_profile(seqs[static_cast<size_t>(i)]);
  });
  for_pairs(seqs, threads, [&](int i, int j) {
    double x = pattern_index(prof[static_cast<size_t>(i)], prof[static_cast<size_t>(j)]);
    r.index[static_cast<size_t>(i)][static_cast<size_t>(j)] = r.index[static_cast<size_t>(j)][static_cast<size_t>(i)] = x;
  });
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

Matrix to_distance(const Matrix& s, bool correlation) {
  Matrix d = s;
  for (size_t i = 0; i < s.size(); ++i)
    for (size_t j = 0; j < s.size(); ++j) d[i][j] = i == j ? 0.0 : (correlation ? (1 - s[i][j]) / 2 : 1 - s[i][j]);
  return d;
}

Clusters cluster(const Matrix& distance, int k) {
  Clusters c;
  c.dendrogram = average_linkage(distance);
  const int n = static_cast<int>(distance.size());
  c.labels = cut_clusters(c.dendrogram, std::clamp(k, 1, std::max(n, 1)));
  c.medoids = cluster_medoids(distance, c.labels);
  return c;
}

}  // namespace neurn::similarity
