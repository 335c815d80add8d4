// The ablation report of #19 from hand-made records: one row per front
// (none, NeuRN at several options, LRN, LCN) compared with the same model
// without a front, mean and sample std over seeds, the rows' order, the
// accuracy-against-k data and chart, and the published baselines beside it.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "experiments/baselines.h"
#include "experiments/plot.h"
#include "experiments/report.h"
#include "experiments/results.h"
#include "gradcheck.h"
#include "test_files.h"

using namespace neurn::experiments;
using neurn::testing::fresh_dir;
using neurn::testing::slurp;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct FrontArg {
  std::string label, kind;  // "" / "none" for no front
  json options;             // resolved options (null for none)
};

// A record of the digits ConvNet trained on mnist (10,000 images unless
// told) with `front`, tested on the given targets (accuracies in [0, 1]).
RunRecord make(const FrontArg& front, uint64_t seed, std::map<std::string, double> target_acc,
               int64_t train_images = 10000, const std::string& source = "mnist") {
  RunRecord r;
  r.model = "digits_convnet";
  r.variant = "digits_convnet";
  r.variant_fingerprint = "vfp" + std::to_string(train_images) + source;
  r.front = front.label;
  r.front_kind = front.kind;
  r.neurn = front.kind == "neurn";
  r.source = source;
  r.seed = seed;
  r.run_id = "digits_convnet" + (front.label.empty() ? "" : "+" + front.label) + "/" + source + "/seed" +
             std::to_string(seed);
  r.fingerprint = r.run_id + "#fp";
  json settings = {{"model", {{"name", "digits_convnet"}}},
                   {"neurn", r.neurn},
                   {"source", source},
                   {"seed", seed},
                   {"protocol", {{"name", "single_source"}, {"train_images", train_images}, {"val_images", 1000}}}};
  if (front.kind == "neurn") settings["neurn_options"] = front.options;
  if (front.kind != "neurn" && front.kind != "none") settings["front"] = {{"kind", front.kind}, {"options", front.options}};
  r.settings_json = settings.dump();
  r.status = "ok";
  r.source_test = {source, 100, 0.98, {}, {}};
  for (auto& [t, a] : target_acc) r.targets[t] = {t, 100, a, {}, {}};
  r.history = {{1, 1.0, 0.6, 0.7, 1.0, 100}, {2, 0.5, 0.8, 0.9, 1.0, 100}};
  return r;
}

json neurn_opts(int k, const std::string& padding = "valid", const std::string& scope = "image") {
  return {{"k", k}, {"padding", padding}, {"max_scope", scope}, {"eps", 1e-6}};
}

const FrontArg kNone{"", "none", nullptr};
const FrontArg kNeurn{"neurn", "neurn", neurn_opts(3)};
const FrontArg kK5{"neurn_k5", "neurn", neurn_opts(5)};
const FrontArg kK7{"neurn_k7", "neurn", neurn_opts(7)};
const FrontArg kZero{"neurn_zero", "neurn", neurn_opts(3, "zero")};
const FrontArg kLrn{"lrn", "lrn", {{"size", 5}, {"alpha", 1e-4}, {"beta", 0.75}, {"k", 2.0}}};
const FrontArg kLcn{"lcn", "lcn", {{"size", 9}}};

// Three seeds per front; seed s adds 2 * (s - 1) points to a base accuracy,
// so every cell's mean is the base and its sample std exactly 2.0.
std::vector<RunRecord> ablation_records() {
  struct Base {
    FrontArg f;
    double mnistm, usps, syn;  // in %
  };
  // The records come in the order a resumed, sharded sweep might leave
  // them: LRN before the no-front runs, a NeuRN variant before the default.
  const std::vector<Base> bases{{kLrn, 50, 70, 40},   {kNone, 55, 80, 45}, {kK5, 68, 76, 50}, {kNeurn, 72, 78, 52},
                                {kLcn, 60, 82, 48},   {kK7, 64, 70, 46},   {kZero, 71, 79, 51}};
  std::vector<RunRecord> out;
  for (uint64_t seed = 0; seed < 3; ++seed)
    for (auto& b : bases) {
      double d = 2.0 * (static_cast<double>(seed) - 1.0);
      out.push_back(make(b.f, seed, {{"mnistm", (b.mnistm + d) / 100}, {"usps", (b.usps + d) / 100},
                                     {"syn", (b.syn + d) / 100}}));
    }
  return out;
}

}  // namespace

TEST_CASE("ablation report: a row per front against the same model without one, mean ± sample std over seeds") {
  std::vector<RunRecord> recs = ablation_records();
  RunRecord diverged = make(kK5, 9, {{"usps", 0.0}});
  diverged.status = "diverged";
  recs.push_back(diverged);
  Table1 t = build_table1(recs);
  REQUIRE(t.transfers.size() == 3);
  CHECK(t.transfers[0].label() == "M->U");
  CHECK(t.transfers[1].label() == "M->MM");
  CHECK(t.transfers[2].label() == "M->SYN");
  // Order: no front, the default NeuRN, the other NeuRN rows in the order
  // the records name them, then LRN and LCN, whatever order the records
  // came in.
  REQUIRE(t.rows.size() == 7);
  std::vector<std::string> names;
  for (auto& r : t.rows) names.push_back(table1_row_name(r));
  CHECK(names == std::vector<std::string>{"digits_convnet", "digits_convnet + NeuRN", "digits_convnet + neurn_k5",
                                          "digits_convnet + neurn_k7", "digits_convnet + neurn_zero",
                                          "digits_convnet + LRN", "digits_convnet + LCN"});
  CHECK(t.rows[0].front.empty());
  CHECK(t.rows[0].front_kind == "none");
  CHECK(t.rows[1].neurn);
  CHECK(t.rows[1].front == "neurn");
  CHECK_FALSE(t.rows[5].neurn);
  CHECK(t.rows[5].front_kind == "lrn");
  CHECK(json::parse(t.rows[5].front_options).at("size") == 5);
  for (auto& r : t.rows) {
    CHECK(r.min_seeds == 3);  // the diverged seed 9 of neurn_k5 is left out
    CHECK(r.max_seeds == 3);
    for (auto& c : r.cells) {
      REQUIRE(c);
      CHECK(c->seeds == 3);
      CHECK(c->std == doctest::Approx(2.0).epsilon(1e-9));
    }
  }
  // Means: the bases. NeuRN default: U 78, MM 72, SYN 52 against 80, 55, 45.
  CHECK(t.rows[0].cells[0]->mean == doctest::Approx(80.0));
  CHECK(t.rows[1].cells[0]->mean == doctest::Approx(78.0));
  CHECK(t.rows[1].cells[1]->mean == doctest::Approx(72.0));
  CHECK(t.rows[1].cells[2]->mean == doctest::Approx(52.0));
  CHECK(t.rows[1].improved == std::vector<bool>{false, true, true});
  CHECK(t.rows[1].improved_count == 2);
  CHECK(t.rows[1].compared == 3);
  CHECK(t.rows[2].cells[0]->mean == doctest::Approx(76.0));
  CHECK(t.rows[5].improved_count == 0);  // LRN: 70, 50, 40 against 80, 55, 45
  CHECK(t.rows[6].improved == std::vector<bool>{true, true, true});  // LCN: 82, 60, 48
  CHECK(t.rows[0].compared == 0);

  std::string md = table1_markdown(t);
  CHECK(md.find("| Model | M->U | M->MM | M->SYN | better than no front | Seeds |\n") != std::string::npos);
  CHECK(md.find("| digits_convnet | 80.0 ± 2.0 | 55.0 ± 2.0 | 45.0 ± 2.0 |  | 3 |\n") != std::string::npos);
  CHECK(md.find("| digits_convnet + NeuRN | 78.0 ± 2.0 | **72.0 ± 2.0** | **52.0 ± 2.0** | 2 of 3 | 3 |\n") !=
        std::string::npos);
  CHECK(md.find("| digits_convnet + LRN | 70.0 ± 2.0 | 50.0 ± 2.0 | 40.0 ± 2.0 | 0 of 3 | 3 |\n") != std::string::npos);
  std::string csv = table1_csv(t);
  CHECK(csv.find("digits_convnet,false,70.00,2.00,3,50.00,2.00,3,40.00,2.00,3,0,3,lrn,lrn\n") != std::string::npos);
  CHECK(csv.find("digits_convnet,false,80.00,2.00,3,55.00,2.00,3,45.00,2.00,3,,,,none\n") != std::string::npos);
  std::string tex = table1_latex(t);
  CHECK(tex.find("digits\\_convnet + neurn\\_k5 & 76.0 $\\pm$ 2.0") != std::string::npos);
  CHECK(tex.find("{\\footnotesize 3 seeds per cell}") != std::string::npos);

  // The paper's functional similarity still pairs the no-front row with the
  // default NeuRN (one model here: too few to compare).
  CHECK_FALSE(functional_similarity(t));
}

TEST_CASE("ablation report: seeds per row when they differ; one seed shows no ± and no seed column") {
  std::vector<RunRecord> recs{make(kNone, 0, {{"usps", 0.80}}), make(kNone, 1, {{"usps", 0.90}}),
                              make(kLcn, 0, {{"usps", 0.85}})};
  Table1 t = build_table1(recs);
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0].cells[0]->std == doctest::Approx(std::sqrt(50.0)));
  std::string md = table1_markdown(t);
  CHECK(md.find("| digits_convnet | 85.0 ± 7.1 |  | 2 |\n") != std::string::npos);
  CHECK(md.find("| digits_convnet + LCN | 85.0 | 0 of 1 | 1 |\n") != std::string::npos);
  CHECK(table1_latex(t).find("seeds per cell: digits\\_convnet 2, digits\\_convnet + LCN 1") != std::string::npos);

  Table1 one = build_table1({make(kNone, 0, {{"usps", 0.80}}), make(kNeurn, 0, {{"usps", 0.85}})});
  std::string md1 = table1_markdown(one);
  CHECK(md1.find("| Model | M->U | NeuRN better |\n") != std::string::npos);
  CHECK(md1.find("Seeds") == std::string::npos);
  CHECK(md1.find("| digits_convnet + NeuRN | **85.0** | 1 of 1 |\n") != std::string::npos);
}

TEST_CASE("ablation report: records written before fronts load and group as the default NeuRN") {
  // A record line as the runner wrote it before `front` existed: no "front"
  // field, neurn true, NeuRN's options under settings.neurn_options.
  RunRecord with = make(kNeurn, 0, {{"usps", 0.7}});
  RunRecord without = make(kNone, 0, {{"usps", 0.6}});
  std::vector<RunRecord> loaded;
  for (auto* r : {&without, &with}) {
    json j = json::parse(record_to_json(*r));
    j.erase("front");
    RunRecord back = record_from_json(j.dump());
    CHECK(back.front == (r->neurn ? "neurn" : ""));
    CHECK(back.front_kind == (r->neurn ? "neurn" : "none"));
    loaded.push_back(back);
  }
  Table1 t = build_table1(loaded);
  REQUIRE(t.rows.size() == 2);
  CHECK(table1_row_name(t.rows[1]) == "digits_convnet + NeuRN");
  CHECK(t.rows[1].improved_count == 1);
  CHECK(table1_markdown(t).find("| NeuRN better |") != std::string::npos);
  // Records made with only `neurn` set (front left empty) count the same.
  RunRecord bare = with;
  bare.front.clear();
  bare.front_kind = "none";
  Table1 t2 = build_table1({without, bare});
  REQUIRE(t2.rows.size() == 2);
  CHECK(t2.rows[1].front == "neurn");
  CHECK(t2.rows[1].neurn);
  // The same records written today (with "front") round-trip to one table.
  std::vector<RunRecord> now;
  for (auto* r : {&without, &with}) now.push_back(record_from_json(record_to_json(*r)));
  CHECK(table1_markdown(build_table1(now)) == table1_markdown(t));
}

TEST_CASE("ablation report: accuracy against k from the NeuRN rows that differ from the default in k alone") {
  Table1 t = build_table1(ablation_records());
  auto sweeps = neurn_k_sweeps(t);
  REQUIRE(sweeps.size() == 1);
  const KSweep& s = sweeps[0];
  CHECK(s.variant == "digits_convnet");
  CHECK(s.k == std::vector<int>{3, 5, 7});  // neurn_zero (k 3, zero padding) is not a k point
  REQUIRE(s.transfers.size() == 3);
  CHECK(s.transfers[0].label() == "M->U");
  // U at k 3, 5, 7: 78, 76, 70 (the default row is k 3, not neurn_zero's 79).
  CHECK(s.cells[0][0]->mean == doctest::Approx(78.0));
  CHECK(s.cells[0][1]->mean == doctest::Approx(76.0));
  CHECK(s.cells[0][2]->mean == doctest::Approx(70.0));
  CHECK(s.cells[1][2]->mean == doctest::Approx(64.0));
  CHECK(s.cells[0][1]->std == doctest::Approx(2.0));
  REQUIRE(s.no_front[0]);
  CHECK(s.no_front[0]->mean == doctest::Approx(80.0));

  // k given as text in the options is read the same; one k alone is no sweep.
  std::vector<RunRecord> two{make(kNone, 0, {{"usps", 0.8}}),
                             make({"neurn", "neurn", neurn_opts(3)}, 0, {{"usps", 0.7}}),
                             make({"neurn_k9", "neurn", json{{"k", "9"}, {"padding", "valid"}, {"max_scope", "image"},
                                                            {"eps", 1e-6}}},
                                  0, {{"usps", 0.6}})};
  auto s2 = neurn_k_sweeps(build_table1(two));
  REQUIRE(s2.size() == 1);
  CHECK(s2[0].k == std::vector<int>{3, 9});
  CHECK(neurn_k_sweeps(build_table1({make(kNone, 0, {{"usps", 0.8}}), make(kNeurn, 0, {{"usps", 0.7}}),
                                     make(kZero, 0, {{"usps", 0.6}})}))
            .empty());

  fs::path dir = fresh_dir("k_plot");
  write_k_plot(s, (dir / "k.png").string());
  write_k_plot(s, (dir / "k.svg").string());
  std::string png = slurp(dir / "k.png");
  REQUIRE(png.size() > 100);
  CHECK(png.substr(1, 3) == "PNG");
  CHECK(slurp(dir / "k.svg").find("<svg") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("line chart: error bars must match the points") {
  LineChart c;
  c.title = "bars";
  c.xticks = {3, 5, 11};
  Series s;
  s.label = "a";
  s.x = {3, 5, 11};
  s.y = {70, 72, 60};
  s.err = {1, 2};
  c.series.push_back(s);
  fs::path dir = fresh_dir("bars");
  CHECK_THROWS_WITH_AS(write_line_chart(c, (dir / "c.png").string()), doctest::Contains("has 2 error bars for 3 points"),
                       neurn::Error);
  c.series[0].err = {1, 2, NAN};
  write_line_chart(c, (dir / "c.svg").string());
  CHECK(slurp(dir / "c.svg").find("<svg") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("published baselines: every number cited, averages consistent, shown for the protocol") {
  const auto& pub = published_digits_baselines();
  REQUIRE(pub.size() >= 3);
  for (auto& p : pub) {
    INFO(p.method);
    CHECK_FALSE(p.citation.empty());
    CHECK_FALSE(p.table.empty());
    CHECK_FALSE(p.read_in.empty());
    REQUIRE(p.accuracy.size() == 4);
    double sum = 0;
    for (auto& d : digits_protocol_targets()) {
      REQUIRE(p.accuracy.count(d));
      CHECK(p.accuracy.at(d) > 0);
      CHECK(p.accuracy.at(d) < 100);
      sum += p.accuracy.at(d);
    }
    // The paper's average of its four columns: a transcription slip shows here.
    CHECK(std::abs(sum / 4 - p.average) < 0.006);
  }
  CHECK(pub[0].method == "ERM");
  CHECK(pub[0].accuracy.at("svhn") == 32.52);
  CHECK_FALSE(unsourced_digits_baselines().empty());

  std::vector<RunRecord> recs = ablation_records();
  CHECK(follows_digits_protocol(recs));
  CHECK_FALSE(follows_digits_protocol({}));
  CHECK_FALSE(follows_digits_protocol({make(kNone, 0, {{"usps", 0.8}}, 60000)}));
  CHECK_FALSE(follows_digits_protocol({make(kNone, 0, {{"mnist", 0.8}}, 10000, "usps")}));
  RunRecord no_settings = make(kNone, 0, {{"usps", 0.8}});
  no_settings.settings_json.clear();
  CHECK_FALSE(follows_digits_protocol({no_settings}));

  BaselineTable b = build_baseline_table(build_table1(recs));
  CHECK(b.targets == std::vector<std::string>{"svhn", "mnistm", "syn", "usps"});
  REQUIRE(b.rows.size() == pub.size() + 7);
  CHECK_FALSE(b.rows[0].ours);
  CHECK(b.rows[pub.size()].ours);
  CHECK(b.rows[pub.size()].name == "digits_convnet");
  CHECK(b.rows[pub.size() + 1].name == "digits_convnet + NeuRN");
  CHECK_FALSE(b.rows[pub.size()].cells[0]);  // SVHN not run
  CHECK(b.rows[pub.size()].cells[1]->mean == doctest::Approx(55.0));  // MNIST-M
  CHECK(b.rows[pub.size()].cells[3]->mean == doctest::Approx(80.0));  // USPS
  CHECK_FALSE(b.rows[pub.size()].average);  // three of four targets: no average beside the papers' four
  std::string md = baseline_table_markdown(b);
  CHECK(md.find("| Method | SVHN | MNIST-M | SYN* | USPS | Avg |\n") != std::string::npos);
  CHECK(md.find("| ERM (published) | 32.52 | 54.92 | 42.34 | 78.21 | 52.00 |\n") != std::string::npos);
  CHECK(md.find("| digits_convnet + NeuRN | not run | 72.0 ± 2.0 | 52.0 ± 2.0 | 78.0 ± 2.0 | – |\n") !=
        std::string::npos);
  CHECK(md.find("generated stand-in") != std::string::npos);
  CHECK(md.find("M-ADA") != std::string::npos);
  CHECK(md.find("Table 1") != std::string::npos);

  // With SVHN tested, our row gets an average over the four targets.
  RunRecord full = make(kNone, 0, {{"svhn", 0.30}, {"mnistm", 0.50}, {"syn", 0.40}, {"usps", 0.80}});
  BaselineTable bf = build_baseline_table(build_table1({full}));
  REQUIRE(bf.rows.back().average);
  CHECK(*bf.rows.back().average == doctest::Approx(50.0));
}

TEST_CASE("write_report: the baselines table for the protocol or when asked, the k chart when k varies") {
  fs::path dir = fresh_dir("ablation_report");
  LoadedResults lr{ablation_records(), {}};
  ReportFiles f = write_report(lr, (dir / "a").string(), "ablation");
  REQUIRE_FALSE(f.baselines.empty());
  CHECK(slurp(f.baselines).find("| ERM (published) |") != std::string::npos);
  std::string html = slurp(f.html);
  CHECK(html.find("Published single-source baselines") != std::string::npos);
  CHECK(html.find("accuracy_vs_k.svg") != std::string::npos);
  CHECK(html.find("digits_convnet + LRN") != std::string::npos);
  std::string png = slurp(dir / "a" / "accuracy_vs_k.png");
  REQUIRE(png.size() > 100);
  CHECK(png.substr(1, 3) == "PNG");
  CHECK(slurp(f.markdown).find("| digits_convnet + neurn_k7 |") != std::string::npos);

  ReportOptions never;
  never.baselines = ReportOptions::Baselines::Never;
  ReportFiles g = write_report(lr, (dir / "b").string(), "ablation", never);
  CHECK(g.baselines.empty());
  CHECK_FALSE(fs::exists(dir / "b" / "baselines.md"));
  CHECK(slurp(g.html).find("Published single-source baselines") == std::string::npos);

  // Another protocol: no baselines unless asked, and no k chart with one k.
  LoadedResults other{{make(kNone, 0, {{"usps", 0.8}}, 60000), make(kNeurn, 0, {{"usps", 0.7}}, 60000)}, {}};
  ReportFiles h = write_report(other, (dir / "c").string(), "other");
  CHECK(h.baselines.empty());
  CHECK_FALSE(fs::exists(dir / "c" / "accuracy_vs_k.png"));
  ReportOptions always;
  always.baselines = ReportOptions::Baselines::Always;
  ReportFiles i = write_report(other, (dir / "d").string(), "other", always);
  CHECK_FALSE(i.baselines.empty());
  fs::remove_all(dir);
}
