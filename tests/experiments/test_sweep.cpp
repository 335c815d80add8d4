// Sweeps and training runs on a tiny data root: determinism, resume from a
// checkpoint, NaN handling, availability and output-directory errors, and a
// real `neurn run` killed with SIGKILL and resumed.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "experiments/checkpoint.h"
#include "experiments/sweep.h"
#include "gradcheck.h"
#include "skip.h"
#include "layers/layers.h"
#include "models/registry.h"
#include "tiny_data.h"
#include "test_files.h"

using namespace neurn;
using namespace neurn::experiments;
using neurn::testing::fresh_dir;
using neurn::testing::slurp;
namespace fs = std::filesystem;

namespace {

// Multiplies by NaN from its `after`-th training call on: a loss that diverges.
class NanAfter : public Module {
 public:
  explicit NanAfter(int after) : after_(after) {}
  Tensor forward(const Tensor& x) override {
    if (is_training() && ++calls_ > after_) return mul(x, full_like(x, std::nan("")));
    return x;
  }
  std::string type() const override { return "NanAfter"; }

 private:
  int after_, calls_ = 0;
};

void register_test_models() {
  static bool done = [] {
    list_models();  // the built-ins first
    auto linear = [](const ModelOptions& o, int nan_after) -> ModulePtr {
      auto m = std::make_shared<Sequential>();
      m->push_back(std::make_shared<Flatten>());
      m->push_back(std::make_shared<Linear>(o.in_channels * o.input_size * o.input_size, o.num_classes));
      if (nan_after > 0) m->push_back(std::make_shared<NanAfter>(nan_after));
      return m;
    };
    register_model({"test_linear", "Test", "a linear classifier for tests", "", 8, false},
                   [=](const ModelOptions& o) { return linear(o, 0); });
    register_model({"test_nan", "Test", "diverges on its 4th training step", "", 8, false},
                   [=](const ModelOptions& o) { return linear(o, 3); });
    return true;
  }();
  (void)done;
}

ExperimentConfig tiny_config(const fs::path& dir, const std::string& models) {
  std::string yaml = "name: tiny\noutput_dir: " + (dir / "out").string() + "\ndata_root: " + (dir / "data").string() +
                     "\nmodels: " + models +
                     "\nsources: [mnist]\ntargets: [usps]\nneurn: [false, true]\nseeds: [0]\nimage_size: 16\n"
                     "protocol: {train_images: 200, val_images: 50, test_images: 60}\n"
                     "batch_size: 32\nmax_epochs: 2\noptimizer: {lr: 0.01}\ndevice: cpu\nreport: false\n";
  return parse_config(yaml, (dir / "tiny.yaml").string());
}

}  // namespace

TEST_CASE("trainer: the same seed gives the same run on the CPU; resume continues exactly") {
  register_test_models();
  fs::path dir = fresh_dir("determinism");
  testing::make_tiny_data_root(dir / "data");
  ExperimentConfig cfg = tiny_config(dir, "[test_linear]");
  RunSpec spec{cfg.models[0], true, "mnist", 3};
  std::ostringstream log1, log2, log3;
  TrainOptions o1{(dir / "a").string(), false, &log1, {}, (dir / "data").string()};
  TrainOptions o2{(dir / "b").string(), false, &log2, {}, (dir / "data").string()};
  RunRecord r1 = train_run(cfg, spec, o1);
  RunRecord r2 = train_run(cfg, spec, o2);
  REQUIRE(r1.status == "ok");
  REQUIRE(r1.history.size() == 2);
  for (size_t e = 0; e < 2; ++e) {
    CHECK(r1.history[e].train_loss == r2.history[e].train_loss);  // bit for bit
    CHECK(r1.history[e].val_acc == r2.history[e].val_acc);
  }
  CHECK(r1.source_test.confusion == r2.source_test.confusion);
  CHECK(r1.targets.at("usps").confusion == r2.targets.at("usps").confusion);
  CHECK(r1.source_test.images == 60);
  CHECK(log1.str().find("epoch 2/2  step 10/10") != std::string::npos);
  CHECK(r1.parameters == 3 * 16 * 16 * 10 + 10);

  // The best checkpoint: safetensors with the metadata inside, and a JSON copy.
  Checkpoint best = load_checkpoint((dir / "a" / "best").string());
  CHECK(best.meta.at("run_id") == spec.run_id());
  CHECK(best.meta.at("seed") == 3);
  CHECK(best.meta.at("epoch") == r1.best_epoch);
  CHECK(best.meta.at("metrics").contains("source_test_acc"));
  CHECK(best.meta.at("code_version").get<std::string>().rfind("neurn", 0) == 0);
  CHECK(slurp(dir / "a" / "best.json").find("\"config\"") != std::string::npos);
  CHECK(best.tensors.size() > 0);

  // A run stopped after epoch 1 and resumed to epoch 2 ends where the
  // uninterrupted run ended.
  ExperimentConfig one = cfg;
  one.max_epochs = 1;
  TrainOptions o3{(dir / "c").string(), false, &log3, {}, (dir / "data").string()};
  train_run(one, spec, o3);
  o3.resume = true;
  RunRecord r3 = train_run(cfg, spec, o3);
  CHECK(log3.str().find("resuming " + spec.run_id() + " after epoch 1") != std::string::npos);
  REQUIRE(r3.history.size() == 2);
  CHECK(r3.history[1].train_loss == r1.history[1].train_loss);
  CHECK(r3.history[1].val_acc == r1.history[1].val_acc);
  CHECK(r3.targets.at("usps").confusion == r1.targets.at("usps").confusion);
  fs::remove_all(dir);
}

TEST_CASE("sweep: a NaN loss stops its run with a clear record and the sweep goes on") {
  register_test_models();
  fs::path dir = fresh_dir("nan");
  testing::make_tiny_data_root(dir / "data");
  ExperimentConfig cfg = tiny_config(dir, "[test_nan, test_linear]");
  cfg.neurn = {false};
  std::ostringstream log;
  SweepOptions opt;
  opt.log = &log;
  SweepSummary s = run_sweep(cfg, opt);
  CHECK(s.finished == 2);
  CHECK(s.diverged == 1);
  CHECK(s.failed == 0);
  LoadedResults res = load_results(s.results_file);
  REQUIRE(res.records.size() == 2);
  CHECK(res.records[0].run_id == "test_nan/mnist/seed0");
  CHECK(res.records[0].status == "diverged");
  CHECK(res.records[0].message == "training loss became NaN at epoch 1, step 4 of 5; training stopped");
  CHECK(res.records[0].targets.empty());
  CHECK(std::isnan(res.records[0].history.back().train_loss));
  CHECK(res.records[1].status == "ok");
  CHECK(res.records[1].targets.count("usps") == 1);
  CHECK(log.str().find("diverged: training loss became NaN") != std::string::npos);
  // The diverged run is left out of Table 1.
  Table1 t = build_table1(res.records);
  REQUIRE(t.rows.size() == 1);
  CHECK(t.rows[0].model == "test_linear");
  fs::remove_all(dir);
}

TEST_CASE("sweep: configuration problems found before training") {
  register_test_models();
  fs::path dir = fresh_dir("errors");
  testing::make_tiny_data_root(dir / "data", 200, 60, /*with_usps=*/false);
  std::ostringstream log;
  SweepOptions opt;
  opt.log = &log;

  // Unavailable target (no usps files) and unavailable source.
  ExperimentConfig cfg = tiny_config(dir, "[test_linear]");
  CHECK_THROWS_CONTAINING(run_sweep(cfg, opt), "tiny.yaml:6:10: cannot test on target 'usps': domain usps is not available");
  cfg.sources = {"usps"};
  cfg.targets = {"mnist"};
  CHECK_THROWS_CONTAINING(run_sweep(cfg, opt), "tiny.yaml:5:10: cannot train on source 'usps'");

  // Unknown model: close names.
  cfg = tiny_config(dir, "[test_linaer]");
  cfg.skip_missing_targets = true;
  CHECK_THROWS_CONTAINING(run_sweep(cfg, opt), "tiny.yaml:4:10: unknown model 'test_linaer' (close names: test_linear");
  // ... which a dry run lists instead.
  opt.dry_run = true;
  run_sweep(cfg, opt);
  CHECK(log.str().find("unavailable model: test_linaer (not registered in this build)") != std::string::npos);
  CHECK(log.str().find("test_linaer/mnist/seed0  -> mnist") == std::string::npos);
  opt.dry_run = false;

  // An output directory that cannot be created.
  cfg = tiny_config(dir, "[test_linear]");
  cfg.skip_missing_targets = true;
  std::ofstream(dir / "afile") << "x";
  cfg.output_dir = (dir / "afile" / "out").string();
  CHECK_THROWS_CONTAINING(run_sweep(cfg, opt),
                          "tiny.yaml:2:13: output directory " + cfg.output_dir + " cannot be created: Not a directory");

  // NeuRN options are checked by the layer's parser, at the config's line.
  cfg = tiny_config(dir, "[test_linear]");
  cfg.skip_missing_targets = true;
  cfg.neurn_options = {{"k", "4"}};
  cfg.marks["neurn_options.k"] = {"tiny.yaml", 9, 20};
  CHECK_THROWS_CONTAINING(run_sweep(cfg, opt), "tiny.yaml:9:20: neurn_options:");

  // Results present and no --resume.
  cfg = tiny_config(dir, "[test_linear]");
  cfg.skip_missing_targets = true;
  cfg.neurn = {false};
  SweepSummary first = run_sweep(cfg, opt);
  REQUIRE_MESSAGE(first.finished == 1, log.str());
  CHECK_THROWS_CONTAINING(run_sweep(cfg, opt), "already holds 1 finished runs: pass --resume");
  opt.resume = true;
  SweepSummary s = run_sweep(cfg, opt);
  CHECK(s.already_done == 1);
  CHECK(s.finished == 0);
  fs::remove_all(dir);
}

TEST_CASE("sweep: grid order, --only and --shard") {
  ExperimentConfig cfg = parse_config(
      "models: [a, b]\nsources: [mnist, usps]\nseeds: [0, 1]\n", "g.yaml");
  auto grid = expand_grid(cfg);
  REQUIRE(grid.size() == 16);
  CHECK(grid[0].run_id() == "a/mnist/seed0");
  CHECK(grid[1].run_id() == "a+neurn/mnist/seed0");
  CHECK(grid[15].run_id() == "b+neurn/usps/seed1");
  CHECK(matches_only("a+neurn/mnist/seed0", "neurn"));
  CHECK(matches_only("a+neurn/mnist/seed0", "x,*/mnist/*"));
  CHECK_FALSE(matches_only("a/usps/seed0", "*/mnist/*"));
  CHECK_FALSE(matches_only("a/usps/seed0", "a/usps/seed1"));
  int i = -1, n = -1;
  parse_shard("2/4", i, n);
  CHECK(i == 2);
  CHECK(n == 4);
  CHECK_THROWS_CONTAINING(parse_shard("4/4", i, n), "--shard expects I/N with 0 <= I < N");
  CHECK_THROWS_CONTAINING(parse_shard("1", i, n), "got '1'");
  SweepOptions so;
  so.shard_index = 1;
  so.shard_count = 3;
  cfg.output_dir = "out";
  CHECK(results_path(cfg, so) == "out/shards/1-of-3/results.jsonl");
}

TEST_CASE("neurn run killed with SIGKILL in the middle, then resumed: every run recorded exactly once" *
          neurn::testing::skip_unless(neurn::testing::neurn_bin() != nullptr, neurn::testing::kNoNeurnBin)) {
  const char* bin = neurn::testing::neurn_bin();
  fs::path dir = fresh_dir("kill");
  testing::make_tiny_data_root(dir / "data", 80, 40);
  std::string yaml = "name: killed\noutput_dir: " + (dir / "out").string() + "\ndata_root: " +
                     (dir / "data").string() +
                     "\nmodels: [digits_convnet]\nsources: [mnist]\ntargets: [usps]\nneurn: [false, true]\n"
                     "seeds: [0]\nprotocol: {train_images: 80, val_images: 16, test_images: 40}\n"
                     "batch_size: 32\nmax_epochs: 4\nearly_stopping: {patience: 10}\ndevice: cpu\n";
  std::ofstream(dir / "killed.yaml") << yaml;
  auto spawn = [&](const std::vector<std::string>& extra, const fs::path& logfile) {
    std::fflush(stdout);  // or the child's freopen would write the parent's buffered output again
    std::fflush(stderr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      FILE* f = std::freopen(logfile.c_str(), "w", stdout);
      (void)f;
      dup2(fileno(stdout), 2);
      std::vector<std::string> a{bin};
      if (extra.empty() || extra[0].rfind("--", 0) == 0) a.insert(a.end(), {"run", (dir / "killed.yaml").string()});
      a.insert(a.end(), extra.begin(), extra.end());
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      execv(bin, argv.data());
      _exit(127);
    }
    return pid;
  };
  auto wait_exit = [](pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  };

  // Kill the sweep once the second run has finished an epoch.
  pid_t pid = spawn({}, dir / "log1.txt");
  // A run's folder is its run id as a file name, then its fingerprint.
  auto run_folder = [&](const std::string& prefix) {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(dir / "out" / "runs", ec))
      if (e.path().filename().string().rfind(prefix + "-", 0) == 0) return e.path();
    return fs::path();
  };
  auto t0 = std::chrono::steady_clock::now();
  bool seen = false;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120)) {
    fs::path run = run_folder("digits_convnet+neurn_mnist_seed0");
    if (!run.empty() && fs::exists(run / "last.safetensors")) {
      seen = true;
      break;
    }
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) FAIL("neurn run ended before it could be killed:\n" << slurp(dir / "log1.txt"));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGKILL);
  int status = wait_exit(pid);
  REQUIRE_MESSAGE(seen, slurp(dir / "log1.txt"));
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  LoadedResults mid = load_results((dir / "out" / "results.jsonl").string());
  CHECK(mid.warnings.empty());
  REQUIRE(mid.records.size() == 1);
  CHECK(mid.records[0].run_id == "digits_convnet/mnist/seed0");

  // Without --resume the finished run is not silently redone.
  status = wait_exit(spawn({}, dir / "log2.txt"));
  CHECK(WEXITSTATUS(status) == 1);
  CHECK(slurp(dir / "log2.txt").find("pass --resume") != std::string::npos);

  status = wait_exit(spawn({"--resume"}, dir / "log3.txt"));
  std::string log3 = slurp(dir / "log3.txt");
  REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, log3);
  CHECK(log3.find("digits_convnet/mnist/seed0: already recorded, skipped") != std::string::npos);
  CHECK(log3.find("resuming digits_convnet+neurn/mnist/seed0 after epoch") != std::string::npos);
  CHECK(log3.find("report: ") != std::string::npos);
  LoadedResults all = load_results((dir / "out" / "results.jsonl").string());
  CHECK(all.warnings.empty());  // no run recorded twice, no corrupt line
  REQUIRE(all.records.size() == 2);
  CHECK(all.records[0].run_id == "digits_convnet/mnist/seed0");
  CHECK(all.records[1].run_id == "digits_convnet+neurn/mnist/seed0");
  for (auto& r : all.records) CHECK(r.epochs_run == 4);
  CHECK(fs::exists(dir / "out" / "report" / "index.html"));

  // The other subcommands on the same outputs.
  status = wait_exit(spawn({"eval", run_folder("digits_convnet+neurn_mnist_seed0").string(), "--domains",
                            "usps,mnist", "--confusion"},
                           dir / "log4.txt"));
  std::string log4 = slurp(dir / "log4.txt");
  CHECK_MESSAGE(WEXITSTATUS(status) == 0, log4);
  CHECK(log4.find("digits_convnet+neurn/mnist/seed0 (epoch ") != std::string::npos);
  CHECK(log4.find("usps ") != std::string::npos);
  CHECK(log4.find("% of 40") != std::string::npos);  // test_images of the stored config
  status = wait_exit(spawn({"report", (dir / "out").string(), "--output", (dir / "rep2").string()}, dir / "log5.txt"));
  CHECK_MESSAGE(WEXITSTATUS(status) == 0, slurp(dir / "log5.txt"));
  CHECK(slurp(dir / "rep2" / "table1.md") == slurp(dir / "out" / "report" / "table1.md"));
  status = wait_exit(spawn({"train", "--model", "digits_convnet", "--source", "mnist", "--targets", "usps", "--epochs",
                            "1", "--train-images", "48", "--val-images", "16", "--test-images", "20", "--batch-size",
                            "32", "--device", "cpu", "--data-root", (dir / "data").string(), "--output",
                            (dir / "train").string()},
                           dir / "log6.txt"));
  CHECK_MESSAGE(WEXITSTATUS(status) == 0, slurp(dir / "log6.txt"));
  LoadedResults tr = load_results((dir / "train" / "results.jsonl").string());
  REQUIRE(tr.records.size() == 1);
  CHECK(tr.records[0].targets.at("usps").images == 20);
  status = wait_exit(spawn({"train", "--model", "digits_convnet", "--source", "mnist", "--batch-size", "many"},
                           dir / "log7.txt"));
  CHECK(WEXITSTATUS(status) == 2);  // a usage error, refused by the parser before any work
  CHECK(slurp(dir / "log7.txt").find("--batch-size: expects an integer, got 'many'") != std::string::npos);
  status = wait_exit(spawn({"run", "--help"}, dir / "log8.txt"));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(slurp(dir / "log8.txt").find("usage: neurn run CONFIG.yaml") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("initial weights: matching tensors are loaded, a head of another shape keeps its initial values") {
  register_test_models();
  fs::path dir = fresh_dir("weights");
  ExperimentConfig cfg = tiny_config(dir, "[test_linear]");
  RunSpec a{cfg.models[0], false, "mnist", 1};
  ModulePtr src = build_run_model(cfg, a, Device::cpu());
  save_safetensors((dir / "w.safetensors").string(), src->state_dict());

  RunSpec b = a;
  b.seed = 2;
  b.model.weights = (dir / "w.safetensors").string();
  ModulePtr dst = build_run_model(cfg, b, Device::cpu());
  auto ss = src->state_dict(), ds = dst->state_dict();
  REQUIRE(ss.size() == ds.size());
  for (size_t i = 0; i < ss.size(); ++i) CHECK(ss[i].second.to_vector<float>() == ds[i].second.to_vector<float>());
  CHECK(b.run_id() == "test_linear@w/mnist/seed2");  // the variant names the weights file (w.safetensors)

  // A file whose head has 5 classes: the weight and bias keep their initial values.
  NamedTensors five{{"1.weight", zeros({5, 3 * 16 * 16})}, {"1.bias", zeros({5})}};
  save_safetensors((dir / "five.safetensors").string(), five);
  b.model.weights = (dir / "five.safetensors").string();
  CHECK_THROWS_CONTAINING(build_run_model(cfg, b, Device::cpu()), "no tensor matches the model by name and shape");
  std::ostringstream log;
  NamedTensors mixed{{"1.weight", zeros({5, 3 * 16 * 16})}, {"1.bias", full({10}, 0.5)}};
  save_safetensors((dir / "mixed.safetensors").string(), mixed);
  ModulePtr m = build_run_model(cfg, RunSpec{cfg.models[0], false, "mnist", 2}, Device::cpu());
  load_initial_weights(*m, (dir / "mixed.safetensors").string(), log);
  CHECK(log.str().find("1 of 2 tensors loaded; left as initialised (shape differs): 1.weight") != std::string::npos);
  CHECK(m->state_dict()[1].second.to_vector<float>() == std::vector<float>(10, 0.5f));
  fs::remove_all(dir);
}

TEST_CASE("trainer: early stopping after `patience` epochs without a better validation accuracy") {
  register_test_models();
  fs::path dir = fresh_dir("early");
  testing::make_tiny_data_root(dir / "data");
  ExperimentConfig cfg = tiny_config(dir, "[test_linear]");
  cfg.optimizer.lr = 1e-12;  // the model cannot change, so the validation accuracy stays where it is
  cfg.max_epochs = 10;
  cfg.early_stopping.patience = 2;
  std::ostringstream log;
  TrainOptions o{(dir / "r").string(), false, &log, {}, (dir / "data").string()};
  RunRecord r = train_run(cfg, RunSpec{cfg.models[0], false, "mnist", 0}, o);
  CHECK(r.status == "ok");
  CHECK(r.epochs_run == 3);
  CHECK(r.best_epoch == 1);
  CHECK(r.history.size() == 3);
  CHECK(log.str().find("early stop after epoch 3: no improvement of the validation accuracy for 2 epochs") !=
        std::string::npos);
  fs::remove_all(dir);
}
