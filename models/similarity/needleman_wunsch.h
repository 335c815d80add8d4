#pragma once
// Needleman-Wunsch global alignment of two layer sequences, the paper's
// measure of how alike two architectures are. Sequences are token ids
// (encode() below); the score is computed in linear memory, the full matrix
// and traceback only when asked (nw_align).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace neurn::similarity {

// gap: the usual borders, F(i, 0) = i * gap and F(0, j) = j * gap (leading
// gaps cost, as in the paper's Figure 2). zero: the paper's Eq. 1, first row
// and column 0 (leading gaps are free, trailing ones still cost).
enum class Borders { Gap, Zero };
Borders parse_borders(const std::string& s);  // "gap" | "zero"; throws otherwise
std::string to_string(Borders b);

struct NwParams {
  int match = 4;      // the paper's text
  int mismatch = -1;  // its "dissimilarity"
  int gap = -1;
  Borders borders = Borders::Gap;
};

using Sequence = std::vector<int32_t>;

// Token names to ids, one id per distinct name, shared by every sequence
// encoded through the same Encoder (so equal tokens get equal ids).
class Encoder {
 public:
  Sequence encode(const std::vector<std::string>& tokens);
  const std::string& name(int32_t id) const { return names_.at(static_cast<size_t>(id)); }

 private:
  std::vector<std::string> names_;
};

// The optimal global alignment score F(m, n), in O(n) memory and O(m n) time.
int64_t nw_score(const Sequence& a, const Sequence& b, const NwParams& p = {});

struct Alignment {
  int64_t score = 0;
  // Aligned columns: index into a and into b, -1 where that side has a gap.
  std::vector<std::pair<int32_t, int32_t>> columns;
  // The DP matrix, (m + 1) x (n + 1), row-major, and the traceback path as
  // cells (i, j) from (0, 0)... to (m, n) (with zero borders it starts where
  // the free leading gaps end).
  std::vector<int64_t> matrix;
  std::vector<std::pair<int32_t, int32_t>> path;
};
// The full matrix and one optimal alignment. Ties are broken diagonal first,
// then a gap in b (an up move), then a gap in a: the same rule every time, so
// the alignment is reproducible. Its column scores sum to `score`.
Alignment nw_align(const Sequence& a, const Sequence& b, const NwParams& p = {});
// The score of a given alignment under p (borders included): for tests and
// for checking a traceback.
int64_t alignment_score(const Sequence& a, const Sequence& b, const Alignment& al, const NwParams& p);

// The similarity index in [0, 1] of a score between sequences of lengths m
// and n (docs/similarity.md):
//   index = (score - T) / (match * max(m, n) - T),
// T the score of the best alignment that carries no information (all of the
// shorter sequence mismatched, or all of it gapped; with zero borders the
// leading gaps of either free). match * max(m, n) is reached only by
// identical sequences, so the index is 1 exactly on them, symmetric, and 0
// when the optimum is no better than aligning blindly. Both empty: 1.
double similarity_index(int64_t score, size_t m, size_t n, const NwParams& p = {});
// The trivial-alignment floor T above.
int64_t trivial_score(size_t m, size_t n, const NwParams& p);

}  // namespace neurn::similarity
