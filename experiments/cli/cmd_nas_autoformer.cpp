// `neurn nas autoformer train|search|export|run`: AutoFormer on the digit
// domains. train: the supernet, one uniform subnet per step; search: the
// evolution under a parameter limit, fitness = validation accuracy of the
// subnet with inherited weights; export: the best subnet as a standalone
// model (subnet.json + subnet.safetensors, the registry's "autoformer" with
// arch = subnet.json); run: all three, then the fine-tuning of the exported
// subnet without and with NeuRN through the experiment runner (the config's
// finetune: section). One YAML config holds everything
// (experiments/configs/autoformer_tiny.yaml documents the keys).
#include <nlohmann/json.hpp>
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
#include "experiments/sweep.h"
#include "framework/error.h"
#include "layers/layers.h"
#include "nas/autoformer/search.h"
#include "nas/autoformer/subnet_model.h"

namespace neurn::cli {
namespace {

namespace fs = std::filesystem;
using namespace neurn::autoformer;

// The actions, for --help (the flags are listed by the parser).
const char* kActions = R"(ACTION is one of
  train    trains the supernet (one uniform subnet per step); writes
           OUTPUT/supernet.safetensors (and a resumable OUTPUT/supernet_ckpt.safetensors)
  search   evolution under the parameter limit on the validation split; writes
           OUTPUT/search_history.json (resumable) and OUTPUT/search_result.json
  export   the best subnet (or --arch) with its inherited weights:
           OUTPUT/subnet.json + OUTPUT/subnet.safetensors (model autoformer, arch: OUTPUT/subnet.json)
  run      train, search, export, then the config's finetune: runs (without and with NeuRN)
  show     checks the config and prints the resolved settings (no data, no training))";

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The autoformer: section, every key with its default.
struct NasConfig {
  std::string name = "autoformer", output_dir = "runs/autoformer", data_root, device = "auto";
  SearchSpace space;
  std::string source = "mnist";
  int64_t train_images = 0, val_images = 1000;  // 0: the whole split
  uint64_t seed = 0;
  SupernetTrainOptions train;
  int64_t batch_size = 24;  // the paper's
  int64_t log_every = 50;
  SubnetSearchOptions search;
  int64_t val_batch = 250;
  YAML::Node finetune;
};

NasConfig load_nas_config(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    NEURN_FAIL(path, ": ", e.what());
  }
  yaml_only_keys(root, {"name", "output_dir", "data_root", "device", "autoformer", "finetune"}, path);
  NasConfig c;
  c.name = yaml_get<std::string>(root, "name", c.name, path);
  c.output_dir = yaml_get<std::string>(root, "output_dir", "runs/" + c.name, path);
  c.data_root = yaml_get<std::string>(root, "data_root", "", path);
  c.device = yaml_get<std::string>(root, "device", "auto", path);
  YAML::Node a = root["autoformer"];
  std::string w = path + ": autoformer";
  NEURN_CHECK(a && a.IsMap(), path, ": no autoformer: section");
  yaml_only_keys(a, {"space", "patch", "head_dim", "relative_position", "max_relative_position", "source", "train_images",
                     "val_images", "seed", "train", "search"},
                 w);
  c.space = search_space(yaml_get<std::string>(a, "space", "cpu", w));
  c.space.patch = yaml_get<int64_t>(a, "patch", c.space.patch, w);
  c.space.head_dim = yaml_get<int64_t>(a, "head_dim", c.space.head_dim, w);
  c.space.relative_position = yaml_get<bool>(a, "relative_position", false, w);  // the reference's --relative_position
  c.space.max_relative_position = yaml_get<int64_t>(a, "max_relative_position", c.space.max_relative_position, w);
  c.space.validate();
  c.source = yaml_get<std::string>(a, "source", c.source, w);
  c.train_images = yaml_get<int64_t>(a, "train_images", 0, w);
  c.val_images = yaml_get<int64_t>(a, "val_images", c.val_images, w);
  c.seed = yaml_get<uint64_t>(a, "seed", 0, w);
  YAML::Node t = a["train"];
  yaml_only_keys(t, {"steps", "batch_size", "lr", "warmup_steps", "label_smoothing", "weight_decay", "checkpoint_every",
                "log_every"},
            w + ".train");
  c.train.steps = yaml_get<int64_t>(t, "steps", c.train.steps, w);
  c.batch_size = yaml_get<int64_t>(t, "batch_size", c.batch_size, w);
  c.train.lr = yaml_get<double>(t, "lr", c.train.lr, w);
  c.train.warmup_steps = yaml_get<int64_t>(t, "warmup_steps", 0, w);
  c.train.label_smoothing = yaml_get<double>(t, "label_smoothing", 0.0, w);
  c.train.weight_decay = yaml_get<double>(t, "weight_decay", 0.0, w);
  c.train.checkpoint_every = yaml_get<int64_t>(t, "checkpoint_every", 100, w);
  c.log_every = yaml_get<int64_t>(t, "log_every", 50, w);
  c.train.seed = c.seed;
  YAML::Node s = a["search"];
  yaml_only_keys(s, {"population", "parents", "mutations", "crossovers", "generations", "max_params", "min_params",
                "layer_mutation_prob", "depth_mutation_prob", "embed_mutation_prob", "val_batch"},
            w + ".search");
  auto& e = c.search.evolution;
  e.population = yaml_get<int>(s, "population", e.population, w);
  e.parents = yaml_get<int>(s, "parents", e.parents, w);
  e.mutations = yaml_get<int>(s, "mutations", e.mutations, w);
  e.crossovers = yaml_get<int>(s, "crossovers", e.crossovers, w);
  e.generations = yaml_get<int>(s, "generations", e.generations, w);
  e.seed = c.seed;
  c.search.max_params = yaml_get<int64_t>(s, "max_params", 0, w);
  c.search.min_params = yaml_get<int64_t>(s, "min_params", 0, w);
  c.search.layer_mutation_prob = yaml_get<double>(s, "layer_mutation_prob", 0.2, w);
  c.search.depth_mutation_prob = yaml_get<double>(s, "depth_mutation_prob", 0.4, w);
  c.search.embed_mutation_prob = yaml_get<double>(s, "embed_mutation_prob", 0.4, w);
  c.val_batch = yaml_get<int64_t>(s, "val_batch", c.val_batch, w);
  NEURN_CHECK(c.batch_size > 0 && c.val_batch > 0, w, ": batch sizes must be positive");
  c.finetune = root["finetune"];
  return c;
}

Device pick_device(const std::string& d) {
  if (d == "auto") return cuda_available() ? Device::cuda() : Device::cpu();
  return Device::parse(d);
}

// The source's training split: the part the supernet trains on and the held-out validation.
struct SourceData {
  data::Dataset fit, val;
};

SourceData load_source(const NasConfig& c) {
  std::string root = c.data_root.empty() ? data::data_root() : c.data_root;
  data::Protocol p = c.train_images > 0 ? data::Protocol::first_n(c.train_images) : data::Protocol::full();
  data::Dataset train = data::load_domain(c.source, "train", root, p);
  NEURN_CHECK(c.val_images > 0 && c.val_images < train.size(), "autoformer: val_images ", c.val_images,
              " must be in (0, ", train.size(), ")");
  auto [fit, val] = data::split_validation(train, static_cast<double>(c.val_images) / train.size(), c.seed + 1);
  std::printf("data: %s train %lld images, validation %lld\n", c.source.c_str(), static_cast<long long>(fit.size()),
              static_cast<long long>(val.size()));
  return {fit, val};
}

data::LoaderOptions loader_options(const NasConfig& c, int64_t batch, Device dev) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = false;
  o.size = c.space.input_size;
  o.channels = c.space.in_channels;
  o.normalize = data::Normalization::none();  // as the runner without weights: pixels in [0, 1]
  o.device = dev;
  return o;
}

std::shared_ptr<Supernet> new_supernet(const NasConfig& c, Device dev) {
  Generator gen(c.seed);
  ParamScope scope({DType::Float32, dev}, &gen);
  return std::make_shared<Supernet>(c.space);
}

fs::path out_dir(const NasConfig& c) {
  fs::create_directories(c.output_dir);
  return c.output_dir;
}

int do_train(const NasConfig& c, bool fresh) {
  Device dev = pick_device(c.device);
  SourceData d = load_source(c);
  data::DataLoader loader(d.fit, loader_options(c, c.batch_size, dev));
  const int64_t per_epoch = d.fit.size() / c.batch_size;
  NEURN_CHECK(per_epoch > 0, "autoformer train: fewer training images (", d.fit.size(), ") than a batch (",
              c.batch_size, ")");
  // Step s reads batch s % per_epoch of epoch s / per_epoch's permutation: resumable.
  BatchFn batch = [&](int64_t step) {
    int64_t epoch = step / per_epoch, b = step % per_epoch;
    std::vector<int64_t> order(static_cast<size_t>(d.fit.size()));
    std::iota(order.begin(), order.end(), 0);
    Generator g(splitmix64(c.seed + 7) ^ static_cast<uint64_t>(epoch));
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[g.below(i)]);
    data::Batch bt = loader.make_batch(order, b * c.batch_size, (b + 1) * c.batch_size, epoch);
    return std::make_pair(bt.images, bt.labels.to(dev));
  };
  auto net = new_supernet(c, dev);
  fs::path out = out_dir(c);
  SupernetTrainOptions o = c.train;
  o.checkpoint_path = (out / "supernet_ckpt.safetensors").string();
  o.resume = !fresh;
  std::printf("supernet: space %s, %lld parameters, %lld steps of batch %lld on %s\n", c.space.name.c_str(),
              static_cast<long long>(net->num_parameters()), static_cast<long long>(o.steps),
              static_cast<long long>(c.batch_size), dev.str().c_str());
  auto t0 = Clock::now();
  double window = 0;
  int64_t in_window = 0, first_step = -1;
  auto r = train_supernet(*net, o, batch, [&](const TrainProgress& p) {
    if (first_step < 0) first_step = p.step - 1;
    window += p.loss, ++in_window;
    if (p.step % c.log_every == 0 || p.step == p.steps) {
      double el = since(t0), rate = static_cast<double>(p.step - first_step) / std::max(el, 1e-9);
      std::printf("train step %lld/%lld: loss %.4f (mean of %lld), lr %.2e, subnet %s, %.1f s, ETA %.0f s\n",
                  static_cast<long long>(p.step), static_cast<long long>(p.steps), window / in_window,
                  static_cast<long long>(in_window), p.lr, encode_subnet(p.subnet).c_str(), el,
                  static_cast<double>(p.steps - p.step) / rate);
      std::fflush(stdout);
      window = 0, in_window = 0;
    }
  });
  if (r.resumed_from > 0) std::printf("resumed from step %lld\n", static_cast<long long>(r.resumed_from));
  save_state(*net, (out / "supernet.safetensors").string(), {{"space", c.space.name}});
  std::printf("supernet trained: %lld steps in %.1f s -> %s\n", static_cast<long long>(r.steps_done), since(t0),
              (out / "supernet.safetensors").string().c_str());
  std::fflush(stdout);
  return 0;
}

std::shared_ptr<Supernet> load_trained(const NasConfig& c, Device dev, const std::string& file) {
  auto net = new_supernet(c, dev);
  std::string path = file.empty() ? (fs::path(c.output_dir) / "supernet.safetensors").string() : file;
  NEURN_CHECK(fs::exists(path), "autoformer: no supernet weights at ", path, " (run neurn nas autoformer train first)");
  load_supernet_weights(*net, path);
  return net;
}

int do_search(const NasConfig& c, bool fresh, const std::string& supernet) {
  Device dev = pick_device(c.device);
  SourceData d = load_source(c);
  auto net = load_trained(c, dev, supernet);
  data::DataLoader loader(d.val, loader_options(c, c.val_batch, dev));
  std::vector<std::pair<Tensor, Tensor>> val;
  for (const data::Batch& b : loader) val.push_back({b.images, b.labels.to(dev)});
  fs::path out = out_dir(c);
  SubnetSearchOptions o = c.search;
  o.evolution.history_path = (out / "search_history.json").string();
  o.evolution.resume = !fresh;
  if (fresh) fs::remove(o.evolution.history_path);
  o.evolution.on_generation = [](const nas::GenerationStats& s) {
    std::printf("search %s\n", nas::format_progress(s).c_str());
    std::fflush(stdout);
  };
  std::printf("search: population %d, parents %d, %d mutations, %d crossovers, %d generations, params <= %lld\n",
              o.evolution.population, o.evolution.parents, o.evolution.mutations, o.evolution.crossovers,
              o.evolution.generations, static_cast<long long>(o.max_params));
  auto t0 = Clock::now();
  SubnetSearchResult r = search_subnet(c.space, o, [&](const SubnetConfig& s) { return subnet_accuracy(*net, s, val); });
  nlohmann::ordered_json result{{"encoding", encode_subnet(r.best)},
                                {"fitness", r.fitness},
                                {"params", r.params},
                                {"evaluations", r.evolution.evaluations}};
  experiments::write_file_atomic((out / "search_result.json").string(), result.dump() + "\n");
  std::printf("search done in %.1f s: best %s, validation accuracy %.4f, %lld parameters (%lld subnets scored)\n",
              since(t0), encode_subnet(r.best).c_str(), r.fitness, static_cast<long long>(r.params),
              static_cast<long long>(r.evolution.evaluations));
  return 0;
}

int do_export(const NasConfig& c, const std::string& arch, const std::string& supernet) {
  fs::path out = out_dir(c);
  SubnetConfig best;
  if (!arch.empty()) {
    best = decode_subnet(arch);
  } else {
    fs::path res = out / "search_result.json";
    NEURN_CHECK(fs::exists(res), "autoformer export: no ", res.string(), " (run search first, or pass --arch)");
    std::ifstream in(res);
    std::stringstream ss;
    ss << in.rdbuf();
    nlohmann::json v = nlohmann::json::parse(ss.str(), nullptr, false);
    NEURN_CHECK(!v.is_discarded(), res.string(), ": not valid JSON");
    NEURN_CHECK(v.is_object() && v.contains("encoding") && v["encoding"].is_string(), res.string(),
                ": no \"encoding\" string");
    best = decode_subnet(v["encoding"].get<std::string>());
  }
  auto net = load_trained(c, Device::cpu(), supernet);
  ModulePtr m = extract_subnet(*net, best);
  save_state(*m, (out / "subnet.safetensors").string(), {{"arch", encode_subnet(best)}});
  experiments::write_file_atomic((out / "subnet.json").string(), subnet_to_json(c.space, best, "subnet.safetensors"));
  std::printf("exported %s (%lld parameters) -> %s (model autoformer, arch: %s)\n", encode_subnet(best).c_str(),
              static_cast<long long>(m->num_parameters()), (out / "subnet.safetensors").string().c_str(),
              (out / "subnet.json").string().c_str());
  return 0;
}

NasFinetune finetune_settings(const NasConfig& c) {
  return {"autoformer", c.name, c.output_dir, c.data_root, c.source, "finetune", "subnet.json"};
}

int do_finetune(const NasConfig& c, bool fresh) { return run_nas_finetune(c.finetune, finetune_settings(c), fresh); }

int do_show(const NasConfig& c) {
  const SearchSpace& s = c.space;
  auto list = [](const auto& v) {
    std::ostringstream os;
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    return os.str();
  };
  std::printf("space %s: supernet %lld/%lld/%lld/%.1f, embed {%s}, depth %lld-%lld, heads {%s} of %lld, "
              "MLP ratio {%s}, patch %lld at %lldx%lld\n",
              s.name.c_str(), static_cast<long long>(s.super_embed_dim), static_cast<long long>(s.super_depth),
              static_cast<long long>(s.super_heads), s.super_mlp_ratio, list(s.embed_dims).c_str(),
              static_cast<long long>(s.min_depth), static_cast<long long>(s.max_depth), list(s.heads).c_str(),
              static_cast<long long>(s.head_dim), list(s.mlp_ratios).c_str(), static_cast<long long>(s.patch),
              static_cast<long long>(s.input_size), static_cast<long long>(s.input_size));
  std::printf("subnet parameters: %lld (smallest) to %lld (largest); limit %lld\n",
              static_cast<long long>(subnet_param_count(s, smallest_subnet(s))),
              static_cast<long long>(subnet_param_count(s, largest_subnet(s))),
              static_cast<long long>(c.search.max_params));
  std::printf("train: %lld steps, batch %lld, lr %g, warm-up %lld, label smoothing %g on %s\n",
              static_cast<long long>(c.train.steps), static_cast<long long>(c.batch_size), c.train.lr,
              static_cast<long long>(c.train.warmup_steps), c.train.label_smoothing, c.source.c_str());
  const auto& e = c.search.evolution;
  std::printf("search: population %d, parents %d, %d mutations, %d crossovers, %d generations\n", e.population,
              e.parents, e.mutations, e.crossovers, e.generations);
  if (c.finetune) {
    experiments::ExperimentConfig ft = nas_finetune_config(c.finetune, finetune_settings(c));
    std::printf("finetune: yes, %zu source(s), NeuRN variants %zu, %lld epochs at most -> %s\n", ft.sources.size(),
                ft.neurn.size(), static_cast<long long>(ft.max_epochs), ft.output_dir.c_str());
  } else {
    std::printf("finetune: none\n");
  }
  return 0;
}

int cmd_nas_autoformer(const Flags& f) {
  NEURN_CHECK(f.has("config"), "--config FILE is required (see neurn nas autoformer --help)");
  NasConfig c = load_nas_config(f.get("config"));
  if (f.has("output")) c.output_dir = f.get("output");
  if (f.has("data-root")) c.data_root = f.get("data-root");
  if (f.has("device")) c.device = f.get("device");
  if (f.has("steps")) c.train.steps = f.get_int("steps", c.train.steps);
  if (f.has("generations")) c.search.evolution.generations = static_cast<int>(f.get_int("generations", 20));
  bool fresh = f.has("fresh");
  const std::string& action = f.positional()[0];
  auto t0 = Clock::now();
  int rc = 0;
  if (action == "train") rc = do_train(c, fresh);
  else if (action == "search") rc = do_search(c, fresh, f.get("supernet"));
  else if (action == "export") rc = do_export(c, f.get("arch"), f.get("supernet"));
  else if (action == "show") rc = do_show(c);
  else if (action == "run") {
    rc = do_train(c, fresh);
    if (rc == 0) rc = do_search(c, fresh, "");
    if (rc == 0) rc = do_export(c, "", "");
    if (rc == 0) rc = do_finetune(c, fresh);
    std::printf("autoformer run: %.1f s in all\n", since(t0));
  } else {
    NEURN_FAIL("unknown action '", action, "' (train, search, export, run or show)");
  }
  return rc;
}

Register reg{{.name = "nas autoformer",
              .summary = "AutoFormer: train the ViT supernet, search, export, fine-tune (train|search|export|run)",
              .positionals = "ACTION",
              .min_positionals = 1,
              .max_positionals = 1,
              .flags = {text("config", "FILE", "YAML (experiments/configs/autoformer_tiny.yaml); required"),
              text("output", "DIR", "overrides output_dir"), text("data-root", "DIR", "overrides data_root"),
              text("device", "cpu|cuda|auto", "overrides device"),
              integer("steps", "N", "overrides autoformer.train.steps"),
              integer("generations", "N", "overrides autoformer.search.generations"),
              text("supernet", "FILE", "search/export from these supernet weights (e.g. a converted reference checkpoint)"),
              text("arch", "ENCODING", "export this subnet (e192-h3,4,...-m3.5,4,...) instead of the search's best"),
              on_off("fresh", "ignore checkpoints and search history (default: resume)")},
              .details = kActions,
              .fn = cmd_nas_autoformer}};

}  // namespace
}  // namespace neurn::cli
