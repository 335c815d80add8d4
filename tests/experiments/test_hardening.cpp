// Hardening of what a run writes and reads back (issue 16): records with
// values of the wrong JSON type are reported (file, line) and skipped by
// load_results, `neurn report` and `--resume`; the durable writer names the
// path on every failure and leaves the previous file intact.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "experiments/results.h"
#include "framework/io/atomic_file.h"
#include "framework/ops.h"
#include "framework/serialize/safetensors.h"
#include "gradcheck.h"
#include "skip.h"
#include "test_files.h"

using namespace neurn::experiments;
using neurn::testing::fresh_dir;
using neurn::testing::slurp;
namespace fs = std::filesystem;

namespace {

RunRecord good_record(const std::string& model, bool with_neurn) {
  RunRecord r;
  r.model = model;
  r.neurn = with_neurn;
  r.source = "mnist";
  r.run_id = model + (with_neurn ? "+neurn" : "") + "/mnist/seed0";
  r.epochs_run = 2;
  r.best_epoch = 2;
  r.best_val_acc = 0.9;
  r.source_test = {"mnist", 100, 0.95, std::vector<double>(10, 0.95), {}};
  r.targets["usps"] = {"usps", 50, 0.5, std::vector<double>(10, 0.5), {}};
  r.history = {{1, 1.0, 0.6, 0.7, 1.0, 100}, {2, 0.5, 0.8, 0.9, 1.0, 100}};
  r.variant = model;
  r.fingerprint = std::string(64, with_neurn ? 'b' : 'a');
  r.settings_json = R"({"model":")" + model + R"("})";
  return r;
}

// A valid record line with one value replaced by `bad` JSON text.
std::string with_field(const RunRecord& r, const std::string& field, const std::string& bad) {
  std::string line = record_to_json(r);
  std::string key = "\"" + field + "\":";
  size_t at = line.find(key);
  REQUIRE_MESSAGE(at != std::string::npos, field);
  // The value runs to the next comma or closing bracket at its own depth.
  size_t start = at + key.size();
  int depth = 0;
  bool in_str = false;
  size_t end = start;
  for (; end < line.size(); ++end) {
    char c = line[end];
    if (in_str) {
      if (c == '\\') ++end;
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') in_str = true;
    else if (c == '{' || c == '[') ++depth;
    else if (c == '}' || c == ']') {
      if (depth == 0) break;
      --depth;
    } else if (c == ',' && depth == 0) break;
  }
  return line.substr(0, start) + bad + line.substr(end);
}

}  // namespace

TEST_CASE("results.jsonl: a value of the wrong JSON type is reported with file and line and skipped") {
  fs::path dir = fresh_dir("wrong_type");
  std::string path = (dir / "results.jsonl").string();
  RunRecord a = good_record("m1", false), b = good_record("m1", true);
  append_record(path, a);
  // Each of these made nlohmann::json throw a type_error that nothing caught
  // (neurn report and --resume aborted).
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"source_test", R"({"domain": "mnist", "images": 100, "accuracy": 0.9, "per_class": ["x"]})"},
      {"targets", R"({"usps": {"domain": "usps", "images": 5, "accuracy": 0.5, "per_class": "abc"}})"},
      {"history", R"([{"epoch": 1, "train_loss": 1, "train_acc": 0.5, "val_acc": 0.5}, 7])"},
      {"history", R"("long")"},
      {"skipped_targets", R"({"svhn": 3})"},
      {"seed", R"("zero")"},
      {"settings", R"([1, 2])"},
      {"neurn", R"(1.5)"},
  };
  {
    std::ofstream out(path, std::ios::app);
    for (auto& [field, value] : bad) out << with_field(a, field, value) << "\n";
  }
  append_record(path, b);

  LoadedResults res;
  REQUIRE_NOTHROW(res = load_results(path));
  REQUIRE(res.records.size() == 2);
  CHECK(res.records[0].run_id == "m1/mnist/seed0");
  CHECK(res.records[1].run_id == "m1+neurn/mnist/seed0");
  REQUIRE(res.warnings.size() == bad.size());
  for (size_t i = 0; i < bad.size(); ++i) {
    CAPTURE(bad[i].first);
    CHECK(res.warnings[i].find(path + ":" + std::to_string(i + 2) + ": corrupt record skipped: ") == 0);
  }
  CHECK(res.warnings[0].find("per_class") != std::string::npos);
  CHECK(res.warnings[3].find("field 'history' must be an array, got string") != std::string::npos);
  // The merged view of a sweep (what --resume reads) says the same.
  LoadedResults merged = load_results_dir(dir.string());
  CHECK(merged.records.size() == 2);
  CHECK(merged.warnings.size() == bad.size());
  fs::remove_all(dir);
}

TEST_CASE("neurn report: a wrong-typed record is a warning naming file and line, the report is written" *
          neurn::testing::skip_unless(neurn::testing::neurn_bin() != nullptr, neurn::testing::kNoNeurnBin)) {
  fs::path dir = fresh_dir("report_wrong_type");
  std::string path = (dir / "results.jsonl").string();
  append_record(path, good_record("m1", false));
  {
    std::ofstream out(path, std::ios::app);
    out << with_field(good_record("m2", false), "source_test",
                      R"({"domain": "mnist", "images": 1, "accuracy": 0.5, "per_class": [{}]})")
        << "\n";
  }
  append_record(path, good_record("m1", true));
  std::string cmd = std::string(neurn::testing::neurn_bin()) + " report " + dir.string() + " --output " +
                    (dir / "rep").string() + " > " + (dir / "log.txt").string() + " 2>&1";
  int status = std::system(cmd.c_str());
  std::string log = slurp(dir / "log.txt");
  REQUIRE_MESSAGE(WIFEXITED(status), log);
  CHECK_MESSAGE(WEXITSTATUS(status) == 0, log);
  CHECK(log.find("warning: " + path + ":2: corrupt record skipped") != std::string::npos);
  CHECK(log.find("2 runs") != std::string::npos);
  CHECK(fs::exists(dir / "rep" / "table1.md"));
  fs::remove_all(dir);
}

TEST_CASE("durable writer: replaces whole files, names the path on failure, keeps the old file") {
  fs::path dir = fresh_dir("durable");
  std::string p = (dir / "sub" / "f.txt").string();
  neurn::io::write_file_atomic(p, "first");
  neurn::io::write_file_atomic(p, std::string(100000, 'x'));
  CHECK(slurp(p) == std::string(100000, 'x'));
  // No temporary is left behind.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir / "sub")) files += e.is_regular_file();
  CHECK(files == 1);
  // A folder where the file should be: the error names the path; nothing changes.
  fs::create_directories(dir / "sub" / "isdir");
  CHECK_THROWS_CONTAINING(neurn::io::write_file_atomic((dir / "sub" / "isdir").string(), "y"),
                          "cannot write " + (dir / "sub" / "isdir").string());
  CHECK(fs::is_directory(dir / "sub" / "isdir"));
  CHECK_THROWS_CONTAINING(neurn::io::write_file_atomic("/proc/neurn_cannot/x", "y"), "/proc/neurn_cannot");
  // Appends: a torn last line gets a newline before the next record.
  std::string log = (dir / "a.jsonl").string();
  neurn::io::append_durable(log, "one\n");
  { std::ofstream(log, std::ios::app) << "torn"; }
  neurn::io::append_durable(log, "two\n");
  CHECK(slurp(log) == "one\ntorn\ntwo\n");
  CHECK_THROWS_CONTAINING(neurn::io::append_durable((dir / "sub" / "isdir").string(), "z\n"),
                          "cannot open " + (dir / "sub" / "isdir").string() + " for appending");
  fs::remove_all(dir);
}

namespace {
// Files may grow to `bytes` at most while it lives (RLIMIT_FSIZE; a write
// past it fails with EFBIG once SIGXFSZ is ignored): a full disk for one
// process, without root.
struct FileSizeLimit {
  rlimit old{};
  void (*old_handler)(int) = nullptr;
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit now = old;
    now.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &now) == 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
  }
};

// A pid that no process has (a child that has exited and been reaped).
long dead_pid() {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  int st = 0;
  REQUIRE(::waitpid(child, &st, 0) == child);
  return static_cast<long>(child);
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}
}  // namespace

TEST_CASE("save_safetensors: writes through the durable writer; a failed save keeps the previous file") {
  fs::path dir = fresh_dir("durable_safetensors");
  std::string p = (dir / "weights.safetensors").string();
  neurn::NamedTensors small = {{"w", neurn::ones({4, 4})}};
  const uint64_t before = neurn::io::fault_steps_passed();
  neurn::save_safetensors(p, small, {{"epoch", "1"}});
  // A replace is four steps of the durable writer (half written, written,
  // fsynced, renamed): the save went through it.
  CHECK(neurn::io::fault_steps_passed() - before == 4);
  CHECK(names_in(dir) == std::set<std::string>{"weights.safetensors"});
  // 512 KiB of tensors where files may only grow to 64 KiB: the error names
  // the file and the reason, and the previous file is whole and unchanged.
  neurn::NamedTensors big = {{"w", neurn::ones({4, 4})}, {"big", neurn::zeros({128, 1024})}};
  const std::string old_bytes = slurp(p);
  {
    FileSizeLimit limit(64 * 1024);
    CHECK_THROWS_CONTAINING(neurn::save_safetensors(p, big, {{"epoch", "2"}}), "cannot write " + p);
    CHECK_THROWS_CONTAINING(neurn::save_safetensors(p, big, {{"epoch", "2"}}), "File too large");
  }
  CHECK(slurp(p) == old_bytes);
  std::map<std::string, std::string> meta;
  neurn::NamedTensors back = neurn::load_safetensors(p, &meta);
  CHECK(meta.at("epoch") == "1");
  REQUIRE(back.size() == 1);
  CHECK(back[0].second.numel() == 16);
  CHECK(names_in(dir) == std::set<std::string>{"weights.safetensors"});  // no temporary left
  // Without the limit the same save replaces it.
  neurn::save_safetensors(p, big, {{"epoch", "2"}});
  CHECK(neurn::load_safetensors(p, &meta).size() == 2);
  CHECK(meta.at("epoch") == "2");
  fs::remove_all(dir);
}

TEST_CASE("durable writer: the temporaries of writers that are gone are removed by the next writer in the folder") {
  namespace io = neurn::io;
  fs::path dir = fresh_dir("stale_temporaries");
  const long gone = dead_pid();
  const long self = static_cast<long>(::getpid());
  auto touch = [](const std::string& p) { std::ofstream(p) << "partial"; };
  auto name = [&](const std::string& file, long pid, uint64_t n) {
    return fs::path(io::temporary_path((dir / file).string(), pid, n)).filename().string();
  };
  // The names say who wrote them: <file>.tmp.<pid>.<n>.<16 hex digits of this kernel and pid namespace>.
  const std::string stale = name("ckpt.safetensors", gone, 3);
  CHECK(stale.rfind("ckpt.safetensors.tmp." + std::to_string(gone) + ".3.", 0) == 0);
  CHECK(stale.size() == std::string("ckpt.safetensors.tmp." + std::to_string(gone) + ".3.").size() + 16);
  const std::string stale2 = name("run.json", gone, 0);
  const std::string live = name("best.safetensors", self, 12);            // this process: still writing
  const std::string parent = name("report.md", static_cast<long>(::getppid()), 0);  // alive
  const std::string other_kernel = "last.json.tmp." + std::to_string(gone) + ".0.0123456789abcdef";  // another machine
  const std::string no_kernel = "last.json.tmp." + std::to_string(gone) + ".0";  // the older naming: not judged
  for (const auto& f : {stale, stale2, live, parent, other_kernel, no_kernel, std::string("notes.tmp.txt")})
    touch((dir / f).string());
  fs::create_directories(dir / name("folder", gone, 0));       // not a file: left alone
  fs::create_directories(dir / "sub");
  touch((dir / "sub" / name("deep.json", gone, 0)).string());  // below the folder: not this folder's
  const std::set<std::string> kept = {live, parent, other_kernel, no_kernel, "notes.tmp.txt", name("folder", gone, 0),
                                      "sub"};

  // The first write of this process in the folder cleans it.
  io::write_file_atomic((dir / "results.md").string(), "new\n");
  std::set<std::string> after = kept;
  after.insert("results.md");
  CHECK(names_in(dir) == after);
  CHECK(fs::exists(dir / "sub" / name("deep.json", gone, 0)));
  // The function itself: nothing left to remove here, one below.
  CHECK(io::remove_stale_temporaries(dir.string()) == 0);
  CHECK(io::remove_stale_temporaries((dir / "sub").string()) == 1);
  CHECK(fs::is_empty(dir / "sub"));
  CHECK(io::remove_stale_temporaries((dir / "absent").string()) == 0);
  fs::remove_all(dir);
}
