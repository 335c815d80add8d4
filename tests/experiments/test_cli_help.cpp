// The real `neurn` binary: --help and -h on every command and group (found
// from `neurn completion`, so a new command is covered without an edit here),
// the shared flag names, and the usage errors end to end.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "experiments/command_line.h"
#include "run_cli.h"
#include "skip.h"

namespace {

// "path" -> its words (subcommands and flags), from the completion script.
std::map<std::string, std::set<std::string>> command_words() {
  std::string script;
  REQUIRE(neurn::testing::run_neurn("completion", script, "", false) == 0);
  std::map<std::string, std::set<std::string>> at;
  std::regex line("\\n    \"([^\"]*)\"\\) opts=\"([^\"]*)\" ;;");
  for (std::sregex_iterator it(script.begin(), script.end(), line), end; it != end; ++it) {
    std::set<std::string> words;
    std::string list = (*it)[2];
    for (size_t a = 0; a <= list.size();) {
      size_t b = list.find(' ', a);
      if (b == std::string::npos) b = list.size();
      if (b > a) words.insert(list.substr(a, b - a));
      a = b + 1;
    }
    at[(*it)[1]] = words;
  }
  return at;
}

}  // namespace

TEST_CASE("neurn: --help and -h on every command and group, the same text, exit 0" * SKIP_UNLESS_BIN) {
  auto at = command_words();
  REQUIRE(at.count("run"));
  REQUIRE(at.count("data prepare"));
  REQUIRE(at.count("nas spos"));
  REQUIRE(at.count("bench train-step"));
  CHECK(at.size() >= 20);
  for (auto& [path, words] : at) {
    if (path.empty()) continue;
    INFO("neurn " << path);
    std::string help, h;
    CHECK(neurn::testing::run_neurn(path + " --help", help, "", false) == 0);
    CHECK(neurn::testing::run_neurn(path + " -h", h, "", false) == 0);
    CHECK(help == h);
    CHECK(help.find("Usage:") != std::string::npos);
    for (auto& w : words)
      if (w.rfind("--", 0) == 0) CHECK_MESSAGE(help.find(w) != std::string::npos, w);
  }
}

TEST_CASE("neurn: every command spells its flags the shared way" * SKIP_UNLESS_BIN) {
  const auto& old = neurn::cli::deprecated_flag_spellings();
  std::map<std::string, int> uses;
  for (auto& [path, words] : command_words())
    for (auto& w : words) {
      if (w.rfind("--", 0) != 0) continue;
      std::string name = w.substr(2);
      INFO("neurn " << path << " " << w);
      CHECK((old.count(name) == 0 || name == "neurn"));
      ++uses[name];
    }
  // The flags the issue named, each under one spelling in several commands.
  CHECK(uses["data-root"] >= 5);
  CHECK(uses["output"] >= 5);
  CHECK(uses["batch-size"] >= 4);
  CHECK(uses["image-size"] >= 4);
  CHECK(uses["neurn-options"] >= 3);
  CHECK(uses["root"] == 0);
  CHECK(uses["out"] == 0);
  CHECK(uses["batch"] == 0);
  CHECK(uses["size"] == 0);
}

TEST_CASE("neurn: usage errors name the flag and what it expected" * SKIP_UNLESS_BIN) {
  std::string out;
  // A value flag given last used to become "true" and match nothing.
  CHECK(neurn::testing::run_neurn("run experiments/configs/quickstart.yaml --only", out) == 2);
  CHECK(out.find("neurn run: error: --only") != std::string::npos);
  CHECK(neurn::testing::run_neurn("train --model digits_convnet --source mnist --batch-size 12abc", out) == 2);
  CHECK(out.find("--batch-size: expects an integer, got '12abc'") != std::string::npos);
  CHECK(neurn::testing::run_neurn("run experiments/configs/quickstart.yaml --resume=maybe", out) == 2);
  CHECK(out.find("--resume") != std::string::npos);
  CHECK(neurn::testing::run_neurn("data prepare --root", out) == 2);  // the old spelling, still a value flag
  CHECK(out.find("--root") != std::string::npos);
  CHECK(neurn::testing::run_neurn("run", out) == 2);
  CHECK(out.find("expected 1 argument (CONFIG.yaml), got 0") != std::string::npos);
  CHECK(neurn::testing::run_neurn("eval --domain mnist x", out) == 2);
  CHECK(out.find("unknown flag --domain (did you mean --domains?)") != std::string::npos);
  CHECK(neurn::testing::run_neurn("data", out) == 2);
  CHECK(out.find("prepare") != std::string::npos);
}

TEST_CASE("docs/cli.md holds the table `neurn flags` prints, row for row" * SKIP_UNLESS_BIN) {
  std::string table;
  REQUIRE(neurn::testing::run_neurn("flags", table, "", false) == 0);
  std::ifstream f(std::string(NEURN_SOURCE_DIR) + "/docs/cli.md");
  REQUIRE(f.good());
  std::stringstream doc;
  doc << f.rdbuf();
  std::istringstream rows(table);
  int n = 0;
  for (std::string row; std::getline(rows, row); ++n) {
    INFO("row missing from docs/cli.md (regenerate it with `neurn flags`): " << row);
    CHECK(doc.str().find(row + "\n") != std::string::npos);
  }
  CHECK(n > 40);
}
