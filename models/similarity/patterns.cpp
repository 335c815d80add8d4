#include "models/similarity/patterns.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "framework/error.h"

namespace neurn::similarity {

namespace {
// n-grams of length 2..L ending at a cell whose common run is r.
inline int64_t grams(int64_t r, int64_t max_len) { return std::max<int64_t>(0, std::min(r, max_len) - 1); }
}  // namespace

int64_t pattern_kernel(const Sequence& a, const Sequence& b, int64_t max_len) {
  if (max_len < 2) return 0;
  const size_t n = b.size();
  std::vector<int32_t> run(n + 1, 0);  // run[j] = r(i - 1, j) while row i is computed right to left
  int64_t k = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int32_t ai = a[i];
    for (size_t j = n; j >= 1; --j) {
      run[j] = b[j - 1] == ai ? run[j - 1] + 1 : 0;
      k += grams(run[j], max_len);
    }
  }
  return k;
}

PatternProfile make_profile(const Sequence& s) {
  PatternProfile p;
  p.seq = s;
  const size_t n = s.size();
  p.runs.assign(n + 1, 0);
  std::vector<int32_t> run(n + 1, 0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = n; j >= 1; --j) {
      run[j] = s[j - 1] == s[i] ? run[j - 1] + 1 : 0;
      ++p.runs[static_cast<size_t>(run[j])];
    }
  return p;
}

int64_t PatternProfile::self_kernel(int64_t max_len) const {
  int64_t k = 0;
  for (size_t r = 2; r < runs.size(); ++r) k += runs[r] * grams(static_cast<int64_t>(r), max_len);
  return k;
}

double pattern_index(const PatternProfile& a, const PatternProfile& b) {
  if (a.seq == b.seq) return 1.0;
  const int64_t max_len = static_cast<int64_t>(std::min(a.seq.size(), b.seq.size())) - 1;
  if (max_len < 2) return 0.0;
  const double ka = static_cast<double>(a.self_kernel(max_len)), kb = static_cast<double>(b.self_kernel(max_len));
  if (ka == 0 || kb == 0) return 0.0;
  return std::min(1.0, static_cast<double>(pattern_kernel(a.seq, b.seq, max_len)) / std::sqrt(ka * kb));
}

namespace {
std::string key_of(const Sequence& s, size_t start, size_t len) {
  std::string k;
  for (size_t t = 0; t < len; ++t) k += (t ? "," : "") + std::to_string(s[start + t]);
  return k;
}
}  // namespace

std::map<std::string, int64_t> count_ngrams(const Sequence& s, int64_t min_len, int64_t max_len) {
  std::map<std::string, int64_t> out;
  for (int64_t len = std::max<int64_t>(min_len, 1); len <= max_len; ++len)
    for (size_t i = 0; i + static_cast<size_t>(len) <= s.size(); ++i) ++out[key_of(s, i, static_cast<size_t>(len))];
  return out;
}

std::vector<CommonPattern> most_common_patterns(const std::vector<Sequence>& traces, int64_t min_len,
                                                int64_t max_len, size_t top) {
  NEURN_CHECK(min_len >= 1 && max_len >= min_len, "most_common_patterns: bad lengths ", min_len, "..", max_len);
  // One pass per model; each window is a hash-map key (its raw token ids as
  // bytes), so equal windows meet in one entry and hash collisions cannot
  // merge different ones.
  struct Entry {
    Sequence tokens;
    int64_t occurrences = 0;
    std::vector<int> models;
  };
  std::unordered_map<std::string, Entry> all;
  for (size_t m = 0; m < traces.size(); ++m) {
    const Sequence& s = traces[m];
    for (int64_t len = min_len; len <= max_len; ++len)
      for (size_t i = 0; i + static_cast<size_t>(len) <= s.size(); ++i) {
        std::string key(reinterpret_cast<const char*>(s.data() + i), static_cast<size_t>(len) * sizeof(int32_t));
        Entry& e = all[key];
        if (e.tokens.empty()) e.tokens.assign(s.begin() + static_cast<std::ptrdiff_t>(i),
                                              s.begin() + static_cast<std::ptrdiff_t>(i + static_cast<size_t>(len)));
        ++e.occurrences;
        if (e.models.empty() || e.models.back() != static_cast<int>(m)) e.models.push_back(static_cast<int>(m));
      }
  }
  std::vector<CommonPattern> v;
  v.reserve(all.size());
  for (auto& [k, e] : all) v.push_back({std::move(e.tokens), e.occurrences, std::move(e.models)});
  std::sort(v.begin(), v.end(), [](const CommonPattern& x, const CommonPattern& y) {
    if (x.models.size() != y.models.size()) return x.models.size() > y.models.size();
    if (x.occurrences != y.occurrences) return x.occurrences > y.occurrences;
    if (x.tokens.size() != y.tokens.size()) return x.tokens.size() > y.tokens.size();
    return x.tokens < y.tokens;
  });
  if (v.size() > top) v.resize(top);
  return v;
}

}  // namespace neurn::similarity
