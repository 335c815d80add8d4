#include "models/similarity/needleman_wunsch.h"

#include <algorithm>
#include <map>

#include "framework/error.h"

namespace neurn::similarity {

Borders parse_borders(const std::string& s) {
  if (s == "gap") return Borders::Gap;
  if (s == "zero") return Borders::Zero;
  NEURN_FAIL("--borders: expected gap or zero, got '", s, "'");
}
std::string to_string(Borders b) { return b == Borders::Gap ? "gap" : "zero"; }

Sequence Encoder::encode(const std::vector<std::string>& tokens) {
  Sequence s;
  s.reserve(tokens.size());
  for (auto& t : tokens) {
    auto it = std::find(names_.begin(), names_.end(), t);  // few distinct names: a scan is enough
    if (it == names_.end()) {
      names_.push_back(t);
      it = names_.end() - 1;
    }
    s.push_back(static_cast<int32_t>(it - names_.begin()));
  }
  return s;
}

namespace {
int64_t border(int64_t k, const NwParams& p) { return p.borders == Borders::Gap ? k * p.gap : 0; }
}  // namespace

int64_t nw_score(const Sequence& a, const Sequence& b, const NwParams& p) {
  const size_t n = b.size();
  // One row of F in int32 (|F| <= max(|match|, |gap|) * (m + n), far below 2^31
  // for traces), plus the substitution scores of the current a_i against b.
  std::vector<int32_t> row(n + 1), sub(n);
  for (size_t j = 0; j <= n; ++j) row[j] = static_cast<int32_t>(border(static_cast<int64_t>(j), p));
  const int32_t match = p.match, mismatch = p.mismatch, gap = p.gap;
  for (size_t i = 1; i <= a.size(); ++i) {
    const int32_t ai = a[i - 1];
    for (size_t j = 0; j < n; ++j) sub[j] = b[j] == ai ? match : mismatch;
    int32_t diag = row[0];
    int32_t left = static_cast<int32_t>(border(static_cast<int64_t>(i), p));
    row[0] = left;
    for (size_t j = 1; j <= n; ++j) {
      const int32_t up = row[j];
      const int32_t v = std::max(diag + sub[j - 1], std::max(up, left) + gap);
      diag = up;
      row[j] = left = v;
    }
  }
  return row[n];
}

Alignment nw_align(const Sequence& a, const Sequence& b, const NwParams& p) {
  const size_t m = a.size(), n = b.size(), w = n + 1;
  Alignment al;
  al.matrix.assign((m + 1) * w, 0);
  auto F = [&](size_t i, size_t j) -> int64_t& { return al.matrix[i * w + j]; };
  for (size_t i = 0; i <= m; ++i) F(i, 0) = border(static_cast<int64_t>(i), p);
  for (size_t j = 0; j <= n; ++j) F(0, j) = border(static_cast<int64_t>(j), p);
  auto sub = [&](size_t i, size_t j) -> int64_t { return a[i - 1] == b[j - 1] ? p.match : p.mismatch; };
  for (size_t i = 1; i <= m; ++i)
    for (size_t j = 1; j <= n; ++j)
      F(i, j) = std::max({F(i - 1, j - 1) + sub(i, j), F(i - 1, j) + p.gap, F(i, j - 1) + p.gap});
  al.score = F(m, n);
  // Traceback from (m, n). On a border: with gap borders walk it to (0, 0)
  // (those are gaps); with zero borders the leading gaps are free and the
  // path stops there (the remaining prefix is still emitted as gap columns).
  size_t i = m, j = n;
  std::vector<std::pair<int32_t, int32_t>> cols, path{{static_cast<int32_t>(m), static_cast<int32_t>(n)}};
  while (i > 0 || j > 0) {
    if (i == 0 || j == 0) {
      if (p.borders == Borders::Zero) break;
      if (i > 0) {
        cols.push_back({static_cast<int32_t>(i - 1), -1});
        --i;
      } else {
        cols.push_back({-1, static_cast<int32_t>(j - 1)});
        --j;
      }
    } else if (F(i, j) == F(i - 1, j - 1) + sub(i, j)) {
      cols.push_back({static_cast<int32_t>(i - 1), static_cast<int32_t>(j - 1)});
      --i, --j;
    } else if (F(i, j) == F(i - 1, j) + p.gap) {
      cols.push_back({static_cast<int32_t>(i - 1), -1});
      --i;
    } else {
      cols.push_back({-1, static_cast<int32_t>(j - 1)});
      --j;
    }
    path.push_back({static_cast<int32_t>(i), static_cast<int32_t>(j)});
  }
  // Free leading gaps (zero borders): the rest of a or of b, unscored.
  while (i > 0) cols.push_back({static_cast<int32_t>(--i), -1});
  while (j > 0) cols.push_back({-1, static_cast<int32_t>(--j)});
  std::reverse(cols.begin(), cols.end());
  std::reverse(path.begin(), path.end());
  al.columns = std::move(cols);
  al.path = std::move(path);
  return al;
}

int64_t alignment_score(const Sequence& a, const Sequence& b, const Alignment& al, const NwParams& p) {
  // With zero borders the gaps before the first column that holds both a
  // token of a and of b... are free only while the other side has not
  // started: leading columns that are gaps on one side and come before any
  // token of the other side.
  int64_t s = 0;
  bool a_started = false, b_started = false;
  for (auto [ia, ib] : al.columns) {
    NEURN_CHECK(ia < static_cast<int32_t>(a.size()) && ib < static_cast<int32_t>(b.size()) && (ia >= 0 || ib >= 0),
                "alignment_score: bad column (", ia, ", ", ib, ")");
    if (ia >= 0 && ib >= 0) {
      s += a[static_cast<size_t>(ia)] == b[static_cast<size_t>(ib)] ? p.match : p.mismatch;
      a_started = b_started = true;
    } else if (ia >= 0) {
      if (!(p.borders == Borders::Zero && !b_started)) s += p.gap;
      a_started = true;
    } else {
      if (!(p.borders == Borders::Zero && !a_started)) s += p.gap;
      b_started = true;
    }
  }
  return s;
}

int64_t trivial_score(size_t m, size_t n, const NwParams& p) {
  const auto lo = static_cast<int64_t>(std::min(m, n)), d = static_cast<int64_t>(std::max(m, n)) - lo;
  if (p.borders == Borders::Gap)  // mismatch the shorter, gap the rest; or gap everything
    return std::max(lo * p.mismatch + d * p.gap, (lo + lo + d) * static_cast<int64_t>(p.gap));
  // zero borders: the longer one's surplus (or all of it) as free leading gaps
  return std::max(lo * p.mismatch, lo * static_cast<int64_t>(p.gap));
}

double similarity_index(int64_t score, size_t m, size_t n, const NwParams& p) {
  if (m == 0 && n == 0) return 1.0;
  const int64_t t = trivial_score(m, n, p);
  const int64_t top = static_cast<int64_t>(p.match) * static_cast<int64_t>(std::max(m, n));
  if (top <= t) return score >= top ? 1.0 : 0.0;  // degenerate parameters (match <= mismatch, gap)
  return std::clamp(static_cast<double>(score - t) / static_cast<double>(top - t), 0.0, 1.0);
}

}  // namespace neurn::similarity
