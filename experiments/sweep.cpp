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
#include <map>
#include <set>
#include <sstream>

#include "datasets/datasets.h"
#include "experiments/checkpoint.h"
#include "experiments/run_identity.h"
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
  const std::vector<FrontSpec> fronts = run_fronts(cfg);
  for (auto& m : cfg.models)
    for (auto& s : cfg.sources)
      for (auto seed : cfg.seeds)
        for (const FrontSpec& f : fronts) out.push_back({m, f.kind == "neurn", s, seed, f});
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
  // Model entries that cannot run here: missing weights files. Listed by a
  // dry run, skipped (and said so) with skip_unavailable_models, else an error.
  std::set<std::string> missing_weights;  // variants
  for (auto& m : cfg.models) {
    if (unavailable.count(m.name)) continue;
    ModelOptions mo;
    mo.in_channels = 3;
    mo.input_size = cfg.image_size > 0 ? cfg.image_size : std::max<int64_t>(32, model_info(m.name).min_input_size);
    mo.width = m.width;
    mo.arch = m.arch;
    try {
      trace_model(m.name, mo);  // on the meta device: shapes only
    } catch (const Error& e) {
      NEURN_FAIL(m.mark.str(), ": model ", m.name, " cannot be built with these settings: ", e.what());
    }
    if (!m.weights.empty() && !fs::is_regular_file(m.weights)) {
      auto wm = m.marks.find("weights");
      std::string where = (wm != m.marks.end() ? wm->second : m.mark).str();
      if (!opt.dry_run && !cfg.skip_unavailable_models)
        NEURN_FAIL(where, ": initial weights ", m.weights, " of ", m.variant(),
                   " do not exist (docs/experiments.md says where to get them; or set skip_unavailable_models: true "
                   "to run the others)");
      missing_weights.insert(m.variant());
      sum.missing_weights.push_back(m.variant() + ": " + m.weights + " (" + m.weights_format + ", " + where + ")");
    }
  }

  std::vector<RunSpec> grid = expand_grid(cfg);
  std::vector<RunSpec> mine;
  for (size_t k = 0; k < grid.size(); ++k) {
    if (static_cast<int>(k % static_cast<size_t>(opt.shard_count)) != opt.shard_index) continue;
    if (!matches_only(grid[k].run_id(), opt.only)) continue;
    mine.push_back(grid[k]);
  }
  sum.planned = static_cast<int>(mine.size());
  auto runnable = [&](const RunSpec& r) {
    return !unavailable.count(r.model.name) && !missing_weights.count(r.model.variant());
  };

  // What the output directory holds: records (every shard) and run folders,
  // each with its run id, fingerprint and settings.
  struct Existing {
    std::string what;  // "recorded in results.jsonl", "started in runs/X"
    std::string fingerprint;
    nlohmann::json settings;  // null when unknown (before fingerprints)
  };
  std::map<std::string, std::vector<Existing>> existing;  // run id -> what is there
  std::set<std::string> done;                             // run id + "#" + fingerprint
  size_t records_there = 0, folders_there = 0;
  if (fs::exists(cfg.output_dir)) {
    bool any = false;
    for (auto& e : fs::recursive_directory_iterator(cfg.output_dir))
      any |= e.is_regular_file() && e.path().filename() == "results.jsonl";
    if (any) {
      LoadedResults prev = load_results_dir(cfg.output_dir);
      for (auto& w : prev.warnings) log << "warning: " << w << "\n";
      records_there = prev.records.size();
      for (auto& r : prev.records) {
        done.insert(r.run_id + "#" + r.fingerprint);
        existing[r.run_id].push_back({"recorded", r.fingerprint,
                                      r.settings_json.empty() ? nlohmann::json() : nlohmann::json::parse(r.settings_json)});
      }
    }
    std::error_code ec;
    for (auto& e : fs::directory_iterator(cfg.output_dir + "/runs", ec)) {
      if (!e.is_directory()) continue;
      ++folders_there;
      std::ifstream in(e.path() / "run.json");
      if (!in) continue;  // a folder from before fingerprints: never written into (new folders have other names)
      try {
        nlohmann::json j = nlohmann::json::parse(in);
        existing[j.at("run_id").get<std::string>()].push_back(
            {"started in runs/" + e.path().filename().string(), j.at("fingerprint").get<std::string>(),
             j.at("settings")});
      } catch (const std::exception& ex) {
        log << "warning: " << (e.path() / "run.json").string() << " is unreadable (" << ex.what() << "); ignored\n";
      }
    }
  }

  // Each planned run: done, resumable, changed (recorded or started with
  // other settings) or new.
  struct Plan {
    RunIdentity id;
    std::string state;                 // done | resume | changed | new | unavailable
    std::vector<std::string> changes;  // for changed: "key: old -> new", with where the old one is
  };
  std::vector<Plan> plans;
  for (auto& r : mine) {
    Plan p;
    if (!runnable(r)) {
      p.id.run_id = r.run_id();
      p.state = "unavailable";
      plans.push_back(p);
      continue;
    }
    p.id = run_identity(cfg, r);
    if (done.count(p.id.run_id + "#" + p.id.fingerprint)) {
      p.state = "done";
    } else if (checkpoint_exists(cfg.output_dir + "/runs/" + p.id.folder + "/last")) {
      p.state = "resume";
    } else {
      p.state = "new";
      auto it = existing.find(p.id.run_id);
      if (it != existing.end())
        for (auto& e : it->second) {
          if (e.fingerprint == p.id.fingerprint) continue;  // its own folder, started but without a checkpoint
          p.state = "changed";
          if (e.settings.is_null()) {
            p.changes.push_back(e.what + " before fingerprints existed: its settings are unknown");
          } else {
            for (auto& c : changed_settings(e.settings, p.id.settings)) p.changes.push_back(c + " (" + e.what + ")");
          }
          break;  // one earlier version is enough to name what changed
        }
    }
    plans.push_back(p);
  }

  if (opt.dry_run) {
    log << "plan for " << cfg.file << " (" << cfg.name << "): " << grid.size() << " runs in the grid, " << mine.size()
        << " selected";
    if (opt.shard_count > 1) log << " for shard " << opt.shard_index << "/" << opt.shard_count;
    log << "\n";
    for (auto& m : avail.unavailable_models) log << "  unavailable model: " << m << " (not registered in this build)\n";
    for (auto& w : sum.missing_weights) log << "  missing weights: " << w << "\n";
    for (auto& [t, why] : avail.unavailable_sources) log << "  unavailable source: " << t << ": " << why << "\n";
    for (auto& [t, why] : avail.skipped_targets) log << "  unavailable target: " << t << ": " << why << "\n";
    for (size_t i = 0; i < mine.size(); ++i) {
      const RunSpec& r = mine[i];
      const Plan& p = plans[i];
      std::string state = "to run";
      if (unavailable.count(r.model.name))
        state = "unavailable: model not registered";
      else if (missing_weights.count(r.model.variant()))
        state = "unavailable: weights file missing";
      else if (avail.unavailable_sources.count(r.source))
        state = "unavailable: source data missing";
      else if (p.state == "done")
        state = "done";
      else if (p.state == "resume")
        state = opt.resume ? "resumes from its last checkpoint" : "has a checkpoint (use --resume)";
      else if (p.state == "changed")
        state = std::string("settings changed (") + (opt.as_new ? "starts as a new run" : "needs --as-new") +
                "): " + p.changes.front();
      std::string targets;
      for (auto& t : targets_for(cfg, r.source))
        if (!avail.skipped_targets.count(t)) targets += (targets.empty() ? "" : ",") + t;
      log << "  " << r.run_id() << "  -> " << targets << "  [" << state << "]";
      if (!p.id.fingerprint.empty())
        log << "  " << p.id.fingerprint.substr(0, 8) << " normalize " << p.id.settings["model"]["normalize"].get<std::string>();
      log << "\n";
    }
    log << "results: " << sum.results_file << "\n";
    return sum;
  }

  auto om = cfg.marks.find("output_dir");
  std::string where = om != cfg.marks.end() ? om->second.str() + ": " : "";
  check_writable(cfg.output_dir, where);
  check_writable(fs::path(sum.results_file).parent_path().string(), where);
  const bool resume = opt.resume || opt.as_new;
  if (!resume && (records_there > 0 || folders_there > 0)) {
    std::string there;
    int listed = 0;
    for (auto& [id, v] : existing)
      for (auto& e : v)
        if (listed++ < 5) there += "\n  " + id + ": " + e.what;
    NEURN_FAIL(cfg.output_dir, " already holds ", records_there, " finished runs: pass --resume to continue the "
               "sweep (recorded runs are skipped, interrupted ones continue from their checkpoints; a run whose "
               "settings changed is named and nothing runs until you pass --as-new), or set another output_dir. "
               "Nothing was overwritten. There: ", records_there, " records and ", folders_there, " run folders",
               there.empty() ? "" : ", e.g." + there);
  }
  {
    std::string changed;
    int n = 0;
    for (auto& p : plans) {
      if (p.state != "changed") continue;
      ++n;
      changed += "\n  " + p.id.run_id + ":";
      for (auto& c : p.changes) changed += "\n      " + c;
    }
    if (n > 0 && !opt.as_new)
      NEURN_FAIL("--resume: the settings of ", n, " runs differ from what ", cfg.output_dir,
                 " holds for them (changed keys: old -> new):", changed,
                 "\nNothing was run. Restore those keys to continue the old runs, or pass --as-new to start the "
                 "changed runs as new runs beside the old ones (their records and folders are kept; Table 1 shows "
                 "them as separate variants), or set another output_dir.");
  }
  ResultsLock lock(sum.results_file);
  {
    // The config as run; a different earlier one is kept beside it.
    std::string path = cfg.output_dir + "/config.yaml", now = config_to_yaml(cfg);
    std::ifstream in(path);
    if (in) {
      std::stringstream old;
      old << in.rdbuf();
      if (old.str() != now) {
        std::string tag = utc_now();
        for (char& c : tag)
          if (c == ':') c = '-';
        write_file_atomic(cfg.output_dir + "/config.before-" + tag + ".yaml", old.str());
      }
    }
    write_file_atomic(path, now);
  }

  log << "neurn run " << cfg.name << ": " << mine.size() << " runs";
  if (opt.shard_count > 1) log << " (shard " << opt.shard_index << "/" << opt.shard_count << ")";
  log << ", results in " << sum.results_file << "\n";
  for (auto& [t, why] : avail.skipped_targets) log << "  target " << t << " skipped: " << why << "\n";
  for (auto& m : avail.unavailable_models) log << "  model " << m << " skipped: not registered in this build\n";
  for (auto& w : sum.missing_weights) log << "  model " << w << " skipped: weights file missing\n";

  int k = 0;
  for (size_t i = 0; i < mine.size(); ++i) {
    const RunSpec& spec = mine[i];
    const Plan& plan = plans[i];
    ++k;
    std::string id = spec.run_id();
    if (plan.state == "unavailable") continue;
    if (plan.state == "done") {
      ++sum.already_done;
      log << "[" << k << "/" << mine.size() << "] " << id << ": already recorded, skipped\n";
      continue;
    }
    log << "[" << k << "/" << mine.size() << "] " << id;
    if (plan.state == "changed") {
      ++sum.started_as_new;
      log << ": settings changed, started as a new run in runs/" << plan.id.folder << " (" << plan.changes.front()
          << (plan.changes.size() > 1 ? ", ..." : "") << ")";
    }
    log << "\n";
    TrainOptions to;
    to.run_dir = cfg.output_dir + "/runs/" + plan.id.folder;
    to.resume = resume;
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
      io::append_durable(failures, f.dump() + "\n");
    }
    log.flush();
  }

  log << "done: " << sum.finished << " runs recorded now (" << sum.diverged << " diverged), " << sum.already_done
      << " recorded before, " << sum.failed << " failed";
  if (sum.started_as_new > 0)
    log << "; " << sum.started_as_new << " of them started as new runs (settings changed; the old ones are kept)";
  log << "\n";

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
