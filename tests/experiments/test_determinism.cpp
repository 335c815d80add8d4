// Determinism as docs/experiments.md claims it, through the neurn binary on
// the CPU: a digits ConvNet run killed with SIGKILL in the middle of an epoch
// and resumed with --resume ends with the same records and the same weights,
// bit for bit, as the same run left alone. Both runs read one config file
// (the same text, in two folders: the config is part of each record) and one
// data root; the loader shuffles with two workers. What may differ is only
// what measures time: seconds, images per second, wall time and timestamps.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "experiments/checkpoint.h"
#include "skip.h"
#include "test_files.h"
#include "tiny_data.h"

using namespace neurn;
using neurn::testing::fresh_dir;
using neurn::testing::slurp;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// `neurn ARGS` in `cwd`, output to `logfile`; returns the child's pid.
pid_t spawn_neurn(const std::vector<std::string>& args, const fs::path& cwd, const fs::path& logfile) {
  const char* bin = neurn::testing::neurn_bin();
  std::fflush(stdout);  // or the child would write the parent's buffered output again
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(cwd.c_str()) != 0) _exit(126);
    FILE* f = std::freopen(logfile.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), 2);
    std::vector<std::string> a{bin};
    a.insert(a.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    execv(bin, argv.data());
    _exit(127);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

// The run folder under out/runs (one run in this sweep).
fs::path run_folder(const fs::path& out) {
  if (!fs::exists(out / "runs")) return {};
  for (auto& e : fs::directory_iterator(out / "runs"))
    if (e.is_directory()) return e.path();
  return {};
}

// A record or checkpoint metadata without what measures time.
void drop_timing(json& j) {
  static const char* const kTiming[] = {"seconds", "images_per_second", "wall_seconds", "finished_at", "created_at"};
  if (j.is_object()) {
    for (const char* k : kTiming) j.erase(k);
    for (auto& [k, v] : j.items()) drop_timing(v);
  } else if (j.is_array()) {
    for (auto& v : j) drop_timing(v);
  }
}

std::vector<json> records(const fs::path& out) {
  std::vector<json> r;
  std::ifstream in(out / "results.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) {
      json j = json::parse(line);
      drop_timing(j);
      r.push_back(j);
    }
  return r;
}

// Every tensor of two checkpoints equal byte for byte; metadata equal but for timing.
void check_same_checkpoint(const fs::path& a, const fs::path& b) {
  INFO("checkpoints " << a.string() << " and " << b.string());
  auto ca = experiments::load_checkpoint(a.string()), cb = experiments::load_checkpoint(b.string());
  REQUIRE(ca.tensors.size() == cb.tensors.size());
  for (size_t i = 0; i < ca.tensors.size(); ++i) {
    const auto& [na, ta] = ca.tensors[i];
    const auto& [nb, tb] = cb.tensors[i];
    INFO("tensor " << na);
    REQUIRE(na == nb);
    REQUIRE(ta.shape() == tb.shape());
    REQUIRE(ta.dtype() == tb.dtype());
    CHECK(std::memcmp(ta.raw_data(), tb.raw_data(), ta.nbytes()) == 0);
  }
  json ma = ca.meta, mb = cb.meta;
  drop_timing(ma);
  drop_timing(mb);
  CHECK(ma.dump() == mb.dump());
}

}  // namespace

TEST_CASE("determinism: a digits ConvNet run killed with SIGKILL mid-epoch and resumed equals the uninterrupted run "
          "bit for bit (records, best and last weights)" *
          neurn::testing::skip_unless(neurn::testing::neurn_bin() != nullptr, neurn::testing::kNoNeurnBin)) {
  fs::path dir = fresh_dir("determinism_kill");
  testing::make_tiny_data_root(dir / "data", 240, 40);
  const std::string yaml = "name: determinism\noutput_dir: out\ndata_root: " + (dir / "data").string() +
                           "\nmodels: [digits_convnet]\nsources: [mnist]\ntargets: [usps]\nneurn: [false]\n"
                           "seeds: [4]\nprotocol: {train_images: 192, val_images: 32, test_images: 40}\n"
                           "batch_size: 16\nmax_epochs: 3\nearly_stopping: {patience: 10}\noptimizer: {lr: 0.01}\n"
                           "num_workers: 2\ndevice: cpu\nreport: false\n";
  for (const char* sub : {"a", "b"}) {
    fs::create_directories(dir / sub);
    std::ofstream(dir / sub / "run.yaml") << yaml;
  }

  // A: left alone.
  int status = wait_status(spawn_neurn({"run", "run.yaml"}, dir / "a", dir / "a.log"));
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), slurp(dir / "a.log"));

  // B: killed once epoch 1 is checkpointed, half an epoch (as epoch 1 took)
  // into epoch 2, where nothing of epoch 2 is saved yet.
  pid_t pid = spawn_neurn({"run", "run.yaml"}, dir / "b", dir / "b1.log");
  fs::path last_json;
  json last;
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(300)) {
    fs::path f = run_folder(dir / "b" / "out");
    if (!f.empty() && fs::exists(f / "last.json")) {
      try {
        last = json::parse(slurp(f / "last.json"));  // written atomically: whole or absent
        last_json = f / "last.json";
        break;
      } catch (const json::exception&) {
      }
    }
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) FAIL("neurn run ended before it could be killed:\n" << slurp(dir / "b1.log"));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (last_json.empty()) kill(pid, SIGKILL);
  REQUIRE_MESSAGE(!last_json.empty(), "no checkpoint after 300 s:\n" << slurp(dir / "b1.log"));
  double epoch_seconds = last.at("history").at(0).at("seconds").get<double>();
  std::this_thread::sleep_for(std::chrono::duration<double>(0.5 * epoch_seconds));
  kill(pid, SIGKILL);
  status = wait_status(pid);
  REQUIRE_MESSAGE(WIFSIGNALED(status), "neurn finished before the kill:\n" << slurp(dir / "b1.log"));
  CHECK(WTERMSIG(status) == SIGKILL);
  const int saved = json::parse(slurp(last_json)).at("epoch").get<int>();
  MESSAGE("killed after epoch " << saved << " was checkpointed (epoch 1 took " << epoch_seconds << " s)");
  REQUIRE(saved < 3);  // something is left to resume
  CHECK(records(dir / "b" / "out").empty());

  status = wait_status(spawn_neurn({"run", "run.yaml", "--resume"}, dir / "b", dir / "b2.log"));
  std::string log = slurp(dir / "b2.log");
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), log);
  CHECK_MESSAGE(log.find("resuming digits_convnet/mnist/seed4 after epoch " + std::to_string(saved)) !=
                    std::string::npos,
                log);

  auto ra = records(dir / "a" / "out"), rb = records(dir / "b" / "out");
  REQUIRE(ra.size() == 1);
  REQUIRE(rb.size() == 1);
  CHECK(ra[0].at("history").size() == 3);
  CHECK(ra[0].dump() == rb[0].dump());  // losses, accuracies, confusion matrices: every bit
  fs::path fa = run_folder(dir / "a" / "out"), fb = run_folder(dir / "b" / "out");
  CHECK(fa.filename() == fb.filename());  // same run id, same fingerprint
  check_same_checkpoint(fa / "best", fb / "best");
  // A finished run may drop its resume state; if it keeps it, it is the same.
  CHECK(fs::exists(fa / "last.safetensors") == fs::exists(fb / "last.safetensors"));
  if (fs::exists(fa / "last.safetensors")) check_same_checkpoint(fa / "last", fb / "last");
  fs::remove_all(dir);
}
