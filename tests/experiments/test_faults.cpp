// Faults (issue 16): a tiny sweep killed with SIGKILL at >= 20 points of its
// durable writes (checkpoints, run.json, the results append, the report),
// then resumed, records every run exactly once, with the results of an
// uninterrupted sweep, and leaves no corrupt file and no stale temporary
// file; a full disk gives an error naming the path and keeps the previous
// checkpoint.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "experiments/checkpoint.h"
#include "experiments/results.h"
#include "framework/ops.h"
#include "gradcheck.h"
#include "skip.h"
#include "test_files.h"
#include "tiny_data.h"

using namespace neurn;
using namespace neurn::experiments;
using neurn::testing::fresh_dir;
using neurn::testing::slurp;
namespace fs = std::filesystem;

namespace {

// Runs `neurn run cfg [--resume]` with extra environment; returns the wait status.
int run_sweep(const fs::path& cfg, bool resume, const std::string& env, const fs::path& log) {
  // From the sweep's own folder: outside a git checkout the record's code
  // version costs no `git status` of the project (seconds on a loaded machine).
  std::string cmd = "cd " + cfg.parent_path().string() + " && " + env + " " + neurn::testing::neurn_bin() + " run " +
                    cfg.string() + (resume ? " --resume" : "") + " > " + log.string() + " 2>&1";
  return std::system(cmd.c_str());
}

fs::path write_config(const fs::path& dir, const std::string& name) {
  std::string yaml = "name: " + name + "\noutput_dir: " + (dir / "out").string() + "\ndata_root: " +
                     (dir / "data").string() +
                     "\nmodels: [digits_convnet]\nsources: [mnist]\ntargets: [usps]\nneurn: [false, true]\n"
                     "seeds: [0]\nprotocol: {train_images: 64, val_images: 16, test_images: 32}\n"
                     "batch_size: 32\nmax_epochs: 2\nearly_stopping: {patience: 10}\ndevice: cpu\n";
  fs::path p = dir / (name + ".yaml");
  std::ofstream(p) << yaml;
  return p;
}

// Every final-named file the sweep wrote parses: results.jsonl line by line,
// the checkpoints left, the report.
void check_no_corrupt_file(const fs::path& out) {
  LoadedResults all = load_results((out / "results.jsonl").string());
  CHECK_MESSAGE(all.warnings.empty(), (all.warnings.empty() ? "" : all.warnings[0]));
  for (auto& e : fs::recursive_directory_iterator(out)) {
    std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name.find(".tmp.") != std::string::npos) continue;
    if (e.path().extension() == ".safetensors") {
      std::string base = e.path().string();
      base.resize(base.size() - std::string(".safetensors").size());
      CHECK_NOTHROW(load_checkpoint(base));
    }
  }
  CHECK(slurp(out / "report" / "table1.md").find("digits_convnet") != std::string::npos);
  CHECK(slurp(out / "report" / "index.html").find("</html>") != std::string::npos);
}

}  // namespace

TEST_CASE("faults: a sweep SIGKILLed at 20 points of its durable writes resumes to the same results, each run once" *
          neurn::testing::skip_unless(neurn::testing::neurn_bin() != nullptr, neurn::testing::kNoNeurnBin)) {
  fs::path dir = fresh_dir("faults_kill");
  testing::make_tiny_data_root(dir / "data", 64, 32);
  // The uninterrupted sweep, counting its write steps.
  fs::path ref_dir = dir / "ref";
  fs::create_directories(ref_dir);
  fs::create_symlink(dir / "data", ref_dir / "data");
  fs::path ref_cfg = write_config(ref_dir, "faults");
  int st = run_sweep(ref_cfg, false, "NEURN_FAULT_STEPS_FILE=" + (dir / "steps.txt").string(), dir / "ref.log");
  REQUIRE_MESSAGE(WIFEXITED(st), slurp(dir / "ref.log"));
  REQUIRE_MESSAGE(WEXITSTATUS(st) == 0, slurp(dir / "ref.log"));
  const int64_t steps = std::stoll(slurp(dir / "steps.txt"));
  REQUIRE(steps >= 24);
  LoadedResults ref = load_results((ref_dir / "out" / "results.jsonl").string());
  REQUIRE(ref.records.size() == 2);

  const int kPoints = 20;
  std::set<int64_t> points;
  for (int i = 0; i < kPoints; ++i) points.insert(1 + (steps - 1) * i / (kPoints - 1));
  CHECK(points.size() == kPoints);
  int killed = 0, left_temporaries = 0;
  for (int64_t k : points) {
    CAPTURE(k);
    fs::path run_dir = dir / ("k" + std::to_string(k));
    fs::create_directories(run_dir);
    fs::create_symlink(dir / "data", run_dir / "data");
    fs::path cfg = write_config(run_dir, "faults");
    st = run_sweep(cfg, false, "NEURN_FAULT_KILL_AT=" + std::to_string(k), run_dir / "kill.log");
    REQUIRE(WIFSIGNALED(st) != WIFEXITED(st));
    bool was_killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
    // std::system runs a shell: a child killed by a signal shows as 128 + signal.
    was_killed |= WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGKILL;
    CHECK_MESSAGE(was_killed, slurp(run_dir / "kill.log"));
    killed += was_killed;
    // A kill during a replace leaves its temporary file beside the final one.
    auto temporaries = [&] {
      std::vector<std::string> found;
      if (fs::exists(run_dir / "out"))
        for (auto& e : fs::recursive_directory_iterator(run_dir / "out"))
          if (e.path().filename().string().find(".tmp.") != std::string::npos) found.push_back(e.path().string());
      return found;
    };
    left_temporaries += !temporaries().empty();
    // Whatever the kill left, what has a final name is whole.
    if (fs::exists(run_dir / "out" / "results.jsonl")) {
      LoadedResults mid = load_results((run_dir / "out" / "results.jsonl").string());
      CHECK(mid.warnings.empty());
      CHECK(mid.records.size() <= 2);
    }
    st = run_sweep(cfg, true, "", run_dir / "resume.log");
    std::string resume_log = slurp(run_dir / "resume.log");
    REQUIRE_MESSAGE(WIFEXITED(st), resume_log);
    REQUIRE_MESSAGE(WEXITSTATUS(st) == 0, resume_log);
    LoadedResults all = load_results((run_dir / "out" / "results.jsonl").string());
    REQUIRE(all.records.size() == 2);  // every finished run exactly once
    std::set<std::string> ids;
    for (size_t i = 0; i < 2; ++i) {
      ids.insert(all.records[i].run_id);
      const RunRecord* want = nullptr;
      for (auto& r : ref.records)
        if (r.run_id == all.records[i].run_id) want = &r;
      REQUIRE(want != nullptr);
      // Resuming from a checkpoint is exact (test_determinism.cpp), so the
      // killed-and-resumed sweep has the uninterrupted one's results.
      CHECK(all.records[i].epochs_run == want->epochs_run);
      CHECK(all.records[i].best_val_acc == want->best_val_acc);
      CHECK(all.records[i].source_test.accuracy == want->source_test.accuracy);
      CHECK(all.records[i].targets.at("usps").accuracy == want->targets.at("usps").accuracy);
    }
    CHECK(ids.size() == 2);
    check_no_corrupt_file(run_dir / "out");
    // The resumed sweep's writers removed the temporaries of the killed one
    // (framework/io/atomic_file.h: their pid is gone).
    std::vector<std::string> stale = temporaries();
    CHECK_MESSAGE(stale.empty(), (stale.empty() ? "" : stale[0]));
    fs::remove_all(run_dir);
  }
  CHECK(killed == kPoints);
  CHECK(left_temporaries > 0);
  fs::remove_all(dir);
}

namespace {
// A 256 KiB tmpfs at `dir` when this process may mount one (root in a
// container with CAP_SYS_ADMIN); checked once, at registration.
bool can_mount_tmpfs() {
  static const bool ok = [] {
    if (::geteuid() != 0) return false;
    fs::path probe = fs::temp_directory_path() / ("neurn_tmpfs_probe_" + std::to_string(::getpid()));
    fs::create_directories(probe);
    bool mounted = ::mount("tmpfs", probe.c_str(), "tmpfs", 0, "size=64k") == 0;
    if (mounted) ::umount(probe.c_str());
    fs::remove(probe);
    return mounted;
  }();
  return ok;
}
}  // namespace

TEST_CASE("faults: a full disk is an error naming the path, and the previous checkpoint stays intact" *
          neurn::testing::skip_unless(can_mount_tmpfs(), "cannot mount a small tmpfs (needs root and CAP_SYS_ADMIN)")) {
  fs::path dir = fresh_dir("faults_full");
  REQUIRE(::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=256k") == 0);
  std::string base = (dir / "run" / "last").string();
  NamedTensors small = {{"w", ones({16, 16})}};
  save_checkpoint(base, small, {{"epoch", 1}});
  // 512 KiB of tensors do not fit in 256 KiB.
  NamedTensors big = {{"w", ones({16, 16})}, {"big", zeros({128, 1024})}};
  CHECK_THROWS_CONTAINING(save_checkpoint(base, big, {{"epoch", 2}}), "cannot write " + base + ".safetensors");
  CHECK_THROWS_CONTAINING(save_checkpoint(base, big, {{"epoch", 2}}), "No space left on device");
  Checkpoint back = load_checkpoint(base);
  CHECK(back.meta.at("epoch") == 1);
  CHECK(back.tensors.size() == 1);
  // No temporary is left to fill the disk further.
  for (auto& e : fs::recursive_directory_iterator(dir))
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  // An append on the full disk names the file too.
  { std::ofstream(dir / "filler", std::ios::binary) << std::string(300 * 1024, 'x'); }
  RunRecord r;
  r.run_id = "m/mnist/seed0";
  r.model = "m";
  r.source = "mnist";
  r.message = std::string(8192, 'm');
  CHECK_THROWS_CONTAINING(append_record((dir / "results.jsonl").string(), r),
                          "cannot append to " + (dir / "results.jsonl").string());
  ::umount(dir.c_str());
  fs::remove_all(dir);
}
