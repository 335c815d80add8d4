// `neurn forward` and `neurn models` end to end: the CLI's logits equal the
// in-process model's on the same weights; the class count comes from the
// weights; bad inputs are errors. Needs NEURN_BIN (ctest sets it).
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gradcheck.h"
#include "skip.h"
#include "layers/layers.h"
#include "models/registry.h"

using namespace neurn;
namespace fs = std::filesystem;

namespace {
using neurn::testing::neurn_bin;

// Runs a command, returning its exit status and its output (stdout and stderr).
int run(const std::string& cmd, std::string& out) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  out.clear();
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
}  // namespace

TEST_CASE("neurn forward: logits equal the in-process model's; classes read from the weights" *
          neurn::testing::skip_unless(neurn_bin() != nullptr, neurn::testing::kNoNeurnBin)) {
  fs::path dir = fs::temp_directory_path() / "neurn_test_cli_forward";
  fs::create_directories(dir);
  std::string w = (dir / "w.safetensors").string(), x = (dir / "x.safetensors").string(),
              y = (dir / "y.safetensors").string();
  Generator gen(3);
  ModulePtr model;
  {
    ParamScope s({}, &gen);
    ModelOptions o;
    o.num_classes = 7;
    model = build_model("mobilenet_v2", o);
  }
  // non-trivial BN statistics, so eval mode matters
  for (auto& [n, b] : model->named_buffers())
    if (n.find("running_var") != std::string::npos) b.fill_(2.0);
  save_state(*model, w);
  Tensor input = randn({2, 3, 32, 32}, {}, &gen);
  save_safetensors(x, {{"input", input}});
  std::string out;
  int rc = run(
      std::string(neurn_bin()) + " forward --model mobilenet_v2 --weights " + w + " --input " + x + " --output " + y,
      out);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("output (2, 7)") != std::string::npos);
  Tensor got = find_tensor(load_safetensors(y), "output", y);
  model->eval();
  NoGradGuard ng;
  Tensor want = (*model)(input);
  REQUIRE(got.shape() == Shape{2, 7});
  auto g = got.to_vector<float>(), e = want.to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(e[i]).epsilon(1e-5));

  // wrong class count: strict loading names the head
  rc = run(std::string(neurn_bin()) + " forward --model mobilenet_v2 --weights " + w + " --classes 10 --input " + x +
               " --output " + y,
           out);
  CHECK(rc != 0);
  CHECK(out.find("classifier.1.weight: file (7, 1280), model (10, 1280)") != std::string::npos);
  // unknown model, missing tensor
  rc = run(std::string(neurn_bin()) + " forward --model resnet51 --input " + x + " --output " + y, out);
  CHECK(rc != 0);
  CHECK(out.find("unknown model 'resnet51'") != std::string::npos);
  save_safetensors(x, {{"image", input}});
  rc = run(std::string(neurn_bin()) + " forward --model vgg19 --input " + x + " --output " + y, out);
  CHECK(rc != 0);
  CHECK(out.find("no tensor named 'input'") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("neurn models lists the registry with reference counts" *
          neurn::testing::skip_unless(neurn_bin() != nullptr, neurn::testing::kNoNeurnBin)) {
  std::string out;
  REQUIRE(run(std::string(neurn_bin()) + " models --classes 1000 --image-size 224", out) == 0);
  INFO(out);
  CHECK(out.find("143667240") != std::string::npos);  // vgg19
  CHECK(out.find("25557032") != std::string::npos);   // resnet50
  CHECK(out.find("25613800") != std::string::npos);   // resnet50v2 with BN statistics
  CHECK(out.find("4253864") != std::string::npos);    // mobilenet with BN statistics
  CHECK(out.find("digits_convnet") != std::string::npos);
  // without flags each model is counted as its reference counts it: 1000 classes, its reference input
  REQUIRE(run(std::string(neurn_bin()) + " models", out) == 0);
  INFO(out);
  CHECK(out.find("143667240") != std::string::npos);  // vgg19 at 1000 classes
  auto line_of = [&](const std::string& name) {
    size_t at = out.find("\n" + name + " ");
    return at == std::string::npos ? std::string() : out.substr(at + 1, out.find('\n', at + 1) - at - 1);
  };
  CHECK(line_of("inception_v3").find(" 299 ") != std::string::npos);
  CHECK(line_of("digits_convnet").find(" 32 ") != std::string::npos);
  CHECK(line_of("vgg19").find("classification") != std::string::npos);
  // counted as their references count them: U-Net at 1 channel and 2 classes, the VOC models at 21,
  // NASNetLarge at 331 with Keras's BN statistics
  CHECK(line_of("unet").find(" 31030658 ") != std::string::npos);
  CHECK(line_of("deeplabv3_resnet101").find(" 60996202 ") != std::string::npos);
  CHECK(line_of("nasnetlarge").find(" 88949818 ") != std::string::npos);
  CHECK(line_of("nasnetlarge").find(" 331 ") != std::string::npos);
}
