#include "experiments/sweep.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "datasets/datasets.h"
#include "experiments/checkpoint.h"
#include "framework/error.h"
#include "framework/ops/neurn.h"
#include "models/registry.h"

namespace neurn::experiments {

namespace fs = std::filesystem;

void parse_shard(const std::string& s, int& index, int& count) {
  auto slash = s.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < s.size();
  if (ok) {
    try {
      size_t a = 0, b = 0;
      index = std::stoi(s.substr(0, slash), &a);
      count = std::stoi(s.substr(slash + 1), &b);
      ok = a == slash && b == s.size() - slash - 1 && count >= 1 && index >= 0 && index < count;
    } catch (const std::exception&) {
      ok = false;
    }
  }
  NEURN_CHECK(ok, "--shard expects I/N with 0 <= I < N (e.g. 0/4 ... 3/4 for four machines), got '", s, "'");
}

std::vector<RunSpec> expand_grid(const ExperimentConfig& cfg) {
  std::vector<RunSpec> out;
  for (auto& m : cfg.models)
    for (auto& s : cfg.sources)
      for (auto seed : cfg.seeds)
        for (bool n : cfg.neurn) out.push_back({m, n, s, seed});
  return out;
}

bool matches_only(const std::string& run_id, const std::string& patterns) {
  if (patterns.empty()) return true;
  size_t start = 0;
  while (start <= patterns.size()) {
    size_t end = patterns.find(',', start);
    if (end == std::string::npos) end = patterns.size();
    std::string p = patterns.substr(start, end - start);
    if (!p.empty()) {
      bool glob = p.find_first_of("*?[") != std::string::npos;
      if (glob ? fnmatch(p.c_str(), run_id.c_str(), 0) == 0 : run_id.find(p) != std::string::npos) return true;
    }
    start = end + 1;
  }
  return false;
}

std::string results_path(const ExperimentConfig& cfg, const SweepOptions& opt) {
  if (opt.shard_count <= 1) return cfg.output_dir + "/results.jsonl";
  return cfg.output_dir + "/shards/" + std::to_string(opt.shard_index) + "-of-" + std::to_string(opt.shard_count) +
         "/results.jsonl";
}

namespace {

// Creates the directory and proves it can be written; `where` names the
// config line that set it.
void check_writable(const std::string& dir, const std::string& where) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  NEURN_CHECK(!ec, where, "output directory ", dir, " cannot be created: ", ec.message());
  std::string probe = dir + "/.neurn_write_test";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  NEURN_CHECK(fd >= 0, where, "output directory ", dir, " is not writable: ", std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

// An exclusive lock on the results file for the life of the sweep, so two
// processes never run the same shard into the same directory.
class ResultsLock {
 public:
  explicit ResultsLock(const std::string& results) {
    std::string path = results + ".lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    NEURN_CHECK(fd_ >= 0, "cannot open ", path, ": ", std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      NEURN_FAIL("another neurn process is running this sweep (", path, " is locked)");
    }
  }
  ~ResultsLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  ResultsLock(const ResultsLock&) = delete;
  ResultsLock& operator=(const ResultsLock&) = delete;

 private:
  int fd_ = -1;
};

Availability current_availability(const std::string& root) {
  Availability a;
  for (auto& info : list_models()) a.registered_models.push_back(info.name);
  for (auto& d : all_domains()) a.domain_status[d] = data::domain_unavailable_message(d, root);
  return a;
}

}  // namespace

SweepSummary run_sweep(const ExperimentConfig& cfg, const SweepOptions& opt) {
  std::ostream& log = opt.log ? *opt.log : std::cout;
  NEURN_CHECK(opt.shard_count >= 1 && opt.shard_index >= 0 && opt.shard_index < opt.shard_count, "bad shard ",
              opt.shard_index, "/", opt.shard_count);
  const std::string root = cfg.data_root.empty() ? data::data_root() : cfg.data_root;
  SweepSummary sum;
  sum.results_file = results_path(cfg, opt);

  // ---- everything that can be wrong is found before the first epoch.
  AvailabilityReport avail = check_availability(cfg, current_availability(root), opt.dry_run);
  sum.unavailable_models = avail.unavailable_models;
  try {
    neurn_options_from_map(cfg.neurn_options);
  } catch (const Error& e) {
    auto it = cfg.marks.find("neurn_options." + (cfg.neurn_options.empty() ? "" : cfg.neurn_options.begin()->first));
    NEURN_FAIL(it != cfg.marks.end() ? it->second.str() : cfg.file, ": neurn_options: ", e.what());
  }
  std::set<std::string> unavailable(avail.unavailable_models.begin(), avail.unavailable_models.end());
  for (auto& m : cfg.models) {
    if (unavailable.count(m.name)) continue;
    ModelOptions mo;
    mo.in_channels = 3;
    mo.input_size = cfg.image_size > 0 ? cfg.image_size : std::max<int64_t>(32, model_info(m.name).min_input_size);
    mo.width = m.width;
    try {
      trace_model(m.name, mo);  // on the meta device: shapes only
    } catch (const Error& e) {
      NEURN_FAIL(m.mark.str(), ": model ", m.name, " cannot be built with these settings: ", e.what());
    }
    if (!m.weights.empty())
      NEURN_CHECK(fs::exists(m.weights), m.mark.str(), ": initial weights ", m.weights, " do not exist");
  }

  std::vector<RunSpec> grid = expand_grid(cfg);
  std::vector<RunSpec> mine;
  for (size_t k = 0; k < grid.size(); ++k) {
    if (static_cast<int>(k % static_cast<size_t>(opt.shard_count)) != opt.shard_index) continue;
    if (!matches_only(grid[k].run_id(), opt.only)) continue;
    mine.push_back(grid[k]);
  }
  sum.planned = static_cast<int>(mine.size());

  // Runs already recorded anywhere under the output directory (every shard).
  std::set<std::string> done;
  if (fs::exists(cfg.output_dir)) {
    bool any = false;
    for (auto& e : fs::recursive_directory_iterator(cfg.output_dir))
      any |= e.is_regular_file() && e.path().filename() == "results.jsonl";
    if (any) {
      LoadedResults prev = load_results_dir(cfg.output_dir);
      for (auto& w : prev.warnings) log << "warning: " << w << "\n";
      for (auto& r : prev.records) done.insert(r.run_id);
    }
  }

  if (opt.dry_run) {
    log << "plan for " << cfg.file << " (" << cfg.name << "): " << grid.size() << " runs in the grid, " << mine.size()
        << " selected";
    if (opt.shard_count > 1) log << " for shard " << opt.shard_index << "/" << opt.shard_count;
    log << "\n";
    for (auto& m : avail.unavailable_models) log << "  unavailable model: " << m << " (not registered in this build)\n";
    for (auto& [t, why] : avail.unavailable_sources) log << "  unavailable source: " << t << ": " << why << "\n";
    for (auto& [t, why] : avail.skipped_targets) log << "  unavailable target: " << t << ": " << why << "\n";
    for (auto& r : mine) {
      std::string state = "to run";
      if (unavailable.count(r.model.name))
        state = "unavailable: model not registered";
      else if (avail.unavailable_sources.count(r.source))
        state = "unavailable: source data missing";
      else if (done.count(r.run_id()))
        state = "done";
      else if (checkpoint_exists(cfg.output_dir + "/runs/" + r.dir_name() + "/last"))
        state = opt.resume ? "resumes from its last checkpoint" : "has a checkpoint (use --resume)";
      std::string targets;
      for (auto& t : targets_for(cfg, r.source))
        if (!avail.skipped_targets.count(t)) targets += (targets.empty() ? "" : ",") + t;
      log << "  " << r.run_id() << "  -> " << targets << "  [" << state << "]\n";
    }
    log << "results: " << sum.results_file << "\n";
    return sum;
  }

  auto om = cfg.marks.find("output_dir");
  std::string where = om != cfg.marks.end() ? om->second.str() + ": " : "";
  check_writable(cfg.output_dir, where);
  check_writable(fs::path(sum.results_file).parent_path().string(), where);
  NEURN_CHECK(opt.resume || done.empty(), cfg.output_dir, " already holds ", done.size(),
              " finished runs: pass --resume to continue the sweep, or set another output_dir");
  ResultsLock lock(sum.results_file);
  write_file_atomic(cfg.output_dir + "/config.yaml", config_to_yaml(cfg));

  log << "neurn run " << cfg.name << ": " << mine.size() << " runs";
  if (opt.shard_count > 1) log << " (shard " << opt.shard_index << "/" << opt.shard_count << ")";
  log << ", results in " << sum.results_file << "\n";
  for (auto& [t, why] : avail.skipped_targets) log << "  target " << t << " skipped: " << why << "\n";
  for (auto& m : avail.unavailable_models) log << "  model " << m << " skipped: not registered in this build\n";

  int k = 0;
  for (auto& spec : mine) {
    ++k;
    std::string id = spec.run_id();
    if (unavailable.count(spec.model.name)) continue;
    if (done.count(id)) {
      ++sum.already_done;
      log << "[" << k << "/" << mine.size() << "] " << id << ": already recorded, skipped\n";
      continue;
    }
    log << "[" << k << "/" << mine.size() << "] " << id << "\n";
    TrainOptions to;
    to.run_dir = cfg.output_dir + "/runs/" + spec.dir_name();
    to.resume = opt.resume;
    to.log = &log;
    to.skipped_targets = avail.skipped_targets;
    to.data_root = root;
    try {
      RunRecord rec = train_run(cfg, spec, to);
      append_record(sum.results_file, rec);
      // Recorded: the resume point is no longer needed (best.* stays).
      remove_checkpoint(to.run_dir + "/last");
      ++sum.finished;
      if (rec.status == "diverged") {
        ++sum.diverged;
        log << "  " << id << " diverged: " << rec.message << " (recorded; the sweep goes on)\n";
      }
    } catch (const Error& e) {
      ++sum.failed;
      log << "  " << id << " FAILED: " << e.what() << "\n";
      nlohmann::json f = {{"run_id", id}, {"error", e.what()}, {"at", utc_now()}};
      std::string failures = fs::path(sum.results_file).parent_path().string() + "/failures.jsonl";
      std::ofstream(failures, std::ios::app) << f.dump() << "\n";
    }
    log.flush();
  }

  log << "done: " << sum.finished << " runs recorded now (" << sum.diverged << " diverged), " << sum.already_done
      << " recorded before, " << sum.failed << " failed\n";

  if (cfg.report) {
    LoadedResults all = load_results_dir(cfg.output_dir);
    ReportFiles rf = write_report(all, cfg.output_dir + "/report", "neurn: " + cfg.name);
    sum.report_html = rf.html;
    Table1 t = build_table1(all.records);
    sum.table_markdown = table1_markdown(t);
    if (auto sim = functional_similarity(t)) {
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "functional similarity (mean off-diagonal cosine of %zu models): %.3f without NeuRN, %.3f with",
                    sim->models.size(), sim->mean_offdiag_before, sim->mean_offdiag_after);
      sum.similarity = buf;
    }
  }
  return sum;
}

}  // namespace neurn::experiments
