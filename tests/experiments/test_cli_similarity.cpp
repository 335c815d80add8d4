// `neurn similarity` and `neurn models trace` end to end: the JSON of an
// alignment, the DP matrix, the files of the all-pairs analysis, and clear
// errors. Needs NEURN_BIN (ctest sets it).
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "run_cli.h"
#include "skip.h"
#include "test_files.h"

namespace fs = std::filesystem;
using neurn::testing::fresh_dir;
using neurn::testing::slurp;

namespace {
std::vector<std::vector<std::string>> read_csv(const fs::path& p) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(slurp(p));
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream l(line);
    for (std::string c; std::getline(l, c, ',');) cells.push_back(c);
    rows.push_back(cells);
  }
  return rows;
}
}  // namespace

TEST_CASE("neurn similarity --align: score, index and aligned traces as JSON; the DP matrix" * SKIP_UNLESS_BIN) {
  std::string out;
  REQUIRE(neurn::testing::run_neurn("similarity --align seq:Conv,ReLU,MaxPool,Conv seq:Conv,BN,ReLU,MaxPool --json", out) == 0);
  auto j = nlohmann::json::parse(out);
  CHECK(j["score"] == 10);
  CHECK(j["index"].get<double>() == doctest::Approx(0.7));
  CHECK(j["aligned_a"] == std::vector<std::string>{"Conv", "-", "ReLU", "MaxPool", "Conv"});
  CHECK(j["aligned_b"] == std::vector<std::string>{"Conv", "BN", "ReLU", "MaxPool", "-"});
  CHECK(j["borders"] == "gap");
  // Other scores and zero borders: ReLU,Conv vs Conv, the leading gap free.
  REQUIRE(neurn::testing::run_neurn("similarity --align seq:ReLU,Conv seq:Conv --borders zero --json", out) == 0);
  CHECK(nlohmann::json::parse(out)["score"] == 4);
  REQUIRE(neurn::testing::run_neurn("similarity --align seq:ReLU,Conv seq:Conv --match 2 --gap -3 --json", out) == 0);
  CHECK(nlohmann::json::parse(out)["score"] == -1);
  // Text, with the matrix and the traceback path.
  REQUIRE(neurn::testing::run_neurn("similarity --align seq:Conv,ReLU,MaxPool,Conv seq:Conv,BN,ReLU,MaxPool --matrix", out) == 0);
  CHECK(out.find("score: 10") != std::string::npos);
  CHECK(out.find("index: 0.7000") != std::string::npos);
  CHECK(out.find("11*") != std::string::npos);  // F(3, 4) on the path
  // A registry model against itself: index 1.
  REQUIRE(neurn::testing::run_neurn("similarity --align mobilenet mobilenet --json", out) == 0);
  CHECK(nlohmann::json::parse(out)["index"] == 1.0);
}

TEST_CASE("neurn models trace: tokens and codes" * SKIP_UNLESS_BIN) {
  std::string out;
  REQUIRE(neurn::testing::run_neurn("models trace vgg19 --json", out) == 0);
  auto j = nlohmann::json::parse(out);
  CHECK(j["model"] == "vgg19");
  auto toks = j["tokens"].get<std::vector<std::string>>();
  REQUIRE(toks.size() == 46);
  CHECK(std::vector<std::string>(toks.begin(), toks.begin() + 5) ==
        std::vector<std::string>{"Conv", "ReLU", "Conv", "ReLU", "MaxPool"});
  CHECK(j["codes"].get<std::string>().substr(0, 5) == "CRCRM");
  REQUIRE(neurn::testing::run_neurn("models trace digits_convnet", out) == 0);
  CHECK(out.find("digits_convnet: 12 tokens") != std::string::npos);
  CHECK(neurn::testing::run_neurn("models trace resnet51", out) != 0);
  CHECK(out.find("resnet51") != std::string::npos);
}

TEST_CASE("neurn similarity --models: matrices, clusters, figures, shortlist" * SKIP_UNLESS_BIN) {
  fs::path dir = fresh_dir("cli_similarity");
  std::string out;
  const std::string models = "vgg19,resnet50,resnet50v2,mobilenet,mobilenet_v2,digits_convnet";
  REQUIRE(neurn::testing::run_neurn("similarity --models " + models + " --output " + dir.string() + " --shortlist 3 --top 20", out) == 0);
  INFO(out);
  CHECK(out.find("shortlist (3): ") != std::string::npos);
  CHECK(out.find("N-W: 21 pairs") != std::string::npos);
  CHECK(out.find("adjusted Rand index") != std::string::npos);
  for (const char* f : {"nw_score.csv", "nw_index.csv", "pattern_index.csv", "pairs.csv", "clusters.csv",
                        "nw_heatmap.png", "nw_heatmap.svg", "pattern_heatmap.png", "pattern_heatmap.svg",
                        "patterns_top.png", "patterns_top.svg", "summary.json"})
    CHECK_MESSAGE(fs::exists(dir / f), f);
  auto idx = read_csv(dir / "nw_index.csv");
  REQUIRE(idx.size() == 7);
  CHECK(idx[0][0] == "model");
  CHECK(idx[1][0] == "vgg19");
  for (size_t i = 1; i < 7; ++i) {
    REQUIRE(idx[i].size() == 7);
    CHECK(idx[i][i] == "1.000000");
    for (size_t j = 1; j < 7; ++j) CHECK(idx[i][j] == idx[j][i]);
  }
  auto score = read_csv(dir / "nw_score.csv");
  CHECK(score[1][1] == "184");  // vgg19 with itself: 46 tokens x 4
  CHECK(read_csv(dir / "pairs.csv").size() == 1 + 15);
  auto summary = nlohmann::json::parse(slurp(dir / "summary.json"));
  CHECK(summary["shortlist"].size() == 3);
  CHECK(summary["clusters"].size() == 3);
  // The two ResNets share a cluster.
  auto labels = summary["nw_labels"].get<std::vector<int>>();
  CHECK(labels[1] == labels[2]);
  CHECK(slurp(dir / "nw_heatmap.png").substr(1, 3) == "PNG");
  std::string svg = slurp(dir / "nw_heatmap.svg");
  // cairo's SVG (its text drawn as glyph outlines; tests/experiments/test_plot.cpp parses it).
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find("<path") != std::string::npos);
  CHECK(slurp(dir / "patterns_top.svg").find("<svg") != std::string::npos);
  // --exclude drops models from the list (here all but two, by an alias too).
  REQUIRE(neurn::testing::run_neurn("similarity --models " + models + " --exclude resnet50v2,mobilenetv2,mobilenet,digits_convnet --output " +
                  dir.string(),
              out) == 0);
  CHECK(out.find("2 models") != std::string::npos);
  CHECK(neurn::testing::run_neurn("similarity --models all --exclude resnet51 --output " + dir.string(), out) != 0);
  CHECK(out.find("--exclude: 'resnet51' is not a registry model") != std::string::npos);
  // The correlation measure writes its matrix too.
  REQUIRE(neurn::testing::run_neurn("similarity --models " + models + " --output " + dir.string() + " --measure correlation", out) == 0);
  CHECK(fs::exists(dir / "nw_correlation.csv"));
}

TEST_CASE("neurn similarity: bad input is a clear error" * SKIP_UNLESS_BIN) {
  std::string out;
  CHECK(neurn::testing::run_neurn("similarity --align seq:Conv,Convolution seq:Conv", out) != 0);
  CHECK(out.find("unknown token 'Convolution'") != std::string::npos);
  CHECK(neurn::testing::run_neurn("similarity --align resnet51 seq:Conv", out) != 0);
  CHECK(out.find("'resnet51' is neither a registry model") != std::string::npos);
  CHECK(neurn::testing::run_neurn("similarity --align seq:Conv seq:Conv --borders none", out) != 0);
  CHECK(out.find("expected gap or zero, got 'none'") != std::string::npos);
  CHECK(neurn::testing::run_neurn("similarity --models all", out) != 0);
  CHECK(out.find("--output DIR is required") != std::string::npos);
  CHECK(neurn::testing::run_neurn("similarity --models vgg19,resnet50 --output " + fresh_dir("cli_similarity_bad").string() + " --shortlist 3", out) != 0);
  CHECK(out.find("--shortlist: K must be in 1..2") != std::string::npos);
  CHECK(neurn::testing::run_neurn("similarity --models vgg19,resnet50,vgg19 --output " + fresh_dir("cli_similarity_bad").string(), out) != 0);
  CHECK(out.find("'vgg19' is listed twice") != std::string::npos);
  CHECK(neurn::testing::run_neurn("similarity --align seq:Conv seq:Conv --match -2", out) != 0);
  CHECK(out.find("--match (-2) must be greater than --mismatch") != std::string::npos);
}
