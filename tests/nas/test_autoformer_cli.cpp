// `neurn nas autoformer train|search|export` on a tiny synthetic data root:
// progress lines, a resumed training, the search result, and the exported
// model (registry "autoformer", arch = subnet.json) computing what the
// trained supernet computes for that subnet.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "experiments/tiny_data.h"
#include "gradcheck.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "nas/autoformer/subnet_model.h"
#include "nas/autoformer/supernet.h"
#include "run_cli.h"
#include "skip.h"

namespace fs = std::filesystem;
using namespace neurn;
using namespace neurn::autoformer;

namespace {

bool has(const std::string& out, const std::string& s) { return out.find(s) != std::string::npos; }

}  // namespace

TEST_CASE("neurn nas autoformer: train (resumed), search, export, and the exported model" *
          testing::skip_unless(testing::neurn_bin() != nullptr, testing::kNoNeurnBin)) {
  fs::path dir = fs::temp_directory_path() / ("neurn_test_af_cli_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  testing::make_tiny_data_root(dir / "data", 300, 50, false);
  fs::path cfg = dir / "af.yaml";
  std::ofstream(cfg) << "name: af_test\noutput_dir: " << (dir / "out").string()
                     << "\ndevice: cpu\nautoformer:\n  space: cpu\n  source: mnist\n  train_images: 300\n"
                        "  val_images: 100\n  seed: 2\n  train: {steps: 12, batch_size: 8, lr: 0.001, "
                        "warmup_steps: 4, label_smoothing: 0.1, checkpoint_every: 4, log_every: 4}\n"
                        "  search: {population: 6, parents: 2, mutations: 2, crossovers: 2, generations: 2, "
                        "max_params: 300000, val_batch: 50}\n";
  const std::string env = "NEURN_DATA=" + (dir / "data").string();
  const std::string base = " --config " + cfg.string();
  std::string out;
  int rc = testing::run_neurn("nas autoformer train" + base, out, env);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(has(out, "train step 4/12: loss"));
  CHECK(has(out, "supernet trained: 12 steps"));
  rc = testing::run_neurn("nas autoformer train --steps 16" + base, out, env);
  REQUIRE(rc == 0);
  CHECK(has(out, "resumed from step 12"));
  CHECK(has(out, "train step 16/16"));
  rc = testing::run_neurn("nas autoformer search" + base, out, env);
  REQUIRE(rc == 0);
  CHECK(has(out, "search gen 2/2"));
  CHECK(has(out, "search done"));
  rc = testing::run_neurn("nas autoformer export" + base, out, env);
  REQUIRE(rc == 0);
  CHECK(has(out, "exported"));
  fs::path json = dir / "out" / "subnet.json";
  REQUIRE(fs::exists(json));
  ArchSpec a = parse_arch(json.string());
  SearchSpace s = search_space("cpu");
  check_subnet(s, a.subnet);
  CHECK(subnet_param_count(s, a.subnet) <= 300000);
  // the exported model (with its weights) == the supernet for that subnet
  ModulePtr m = build_model("autoformer", ModelOptions{.arch = json.string()});
  Supernet net(s);
  load_supernet_weights(net, (dir / "out" / "supernet.safetensors").string());
  net.set_subnet(a.subnet);
  net.eval(), m->eval();
  Generator gen(3);
  Tensor x = rand({2, 3, 32, 32}, {}, &gen);
  double diff = max(abs(sub((*m)(x), net(x)))).item();
  CHECK(diff < 1e-4);
  // bad input names the problem
  CHECK(testing::run_neurn("nas autoformer fly" + base, out, env) != 0);
  CHECK(has(out, "unknown action 'fly'"));
  std::ofstream(dir / "bad.yaml") << "autoformer:\n  space: cpu\n  colour: red\n";
  CHECK(testing::run_neurn("nas autoformer train --config " + (dir / "bad.yaml").string(), out, env) != 0);
  CHECK(has(out, "unknown key 'colour'"));
  fs::remove_all(dir);
}

TEST_CASE("neurn nas autoformer show: the shipped configs are valid" *
          testing::skip_unless(testing::neurn_bin() != nullptr, testing::kNoNeurnBin)) {
  std::string src = NEURN_SOURCE_DIR, out;
  int rc = testing::run_neurn("nas autoformer show --config " + src + "/experiments/configs/autoformer_tiny.yaml", out, "");
  INFO(out);
  CHECK(rc == 0);
  CHECK(has(out, "space cpu: supernet 128/4/2/4.0"));
  CHECK(has(out, "finetune: yes, 1 source(s), NeuRN variants 2, 3 epochs at most"));  // parsed by the runner
  rc = testing::run_neurn("nas autoformer show --config " + src + "/experiments/configs/autoformer.yaml", out, "");
  CHECK(rc == 0);
  CHECK(has(out, "space small: supernet 448/14/7/4.0, embed {320, 384, 448}, depth 12-14, heads {5, 6, 7} of 64"));
  CHECK(has(out, "search: population 50, parents 10, 25 mutations, 25 crossovers, 20 generations"));
  CHECK(has(out, "train: 100000 steps, batch 24, lr 0.01"));
}
