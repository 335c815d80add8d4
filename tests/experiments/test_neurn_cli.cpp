// The NeuRN commands end to end: `forward --model none --neurn ...` writes the
// op's output for a safetensors input; `bench neurn` prints its figure last.
// Needs NEURN_BIN (ctest sets it).
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "framework/ops.h"
#include "framework/serialize/safetensors.h"
#include "gradcheck.h"
#include "run_cli.h"
#include "skip.h"

using namespace neurn;
namespace fs = std::filesystem;

namespace {

}  // namespace

TEST_CASE("neurn forward --model none --neurn: the op on a safetensors tensor" * SKIP_UNLESS_BIN) {
  fs::path dir = fs::temp_directory_path() / "neurn_test_neurn_cli";
  fs::create_directories(dir);
  const std::string x = (dir / "x.safetensors").string(), y = (dir / "y.safetensors").string();
  Generator gen(5);
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor input = rand({2, 3, 9, 11}, {dt}, &gen);
    save_safetensors(x, {{"input", input}});
    std::string out;
    int rc = testing::run_neurn(
        "forward --model none --neurn-options k=5,padding=reflect,max_scope=channel --input " + x + " --output " + y, out);
    INFO(out);
    REQUIRE(rc == 0);
    Tensor got = find_tensor(load_safetensors(y), "output", y);
    CHECK(got.shape() == input.shape());
    CHECK(got.dtype() == dt);
    Tensor want = neurn_norm(input, parse_neurn_options("k=5,padding=reflect,max_scope=channel"));
    CHECK(max(abs(sub(got, want))).item() == 0.0);
  }
  std::string out;
  CHECK(testing::run_neurn("forward --model none --neurn-options k=4 --input " + x + " --output " + y, out) != 0);
  CHECK(out.find("odd") != std::string::npos);
  save_safetensors(x, {{"image", zeros({1, 1, 4, 4})}});
  CHECK(testing::run_neurn("forward --model none --neurn-options k=3 --input " + x + " --output " + y, out) != 0);
  CHECK(out.find("input") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("neurn bench neurn prints one line per k and images_per_second last" * SKIP_UNLESS_BIN) {
  std::string out;
  REQUIRE(testing::run_neurn("bench neurn --image-size 12 --batch-size 2 --k 3,9 --iters 2", out) == 0);
  INFO(out);
  CHECK(out.find("k=3 ") != std::string::npos);
  CHECK(out.find("k=9 ") != std::string::npos);
  auto last = out.rfind("images_per_second=");
  REQUIRE(last != std::string::npos);
  CHECK(out.find('\n', last) == out.size() - 1);  // the last line
  CHECK(std::stod(out.substr(last + 18)) > 0);
  CHECK(testing::run_neurn("bench neurn --k 4 --iters 1 --image-size 8 --batch-size 1", out) != 0);
}

TEST_CASE("neurn data show writes a PNG grid and skips domains that are not there" * SKIP_UNLESS_BIN) {
  fs::path dir = fs::temp_directory_path() / "neurn_test_data_show";
  fs::remove_all(dir);
  fs::create_directories(dir / "empty_root");
  const std::string png = (dir / "grid.png").string();
  std::string out;
  // An empty data root: only the generated domain (syn) is there.
  int rc = testing::run_neurn("data show --domains usps,syn --neurn-options k=3 --samples 2 --output " + png, out,
                   "NEURN_DATA=" + (dir / "empty_root").string());
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("skipping usps") != std::string::npos);
  REQUIRE(fs::exists(png));
  CHECK(fs::file_size(png) > 100);
  CHECK(testing::run_neurn("data show --domains nosuchdomain --out " + png, out) != 0);
  fs::remove_all(dir);
}

TEST_CASE("NEURN_PROFILE=FILE: the whole command under the profiler, table on stderr, JSON in FILE" * SKIP_UNLESS_BIN) {
  fs::path dir = fs::temp_directory_path() / "neurn_test_profile_env";
  fs::create_directories(dir);
  const std::string json = (dir / "profile.json").string();
  fs::remove(json);
  std::string out;
  int rc = testing::run_neurn("bench train-step --model digits_convnet --batch-size 4 --steps 2 --warmup 0", out,
                              "NEURN_PROFILE=" + json);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("images_per_second=") != std::string::npos);  // the command ran as usual
  CHECK(out.find("profile of the command (NEURN_PROFILE)") != std::string::npos);
  CHECK(out.find("conv2d_backward_kernel") != std::string::npos);
  REQUIRE(fs::exists(json));
  std::ifstream in(json);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.rfind("{\"wall_ms\": ", 0) == 0);
  CHECK(text.find("\"name\": \"Adam.step\"") != std::string::npos);
  // bench train-step --profile inside it cannot start a second profiler: a clear error, not a wrong profile.
  rc = testing::run_neurn("bench train-step --model digits_convnet --batch-size 4 --steps 1 --warmup 0 --profile", out,
                          "NEURN_PROFILE=" + json);
  CHECK(rc != 0);
  CHECK(out.find("already recording") != std::string::npos);
  // A file that cannot be written (its folder is a file) fails the command, naming the variable.
  { std::ofstream(dir / "a_file") << "x"; }
  rc = testing::run_neurn("models", out, "NEURN_PROFILE=" + (dir / "a_file" / "p.json").string());
  CHECK(rc != 0);
  CHECK(out.find("NEURN_PROFILE=") != std::string::npos);
  fs::remove_all(dir);
}
