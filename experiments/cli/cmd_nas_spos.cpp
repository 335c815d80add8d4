// `neurn nas spos train|search|export|run|show`: SPOS on the digit domains.
// train: the supernet, one uniformly sampled path per step; search: the
// shared evolution (nas/evolution.h) under a FLOPs and/or parameter limit,
// fitness = validation accuracy of a path after BN recalibration on training
// batches; export: the best architecture as OUTPUT/arch.json (the registry's
// `spos` with arch: OUTPUT/arch.json) and an HTML page with the search's best
// and mean fitness per generation (OUTPUT/search.html); run: all three, then
// the config's finetune: runs (the standalone network trained from scratch,
// as the paper retrains it, without and with NeuRN) through the experiment
// runner. One YAML config (experiments/configs/spos_tiny.yaml documents the keys).
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

#include "datasets/datasets.h"
#include "experiments/cli/cli.h"
#include "experiments/cli/nas_common.h"
#include "experiments/config.h"
#include "experiments/plot.h"
#include "experiments/sweep.h"
#include "framework/error.h"
#include "layers/layers.h"
#include "nas/spos/train_search.h"

namespace neurn::cli {
namespace {

namespace fs = std::filesystem;
using namespace neurn::spos;

// The actions, for --help (the flags are listed by the parser).
const char* kActions = R"(ACTION is one of
  train    trains the supernet (one uniform path per step): OUTPUT/supernet.safetensors
  search   evolution under the FLOPs / parameter limits, fitness = validation accuracy
           after BN recalibration: OUTPUT/search_history.json (resumable), OUTPUT/search_result.json
  export   the best architecture (or --arch): OUTPUT/arch.json (model spos, arch: OUTPUT/arch.json)
           and OUTPUT/search.html (best and mean fitness per generation, the architecture)
  run      train, search, export, then the config's finetune: runs (without and with NeuRN)
  show     checks the config and prints the resolved settings and the FLOPs range)";

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct SposConfig {
  std::string name = "spos", output_dir = "runs/spos", data_root, device = "auto";
  SposSpace space;
  std::string source = "mnist";
  int64_t train_images = 0, val_images = 1000, input_size = 32;
  uint64_t seed = 0;
  SupernetTrainOptions train;
  int64_t batch_size = 128;  // the paper's
  int64_t log_every = 50;
  SposSearchOptions search;
  int64_t val_batch = 250, calib_batches = 4;
  YAML::Node finetune;
};

SposConfig load_spos_config(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    NEURN_FAIL(path, ": ", e.what());
  }
  yaml_only_keys(root, {"name", "output_dir", "data_root", "device", "spos", "finetune"}, path);
  SposConfig c;
  c.name = yaml_get<std::string>(root, "name", c.name, path);
  c.output_dir = yaml_get<std::string>(root, "output_dir", "runs/" + c.name, path);
  c.data_root = yaml_get<std::string>(root, "data_root", "", path);
  c.device = yaml_get<std::string>(root, "device", "auto", path);
  YAML::Node a = root["spos"];
  std::string w = path + ": spos";
  NEURN_CHECK(a && a.IsMap(), path, ": no spos: section");
  yaml_only_keys(a, {"space", "source", "train_images", "val_images", "input_size", "seed", "train", "search"}, w);
  YAML::Node sp = a["space"];
  std::string ws = w + ".space";
  yaml_only_keys(sp, {"stage_repeats", "stage_channels", "stage_strides", "stem_channels", "stem_stride", "last_channels",
                 "width", "dropout", "search_ops", "search_channels", "search_bits", "channel_scales", "weight_bits",
                 "act_bits"},
            ws);
  SposSpace& s = c.space;
  s.stage_repeats = yaml_get(sp, "stage_repeats", s.stage_repeats, ws);
  s.stage_channels = yaml_get(sp, "stage_channels", s.stage_channels, ws);
  s.stage_strides = yaml_get(sp, "stage_strides", s.stage_strides, ws);
  s.stem_channels = yaml_get(sp, "stem_channels", s.stem_channels, ws);
  s.stem_stride = yaml_get(sp, "stem_stride", s.stem_stride, ws);
  s.last_channels = yaml_get(sp, "last_channels", s.last_channels, ws);
  s.width = yaml_get(sp, "width", s.width, ws);
  s.dropout = yaml_get(sp, "dropout", s.dropout, ws);
  s.search_ops = yaml_get(sp, "search_ops", s.search_ops, ws);
  s.search_channels = yaml_get(sp, "search_channels", s.search_channels, ws);
  s.search_bits = yaml_get(sp, "search_bits", s.search_bits, ws);
  s.channel_scales = yaml_get(sp, "channel_scales", s.channel_scales, ws);
  s.weight_bits = yaml_get(sp, "weight_bits", s.weight_bits, ws);
  s.act_bits = yaml_get(sp, "act_bits", s.act_bits, ws);
  try {
    s.validate();
  } catch (const Error& e) {
    NEURN_FAIL(ws, ": ", e.what());
  }
  c.source = yaml_get<std::string>(a, "source", c.source, w);
  c.train_images = yaml_get<int64_t>(a, "train_images", 0, w);
  c.val_images = yaml_get<int64_t>(a, "val_images", c.val_images, w);
  c.input_size = yaml_get<int64_t>(a, "input_size", 32, w);
  c.seed = yaml_get<uint64_t>(a, "seed", 0, w);
  YAML::Node t = a["train"];
  yaml_only_keys(t, {"steps", "batch_size", "lr", "momentum", "weight_decay", "label_smoothing", "min_flops", "max_flops",
                "log_every"},
            w + ".train");
  c.train.steps = yaml_get<int64_t>(t, "steps", c.train.steps, w);
  c.batch_size = yaml_get<int64_t>(t, "batch_size", c.batch_size, w);
  c.train.lr = yaml_get<double>(t, "lr", c.train.lr, w);
  c.train.momentum = yaml_get<double>(t, "momentum", c.train.momentum, w);
  c.train.weight_decay = yaml_get<double>(t, "weight_decay", c.train.weight_decay, w);
  c.train.label_smoothing = yaml_get<double>(t, "label_smoothing", c.train.label_smoothing, w);
  c.train.min_flops = yaml_get<int64_t>(t, "min_flops", 0, w);
  c.train.max_flops = yaml_get<int64_t>(t, "max_flops", 0, w);
  c.log_every = yaml_get<int64_t>(t, "log_every", 50, w);
  c.train.seed = c.seed;
  YAML::Node se = a["search"];
  yaml_only_keys(se, {"population", "parents", "mutations", "crossovers", "generations", "mutation_prob", "max_flops",
                 "max_params", "val_batch", "calib_batches"},
            w + ".search");
  auto& e = c.search.evolution;
  e.population = yaml_get<int>(se, "population", e.population, w);
  e.parents = yaml_get<int>(se, "parents", e.parents, w);
  e.mutations = yaml_get<int>(se, "mutations", e.mutations, w);
  e.crossovers = yaml_get<int>(se, "crossovers", e.crossovers, w);
  e.generations = yaml_get<int>(se, "generations", e.generations, w);
  e.seed = c.seed;
  c.search.mutation_prob = yaml_get<double>(se, "mutation_prob", 0.1, w);
  c.search.max_flops = yaml_get<int64_t>(se, "max_flops", 0, w);
  c.search.max_params = yaml_get<int64_t>(se, "max_params", 0, w);
  c.val_batch = yaml_get<int64_t>(se, "val_batch", c.val_batch, w);
  c.calib_batches = yaml_get<int64_t>(se, "calib_batches", c.calib_batches, w);
  NEURN_CHECK(c.batch_size > 0 && c.val_batch > 0 && c.calib_batches > 0, w,
              ": batch_size, val_batch and calib_batches must be positive");
  for (auto* o : {&c.train.input_size, &c.search.input_size}) *o = c.input_size;
  c.train.num_classes = c.search.num_classes = 10;
  c.train.in_channels = c.search.in_channels = 3;
  c.finetune = root["finetune"];
  return c;
}

Device pick_device(const std::string& d) {
  if (d == "auto") return cuda_available() ? Device::cuda() : Device::cpu();
  return Device::parse(d);
}

struct SourceData {
  data::Dataset fit, val;
};

SourceData load_source(const SposConfig& c) {
  std::string root = c.data_root.empty() ? data::data_root() : c.data_root;
  data::Protocol p = c.train_images > 0 ? data::Protocol::first_n(c.train_images) : data::Protocol::full();
  data::Dataset train = data::load_domain(c.source, "train", root, p);
  NEURN_CHECK(c.val_images > 0 && c.val_images < train.size(), "spos: val_images ", c.val_images, " must be in (0, ",
              train.size(), ")");
  auto [fit, val] = data::split_validation(train, static_cast<double>(c.val_images) / train.size(), c.seed + 1);
  std::printf("data: %s train %lld images, validation %lld\n", c.source.c_str(), static_cast<long long>(fit.size()),
              static_cast<long long>(val.size()));
  return {fit, val};
}

data::LoaderOptions loader_options(const SposConfig& c, int64_t batch, Device dev) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = false;
  o.size = c.input_size;
  o.channels = 3;
  o.normalize = data::Normalization::none();  // as the runner without weights: pixels in [0, 1]
  o.device = dev;
  return o;
}

// Step s's batch: batch s % per_epoch of epoch s / per_epoch's permutation.
std::pair<Tensor, Tensor> batch_at(const data::DataLoader& loader, const data::Dataset& ds, int64_t batch, uint64_t seed,
                                   int64_t step, Device dev) {
  const int64_t per_epoch = ds.size() / batch;
  int64_t epoch = step / per_epoch, b = step % per_epoch;
  std::vector<int64_t> order(static_cast<size_t>(ds.size()));
  std::iota(order.begin(), order.end(), 0);
  Generator g(splitmix64(seed + 7) ^ static_cast<uint64_t>(epoch));
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[g.below(i)]);
  data::Batch bt = loader.make_batch(order, b * batch, (b + 1) * batch, epoch);
  return {bt.images, bt.labels.to(dev)};
}

std::shared_ptr<Supernet> new_supernet(const SposConfig& c, Device dev) {
  Generator gen(c.seed);
  ParamScope scope({DType::Float32, dev}, &gen);
  return std::make_shared<Supernet>(c.space, 10, 3);
}

fs::path out_dir(const SposConfig& c) {
  fs::create_directories(c.output_dir);
  return c.output_dir;
}

int do_train(const SposConfig& c) {
  Device dev = pick_device(c.device);
  SourceData d = load_source(c);
  data::DataLoader loader(d.fit, loader_options(c, c.batch_size, dev));
  NEURN_CHECK(d.fit.size() >= c.batch_size, "spos train: fewer training images (", d.fit.size(), ") than a batch (",
              c.batch_size, ")");
  auto net = new_supernet(c, dev);
  fs::path out = out_dir(c);
  SupernetTrainOptions train = c.train;  // resumable from OUTPUT/supernet_ckpt.safetensors
  train.checkpoint_path = (out / "supernet_ckpt.safetensors").string();
  std::printf("supernet: %lld layers, %lld parameters, %lld steps of batch %lld on %s (lr %g, linear decay)\n",
              static_cast<long long>(c.space.layers()), static_cast<long long>(net->num_parameters()),
              static_cast<long long>(c.train.steps), static_cast<long long>(c.batch_size), dev.str().c_str(), c.train.lr);
  auto t0 = Clock::now();
  double window = 0;
  int64_t in_window = 0;
  SupernetTrainResult tr = train_supernet(
      *net, train, [&](int64_t step) { return batch_at(loader, d.fit, c.batch_size, c.seed, step, dev); },
      [&](const TrainProgress& p) {
        window += p.loss, ++in_window;
        if (p.step % c.log_every == 0 || p.step == p.steps) {
          double el = since(t0), rate = static_cast<double>(p.step) / std::max(el, 1e-9);
          std::printf("train step %lld/%lld: loss %.4f (mean of %lld), lr %.3g, path %s, %.1f s, ETA %.0f s\n",
                      static_cast<long long>(p.step), static_cast<long long>(p.steps), window / in_window,
                      static_cast<long long>(in_window), p.lr, describe(*p.path).c_str(), el,
                      static_cast<double>(p.steps - p.step) / rate);
          std::fflush(stdout);
          window = 0, in_window = 0;
        }
      });
  if (tr.resumed_from > 0)
    std::printf("supernet: resumed from step %lld of %s\n", static_cast<long long>(tr.resumed_from),
                train.checkpoint_path.c_str());
  save_state(*net, (out / "supernet.safetensors").string());
  std::printf("supernet trained: %lld steps in %.1f s -> %s\n", static_cast<long long>(c.train.steps), since(t0),
              (out / "supernet.safetensors").string().c_str());
  std::fflush(stdout);
  return 0;
}

int do_search(const SposConfig& c, bool fresh) {
  Device dev = pick_device(c.device);
  SourceData d = load_source(c);
  auto net = new_supernet(c, dev);
  fs::path weights = fs::path(c.output_dir) / "supernet.safetensors";
  NEURN_CHECK(fs::exists(weights), "spos search: no supernet weights at ", weights.string(),
              " (run neurn nas spos train first)");
  load_state_file(*net, weights.string());
  // BN recalibration batches from the training split, the fitness on the validation split
  data::DataLoader train_loader(d.fit, loader_options(c, c.batch_size, dev));
  std::vector<Tensor> calib;
  for (int64_t i = 0; i < c.calib_batches; ++i) calib.push_back(batch_at(train_loader, d.fit, c.batch_size, c.seed + 99, i, dev).first);
  data::DataLoader loader(d.val, loader_options(c, c.val_batch, dev));
  std::vector<std::pair<Tensor, Tensor>> val;
  for (const data::Batch& b : loader) val.push_back({b.images, b.labels.to(dev)});
  fs::path out = out_dir(c);
  SposSearchOptions o = c.search;
  o.evolution.history_path = (out / "search_history.json").string();
  o.evolution.resume = !fresh;
  if (fresh) fs::remove(o.evolution.history_path);
  o.evolution.on_generation = [](const nas::GenerationStats& s) {
    std::printf("search %s\n", nas::format_progress(s).c_str());
    std::fflush(stdout);
  };
  std::printf("search: population %d, parents %d, %d mutations (p %.2f), %d crossovers, %d generations, "
              "FLOPs <= %lld, params <= %lld (0: no limit), recalibration on %lld batches\n",
              o.evolution.population, o.evolution.parents, o.evolution.mutations, o.mutation_prob,
              o.evolution.crossovers, o.evolution.generations, static_cast<long long>(o.max_flops),
              static_cast<long long>(o.max_params), static_cast<long long>(c.calib_batches));
  auto t0 = Clock::now();
  SposSearchResult r = search_spos(c.space, o, [&](const SposArch& a) { return path_accuracy(*net, a, calib, val); });
  save_arch(r.best, (out / "search_result.json").string());
  std::printf("search done in %.1f s: best %s, validation accuracy %.4f, %.2f MFLOPs, %lld parameters (%lld paths scored)\n",
              since(t0), describe(r.best).c_str(), r.fitness, r.cost.flops / 1e6, static_cast<long long>(r.cost.params),
              static_cast<long long>(r.evolution.evaluations));
  return 0;
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '<') o += "&lt;";
    else if (ch == '>') o += "&gt;";
    else if (ch == '&') o += "&amp;";
    else o += ch;
  }
  return o;
}

void write_search_html(const SposConfig& c, const SposArch& best, const fs::path& history, const fs::path& path) {
  std::ostringstream f;
  f << "<!doctype html><html><head><meta charset=\"utf-8\"><title>SPOS search: " << html_escape(c.name)
    << "</title></head><body>\n<h2>SPOS search</h2>\n";
  if (fs::exists(history)) {
    nas::EvolutionResult h = nas::load_evolution_history(history.string());
    experiments::LineChart chart;
    chart.title = "SPOS evolution: validation accuracy per generation";
    chart.xlabel = "generation";
    chart.ylabel = "validation accuracy";
    experiments::Series best_s{"best so far", {}, {}, experiments::palette(0)};
    experiments::Series mean_s{"population mean", {}, {}, experiments::palette(1), true};
    for (auto& g : h.history) {
      best_s.x.push_back(g.generation + 1), best_s.y.push_back(g.best);
      mean_s.x.push_back(g.generation + 1), mean_s.y.push_back(g.mean);
    }
    chart.series = {best_s, mean_s};
    f << line_chart_svg(chart) << "\n<p>" << h.history.size() << " generations, " << h.evaluations
      << " paths scored (BN recalibrated on training batches, accuracy on the validation split).</p>\n";
  }
  ArchCost cost = arch_cost(best, 10, 3, c.input_size);
  f << "<h3>Chosen architecture</h3>\n<p>" << cost.flops / 1e6 << " MFLOPs at " << c.input_size << "x" << c.input_size
    << ", " << cost.params << " parameters</p>\n<table border=\"1\" cellpadding=\"3\"><tr><th>layer</th><th>in</th>"
       "<th>out</th><th>stride</th><th>op</th><th>mid</th><th>weight bits</th><th>act bits</th></tr>\n";
  for (int64_t l = 0; l < best.space.layers(); ++l)
    f << "<tr><td>" << l << "</td><td>" << best.space.in_channels(l) << "</td><td>" << best.space.out_channels(l)
      << "</td><td>" << best.space.stride(l) << "</td><td>" << op_name(best.layers[l].op) << "</td><td>" << best.mid(l)
      << "</td><td>" << best.weight_bits(l) << "</td><td>" << best.act_bits(l) << "</td></tr>\n";
  f << "</table>\n</body></html>\n";
  experiments::write_file_atomic(path.string(), f.str());
}

int do_export(const SposConfig& c, const std::string& arch) {
  fs::path out = out_dir(c);
  SposArch best;
  if (!arch.empty()) {
    best = parse_arch(arch);
  } else {
    fs::path res = out / "search_result.json";
    NEURN_CHECK(fs::exists(res), "spos export: no ", res.string(), " (run search first, or pass --arch)");
    best = parse_arch(res.string());
  }
  save_arch(best, (out / "arch.json").string());
  write_search_html(c, best, out / "search_history.json", out / "search.html");
  ArchCost cost = arch_cost(best, 10, 3, c.input_size);
  std::printf("exported %s (%.2f MFLOPs, %lld parameters) -> %s (model spos, arch: %s); report %s\n",
              describe(best).c_str(), cost.flops / 1e6, static_cast<long long>(cost.params),
              (out / "arch.json").string().c_str(), (out / "arch.json").string().c_str(),
              (out / "search.html").string().c_str());
  return 0;
}

NasFinetune finetune_settings(const SposConfig& c) {
  return {"spos", c.name, c.output_dir, c.data_root, c.source, "retrain", "arch.json"};
}

int do_finetune(const SposConfig& c, bool fresh) { return run_nas_finetune(c.finetune, finetune_settings(c), fresh); }

int do_show(const SposConfig& c) {
  const SposSpace& s = c.space;
  SposArch lo, hi;
  lo.space = s;
  lo.layers.assign(static_cast<size_t>(s.layers()), LayerChoice{});
  hi = lo;
  for (auto& l : hi.layers) l.op = s.search_ops ? 2 : 0, l.scale = static_cast<int>(s.scales().size()) - 1;
  std::printf("space: %lld layers (stages %s), width %g, ops %s, channels %s, bits %s; %lld genes\n",
              static_cast<long long>(s.layers()), [&] {
                std::string r;
                for (auto v : s.stage_repeats) r += (r.empty() ? "" : "-") + std::to_string(v);
                return r;
              }().c_str(),
              s.width, s.search_ops ? "searched" : "fixed", s.search_channels ? "searched" : "fixed",
              s.search_bits ? "searched" : "fixed", static_cast<long long>(gene_choices(s).size()));
  ArchCost a = arch_cost(lo, 10, 3, c.input_size), b = arch_cost(hi, 10, 3, c.input_size);
  std::printf("at %lldx%lld: all shuffle3 at the smallest width %.2f MFLOPs / %lld params; all shuffle7 at the widest %.2f MFLOPs / %lld params\n",
              static_cast<long long>(c.input_size), static_cast<long long>(c.input_size), a.flops / 1e6,
              static_cast<long long>(a.params), b.flops / 1e6, static_cast<long long>(b.params));
  std::printf("train: %lld steps, batch %lld, lr %g, momentum %g, weight decay %g, label smoothing %g on %s\n",
              static_cast<long long>(c.train.steps), static_cast<long long>(c.batch_size), c.train.lr, c.train.momentum,
              c.train.weight_decay, c.train.label_smoothing, c.source.c_str());
  const auto& e = c.search.evolution;
  std::printf("search: population %d, parents %d, %d mutations, %d crossovers, %d generations, FLOPs <= %lld, params <= %lld\n",
              e.population, e.parents, e.mutations, e.crossovers, e.generations,
              static_cast<long long>(c.search.max_flops), static_cast<long long>(c.search.max_params));
  if (c.finetune) nas_finetune_config(c.finetune, finetune_settings(c));  // checked now, not after the search
  std::printf("finetune: %s\n", c.finetune ? "yes (the finetune: section parses)" : "none");
  return 0;
}

int cmd_nas_spos(const Flags& f) {
  NEURN_CHECK(f.has("config"), "--config FILE is required (see neurn nas spos --help)");
  SposConfig c = load_spos_config(f.get("config"));
  if (f.has("output")) c.output_dir = f.get("output");
  if (f.has("data-root")) c.data_root = f.get("data-root");
  if (f.has("device")) c.device = f.get("device");
  if (f.has("steps")) c.train.steps = f.get_int("steps", c.train.steps);
  if (f.has("generations")) c.search.evolution.generations = static_cast<int>(f.get_int("generations", 20));
  bool fresh = f.has("fresh");
  const std::string& action = f.positional()[0];
  auto t0 = Clock::now();
  int rc = 0;
  if (action == "train") rc = do_train(c);
  else if (action == "search") rc = do_search(c, fresh);
  else if (action == "export") rc = do_export(c, f.get("arch"));
  else if (action == "show") rc = do_show(c);
  else if (action == "run") {
    rc = do_train(c);
    if (rc == 0) rc = do_search(c, fresh);
    if (rc == 0) rc = do_export(c, "");
    if (rc == 0) rc = do_finetune(c, fresh);
    std::printf("spos run: %.1f s in all\n", since(t0));
  } else {
    NEURN_FAIL("unknown action '", action, "' (train, search, export, run or show)");
  }
  return rc;
}

Register reg{{.name = "nas spos",
              .summary = "SPOS: train the supernet, search, export, retrain with and without NeuRN (train|search|export|run|show)",
              .positionals = "ACTION",
              .min_positionals = 1,
              .max_positionals = 1,
              .flags = {text("config", "FILE", "YAML (experiments/configs/spos_tiny.yaml); required"),
              text("output", "DIR", "overrides output_dir"), text("data-root", "DIR", "overrides data_root"),
              text("device", "cpu|cuda|auto", "overrides device"),
              integer("steps", "N", "overrides spos.train.steps"),
              integer("generations", "N", "overrides spos.search.generations"),
              text("arch", "ENCODING", "export this architecture (JSON file or 20 op indices)"),
              on_off("fresh", "ignore the search history (default: resume)")},
              .details = kActions,
              .fn = cmd_nas_spos}};

}  // namespace
}  // namespace neurn::cli
