// results.jsonl (append, corrupt lines, shards) and the report built from a
// known results file: Table 1 values, improvement counts, similarity.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiments/report.h"
#include "experiments/results.h"
#include "gradcheck.h"
#include "test_files.h"

using namespace neurn::experiments;
using neurn::testing::fresh_dir;
using neurn::testing::slurp;
namespace fs = std::filesystem;

namespace {

RunRecord make(const std::string& model, bool neurn, const std::string& source, uint64_t seed,
               std::map<std::string, double> target_acc) {
  RunRecord r;
  r.model = model;
  r.neurn = neurn;
  r.source = source;
  r.seed = seed;
  r.run_id = model + (neurn ? "+neurn" : "") + "/" + source + "/seed" + std::to_string(seed);
  r.status = "ok";
  r.epochs_run = 3;
  r.best_epoch = 2;
  r.best_val_acc = 0.9;
  r.source_test = {source, 100, 0.95, std::vector<double>(10, 0.95), {}};
  for (auto& [t, a] : target_acc) r.targets[t] = {t, 50, a, std::vector<double>(10, a), {{45, 5}, {0, 0}}};
  r.history = {{1, 1.0, 0.6, 0.7, 1.0, 100}, {2, 0.5, 0.8, 0.9, 1.0, 100}, {3, 0.4, 0.85, 0.88, 1.0, 100}};
  return r;
}

}  // namespace

TEST_CASE("results: round trip, NaN survives as null, corrupt lines skipped and never overwritten") {
  fs::path dir = fresh_dir("results");
  std::string path = (dir / "results.jsonl").string();
  RunRecord a = make("m1", false, "mnist", 0, {{"usps", 0.5}});
  a.history[1].train_loss = std::nan("");
  append_record(path, a);
  // A torn line from a writer that died (no newline at the end).
  {
    std::ofstream out(path, std::ios::app);
    out << "{\"run_id\": \"torn";
  }
  RunRecord b = make("m1", true, "mnist", 0, {{"usps", 0.6}});
  append_record(path, b);
  {
    std::ofstream out(path, std::ios::app);
    out << "{\"run_id\": \"x\"}\n";  // valid JSON, missing fields
  }
  append_record(path, a);  // the same run again: the first record wins

  std::string text = slurp(path);
  CHECK(text.find("{\"run_id\": \"torn\n") != std::string::npos);  // kept as it was

  LoadedResults res = load_results(path);
  REQUIRE(res.records.size() == 2);
  CHECK(res.records[0].run_id == "m1/mnist/seed0");
  CHECK(std::isnan(res.records[0].history[1].train_loss));
  CHECK(res.records[0].history[2].train_loss == doctest::Approx(0.4));
  CHECK(res.records[1].targets.at("usps").accuracy == doctest::Approx(0.6));
  CHECK(res.records[1].targets.at("usps").confusion == std::vector<std::vector<int64_t>>{{45, 5}, {0, 0}});
  REQUIRE(res.warnings.size() == 3);
  CHECK(res.warnings[0].find("results.jsonl:2: corrupt record skipped: not valid JSON") != std::string::npos);
  CHECK(res.warnings[1].find("results.jsonl:4: corrupt record skipped: missing field 'model'") != std::string::npos);
  CHECK(res.warnings[2].find("is recorded again") != std::string::npos);

  // Shards merge; a run present in two shards is kept once.
  fs::create_directories(dir / "shard1");
  append_record((dir / "shard1" / "results.jsonl").string(), make("m2", false, "usps", 0, {{"mnist", 0.4}}));
  append_record((dir / "shard1" / "results.jsonl").string(), b);
  LoadedResults merged = load_results_dir(dir.string());
  CHECK(merged.records.size() == 3);
  CHECK_THROWS_CONTAINING(load_results_dir((dir / "nope").string()), "does not exist");
  fs::remove_all(dir);
}

TEST_CASE("write_file_atomic replaces the whole file") {
  fs::path dir = fresh_dir("atomic");
  std::string p = (dir / "sub" / "meta.json").string();
  write_file_atomic(p, "first");
  write_file_atomic(p, "second");
  CHECK(slurp(p) == "second");
  for (auto& e : fs::directory_iterator(dir / "sub")) CHECK(e.path().filename() == "meta.json");  // no temp left
  CHECK_THROWS_CONTAINING(write_file_atomic("/proc/neurn_cannot/x", "y"), "cannot create directory /proc/neurn_cannot");
  fs::remove_all(dir);
}

TEST_CASE("report: Table 1 values, improvement counts and functional similarity from a known file") {
  // Two models, two seeds, transfers M->U, M->MM and U->M. Values in [0, 1].
  std::vector<RunRecord> recs;
  // model A without: M->U 0.50/0.60 (mean 55, std 7.07), M->MM 0.30/0.30, U->M 0.70/0.70
  recs.push_back(make("A", false, "mnist", 0, {{"usps", 0.50}, {"mnistm", 0.30}}));
  recs.push_back(make("A", false, "mnist", 1, {{"usps", 0.60}, {"mnistm", 0.30}}));
  recs.push_back(make("A", false, "usps", 0, {{"mnist", 0.70}}));
  recs.push_back(make("A", false, "usps", 1, {{"mnist", 0.70}}));
  // model A with NeuRN: better on M->U and M->MM, worse on U->M
  recs.push_back(make("A", true, "mnist", 0, {{"usps", 0.70}, {"mnistm", 0.50}}));
  recs.push_back(make("A", true, "mnist", 1, {{"usps", 0.80}, {"mnistm", 0.40}}));
  recs.push_back(make("A", true, "usps", 0, {{"mnist", 0.60}}));
  recs.push_back(make("A", true, "usps", 1, {{"mnist", 0.60}}));
  // model B, one seed
  recs.push_back(make("B", false, "mnist", 0, {{"usps", 0.40}, {"mnistm", 0.20}}));
  recs.push_back(make("B", false, "usps", 0, {{"mnist", 0.90}}));
  recs.push_back(make("B", true, "mnist", 0, {{"usps", 0.45}, {"mnistm", 0.25}}));
  recs.push_back(make("B", true, "usps", 0, {{"mnist", 0.95}}));
  // A diverged run does not count.
  RunRecord bad = make("B", true, "mnist", 7, {{"usps", 0.0}});
  bad.status = "diverged";
  recs.push_back(bad);

  Table1 t = build_table1(recs);
  REQUIRE(t.transfers.size() == 3);
  CHECK(t.transfers[0].label() == "M->U");
  CHECK(t.transfers[1].label() == "M->MM");
  CHECK(t.transfers[2].label() == "U->M");
  REQUIRE(t.rows.size() == 4);
  CHECK(t.rows[0].model == "A");
  CHECK_FALSE(t.rows[0].neurn);
  CHECK(t.rows[0].cells[0]->mean == doctest::Approx(55.0));
  CHECK(t.rows[0].cells[0]->std == doctest::Approx(std::sqrt(50.0)));
  CHECK(t.rows[0].cells[0]->seeds == 2);
  CHECK(t.rows[1].cells[0]->mean == doctest::Approx(75.0));
  CHECK(t.rows[1].improved == std::vector<bool>{true, true, false});
  CHECK(t.rows[1].improved_count == 2);
  CHECK(t.rows[1].compared == 3);
  CHECK(t.rows[3].improved_count == 3);
  CHECK(t.rows[3].cells[0]->seeds == 1);  // the diverged seed 7 is left out
  CHECK(t.rows[3].cells[0]->mean == doctest::Approx(45.0));

  std::string md = table1_markdown(t);
  CHECK(md.find("| Model | M->U | M->MM | U->M | NeuRN better |") != std::string::npos);
  CHECK(md.find("| A | 55.0 ± 7.1 | 30.0 ± 0.0 | 70.0 ± 0.0 |  |") != std::string::npos);
  CHECK(md.find("| A + NeuRN | **75.0 ± 7.1** | **45.0 ± 7.1** | 60.0 ± 0.0 | 2 of 3 |") != std::string::npos);
  CHECK(md.find("| B + NeuRN | **45.0** | **25.0** | **95.0** | 3 of 3 |") != std::string::npos);
  std::string csv = table1_csv(t);
  CHECK(csv.find("A,true,75.00,7.07,2,45.00,7.07,2,60.00,0.00,2,2,3") != std::string::npos);
  std::string tex = table1_latex(t);
  CHECK(tex.find("A + NeuRN & \\textbf{75.0 $\\pm$ 7.1}") != std::string::npos);
  CHECK(tex.find("& 2 of 3 \\\\") != std::string::npos);

  auto sim = functional_similarity(t);
  REQUIRE(sim);
  REQUIRE(sim->models.size() == 2);
  std::vector<double> a0{55, 30, 70}, b0{40, 20, 90}, a1{75, 45, 60}, b1{45, 25, 95};
  CHECK(sim->before[0][1] == doctest::Approx(cosine_similarity(a0, b0)));
  CHECK(sim->after[0][1] == doctest::Approx(cosine_similarity(a1, b1)));
  CHECK(sim->before[0][0] == doctest::Approx(1.0));
  CHECK(sim->difference[1][0] == doctest::Approx(sim->after[1][0] - sim->before[1][0]));
  CHECK(sim->mean_offdiag_before == doctest::Approx(cosine_similarity(a0, b0)));
  CHECK(cosine_similarity({1, 0}, {0, 1}) == doctest::Approx(0.0));

  // The same records through a results file give the same table.
  fs::path dir = fresh_dir("report");
  for (auto& r : recs) append_record((dir / "results.jsonl").string(), r);
  LoadedResults from_file = load_results_dir(dir.string());
  CHECK(from_file.warnings.empty());
  CHECK(table1_markdown(build_table1(from_file.records)) == md);

  LoadedResults lr{recs, {"results.jsonl:9: corrupt record skipped: test"}};
  ReportFiles f = write_report(lr, (dir / "report").string(), "test report");
  CHECK(slurp(f.markdown) == md);
  std::string html = slurp(f.html);
  CHECK(html.find("<h1>test report</h1>") != std::string::npos);
  CHECK(html.find("corrupt record skipped") != std::string::npos);
  CHECK(html.find("similarity_with_neurn.svg") != std::string::npos);
  CHECK(html.find("curves_mnist_val_acc.svg") != std::string::npos);
  std::string png = slurp(dir / "report" / "similarity_without_neurn.png");
  REQUIRE(png.size() > 100);
  CHECK(png.substr(1, 3) == "PNG");
  CHECK(slurp(dir / "report" / "similarity_difference.svg").find("<svg") != std::string::npos);
  fs::remove_all(dir);
}
