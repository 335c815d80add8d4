// Needleman-Wunsch, the similarity index, clustering, medoids, the adjusted
// Rand index and the pattern kernel: hand-checked small cases, and the DP
// against exhaustive enumeration of every alignment.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <random>
#include <set>

#include "models/similarity/analysis.h"
#include "models/similarity/vocabulary.h"

using namespace neurn;
using namespace neurn::similarity;

namespace {
Encoder g_enc;
Sequence seq(const std::string& spec) { return g_enc.encode(parse_sequence(spec)); }
NwParams zero_borders() {
  NwParams p;
  p.borders = Borders::Zero;
  return p;
}

// Every alignment of a and b (as columns), scored by alignment_score: the
// definition the DP must agree with.
int64_t brute_force(const Sequence& a, const Sequence& b, const NwParams& p) {
  int64_t best = INT64_MIN;
  Alignment al;
  std::function<void(int32_t, int32_t)> go = [&](int32_t i, int32_t j) {
    if (i == static_cast<int32_t>(a.size()) && j == static_cast<int32_t>(b.size())) {
      best = std::max(best, alignment_score(a, b, al, p));
      return;
    }
    if (i < static_cast<int32_t>(a.size()) && j < static_cast<int32_t>(b.size())) {
      al.columns.push_back({i, j});
      go(i + 1, j + 1);
      al.columns.pop_back();
    }
    if (i < static_cast<int32_t>(a.size())) {
      al.columns.push_back({i, -1});
      go(i + 1, j);
      al.columns.pop_back();
    }
    if (j < static_cast<int32_t>(b.size())) {
      al.columns.push_back({-1, j});
      go(i, j + 1);
      al.columns.pop_back();
    }
  };
  go(0, 0);
  return best;
}

Sequence random_seq(std::mt19937& rng, int max_len, int alphabet) {
  std::uniform_int_distribution<int> len(0, max_len), tok(0, alphabet - 1);
  Sequence s(static_cast<size_t>(len(rng)));
  for (auto& t : s) t = tok(rng);
  return s;
}
}  // namespace

TEST_CASE("vocabulary: unique codes, every recorded type maps once, sequences parse") {
  std::set<char> codes;
  std::set<std::string> types;
  for (auto& t : vocabulary()) {
    CHECK_MESSAGE(codes.insert(t.code).second, t.name);
    for (auto& l : t.layer_types) CHECK_MESSAGE(types.insert(l).second, l);
    CHECK(find_token(t.name) == &t);
    CHECK(find_token(std::string(1, t.code)) == &t);
  }
  CHECK(to_vocabulary({"BatchNorm", "DepthwiseConv", "GroupConv", "GlobalAvgPool", "Multiply", "NewLayer"}) ==
        std::vector<std::string>{"BN", "DWConv", "GConv", "GAP", "SE", "NewLayer"});
  CHECK(to_codes({"Conv", "BN", "ReLU", "Add", "NewLayer"}) == "CBR+?");
  CHECK(parse_sequence("seq:Conv,BatchNorm, ReLU,M") == std::vector<std::string>{"Conv", "BN", "ReLU", "MaxPool"});
  CHECK(parse_sequence("seq:").empty());
  CHECK_THROWS_WITH_AS(parse_sequence("seq:Conv,Convolution"), doctest::Contains("unknown token 'Convolution'"),
                       std::exception);
}

TEST_CASE("N-W: hand-checked optimal scores in both border modes") {
  NwParams gap, zero = zero_borders();
  // Conv ReLU MaxPool Conv / Conv BN ReLU MaxPool: three matches and two gaps
  // (12 - 2); any ungapped alignment has one match at most.
  Sequence a = seq("seq:Conv,ReLU,MaxPool,Conv"), b = seq("seq:Conv,BN,ReLU,MaxPool");
  CHECK(nw_score(a, b, gap) == 10);
  CHECK(nw_score(a, b, zero) == 10);
  CHECK(similarity_index(10, 4, 4, gap) == doctest::Approx(0.7));  // (10 - (-4)) / (16 - (-4))
  // A leading gap costs with gap borders, not with zero borders.
  Sequence rc = seq("seq:ReLU,Conv"), c = seq("seq:Conv");
  CHECK(nw_score(rc, c, gap) == 3);
  CHECK(nw_score(rc, c, zero) == 4);
  // ...but a trailing one costs in both.
  Sequence cr = seq("seq:Conv,ReLU");
  CHECK(nw_score(cr, c, gap) == 3);
  CHECK(nw_score(cr, c, zero) == 3);
  // Mismatch (-1) beats two gaps (-2).
  CHECK(nw_score(seq("seq:Conv"), seq("seq:ReLU"), gap) == -1);
  // Other scores: match 2, mismatch -3, gap -2: C R vs R: a gap and a match.
  NwParams q{.match = 2, .mismatch = -3, .gap = -2};
  CHECK(nw_score(cr, seq("seq:ReLU"), q) == 0);
  CHECK(nw_score(seq("seq:Conv,Conv"), seq("seq:ReLU,ReLU"), q) == -6);  // two mismatches; gaps would cost -8
}

TEST_CASE("N-W: empty sequences") {
  NwParams gap, zero = zero_borders();
  Sequence e, b = seq("seq:Conv,ReLU,MaxPool");
  CHECK(nw_score(e, e, gap) == 0);
  CHECK(nw_score(e, b, gap) == -3);
  CHECK(nw_score(b, e, gap) == -3);
  CHECK(nw_score(e, b, zero) == 0);
  CHECK(similarity_index(0, 0, 0, gap) == 1.0);
  CHECK(similarity_index(-3, 0, 3, gap) == 0.0);
  CHECK(similarity_index(0, 3, 0, zero) == 0.0);
  Alignment al = nw_align(e, b, gap);
  REQUIRE(al.columns.size() == 3);
  for (auto [i, j] : al.columns) CHECK(i == -1);
  CHECK(alignment_score(e, b, al, gap) == -3);
}

TEST_CASE("N-W: ties are broken the documented way (diagonal, then up, then left)") {
  // Conv ReLU / ReLU Conv: matching either Conv or ReLU scores 4 - 2 = 2.
  Sequence a = seq("seq:Conv,ReLU"), b = seq("seq:ReLU,Conv");
  Alignment al = nw_align(a, b);
  CHECK(al.score == 2);
  // From (2, 2) the diagonal gives -2, so up: ReLU against a gap, then Conv
  // matches Conv, then b's ReLU against a gap.
  CHECK(al.columns == std::vector<std::pair<int32_t, int32_t>>{{-1, 0}, {0, 1}, {1, -1}});
  CHECK(al.path == std::vector<std::pair<int32_t, int32_t>>{{0, 0}, {0, 1}, {1, 2}, {2, 2}});
  // The DP matrix of the paper's Figure 2 kind: gap borders.
  CHECK(al.matrix == std::vector<int64_t>{0, -1, -2, -1, -1, 3, -2, 3, 2});
}

TEST_CASE("N-W: the DP equals exhaustive search; traceback scores equal the DP; symmetry") {
  std::mt19937 rng(7);
  for (int borders = 0; borders < 2; ++borders) {
    NwParams p = borders ? zero_borders() : NwParams{};
    for (int t = 0; t < 150; ++t) {
      Sequence a = random_seq(rng, 6, 3), b = random_seq(rng, 6, 3);
      const int64_t s = nw_score(a, b, p);
      INFO("borders ", to_string(p.borders), " case ", t);
      CHECK(s == brute_force(a, b, p));
      Alignment al = nw_align(a, b, p);
      CHECK(al.score == s);
      CHECK(alignment_score(a, b, al, p) == s);
      CHECK(nw_score(b, a, p) == s);
      CHECK(similarity_index(s, a.size(), b.size(), p) == similarity_index(nw_score(b, a, p), b.size(), a.size(), p));
      const double x = similarity_index(s, a.size(), b.size(), p);
      CHECK(x >= 0.0);
      CHECK(x <= 1.0);
      if (a != b) CHECK(x < 1.0);
      CHECK(similarity_index(nw_score(a, a, p), a.size(), a.size(), p) == 1.0);
    }
  }
  // Longer traces: traceback against the linear-memory score.
  for (int t = 0; t < 20; ++t) {
    Sequence a = random_seq(rng, 300, 6), b = random_seq(rng, 300, 6);
    for (NwParams p : {NwParams{}, zero_borders(), NwParams{.match = 3, .mismatch = -2, .gap = -3}}) {
      Alignment al = nw_align(a, b, p);
      CHECK(al.score == nw_score(a, b, p));
      CHECK(alignment_score(a, b, al, p) == al.score);
    }
  }
}

TEST_CASE("average linkage: merge heights, leaf order, cuts, medoids") {
  // A-B 1 apart, C-D 2 apart, the pairs 10 apart.
  Matrix d{{0, 1, 10, 10}, {1, 0, 10, 10}, {10, 10, 0, 2}, {10, 10, 2, 0}};
  Dendrogram g = average_linkage(d);
  REQUIRE(g.merges.size() == 3);
  CHECK(g.merges[0].left == 0);
  CHECK(g.merges[0].right == 1);
  CHECK(g.merges[0].height == 1);
  CHECK(g.merges[1].left == 2);
  CHECK(g.merges[1].right == 3);
  CHECK(g.merges[2].height == 10);
  CHECK(g.merges[2].size == 4);
  CHECK(g.order == std::vector<int>{0, 1, 2, 3});
  CHECK(cut_clusters(g, 2) == std::vector<int>{0, 0, 1, 1});
  CHECK(cut_clusters(g, 1) == std::vector<int>{0, 0, 0, 0});
  CHECK(cut_clusters(g, 4) == std::vector<int>{0, 1, 2, 3});
  CHECK_THROWS(cut_clusters(g, 5));
  // Average, not single or complete: C joins {A, B} at (4 + 6) / 2.
  Dendrogram h = average_linkage({{0, 1, 4}, {1, 0, 6}, {4, 6, 0}});
  CHECK(h.merges[1].height == doctest::Approx(5.0));
  // Medoid: the member with the least total distance (B: 1 + 1 against A: 1 + 3).
  Matrix e{{0, 1, 3, 9}, {1, 0, 1, 9}, {3, 1, 0, 9}, {9, 9, 9, 0}};
  CHECK(cluster_medoids(e, {0, 0, 0, 1}) == std::vector<int>{1, 3});
  // A pair ties inside its cluster: the member nearer to the rest wins (2).
  Matrix f{{0, 1, 9, 9}, {1, 0, 9, 9}, {9, 9, 0, 2}, {9, 9, 2, 0}};
  f[2][0] = f[0][2] = f[2][1] = f[1][2] = 5;
  CHECK(cluster_medoids(f, {0, 0, 1, 1}) == std::vector<int>{0, 2});
}

TEST_CASE("adjusted Rand index: known values") {
  CHECK(adjusted_rand_index({0, 0, 1, 1}, {5, 5, 2, 2}) == doctest::Approx(1.0));
  // Values as scikit-learn's adjusted_rand_score gives them (Hubert & Arabie 1985).
  CHECK(adjusted_rand_index({0, 0, 0, 1, 1, 1}, {0, 0, 1, 1, 2, 2}) == doctest::Approx(8.0 / 33.0));
  CHECK(adjusted_rand_index({0, 0, 1, 1}, {0, 0, 1, 2}) == doctest::Approx(4.0 / 7.0));
  CHECK(adjusted_rand_index({0, 0, 0, 0}, {0, 1, 2, 3}) == doctest::Approx(0.0));
  CHECK_THROWS(adjusted_rand_index({0, 1}, {0}));
}

TEST_CASE("pattern kernel: hand-counted n-grams, and the DP equals hashed counting") {
  Sequence a = seq("seq:C,R,C,R"), b = seq("seq:C,R,C,R,M");
  // Lengths 2..3 (b is longer, n - 1 = 3): CR 2x2, RC 1x1, CRC 1x1, RCR 1x1.
  CHECK(pattern_kernel(a, b, 3) == 7);
  PatternProfile pa = make_profile(a), pb = make_profile(b);
  CHECK(pa.self_kernel(3) == 7);  // CR 2x2 + RC + CRC + RCR
  CHECK(pb.self_kernel(3) == 9);  // and RM, CRM
  CHECK(pattern_index(pa, pb) == doctest::Approx(7.0 / std::sqrt(63.0)));
  CHECK(pattern_index(pb, pa) == pattern_index(pa, pb));
  CHECK(pattern_index(pa, pa) == 1.0);
  // Too short for any admissible length (2..n-1 with n = 2).
  CHECK(pattern_index(make_profile(seq("seq:C,R")), pb) == 0.0);
  // Nothing shared.
  CHECK(pattern_index(make_profile(seq("seq:C,C,C")), make_profile(seq("seq:R,M,R,M"))) == 0.0);

  std::mt19937 rng(3);
  for (int t = 0; t < 40; ++t) {
    Sequence x = random_seq(rng, 30, 3), y = random_seq(rng, 30, 3);
    const int64_t L = static_cast<int64_t>(std::min(x.size(), y.size())) - 1;
    auto cx = count_ngrams(x, 2, L), cy = count_ngrams(y, 2, L);
    int64_t want = 0;
    for (auto& [g, n] : cx)
      if (cy.count(g)) want += n * cy[g];
    CHECK(pattern_kernel(x, y, L) == want);
    int64_t self = 0;
    for (auto& [g, n] : cx) self += n * n;
    CHECK(make_profile(x).self_kernel(L) == self);
  }
}

TEST_CASE("most common patterns: counted across models") {
  std::vector<Sequence> traces{seq("seq:C,B,R,C,B,R"), seq("seq:C,B,R,M"), seq("seq:M,C")};
  auto top = most_common_patterns(traces, 2, 3, 3);
  REQUIRE(top.size() == 3);
  // C B in 2 models (3 times), B R in 2 (3 times), C B R in 2 (3 times): the
  // longer first on equal counts, then by token id.
  CHECK(top[0].tokens == seq("seq:C,B,R"));
  CHECK(top[0].occurrences == 3);
  CHECK(top[0].models == std::vector<int>{0, 1});
  CHECK(top[1].tokens.size() == 2);
  CHECK(top[1].models.size() == 2);
  auto two = most_common_patterns(traces, 2, 2, 100);
  int64_t total = 0;
  for (auto& c : two) total += c.occurrences;
  CHECK(total == 5 + 3 + 1);  // every window of length 2
}

TEST_CASE("row correlation and distances") {
  Matrix m{{1, 0.8, 0.1}, {0.8, 1, 0.2}, {0.1, 0.2, 1}};
  Matrix c = row_correlation(m);
  CHECK(c[0][0] == 1.0);
  CHECK(c[0][1] == c[1][0]);
  CHECK(c[0][1] == doctest::Approx(0.8979182).epsilon(1e-6));  // Pearson r of the two rows, by hand
  CHECK(c[0][2] < 0);
  Matrix d = to_distance(c, true);
  CHECK(d[0][0] == 0.0);
  CHECK(d[0][2] == doctest::Approx((1 - c[0][2]) / 2));
  CHECK(to_distance(m, false)[0][1] == doctest::Approx(0.2));
}
