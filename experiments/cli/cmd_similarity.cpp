// `neurn similarity`: the Needleman-Wunsch alignment of two layer traces
// (--align A B), and the all-pairs analysis of the registry (--models ... --out
// DIR): matrices, clustered heatmaps with dendrograms, clusters, the shortlist,
// the pattern similarity and its most common combinations. docs/similarity.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <functional>
#include <sstream>
#include <thread>

#include "experiments/cli/cli.h"
#include "experiments/plot.h"
#include "experiments/results.h"
#include "framework/error.h"
#include "models/registry.h"
#include "models/similarity/analysis.h"
#include "models/similarity/vocabulary.h"

namespace neurn::cli {
namespace {

using namespace neurn::similarity;
namespace fs = std::filesystem;

NwParams nw_params(const Flags& f) {
  NwParams p;
  p.match = static_cast<int>(f.get_int("match", 4));
  p.mismatch = static_cast<int>(f.get_int("mismatch", -1));
  p.gap = static_cast<int>(f.get_int("gap", -1));
  p.borders = parse_borders(f.get("borders", "gap"));
  NEURN_CHECK(p.match > p.mismatch, "--match (", p.match, ") must be greater than --mismatch (", p.mismatch,
              "): otherwise equal layers score no better than different ones");
  NEURN_CHECK(p.gap <= 0 && p.mismatch <= p.match, "--gap must be <= 0, got ", p.gap);
  return p;
}

// A registry name or "seq:...".
NamedTrace operand(const std::string& s) {
  if (s.rfind("seq:", 0) == 0) return {s, parse_sequence(s)};
  NEURN_CHECK(has_model(s), "similarity: '", s, "' is neither a registry model (see `neurn models`) nor a sequence ",
              "written seq:Conv,ReLU,MaxPool");
  return registry_trace(s);
}

std::string code_of(const std::string& tok) { return to_codes({tok}); }

int run_align(const Flags& f) {
  NEURN_CHECK(f.positional().size() == 2, "similarity --align: expected two operands A B, got ",
              f.positional().size());
  NwParams p = nw_params(f);
  NamedTrace a = operand(f.positional()[0]), b = operand(f.positional()[1]);
  Encoder enc;
  Sequence sa = enc.encode(a.tokens), sb = enc.encode(b.tokens);
  Alignment al = nw_align(sa, sb, p);
  NEURN_CHECK(al.score == nw_score(sa, sb, p), "similarity: the full-matrix and linear-memory scores differ");
  const double index = similarity_index(al.score, sa.size(), sb.size(), p);
  std::vector<std::string> ta, tb;  // aligned tokens, "-" for a gap
  std::string ca, cb, mid;
  int64_t matches = 0, mismatches = 0, gaps = 0;
  for (auto [i, j] : al.columns) {
    std::string x = i >= 0 ? a.tokens[static_cast<size_t>(i)] : "-", y = j >= 0 ? b.tokens[static_cast<size_t>(j)] : "-";
    ta.push_back(x), tb.push_back(y);
    ca += i >= 0 ? code_of(x) : "-";
    cb += j >= 0 ? code_of(y) : "-";
    char m = i < 0 || j < 0 ? ' ' : (x == y ? '|' : '.');
    mid += m;
    (m == '|' ? matches : (m == '.' ? mismatches : gaps)) += 1;
  }
  if (f.has("json")) {
    nlohmann::json j{{"a", a.name},
                     {"b", b.name},
                     {"length_a", sa.size()},
                     {"length_b", sb.size()},
                     {"match", p.match},
                     {"mismatch", p.mismatch},
                     {"gap", p.gap},
                     {"borders", to_string(p.borders)},
                     {"score", al.score},
                     {"index", index},
                     {"trivial_score", trivial_score(sa.size(), sb.size(), p)},
                     {"aligned_a", ta},
                     {"aligned_b", tb},
                     {"codes_a", ca},
                     {"codes_b", cb},
                     {"matches", matches},
                     {"mismatches", mismatches},
                     {"gaps", gaps}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("A: %s (%zu tokens)\nB: %s (%zu tokens)\n", a.name.c_str(), sa.size(), b.name.c_str(), sb.size());
  std::printf("match %d, mismatch %d, gap %d, borders %s\n", p.match, p.mismatch, p.gap, to_string(p.borders).c_str());
  std::printf("score: %lld\nindex: %.4f  (trivial alignment %lld, identical traces %lld)\n",
              static_cast<long long>(al.score), index,
              static_cast<long long>(trivial_score(sa.size(), sb.size(), p)),
              static_cast<long long>(p.match) * static_cast<long long>(std::max(sa.size(), sb.size())));
  std::printf("columns: %zu (%lld matches '|', %lld mismatches '.', %lld gaps '-')\n", al.columns.size(),
              static_cast<long long>(matches), static_cast<long long>(mismatches), static_cast<long long>(gaps));
  if (al.columns.size() <= 24) {
    // Token names, padded per column.
    std::string la = "  A ", lm = "    ", lb = "  B ";
    for (size_t k = 0; k < ta.size(); ++k) {
      size_t w = std::max(ta[k].size(), tb[k].size());
      auto pad = [&](const std::string& s) { return s + std::string(w - s.size() + 1, ' '); };
      la += pad(ta[k]), lb += pad(tb[k]), lm += pad(std::string(1, mid[k]));
    }
    std::printf("%s\n%s\n%s\n", la.c_str(), lm.c_str(), lb.c_str());
  }
  std::printf("aligned codes (docs/similarity.md has the table):\n");
  for (size_t k = 0; k < ca.size(); k += 100)
    std::printf("  A %s\n    %s\n  B %s\n", ca.substr(k, 100).c_str(), mid.substr(k, 100).c_str(),
                cb.substr(k, 100).c_str());
  if (f.has("matrix")) {
    if (sa.size() > 40 || sb.size() > 40) {
      std::printf("(--matrix: the traces have %zu and %zu tokens; the matrix is printed up to 40)\n", sa.size(),
                  sb.size());
    } else {
      std::vector<bool> on_path((sa.size() + 1) * (sb.size() + 1), false);
      for (auto [i, j] : al.path) on_path[static_cast<size_t>(i) * (sb.size() + 1) + static_cast<size_t>(j)] = true;
      std::printf("DP matrix F(i, j) (rows: A, columns: B; '*' the traceback path):\n%6s", "");
      std::printf("%6s", "-");
      for (size_t j = 0; j < sb.size(); ++j) std::printf("%6s", code_of(b.tokens[j]).c_str());
      std::printf("\n");
      for (size_t i = 0; i <= sa.size(); ++i) {
        std::printf("%6s", i == 0 ? "-" : code_of(a.tokens[i - 1]).c_str());
        for (size_t j = 0; j <= sb.size(); ++j) {
          char cell[16];
          std::snprintf(cell, sizeof cell, "%lld%s", static_cast<long long>(al.matrix[i * (sb.size() + 1) + j]),
                        on_path[i * (sb.size() + 1) + j] ? "*" : " ");
          std::printf("%6s", cell);
        }
        std::printf("\n");
      }
    }
  }
  return 0;
}

// The paper's 12 backbones, each with the registry spellings it may have.
struct PaperModel {
  const char* paper;
  std::vector<const char*> names;
};
const std::vector<PaperModel>& paper_shortlist() {
  static const std::vector<PaperModel> m{
      {"VGG19", {"vgg19"}},
      {"EfficientNetB0", {"efficientnet_b0", "efficientnetb0"}},
      {"DenseNet121", {"densenet121"}},
      {"ShuffleNet", {"shufflenet", "shufflenet_v1"}},
      {"Xception", {"xception"}},
      {"NASNetMobile", {"nasnetmobile", "nasnet_mobile"}},
      {"ResNet50", {"resnet50"}},
      {"ResNet50V2", {"resnet50v2", "resnet50_v2"}},
      {"InceptionV3", {"inceptionv3", "inception_v3"}},  // Keras's (the paper's), else torchvision's
      {"MobileNet", {"mobilenet"}},
      {"MobileNetV2", {"mobilenet_v2", "mobilenetv2"}},
      {"ViT", {"vit_b_16", "vit"}},
  };
  return m;
}

std::string csv_matrix(const std::vector<std::string>& names, const std::function<std::string(size_t, size_t)>& cell) {
  std::ostringstream s;
  s << "model";
  for (auto& n : names) s << "," << n;
  s << "\n";
  for (size_t i = 0; i < names.size(); ++i) {
    s << names[i];
    for (size_t j = 0; j < names.size(); ++j) s << "," << cell(i, j);
    s << "\n";
  }
  return s.str();
}

std::string num(double v, int decimals = 6) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::vector<experiments::DendrogramLink> links_of(const Dendrogram& d) {
  std::vector<experiments::DendrogramLink> l;
  for (auto& m : d.merges) l.push_back({m.left, m.right, m.height});
  return l;
}

int run_models_analysis(const Flags& f) {
  NEURN_CHECK(f.has("output"), "similarity --models: --output DIR is required (where the CSVs and figures go)");
  NwParams p = nw_params(f);
  const std::string measure = f.get("measure", "index");
  NEURN_CHECK(measure == "index" || measure == "correlation", "--measure: expected index or correlation, got '",
              measure, "'");
  const bool corr = measure == "correlation";
  const int threads = static_cast<int>(f.get_int("threads", 0));
  const int64_t top = f.get_int("top", 100), max_len = f.get_int("max-pattern-len", 6);
  NEURN_CHECK(top >= 1 && max_len >= 2, "--top must be >= 1 and --max-pattern-len >= 2, got ", top, " and ", max_len);
  const fs::path out = f.get("output");
  std::error_code ec;
  fs::create_directories(out, ec);
  NEURN_CHECK(!ec, "--output: cannot create ", out.string(), ": ", ec.message());

  auto t0 = std::chrono::steady_clock::now();
  std::vector<NamedTrace> traces = registry_traces(f.get("models", "all"), f.get("exclude", ""));
  const double trace_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const size_t n = traces.size();
  NEURN_CHECK(n >= 2, "similarity --models: need at least two models, got ", n);
  const int k = static_cast<int>(f.get_int("shortlist", std::min<int64_t>(12, static_cast<int64_t>(n))));
  NEURN_CHECK(k >= 1 && k <= static_cast<int>(n), "--shortlist: K must be in 1..", n, " (the number of models), got ", k);
  std::vector<std::string> names;
  Encoder enc;
  std::vector<Sequence> seqs;
  size_t longest = 0, total = 0;
  for (auto& t : traces) {
    names.push_back(t.name);
    seqs.push_back(enc.encode(t.tokens));
    longest = std::max(longest, t.tokens.size());
    total += t.tokens.size();
  }

  PairMatrices nw = nw_all_pairs(seqs, p, threads);
  Matrix shown = corr ? row_correlation(nw.index) : nw.index;
  Clusters cl = cluster(to_distance(shown, corr), k);
  PatternMatrix pat = pattern_all_pairs(seqs, threads);
  Clusters pcl = cluster(to_distance(pat.index, false), k);
  const double ari = adjusted_rand_index(cl.labels, pcl.labels);
  auto common = most_common_patterns(seqs, 2, max_len, static_cast<size_t>(top));

  // ---- files ----
  experiments::write_file_atomic((out / "nw_score.csv").string(), csv_matrix(names, [&](size_t i, size_t j) {
                                   return std::to_string(nw.score[i][j]);
                                 }));
  experiments::write_file_atomic((out / "nw_index.csv").string(),
                                 csv_matrix(names, [&](size_t i, size_t j) { return num(nw.index[i][j]); }));
  if (corr)
    experiments::write_file_atomic((out / "nw_correlation.csv").string(),
                                   csv_matrix(names, [&](size_t i, size_t j) { return num(shown[i][j]); }));
  experiments::write_file_atomic((out / "pattern_index.csv").string(),
                                 csv_matrix(names, [&](size_t i, size_t j) { return num(pat.index[i][j]); }));
  {
    std::ostringstream s;
    s << "a,b,length_a,length_b,nw_score,nw_index,pattern_index\n";
    for (size_t i = 0; i < n; ++i)
      for (size_t j = i + 1; j < n; ++j)
        s << names[i] << "," << names[j] << "," << seqs[i].size() << "," << seqs[j].size() << "," << nw.score[i][j]
          << "," << num(nw.index[i][j]) << "," << num(pat.index[i][j]) << "\n";
    experiments::write_file_atomic((out / "pairs.csv").string(), s.str());
  }
  std::vector<bool> is_medoid(n, false), is_pmedoid(n, false);
  for (int m : cl.medoids) is_medoid[static_cast<size_t>(m)] = true;
  for (int m : pcl.medoids) is_pmedoid[static_cast<size_t>(m)] = true;
  {
    std::ostringstream s;
    s << "model,tokens,nw_cluster,nw_medoid,pattern_cluster,pattern_medoid\n";
    for (size_t i = 0; i < n; ++i)
      s << names[i] << "," << seqs[i].size() << "," << cl.labels[i] << "," << (is_medoid[i] ? 1 : 0) << ","
        << pcl.labels[i] << "," << (is_pmedoid[i] ? 1 : 0) << "\n";
    experiments::write_file_atomic((out / "clusters.csv").string(), s.str());
  }
  char params[160];
  std::snprintf(params, sizeof params, "match %d, mismatch %d, gap %d, %s borders; average linkage; %d clusters",
                p.match, p.mismatch, p.gap, to_string(p.borders).c_str(), k);
  experiments::ClusteredHeatmap hm;
  hm.title = corr ? "Needleman-Wunsch correlation similarity (Pearson r of the index rows)"
                  : "Needleman-Wunsch similarity index";
  hm.subtitle = std::string(params) + (corr ? " on (1 - r) / 2" : " on 1 - index");
  hm.labels = names;
  hm.values = shown;
  hm.order = cl.dendrogram.order;
  hm.links = links_of(cl.dendrogram);
  hm.clusters = cl.labels;
  hm.highlight = is_medoid;
  hm.highlight_note = std::string("red: the shortlist (each cluster's medoid); ") + (corr ? "black" : "white") +
                      " boxes: the clusters";
  hm.lo = corr ? -1 : 0;
  hm.diverging = corr;
  hm.colorbar_label = corr ? "Pearson r" : "N-W similarity index";
  experiments::write_clustered_heatmap_png(hm, (out / "nw_heatmap.png").string());
  experiments::write_clustered_heatmap_svg(hm, (out / "nw_heatmap.svg").string());
  experiments::ClusteredHeatmap ph = hm;
  ph.title = "Pattern similarity (shared layer combinations, cosine of n-gram counts)";
  ph.subtitle = "lengths 2..n-1 (n: the shorter trace); average linkage on 1 - index; " + std::to_string(k) +
                " clusters";
  ph.values = pat.index;
  ph.order = pcl.dendrogram.order;
  ph.links = links_of(pcl.dendrogram);
  ph.clusters = pcl.labels;
  ph.highlight = is_pmedoid;
  ph.highlight_note = "red: each pattern cluster's medoid; white boxes: the clusters";
  ph.colorbar_label = "pattern similarity index";
  // Different families share only short patterns, while a model's own long
  // (repeated) runs dominate its self-term, so the off-diagonal values are
  // small: the colours span 0 to the largest of them, the diagonal saturates.
  double pmax = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (i != j) pmax = std::max(pmax, pat.index[i][j]);
  ph.lo = 0;
  ph.hi = pmax > 0 ? pmax : 1;
  ph.subtitle += "; colours 0.." + num(ph.hi, 2) + " (the largest off-diagonal value)";
  ph.diverging = false;
  experiments::write_clustered_heatmap_png(ph, (out / "pattern_heatmap.png").string());
  experiments::write_clustered_heatmap_svg(ph, (out / "pattern_heatmap.svg").string());
  experiments::IncidencePlot ip;
  ip.title = "The " + std::to_string(common.size()) + " most common layer combinations";
  ip.subtitle = "length 2.." + std::to_string(max_len) +
                ", ranked by the number of models holding them; right: models, occurrences";
  for (auto& c : common) {
    std::string lab;
    for (int32_t t : c.tokens) lab += (lab.empty() ? "" : " ") + enc.name(t);
    ip.row_labels.push_back(lab);
    ip.rows_hold.push_back(c.models);
    ip.row_notes.push_back(std::to_string(c.occurrences) + "x");
  }
  // Columns in the N-W dendrogram's order, so related models sit together.
  std::vector<int> col_of(n);
  for (size_t c = 0; c < n; ++c) {
    ip.column_labels.push_back(names[static_cast<size_t>(cl.dendrogram.order[c])]);
    col_of[static_cast<size_t>(cl.dendrogram.order[c])] = static_cast<int>(c);
  }
  for (auto& r : ip.rows_hold)
    for (int& m : r) m = col_of[static_cast<size_t>(m)];
  experiments::write_incidence_png(ip, (out / "patterns_top.png").string());
  experiments::write_incidence_svg(ip, (out / "patterns_top.svg").string());

  // ---- report ----
  std::printf("%zu models, traces of %zu to %zu tokens (%zu in all), traced in %.2f s\n", n,
              std::min_element(seqs.begin(), seqs.end(), [](auto& x, auto& y) { return x.size() < y.size(); })->size(),
              longest, total, trace_s);
  const int used_threads = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::printf("N-W: %zu pairs, %.3g DP cells in %.3f s (%.0f Mcells/s, %d threads); %s\n", n * (n + 1) / 2,
              static_cast<double>(nw.cells), nw.seconds, static_cast<double>(nw.cells) / nw.seconds / 1e6,
              used_threads, params);
  std::printf("patterns: all pairs in %.3f s; adjusted Rand index of the N-W and pattern clusterings: %.3f at %d "
              "clusters",
              pat.seconds, ari, k);
  // The index at one cut says little when most clusters are singletons: at
  // other cuts too.
  nlohmann::json ari_by_k = nlohmann::json::object();
  Dendrogram dn = cl.dendrogram, dp = pcl.dendrogram;
  for (int kk = 2; kk < static_cast<int>(n); kk += std::max(1, static_cast<int>(n) / 8)) {
    double a = adjusted_rand_index(cut_clusters(dn, kk), cut_clusters(dp, kk));
    ari_by_k[std::to_string(kk)] = a;
    std::printf("%s%d: %.2f", kk == 2 ? " (at " : ", ", kk, a);
  }
  std::printf("%s\n", n > 2 ? ")" : "");
  std::printf("\nclusters (%s, %s; '*' the medoid):\n", measure.c_str(), "average linkage");
  nlohmann::json jclusters = nlohmann::json::array();
  for (int c = 0; c < k; ++c) {
    std::string members;
    nlohmann::json jm = nlohmann::json::array();
    for (int i : cl.dendrogram.order)
      if (cl.labels[static_cast<size_t>(i)] == c) {
        members += (members.empty() ? "" : " ") + names[static_cast<size_t>(i)] + (is_medoid[static_cast<size_t>(i)] ? "*" : "");
        jm.push_back(names[static_cast<size_t>(i)]);
      }
    std::printf("  %2d  %-18s %s\n", c + 1, names[static_cast<size_t>(cl.medoids[static_cast<size_t>(c)])].c_str(),
                members.c_str());
    jclusters.push_back({{"medoid", names[static_cast<size_t>(cl.medoids[static_cast<size_t>(c)])]}, {"members", jm}});
  }
  std::vector<std::string> shortlist;
  for (int c = 0; c < k; ++c) shortlist.push_back(names[static_cast<size_t>(cl.medoids[static_cast<size_t>(c)])]);
  if (f.has("shortlist")) {
    std::string s;
    for (auto& x : shortlist) s += (s.empty() ? "" : ", ") + x;
    std::printf("shortlist (%d): %s\n", k, s.c_str());
  }
  // Against the paper's 12.
  int registered = 0, in_ours = 0;
  std::vector<bool> cluster_has_paper(static_cast<size_t>(k), false);
  std::printf("\nthe paper's 12: registered here / our cluster / in our shortlist\n");
  for (auto& pm : paper_shortlist()) {
    int idx = -1;
    for (const char* nm : pm.names)
      if (has_model(nm)) {
        std::string canon = canonical_model_name(nm);
        for (size_t i = 0; i < n; ++i)
          if (names[i] == canon) idx = static_cast<int>(i);
        if (idx < 0) idx = -2;  // registered but not among --models
        break;
      }
    if (idx == -1) {
      std::printf("  %-15s not in the registry\n", pm.paper);
    } else if (idx == -2) {
      std::printf("  %-15s registered, not among --models\n", pm.paper);
    } else {
      ++registered;
      int c = cl.labels[static_cast<size_t>(idx)];
      cluster_has_paper[static_cast<size_t>(c)] = true;
      bool ours = is_medoid[static_cast<size_t>(idx)];
      in_ours += ours;
      std::printf("  %-15s %-16s cluster %2d  %s\n", pm.paper, names[static_cast<size_t>(idx)].c_str(), c + 1,
                  ours ? "yes" : ("no (medoid " + names[static_cast<size_t>(cl.medoids[static_cast<size_t>(c)])] + ")").c_str());
    }
  }
  int covered = static_cast<int>(std::count(cluster_has_paper.begin(), cluster_has_paper.end(), true));
  std::printf("%d of the paper's 12 are registered and analysed; %d of them are our medoids; %d of our %d clusters hold "
              "one of them\n",
              registered, in_ours, covered, k);
  std::printf("\nwrote %s/{nw_score,nw_index,pattern_index,pairs,clusters}.csv, nw_heatmap.{png,svg}, "
              "pattern_heatmap.{png,svg}, patterns_top.{png,svg}, summary.json\n",
              out.string().c_str());

  nlohmann::json summary{{"models", names},
                         {"measure", measure},
                         {"match", p.match},
                         {"mismatch", p.mismatch},
                         {"gap", p.gap},
                         {"borders", to_string(p.borders)},
                         {"clusters", jclusters},
                         {"shortlist", shortlist},
                         {"pattern_labels", pcl.labels},
                         {"nw_labels", cl.labels},
                         {"adjusted_rand_index", ari},
                         {"adjusted_rand_index_by_k", ari_by_k},
                         {"nw_seconds", nw.seconds},
                         {"nw_cells", nw.cells},
                         {"pattern_seconds", pat.seconds},
                         {"paper_registered", registered},
                         {"paper_in_shortlist", in_ours}};
  experiments::write_file_atomic((out / "summary.json").string(), summary.dump(2) + "\n");
  return 0;
}

int run_similarity(const Flags& f) {
  NEURN_CHECK(f.has("align") != f.has("models"), "similarity: give either --align A B or --models all|LIST --out DIR");
  return f.has("align") ? run_align(f) : run_models_analysis(f);
}

Register reg{{
    .name = "similarity",
    .summary = "Needleman-Wunsch and pattern similarity of architectures, clusters, shortlist",
    .positionals = "[A B]",
    .max_positionals = 2,
    .flags = {on_off("align", "align A and B: registry names or ad-hoc sequences `seq:Conv,ReLU,MaxPool`. Prints "
                              "the raw score, the similarity index in [0, 1] (docs/similarity.md) and the aligned "
                              "traces with gaps ('-')"),
              on_off("matrix", "with --align and traces of at most 40 tokens: the DP matrix with the traceback "
                               "path marked '*'"),
              on_off("json", "with --align: one object (score, index, aligned_a, aligned_b, ...)"),
              integer("match", "N", "N-W match score (4)"), integer("mismatch", "N", "N-W mismatch score (-1)"),
              integer("gap", "N", "N-W gap penalty (-1)"),
              text("borders", "gap|zero", "gap: F(i,0) = i*gap, the usual Needleman-Wunsch; zero: the paper's Eq. 1, "
                                          "first row and column 0, leading gaps free (gap)"),
              text("models", "all|LIST", "all pairs of the registry's models (or LIST, comma-separated)"),
              text("exclude", "LIST", "less these (e.g. the searched spos,autoformer, not among the paper's 44)"),
              text("output", "DIR", "with --models: where the matrices, heatmaps and summary.json go; required"),
              integer("shortlist", "K", "clusters to cut into (min(12, models), the paper's 12)"),
              text("measure", "index|correlation", "index clusters on 1 - index; correlation on the Pearson "
                                                   "correlation of the index matrix's rows (index)"),
              integer("top", "N", "the most common layer combinations to plot (100)"),
              integer("max-pattern-len", "N", "longest combination counted (6)"),
              integer("threads", "T", "(0: all cores)")},
    .details = "Either --align A B, or --models all|LIST --output DIR, which writes nw_score.csv, nw_index.csv, "
               "pattern_index.csv (matrices), pairs.csv (one row per pair), clusters.csv, nw_heatmap.{png,svg} "
               "(ordered by average linkage on the distance, with the dendrogram), pattern_heatmap.{png,svg}, "
               "patterns_top.{png,svg} and summary.json; prints each cluster with its medoid, compares the "
               "shortlist with the paper's 12 and the N-W clusters with the pattern clusters (adjusted Rand "
               "index), and the time of the alignments.",
    .fn = run_similarity}};

}  // namespace
}  // namespace neurn::cli
