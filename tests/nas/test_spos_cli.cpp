// `neurn nas spos`: the shipped configs check out (show parses the space, the
// limits and the finetune: section), export writes an arch.json that the
// registry's `spos` builds, bad configs are refused with the key named.
// Needs NEURN_BIN (ctest sets it).
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gradcheck.h"
#include "models/registry.h"
#include "run_cli.h"
#include "skip.h"

using namespace neurn;
namespace fs = std::filesystem;

namespace {

}  // namespace

TEST_CASE("neurn nas spos: the shipped configs, export and config errors" * SKIP_UNLESS_BIN) {
  fs::path dir = fs::temp_directory_path() / ("neurn_test_spos_cli_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string out;
  for (const char* cfg : {"spos_tiny.yaml", "spos.yaml"}) {
    INFO(cfg);
    int rc = testing::run_neurn(std::string("nas spos show --config ") + NEURN_SOURCE_DIR + "/experiments/configs/" + cfg +
                         " --output " + dir.string(),
                     out);
    INFO(out);
    CHECK(rc == 0);
    CHECK(out.find("finetune: yes (the finetune: section parses)") != std::string::npos);
  }
  std::string ops = "3,2,1,0,3,2,1,0,3,2,1,0,3,2,1,0,3,2,1,0";
  int rc = testing::run_neurn(std::string("nas spos export --config ") + NEURN_SOURCE_DIR + "/experiments/configs/spos_tiny.yaml" +
                       " --output " + dir.string() + " --arch " + ops,
                   out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE(fs::exists(dir / "arch.json"));
  CHECK(fs::exists(dir / "search.html"));
  ModelOptions o;
  o.arch = (dir / "arch.json").string();
  ModelOptions inline_ops;
  inline_ops.arch = ops;
  CHECK(trace_model("spos", o).params == trace_model("spos", inline_ops).params);

  std::ofstream(dir / "bad.yaml") << "spos:\n  space:\n    widht: 0.5\n";
  rc = testing::run_neurn("nas spos show --config " + (dir / "bad.yaml").string(), out);
  CHECK(rc != 0);
  CHECK(out.find("unknown key 'widht'") != std::string::npos);
  fs::remove_all(dir);
}
