#include "experiments/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>

#include "datasets/checksum.h"
#include "experiments/baselines.h"
#include "experiments/config.h"
#include "experiments/plot.h"
#include "framework/error.h"

namespace neurn::experiments {

namespace fs = std::filesystem;

std::string Transfer::label() const { return domain_short(source) + "->" + domain_short(target); }

const std::vector<Transfer>& paper_transfers() {
  static const std::vector<Transfer> t{{"mnist", "usps"},  {"mnist", "svhn"},  {"mnist", "mnistm"},
                                       {"usps", "mnist"},  {"usps", "svhn"},   {"usps", "mnistm"},
                                       {"svhn", "mnist"},  {"svhn", "usps"},   {"svhn", "mnistm"},
                                       {"mnistm", "mnist"}, {"mnistm", "usps"}, {"mnistm", "svhn"}};
  return t;
}

namespace {

std::string fmt(double v, int decimals = 1) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

int domain_rank(const std::string& d) {
  const auto& all = all_domains();
  auto it = std::find(all.begin(), all.end(), d);
  return it == all.end() ? static_cast<int>(all.size()) : static_cast<int>(it - all.begin());
}

std::string cell_text(const std::optional<Cell>& c, const std::string& pm = " ± ") {
  if (!c) return "–";
  std::string s = fmt(c->mean);
  if (c->seeds > 1) s += pm + fmt(c->std);
  return s;
}

// The front of a record: its label and kind, and the options its settings
// give (NeuRN's under "neurn_options", the other kinds' under
// "front.options"). Records made in memory with only `neurn` set (and those
// read from before fronts existed) count as the default NeuRN.
struct RecordFront {
  std::string label, kind = "none", options;
};
RecordFront record_front(const RunRecord& r) {
  RecordFront f;
  f.label = r.front;
  f.kind = r.front_kind;
  if (f.label.empty() && r.neurn) f.label = "neurn";
  if (r.neurn) f.kind = "neurn";
  if (f.label.empty()) return RecordFront{};
  if (!r.settings_json.empty()) {
    auto j = nlohmann::json::parse(r.settings_json, nullptr, false);
    if (j.is_object()) {
      if (f.kind == "neurn" && j.contains("neurn_options")) {
        f.options = j.at("neurn_options").dump();
      } else if (j.contains("front") && j.at("front").is_object() && j.at("front").contains("options")) {
        f.options = j.at("front").at("options").dump();
      }
    }
  }
  return f;
}

int kind_rank(const std::string& kind) {
  if (kind == "none") return 0;
  if (kind == "neurn") return 1;
  if (kind == "lrn") return 2;
  if (kind == "lcn") return 3;
  return 4;
}

// The grouping of a record: its variant's label and fingerprint.
struct RecordGroup {
  std::string label, vfp;
};
RecordGroup record_group(const RunRecord& r) { return RecordGroup{record_variant(r), r.variant_fingerprint}; }

std::string seeds_text(const Table1Row& r) {
  if (r.max_seeds == 0) return "";
  if (r.min_seeds == r.max_seeds) return std::to_string(r.max_seeds);
  return std::to_string(r.min_seeds) + "–" + std::to_string(r.max_seeds);
}

bool shows_seeds(const Table1& t) {
  for (auto& r : t.rows)
    if (r.max_seeds > 1) return true;
  return false;
}

// The last column's heading: the paper's "NeuRN better" while every front
// is the default NeuRN, else what it counts for every front.
std::string better_heading(const Table1& t) {
  for (auto& r : t.rows)
    if (!r.front.empty() && r.front != "neurn") return "better than no front";
  return "NeuRN better";
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string latex_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '_' || c == '&' || c == '%' || c == '#' || c == '$') o += '\\';
    o += c;
  }
  return o;
}

std::string safe_name(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return o;
}

}  // namespace

std::string front_display_name(const std::string& label) {
  if (label == "neurn") return "NeuRN";
  if (label == "lrn") return "LRN";
  if (label == "lcn") return "LCN";
  return label;
}

std::string table1_row_name(const Table1Row& r) {
  return r.variant + (r.front.empty() ? "" : " + " + front_display_name(r.front));
}

Table1 build_table1(const std::vector<RunRecord>& records) {
  Table1 t;
  // Rows: (variant group, front label, front options), in first-appearance
  // order of the variants; within one, ordered by kind (none first).
  struct RowKey {
    std::string group;  // label + "\x1f" + variant fingerprint
    std::string front, kind, options;
    bool operator<(const RowKey& o) const {
      return std::tie(group, front, options) < std::tie(o.group, o.front, o.options);
    }
    bool operator==(const RowKey& o) const { return !(*this < o) && !(o < *this); }
  };
  std::map<std::pair<RowKey, std::pair<std::string, std::string>>, std::vector<double>> acc;  // (row, transfer)
  std::vector<std::string> groups;                 // first appearance
  std::map<std::string, RecordGroup> group_info;   // group -> its label and fingerprint
  std::map<std::string, std::string> group_model;  // group -> bare model
  std::map<std::string, std::set<std::string>> label_fps;
  std::map<std::string, std::vector<RowKey>> group_rows;
  std::map<std::pair<std::string, std::string>, std::set<std::string>> front_option_sets;  // (group, front) -> options
  std::set<std::pair<std::string, std::string>> pairs;
  for (auto& r : records) {
    if (r.status != "ok") continue;
    RecordGroup g = record_group(r);
    std::string group = g.label + "\x1f" + g.vfp;
    if (!group_info.count(group)) {
      groups.push_back(group);
      group_info[group] = g;
      group_model[group] = r.model;
    }
    label_fps[g.label].insert(g.vfp);
    RecordFront f = record_front(r);
    RowKey key{group, f.label, f.kind, f.options};
    front_option_sets[{group, f.label}].insert(f.options);
    auto& rows = group_rows[group];
    if (std::find(rows.begin(), rows.end(), key) == rows.end()) rows.push_back(key);
    for (auto& [target, m] : r.targets) {
      if (!std::isfinite(m.accuracy)) continue;
      acc[{key, {r.source, target}}].push_back(100.0 * m.accuracy);
      pairs.insert({r.source, target});
    }
  }
  // A label shared by two settings (a config changed and run --as-new) gets
  // the first 6 digits of its variant fingerprint.
  auto label_of = [&](const std::string& group) {
    const RecordGroup& g = group_info[group];
    if (label_fps[g.label].size() <= 1) return g.label;
    return g.label + " [" + (g.vfp.empty() ? std::string("old") : g.vfp.substr(0, 6)) + "]";
  };
  for (auto& g : groups) t.models.push_back(label_of(g));
  t.groups = groups;
  for (auto& p : paper_transfers())
    if (pairs.count({p.source, p.target})) t.transfers.push_back(p);
  std::vector<Transfer> extra;
  for (auto& [s, d] : pairs) {
    bool in_paper = false;
    for (auto& p : paper_transfers()) in_paper |= (p.source == s && p.target == d);
    if (!in_paper) extra.push_back({s, d});
  }
  std::sort(extra.begin(), extra.end(), [](const Transfer& a, const Transfer& b) {
    return std::make_pair(domain_rank(a.source), domain_rank(a.target)) <
           std::make_pair(domain_rank(b.source), domain_rank(b.target));
  });
  t.transfers.insert(t.transfers.end(), extra.begin(), extra.end());

  for (auto& group : groups) {
    auto rows = group_rows[group];
    // By kind, the default NeuRN first among the NeuRN rows; else as the
    // records first name them.
    std::stable_sort(rows.begin(), rows.end(), [](const RowKey& a, const RowKey& b) {
      return std::make_pair(kind_rank(a.kind), a.front != "neurn") < std::make_pair(kind_rank(b.kind), b.front != "neurn");
    });
    for (auto& key : rows) {
      Table1Row row;
      row.model = group_model[group];
      row.variant = label_of(group);
      // One front label with two option sets (a config changed its options
      // and ran --as-new): the options' hash tells the rows apart.
      if (!key.front.empty() && front_option_sets[{group, key.front}].size() > 1) {
        std::string h = data::sha256_hex(key.options.data(), key.options.size());
        row.variant += " {" + key.front + " " + h.substr(0, 6) + "}";
      }
      row.group = group;
      row.front = key.front;
      row.front_kind = key.kind;
      row.front_options = key.options;
      row.neurn = key.kind == "neurn";
      bool any = false;
      for (auto& tr : t.transfers) {
        auto it = acc.find({key, {tr.source, tr.target}});
        if (it == acc.end()) {
          row.cells.push_back(std::nullopt);
          continue;
        }
        const auto& v = it->second;
        Cell c;
        c.seeds = static_cast<int>(v.size());
        for (double x : v) c.mean += x;
        c.mean /= c.seeds;
        if (c.seeds > 1) {
          double ss = 0;
          for (double x : v) ss += (x - c.mean) * (x - c.mean);
          c.std = std::sqrt(ss / (c.seeds - 1));
        }
        row.min_seeds = any ? std::min(row.min_seeds, c.seeds) : c.seeds;
        row.max_seeds = std::max(row.max_seeds, c.seeds);
        row.cells.push_back(c);
        any = true;
      }
      row.improved.assign(t.transfers.size(), false);
      if (any) t.rows.push_back(row);
    }
  }
  // Improvements: a front's row against the same variant's row without one.
  for (auto& row : t.rows) {
    if (row.front.empty()) continue;
    for (auto& base : t.rows) {
      if (!base.front.empty() || base.group != row.group) continue;
      for (size_t k = 0; k < t.transfers.size(); ++k) {
        if (!row.cells[k] || !base.cells[k]) continue;
        ++row.compared;
        // Compare what the table shows (one decimal), so a marked cell is
        // visibly higher.
        if (std::round(row.cells[k]->mean * 10) > std::round(base.cells[k]->mean * 10)) {
          row.improved[k] = true;
          ++row.improved_count;
        }
      }
    }
  }
  return t;
}

std::string table1_markdown(const Table1& t) {
  const bool seeds = shows_seeds(t);
  std::ostringstream s;
  s << "| Model |";
  for (auto& tr : t.transfers) s << " " << tr.label() << " |";
  s << " " << better_heading(t) << " |" << (seeds ? " Seeds |" : "") << "\n|---|";
  for (size_t k = 0; k < t.transfers.size(); ++k) s << "---:|";
  s << "---:|" << (seeds ? "---:|" : "") << "\n";
  for (auto& r : t.rows) {
    s << "| " << table1_row_name(r) << " |";
    for (size_t k = 0; k < r.cells.size(); ++k) {
      std::string c = cell_text(r.cells[k]);
      s << " " << (r.improved[k] ? "**" + c + "**" : c) << " |";
    }
    s << " " << (!r.front.empty() ? std::to_string(r.improved_count) + " of " + std::to_string(r.compared) : "")
      << " |";
    if (seeds) s << " " << seeds_text(r) << " |";
    s << "\n";
  }
  return s.str();
}

std::string table1_csv(const Table1& t) {
  std::ostringstream s;
  s << "variant,neurn";
  for (auto& tr : t.transfers) s << "," << tr.label() << "," << tr.label() << " std," << tr.label() << " seeds";
  s << ",improved,compared,front,front_kind\n";
  for (auto& r : t.rows) {
    s << r.variant << "," << (r.neurn ? "true" : "false");
    for (auto& c : r.cells) {
      if (c)
        s << "," << fmt(c->mean, 2) << "," << fmt(c->std, 2) << "," << c->seeds;
      else
        s << ",,,0";
    }
    if (!r.front.empty())
      s << "," << r.improved_count << "," << r.compared;
    else
      s << ",,";
    s << "," << r.front << "," << r.front_kind << "\n";
  }
  return s.str();
}

std::string table1_latex(const Table1& t) {
  std::ostringstream s;
  s << "% Accuracy (%) on the target domains, mean $\\pm$ sample std over seeds; bold: the front improves on the "
       "same model without one.\n";
  s << "\\begin{tabular}{l" << std::string(t.transfers.size(), 'r') << "r}\n\\hline\nModel";
  for (auto& tr : t.transfers)
    s << " & " << domain_short(tr.source) << "$\\to$" << domain_short(tr.target);
  s << " & Better \\\\\n\\hline\n";
  for (size_t i = 0; i < t.rows.size(); ++i) {
    const Table1Row& r = t.rows[i];
    s << latex_escape(table1_row_name(r));
    for (size_t k = 0; k < r.cells.size(); ++k) {
      std::string c = r.cells[k] ? cell_text(r.cells[k], " $\\pm$ ") : "--";
      s << " & " << (r.improved[k] ? "\\textbf{" + c + "}" : c);
    }
    s << " & " << (!r.front.empty() ? std::to_string(r.improved_count) + " of " + std::to_string(r.compared) : "")
      << " \\\\\n";
    const bool last_of_group = i + 1 == t.rows.size() || t.rows[i + 1].group != r.group;
    if (last_of_group && !r.front.empty()) s << "\\hline\n";
  }
  // The seed counts, as one line under the table (a column would change
  // the paper's layout): "3 seeds per cell", or per row where they differ.
  if (shows_seeds(t)) {
    bool uniform = true;
    for (auto& r : t.rows) uniform = uniform && r.min_seeds == r.max_seeds && r.max_seeds == t.rows[0].max_seeds;
    std::string note;
    if (uniform) {
      note = std::to_string(t.rows[0].max_seeds) + " seeds per cell";
    } else {
      note = "seeds per cell: ";
      for (size_t i = 0; i < t.rows.size(); ++i)
        note += (i ? ", " : "") + latex_escape(table1_row_name(t.rows[i])) + " " + seeds_text(t.rows[i]);
    }
    s << "\\multicolumn{" << t.transfers.size() + 2 << "}{l}{\\footnotesize " << note << "} \\\\\n";
  }
  s << "\\end{tabular}\n";
  return s.str();
}

double cosine_similarity(const std::vector<double>& a, const std::vector<double>& b) {
  NEURN_CHECK(a.size() == b.size(), "cosine_similarity: lengths ", a.size(), " and ", b.size());
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
  if (aa == 0 || bb == 0) return std::nan("");
  return ab / std::sqrt(aa * bb);
}

std::optional<Similarity> functional_similarity(const Table1& t) {
  // model -> row index, per variant
  std::map<std::string, const Table1Row*> without, with;
  for (auto& r : t.rows) {
    auto at = std::find(t.groups.begin(), t.groups.end(), r.group);
    if (at == t.groups.end()) continue;
    if (!r.front.empty() && !r.neurn) continue;  // LRN, LCN: not what the paper compares
    auto& slot = (r.neurn ? with : without)[t.models[static_cast<size_t>(at - t.groups.begin())]];
    // The default NeuRN (label "neurn"), else the first NeuRN row of a variant.
    if (!slot || (r.front == "neurn" && slot->front != "neurn")) slot = &r;
  }
  Similarity s;
  for (auto& m : t.models)
    if (without.count(m) && with.count(m)) s.models.push_back(m);
  if (s.models.size() < 2) return std::nullopt;
  std::vector<size_t> cols;
  for (size_t k = 0; k < t.transfers.size(); ++k) {
    bool all = true;
    for (auto& m : s.models) all = all && without[m]->cells[k] && with[m]->cells[k];
    if (all) {
      cols.push_back(k);
      s.transfers.push_back(t.transfers[k]);
    }
  }
  if (cols.empty()) return std::nullopt;
  auto rowvec = [&](const Table1Row* r) {
    std::vector<double> v;
    for (size_t k : cols) v.push_back(r->cells[k]->mean);
    return v;
  };
  size_t n = s.models.size();
  s.before.assign(n, std::vector<double>(n));
  s.after = s.difference = s.before;
  double sb = 0, sa = 0;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      s.before[i][j] = cosine_similarity(rowvec(without[s.models[i]]), rowvec(without[s.models[j]]));
      s.after[i][j] = cosine_similarity(rowvec(with[s.models[i]]), rowvec(with[s.models[j]]));
      s.difference[i][j] = s.after[i][j] - s.before[i][j];
      if (i != j) sb += s.before[i][j], sa += s.after[i][j];
    }
  s.mean_offdiag_before = sb / static_cast<double>(n * (n - 1));
  s.mean_offdiag_after = sa / static_cast<double>(n * (n - 1));
  return s;
}

namespace {

// NeuRN's k from a front's options JSON ({"k": 5, ...}; the value may be
// text), and the options without it; nullopt when there is no k.
std::optional<std::pair<int, nlohmann::json>> split_k(const std::string& options) {
  if (options.empty()) return std::nullopt;
  auto j = nlohmann::json::parse(options, nullptr, false);
  if (!j.is_object() || !j.contains("k")) return std::nullopt;
  const auto& kv = j.at("k");
  int k = 0;
  if (kv.is_number_integer()) {
    k = kv.get<int>();
  } else if (kv.is_string()) {
    try {
      size_t used = 0;
      k = std::stoi(kv.get<std::string>(), &used);
      if (used != kv.get<std::string>().size()) return std::nullopt;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  j.erase("k");
  return std::make_pair(k, j);
}

}  // namespace

std::vector<KSweep> neurn_k_sweeps(const Table1& t) {
  std::vector<KSweep> out;
  for (size_t gi = 0; gi < t.groups.size(); ++gi) {
    const std::string& group = t.groups[gi];
    const Table1Row* base = nullptr;
    std::vector<const Table1Row*> neurn_rows;
    for (auto& r : t.rows) {
      if (r.group != group) continue;
      if (r.front.empty()) base = &r;
      if (r.neurn) neurn_rows.push_back(&r);
    }
    const Table1Row* ref = nullptr;
    for (auto* r : neurn_rows)
      if (!ref || (r->front == "neurn" && ref->front != "neurn")) ref = r;
    if (!ref) continue;
    auto ref_split = split_k(ref->front_options);
    if (!ref_split) continue;
    std::map<int, const Table1Row*> by_k;  // the first row of each k
    for (auto* r : neurn_rows) {
      auto sp = split_k(r->front_options);
      if (!sp || sp->second != ref_split->second) continue;
      if (!by_k.count(sp->first) || r == ref) by_k[sp->first] = r;
    }
    if (by_k.size() < 2) continue;
    KSweep s;
    s.variant = t.models[gi];
    for (auto& [k, r] : by_k) s.k.push_back(k);
    for (size_t c = 0; c < t.transfers.size(); ++c) {
      std::vector<std::optional<Cell>> line;
      bool any = false;
      for (auto& [k, r] : by_k) {
        line.push_back(r->cells[c]);
        any |= r->cells[c].has_value();
      }
      if (!any) continue;
      s.transfers.push_back(t.transfers[c]);
      s.cells.push_back(line);
      s.no_front.push_back(base ? base->cells[c] : std::nullopt);
    }
    if (!s.transfers.empty()) out.push_back(s);
  }
  return out;
}

void write_k_plot(const KSweep& s, const std::string& path) {
  LineChart c;
  c.title = "Target accuracy against NeuRN's k, " + s.variant;
  c.xlabel = "k (NeuRN patch size)";
  c.ylabel = "target accuracy (%)";
  for (int k : s.k) c.xticks.push_back(k);
  // One source: the lines are named by target; several: by transfer.
  std::set<std::string> sources;
  for (auto& tr : s.transfers) sources.insert(tr.source);
  for (size_t i = 0; i < s.transfers.size(); ++i) {
    const Transfer& tr = s.transfers[i];
    std::string name = sources.size() == 1 ? domain_long(tr.target) : tr.label();
    Series line;
    line.label = name + " with NeuRN (mean ± std)";
    line.color = palette(i);
    for (size_t j = 0; j < s.k.size(); ++j) {
      line.x.push_back(s.k[j]);
      line.y.push_back(s.cells[i][j] ? s.cells[i][j]->mean : NAN);
      line.err.push_back(s.cells[i][j] ? s.cells[i][j]->std : NAN);
    }
    c.series.push_back(line);
    if (s.no_front[i]) {
      Series ref;
      ref.label = name + " without a front";
      ref.color = palette(i);
      ref.dashed = true;
      ref.x = {static_cast<double>(s.k.front()), static_cast<double>(s.k.back())};
      ref.y = {s.no_front[i]->mean, s.no_front[i]->mean};
      c.series.push_back(ref);
    }
  }
  // Room above and below the data, so a line at the top (a no-front
  // accuracy) is not drawn on the frame.
  double lo = INFINITY, hi = -INFINITY;
  for (auto& line : c.series)
    for (size_t j = 0; j < line.y.size(); ++j) {
      if (!std::isfinite(line.y[j])) continue;
      double e = j < line.err.size() && std::isfinite(line.err[j]) ? line.err[j] : 0.0;
      lo = std::min(lo, line.y[j] - e), hi = std::max(hi, line.y[j] + e);
    }
  if (std::isfinite(lo)) {
    double pad = std::max(0.5, 0.05 * (hi - lo));
    c.y_include = {lo - pad, hi + pad};
  }
  write_line_chart(c, path, 720, 420);
}

namespace {

std::string table1_html(const Table1& t) {
  std::ostringstream s;
  s << "<table><tr><th>Model</th>";
  for (auto& tr : t.transfers) s << "<th>" << html_escape(domain_short(tr.source) + "→" + domain_short(tr.target)) << "</th>";
  const bool seeds = shows_seeds(t);
  s << "<th>" << html_escape(better_heading(t)) << "</th>" << (seeds ? "<th>Seeds</th>" : "") << "</tr>\n";
  for (auto& r : t.rows) {
    s << "<tr" << (!r.front.empty() ? " class=\"neurn\"" : "") << "><td>" << html_escape(table1_row_name(r))
      << "</td>";
    for (size_t k = 0; k < r.cells.size(); ++k)
      s << "<td" << (r.improved[k] ? " class=\"up\"" : "") << ">" << html_escape(cell_text(r.cells[k])) << "</td>";
    s << "<td>" << (!r.front.empty() ? std::to_string(r.improved_count) + " of " + std::to_string(r.compared) : "")
      << "</td>" << (seeds ? "<td>" + html_escape(seeds_text(r)) + "</td>" : "") << "</tr>\n";
  }
  s << "</table>\n";
  return s.str();
}

std::string matrix_html(const std::vector<std::vector<int64_t>>& m) {
  std::ostringstream s;
  s << "<table class=\"cm\"><tr><th>true \\ pred</th>";
  for (size_t j = 0; j < m.size(); ++j) s << "<th>" << j << "</th>";
  s << "</tr>";
  for (size_t i = 0; i < m.size(); ++i) {
    s << "<tr><th>" << i << "</th>";
    for (auto v : m[i]) s << "<td>" << v << "</td>";
    s << "</tr>";
  }
  s << "</table>";
  return s.str();
}

}  // namespace

ReportFiles write_report(const LoadedResults& results, const std::string& out_dir, const std::string& title,
                         const ReportOptions& options) {
  ReportFiles f;
  f.dir = out_dir;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  NEURN_CHECK(!ec, "cannot create report directory ", out_dir, ": ", ec.message());
  Table1 t = build_table1(results.records);
  f.markdown = out_dir + "/table1.md";
  f.csv = out_dir + "/table1.csv";
  f.latex = out_dir + "/table1.tex";
  write_file_atomic(f.markdown, table1_markdown(t));
  write_file_atomic(f.csv, table1_csv(t));
  write_file_atomic(f.latex, table1_latex(t));

  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" << html_escape(title) << "</title>\n"
    << "<style>body{font-family:DejaVu Sans,Arial,sans-serif;margin:2em;max-width:1400px}"
       "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
       "td:first-child,th:first-child{text-align:left}tr.neurn{background:#f4f8ff}td.up{font-weight:bold;color:#0a6}"
       "table.cm td,table.cm th{padding:1px 4px;font-size:11px}.warn{color:#a40}img{max-width:100%}</style>"
       "</head><body>\n";
  h << "<h1>" << html_escape(title) << "</h1>\n<p>" << results.records.size() << " runs, report written "
    << utc_now() << " by " << html_escape(code_version()) << ".</p>\n";
  if (!results.warnings.empty()) {
    h << "<h2>Warnings</h2><ul>";
    for (auto& w : results.warnings) h << "<li class=\"warn\">" << html_escape(w) << "</li>";
    h << "</ul>\n";
  }
  h << "<h2>Table 1: accuracy (%) on the target domains</h2>\n"
    << "<p>Mean ± sample standard deviation over seeds (Seeds: how many per cell); bold green: the front "
       "(NeuRN, LRN, LCN) improves on the same model without one. Files: "
       "<a href=\"table1.md\">Markdown</a>, <a href=\"table1.csv\">CSV</a>, <a href=\"table1.tex\">LaTeX</a>.</p>\n"
    << table1_html(t);

  // The published baselines of the single-source digits protocol.
  const bool baselines = options.baselines == ReportOptions::Baselines::Always ||
                         (options.baselines == ReportOptions::Baselines::Auto && follows_digits_protocol(results.records));
  if (baselines) {
    BaselineTable b = build_baseline_table(t);
    f.baselines = out_dir + "/baselines.md";
    write_file_atomic(f.baselines, baseline_table_markdown(b));
    h << "<h2>Published single-source baselines (train on MNIST 10k)</h2>\n"
      << "<p>Beside our rows trained on MNIST. File: <a href=\"baselines.md\">Markdown</a>.</p>\n"
      << baseline_table_html(b);
  }

  // Accuracy against NeuRN's k, where the records hold several k.
  auto sweeps = neurn_k_sweeps(t);
  if (!sweeps.empty()) {
    h << "<h2>Target accuracy against NeuRN's k</h2>\n<p>Mean over seeds with error bars of one sample standard "
         "deviation; dashed: the same model without a front. Only NeuRN rows that differ from the default in k "
         "alone.</p>\n";
    for (auto& sw : sweeps) {
      std::string name = sweeps.size() == 1 ? "accuracy_vs_k" : "accuracy_vs_k_" + safe_name(sw.variant);
      write_k_plot(sw, out_dir + "/" + name + ".png");
      write_k_plot(sw, out_dir + "/" + name + ".svg");
      f.figures.push_back(out_dir + "/" + name + ".png");
      f.figures.push_back(out_dir + "/" + name + ".svg");
      h << "<figure><img src=\"" << name << ".svg\" alt=\"" << name << "\"><figcaption><a href=\"" << name
        << ".png\">PNG</a></figcaption></figure>\n";
    }
  }

  auto sim = functional_similarity(t);
  h << "<h2>Functional similarity</h2>\n";
  if (sim) {
    std::string cols;
    for (auto& tr : sim->transfers) cols += (cols.empty() ? "" : ", ") + tr.label();
    h << "<p>Cosine similarity of the models' accuracy rows over " << html_escape(cols)
      << ". Mean off-diagonal similarity: <b>" << fmt(sim->mean_offdiag_before, 3) << "</b> without NeuRN, <b>"
      << fmt(sim->mean_offdiag_after, 3) << "</b> with NeuRN.</p>\n";
    double lo = 1.0;
    for (auto* m : {&sim->before, &sim->after})
      for (auto& row : *m)
        for (double v : row)
          if (std::isfinite(v)) lo = std::min(lo, v);
    lo = std::floor(lo * 20) / 20;
    double dmax = 1e-3;
    for (auto& row : sim->difference)
      for (double v : row)
        if (std::isfinite(v)) dmax = std::max(dmax, std::abs(v));
    struct Fig {
      const char* name;
      std::string title;
      const std::vector<std::vector<double>>* m;
      bool div;
    };
    for (const Fig& fig : {Fig{"similarity_without_neurn", "Without NeuRN (mean off-diagonal " +
                                                               fmt(sim->mean_offdiag_before, 3) + ")",
                               &sim->before, false},
                           Fig{"similarity_with_neurn",
                               "With NeuRN (mean off-diagonal " + fmt(sim->mean_offdiag_after, 3) + ")", &sim->after,
                               false},
                           Fig{"similarity_difference", "With minus without NeuRN", &sim->difference, true}}) {
      Heatmap hm;
      hm.title = fig.title;
      hm.labels = sim->models;
      hm.values = *fig.m;
      hm.diverging = fig.div;
      hm.lo = fig.div ? -dmax : lo;
      hm.hi = fig.div ? dmax : 1.0;
      hm.decimals = fig.div ? 3 : 2;
      hm.colorbar_label = fig.div ? "difference of cosine similarity" : "cosine similarity";
      std::string png = out_dir + "/" + fig.name + ".png", svg = out_dir + "/" + fig.name + ".svg";
      write_heatmap(hm, png);
      write_heatmap(hm, svg);
      f.figures.push_back(png);
      f.figures.push_back(svg);
      h << "<figure style=\"display:inline-block\"><img src=\"" << fig.name << ".svg\" alt=\"" << fig.name
        << "\"><figcaption><a href=\"" << fig.name << ".png\">PNG</a></figcaption></figure>\n";
    }
  } else {
    h << "<p>Needs at least two models, each with and without NeuRN, with common transfers.</p>\n";
  }

  // Training curves, one chart per source domain and metric.
  h << "<h2>Training curves</h2>\n";
  std::vector<std::string> sources;
  for (auto& r : results.records)
    if (std::find(sources.begin(), sources.end(), r.source) == sources.end()) sources.push_back(r.source);
  std::sort(sources.begin(), sources.end(), [](auto& a, auto& b) { return domain_rank(a) < domain_rank(b); });
  // Curves are coloured by variant (label as Table 1 prints it, diverged runs too).
  std::vector<std::string> groups = t.groups;
  auto group_of = [](const RunRecord& r) {
    RecordGroup g = record_group(r);
    return g.label + "\x1f" + g.vfp;
  };
  for (auto& r : results.records)
    if (std::find(groups.begin(), groups.end(), group_of(r)) == groups.end()) groups.push_back(group_of(r));
  // An ablation (fronts beyond the default NeuRN): coloured by front
  // instead, in Table 1's row order, so each front's seeds share a colour.
  std::vector<std::string> front_labels;
  for (auto& row : t.rows)
    if (std::find(front_labels.begin(), front_labels.end(), row.front) == front_labels.end())
      front_labels.push_back(row.front);
  for (auto& r : results.records) {
    std::string l = record_front(r).label;
    if (std::find(front_labels.begin(), front_labels.end(), l) == front_labels.end()) front_labels.push_back(l);
  }
  const bool by_front = better_heading(t) != "NeuRN better";
  for (auto& src : sources) {
    for (int metric = 0; metric < 2; ++metric) {
      LineChart c;
      c.title = std::string(metric == 0 ? "Validation accuracy" : "Training loss") + ", source " + src;
      c.xlabel = "epoch";
      c.ylabel = metric == 0 ? "source validation accuracy" : "mean training loss";
      for (auto& r : results.records) {
        if (r.source != src || r.history.empty()) continue;
        Series s;
        size_t gi = static_cast<size_t>(std::find(groups.begin(), groups.end(), group_of(r)) - groups.begin());
        std::string v = gi < t.models.size() ? t.models[gi] : record_variant(r);
        RecordFront fr = record_front(r);
        s.label = v + (fr.label.empty() ? "" : "+" + front_display_name(fr.label)) + " s" + std::to_string(r.seed);
        size_t fi = static_cast<size_t>(std::find(front_labels.begin(), front_labels.end(), fr.label) -
                                        front_labels.begin());
        s.color = palette(by_front ? fi : gi);
        s.dashed = fr.label.empty();
        for (auto& e : r.history) {
          s.x.push_back(e.epoch);
          s.y.push_back(metric == 0 ? e.val_acc : e.train_loss);
        }
        c.series.push_back(s);
      }
      if (c.series.empty()) continue;
      std::string name = "curves_" + safe_name(src) + (metric == 0 ? "_val_acc" : "_train_loss") + ".svg";
      write_line_chart(c, out_dir + "/" + name);
      f.figures.push_back(out_dir + "/" + name);
      h << "<img src=\"" << name << "\" alt=\"" << name << "\">\n";
    }
  }
  h << "<p>Dashed: without a front; solid: with one (NeuRN, LRN, LCN).</p>\n";

  // Every run, with per-class accuracy and confusion matrices.
  h << "<h2>Runs</h2>\n<table><tr><th>run</th><th>status</th><th>epochs</th><th>best epoch</th><th>val acc</th>"
       "<th>source test</th><th>targets</th><th>time (s)</th><th>device</th></tr>\n";
  for (auto& r : results.records) {
    std::string targets;
    for (auto& [d, m] : r.targets) targets += domain_short(d) + " " + fmt(100 * m.accuracy) + "  ";
    for (auto& [d, why] : r.skipped_targets) targets += domain_short(d) + " skipped  ";
    h << "<tr><td>" << html_escape(r.run_id) << "</td><td" << (r.status != "ok" ? " class=\"warn\"" : "") << ">"
      << html_escape(r.status) << (r.message.empty() ? "" : ": " + html_escape(r.message)) << "</td><td>"
      << r.epochs_run << "</td><td>" << r.best_epoch << "</td><td>" << fmt(100 * r.best_val_acc) << "</td><td>"
      << fmt(100 * r.source_test.accuracy) << "</td><td>" << html_escape(targets) << "</td><td>"
      << fmt(r.wall_seconds, 0) << "</td><td>" << html_escape(r.device) << "</td></tr>\n";
  }
  h << "</table>\n<h2>Per-class accuracy and confusion matrices</h2>\n";
  for (auto& r : results.records) {
    if (r.status != "ok") continue;
    h << "<details><summary>" << html_escape(r.run_id) << "</summary>\n";
    std::vector<const SplitMetrics*> splits{&r.source_test};
    for (auto& [d, m] : r.targets) splits.push_back(&m);
    for (auto* m : splits) {
      h << "<h4>" << html_escape(m->domain) << (m == &r.source_test ? " (source test)" : "") << ": "
        << fmt(100 * m->accuracy) << "% of " << m->images << " images</h4><p>per class:";
      for (size_t c = 0; c < m->per_class.size(); ++c)
        h << " " << c << ": " << (std::isfinite(m->per_class[c]) ? fmt(100 * m->per_class[c]) : std::string("–"));
      h << "</p>" << matrix_html(m->confusion) << "\n";
    }
    h << "</details>\n";
  }
  h << "</body></html>\n";
  f.html = out_dir + "/index.html";
  write_file_atomic(f.html, h.str());
  return f;
}

}  // namespace neurn::experiments
