#include "experiments/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "experiments/checkpoint.h"
#include "experiments/run_identity.h"
#include "framework/cuda/memory_log.h"
#include "framework/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/sgd.h"
#include "layers/init.h"
#include "layers/neurn_layer.h"
#include "models/registry.h"

namespace neurn::experiments {

using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string RunSpec::run_id() const {
  std::string tag = !front.none() ? front.tag() : neurn ? "+neurn" : "";
  return model.variant() + tag + "/" + source + "/seed" + std::to_string(seed);
}

FrontSpec effective_front(const ExperimentConfig& cfg, const RunSpec& spec) {
  if (!spec.front.none() || !spec.neurn) return spec.front;
  FrontSpec f;
  f.kind = "neurn";
  f.options = cfg.neurn_options;
  f.label = "neurn";
  return f;
}

std::string RunSpec::dir_name() const {
  std::string s = run_id();
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.' || c == '@')) c = '_';
  return s;
}

Device resolve_device(const std::string& spec) {
  if (spec == "auto") return cuda_available() ? Device::cuda() : Device::cpu();
  Device d = Device::parse(spec);
  if (d.is_cuda())
    NEURN_CHECK(cuda_available(), "device ", spec,
                " was asked for, but no usable CUDA device is present (or this build has no CUDA backend); use "
                "device: auto or cpu");
  return d;
}

namespace {

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  int t = static_cast<int>(std::lround(s));
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ds", t);
  return buf;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The predicted class of each row of `logits` (N, classes), on the host.
std::vector<int64_t> predictions(const Tensor& logits) { return argmax(logits.detach(), 1).cpu().to_vector<int64_t>(); }

std::unique_ptr<Optimizer> make_optimizer(const ExperimentConfig& cfg, const std::vector<Tensor>& params) {
  const OptimizerSpec& o = cfg.optimizer;
  if (o.name == "sgd") {
    SgdOptions so;
    so.lr = o.lr;
    so.momentum = o.momentum;
    so.weight_decay = o.weight_decay;
    return std::make_unique<Sgd>(params, so);
  }
  AdamOptions ao;
  ao.lr = o.lr;
  ao.beta1 = o.beta1;
  ao.beta2 = o.beta2;
  ao.eps = o.eps;
  ao.weight_decay = o.weight_decay;
  return std::make_unique<Adam>(params, ao);
}

json history_json(const std::vector<EpochLog>& h) {
  json a = json::array();
  for (auto& e : h)
    a.push_back({{"epoch", e.epoch},
                 {"train_loss", std::isfinite(e.train_loss) ? json(e.train_loss) : json(nullptr)},
                 {"train_acc", e.train_acc},
                 {"val_acc", e.val_acc},
                 {"seconds", e.seconds},
                 {"images_per_second", e.images_per_second}});
  return a;
}

std::vector<EpochLog> history_from_json(const json& a) {
  std::vector<EpochLog> h;
  for (auto& e : a) {
    EpochLog l;
    l.epoch = e.at("epoch").get<int>();
    l.train_loss = e.at("train_loss").is_null() ? std::nan("") : e.at("train_loss").get<double>();
    l.train_acc = e.at("train_acc").get<double>();
    l.val_acc = e.at("val_acc").get<double>();
    l.seconds = e.at("seconds").get<double>();
    l.images_per_second = e.at("images_per_second").get<double>();
    h.push_back(l);
  }
  return h;
}

// The state a resumed run continues from.
struct TrainState {
  int epoch = 0;  // epochs finished
  int best_epoch = 0;
  double best_val_acc = -1;
  int bad_epochs = 0;
  int64_t steps = 0;
  uint64_t generator_offset = 0;
  std::vector<EpochLog> history;
};

}  // namespace

data::LoaderOptions run_loader_options(const ExperimentConfig& cfg, int64_t batch, bool shuffle, uint64_t seed,
                                       int64_t size, Device device, const data::InputNormalization& norm) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = shuffle;
  o.seed = seed;
  o.size = size;
  o.channels = 3;  // every backbone reads RGB; gray domains are replicated
  o.normalize = data::loader_normalization(norm);
  o.device = device;
  o.workers = std::max(1, cfg.num_workers);
  return o;
}

data::InputNormalization run_normalization(const ExperimentConfig& cfg, const RunSpec& spec) {
  return data::input_normalization(effective_normalization(cfg, spec.model));
}

Tensor model_input(const Tensor& images, const data::InputNormalization& norm) {
  if (!norm.bgr) return images;
  NEURN_CHECK(images.dim() == 4 && images.shape()[1] == 3, "model_input: BGR order needs (N, 3, H, W) images, got ",
              shape_str(images.shape()));
  // (N, 3, H, W) RGB -> (N, 3, H, W) BGR
  return concat({slice(images, 1, 2, 3), slice(images, 1, 1, 2), slice(images, 1, 0, 1)}, 1);
}

int64_t run_image_size(const ExperimentConfig& cfg, const RunSpec& spec) {
  if (cfg.image_size > 0) return cfg.image_size;
  // Digit images are 16-32 px; models that need more (ImageNet backbones)
  // get their minimum input size.
  return std::max<int64_t>(32, model_info(spec.model.name).min_input_size);
}

ModulePtr build_run_model(const ExperimentConfig& cfg, const RunSpec& spec, Device device) {
  const ModelInfo& info = model_info(spec.model.name);
  NEURN_CHECK(info.task == "classification", "model '", spec.model.name, "' is a ", info.task,
              " model; the experiment runner trains and tests classifiers only");
  ModelOptions mo;
  mo.num_classes = 10;
  mo.in_channels = 3;
  mo.input_size = run_image_size(cfg, spec);
  mo.width = spec.model.width;
  mo.arch = spec.model.arch;
  FrontSpec front = effective_front(cfg, spec);
  if (!front.none()) {
    make_front_layer(front, mo.in_channels);  // options checked here, not in the middle of building the model
    mo.front = [front, c = mo.in_channels] { return make_front_layer(front, c); };
  }
  Generator gen(spec.seed);
  ModulePtr model;
  {
    // Parameters are drawn on the CPU from the run's generator, so a seed
    // gives the same initial model on every device.
    ParamScope scope({DType::Float32, Device::cpu()}, &gen);
    model = build_model(spec.model.name, mo);
  }
  if (!spec.model.weights.empty()) load_initial_weights(*model, spec.model.weights, std::cout);
  model->to(device);
  return model;
}

SplitMetrics evaluate(Module& model, const data::Dataset& ds, const ExperimentConfig& cfg, Device device,
                      int64_t image_size, const data::InputNormalization& norm) {
  SplitMetrics m;
  m.domain = ds.name();
  m.images = ds.size();
  const int64_t classes = 10;
  m.confusion.assign(classes, std::vector<int64_t>(classes, 0));
  model.eval();
  NoGradGuard ng;
  data::DataLoader loader(ds, run_loader_options(cfg, cfg.eval_batch_size, false, 0, image_size, device, norm));
  int64_t correct = 0;
  for (const data::Batch& b : loader) {
    Tensor logits = model(model_input(b.images, norm));
    auto pred = predictions(logits);
    auto labels = b.labels.cpu().to_vector<int64_t>();
    for (size_t i = 0; i < pred.size(); ++i) {
      NEURN_CHECK(labels[i] >= 0 && labels[i] < classes && pred[i] >= 0 && pred[i] < classes,
                  "evaluate: label ", labels[i], " or prediction ", pred[i], " outside [0, ", classes, ")");
      m.confusion[labels[i]][pred[i]]++;
      correct += labels[i] == pred[i];
    }
  }
  m.accuracy = m.images > 0 ? static_cast<double>(correct) / static_cast<double>(m.images) : std::nan("");
  for (int64_t c = 0; c < classes; ++c) {
    int64_t n = 0;
    for (auto v : m.confusion[c]) n += v;
    m.per_class.push_back(n > 0 ? static_cast<double>(m.confusion[c][c]) / static_cast<double>(n) : std::nan(""));
  }
  return m;
}

RunRecord train_run(const ExperimentConfig& cfg, const RunSpec& spec, const TrainOptions& opt) {
  std::ostream& log = opt.log ? *opt.log : std::cout;
  auto t_start = Clock::now();
  const std::string root = opt.data_root.empty() ? data::data_root() : opt.data_root;
  const std::string run_id = spec.run_id();
  Device device = resolve_device(cfg.device);
  int64_t size = run_image_size(cfg, spec);

  const RunIdentity ident = run_identity(cfg, spec);
  const data::InputNormalization norm = run_normalization(cfg, spec);

  RunRecord rec;
  rec.run_id = run_id;
  rec.variant = ident.variant;
  rec.fingerprint = ident.fingerprint;
  rec.variant_fingerprint = ident.variant_fingerprint;
  rec.settings_json = canonical_json(ident.settings);
  rec.normalize = norm.mode;
  rec.experiment = cfg.name;
  rec.model = spec.model.name;
  const FrontSpec front = effective_front(cfg, spec);
  rec.neurn = front.kind == "neurn";
  rec.front = front.label;
  rec.front_kind = front.kind;
  rec.source = spec.source;
  rec.seed = spec.seed;
  rec.device = device.str();
  rec.code_version = code_version();
  rec.config_yaml = config_to_yaml(cfg);
  rec.skipped_targets = opt.skipped_targets;
  // What the generated domains of this run (syn) were made from.
  std::vector<std::string> domains_used{spec.source};
  for (auto& t : targets_for(cfg, spec.source))
    if (!opt.skipped_targets.count(t)) domains_used.push_back(t);
  for (const std::string& d : domains_used) {
    std::string key = data::domain_source_key(d, root);
    if (!key.empty()) rec.data_sources[d] = key;
  }

  // ---- data: the source's training split (first N), a validation part held
  // out of it, the source test split and the targets' test splits.
  data::Protocol train_protocol =
      cfg.protocol.train_images > 0 ? data::Protocol::first_n(cfg.protocol.train_images) : data::Protocol::full();
  data::Dataset source_train = data::load_domain(spec.source, "train", root, train_protocol);
  double val_fraction = 0.1;
  if (cfg.protocol.val_images > 0) {
    NEURN_CHECK(cfg.protocol.val_images < source_train.size(), "protocol.val_images = ", cfg.protocol.val_images,
                " leaves no training images out of ", source_train.size(), " (", spec.source, " train)");
    val_fraction = static_cast<double>(cfg.protocol.val_images) / static_cast<double>(source_train.size());
  }
  auto [fit, val] = data::split_validation(source_train, val_fraction, spec.seed);
  auto test_split = [&](const std::string& domain) {
    data::Dataset ds = data::load_domain(domain, "test", root);
    return cfg.protocol.test_images > 0 ? ds.first(cfg.protocol.test_images) : ds;
  };

  // ---- model and optimizer, at their initial state or the last checkpoint.
  manual_seed(spec.seed);
  ModulePtr model = build_run_model(cfg, spec, device);
  rec.parameters = model->num_parameters();
  std::unique_ptr<Optimizer> optimizer = make_optimizer(cfg, model->parameters());
  data::DataLoader loader(fit, run_loader_options(cfg, cfg.batch_size, true, spec.seed, size, device, norm));

  fs::create_directories(opt.run_dir);
  // What this folder holds, for people and for --resume (which compares the
  // settings before it reuses anything here).
  write_file_atomic(opt.run_dir + "/run.json",
                    json{{"run_id", run_id},
                         {"variant", ident.variant},
                         {"fingerprint", ident.fingerprint},
                         {"variant_fingerprint", ident.variant_fingerprint},
                         {"settings", ident.settings},
                         {"normalize", norm.describe()}}
                            .dump(2) +
                        "\n");
  const std::string last = opt.run_dir + "/last", best = opt.run_dir + "/best";
  TrainState st;
  if (opt.resume && checkpoint_exists(last)) {
    Checkpoint ck = load_checkpoint(last);
    const json& meta = ck.meta;
    NEURN_CHECK(meta.value("run_id", "") == run_id, last, ".safetensors belongs to run ", meta.value("run_id", "?"),
                ", not ", run_id);
    // The state after epoch e does not depend on max_epochs (no schedule
    // reads it), so a checkpoint continues under a larger one; any other
    // changed setting makes it another run's state.
    auto resumable = [](json s) {
      if (s.is_object()) s.erase("max_epochs");
      return s;
    };
    if (!meta.contains("settings") || resumable(meta.at("settings")) != resumable(ident.settings)) {
      std::string keys;
      if (meta.contains("settings"))
        for (auto& c : changed_settings(resumable(meta.at("settings")), resumable(ident.settings))) keys += "\n    " + c;
      else
        keys = " (the checkpoint predates fingerprints)";
      NEURN_FAIL(last, ".safetensors was written with other settings than ", run_id, " has now:", keys,
                 "\nrefusing to continue it; run into another output_dir or folder");
    }
    load_module_state(*model, ck.tensors, "model.");
    optimizer->load_state_dict(ck.with_prefix("optim."));
    st.epoch = meta.at("epoch").get<int>();
    st.best_epoch = meta.at("best_epoch").get<int>();
    st.best_val_acc = meta.at("best_val_acc").get<double>();
    st.bad_epochs = meta.at("bad_epochs").get<int>();
    st.steps = meta.at("steps").get<int64_t>();
    st.generator_offset = meta.at("generator_offset").get<uint64_t>();
    st.history = history_from_json(meta.at("history"));
    default_generator().set_offset(st.generator_offset);
    log << "  resuming " << run_id << " after epoch " << st.epoch << " (best val " << 100 * st.best_val_acc
        << "% at epoch " << st.best_epoch << ")\n";
  }

  const int64_t steps_per_epoch = loader.num_batches();
  const int64_t total_steps = steps_per_epoch * cfg.max_epochs;
  log << "  " << run_id << ": " << fit.size() << " training, " << val.size() << " validation images of "
      << spec.source << ", " << size << "x" << size << (norm.bgr ? " BGR, " : " RGB, ") << rec.parameters
      << " parameters, " << device.str() << ", input " << norm.describe() << ", fingerprint "
      << ident.fingerprint.substr(0, 8) << "\n";
  log.flush();

  bool diverged = false;
  bool stopped_early = false;
  // Patience p: stop after p epochs in a row without improvement (0 acts as 1:
  // stop at the first one).
  const int patience = std::max(1, cfg.early_stopping.patience);
  const bool live = (opt.log == nullptr || opt.log == &std::cout) && ::isatty(STDOUT_FILENO);
  auto meta_base = [&] {
    return json{{"run_id", run_id},          {"model", spec.model.name}, {"neurn", rec.neurn},
                {"front", {{"kind", front.kind}, {"label", front.label}, {"options", front.options}}},
                {"source", spec.source},     {"seed", spec.seed},        {"config", rec.config_yaml},
                {"code_version", code_version()}, {"variant", ident.variant},
                {"fingerprint", ident.fingerprint}, {"settings", ident.settings}, {"normalize", norm.mode}};
  };
  double train_seconds = 0;
  for (const auto& h : st.history) train_seconds += h.seconds;

  while (st.epoch < cfg.max_epochs && !diverged) {
    if (st.bad_epochs >= patience) {
      stopped_early = true;
      break;
    }
    const int epoch = st.epoch + 1;
    auto t_epoch = Clock::now(), t_live = t_epoch;
    model->train();
    loader.set_epoch(epoch);
    double loss_sum = 0;
    int64_t seen = 0, correct = 0, step = 0;
    for (const data::Batch& b : loader) {
      Tensor logits = (*model)(model_input(b.images, norm));
      Tensor loss = cross_entropy(logits, b.labels);
      double lv = loss.item();
      ++step;
      if (!std::isfinite(lv)) {
        diverged = true;
        rec.message = std::string("training loss became ") + (std::isnan(lv) ? "NaN" : "infinite") + " at epoch " +
                      std::to_string(epoch) + ", step " + std::to_string(step) + " of " +
                      std::to_string(steps_per_epoch) + "; training stopped";
        break;
      }
      optimizer->zero_grad();
      loss.backward();
      optimizer->step();
      int64_t n = b.labels.numel();
      auto pred = predictions(logits);
      auto labels = b.labels.cpu().to_vector<int64_t>();
      for (int64_t i = 0; i < n; ++i) correct += pred[i] == labels[i];
      loss_sum += lv * static_cast<double>(n);
      seen += n;
      // On a terminal, a live status line within the epoch (replaced by the
      // epoch's line); logs and pipes get the epoch lines only.
      if (live && seconds_since(t_live) >= 1.0) {
        t_live = Clock::now();
        double el = seconds_since(t_epoch);
        std::fprintf(stdout, "\r  epoch %d/%d  step %lld/%lld  loss %.4f  acc %.2f%%  %.0f img/s  epoch ETA %s   ", epoch,
                     cfg.max_epochs, static_cast<long long>(st.steps + step), static_cast<long long>(total_steps),
                     loss_sum / static_cast<double>(seen), 100.0 * static_cast<double>(correct) / static_cast<double>(seen),
                     static_cast<double>(seen) / el,
                     fmt_duration(el / static_cast<double>(step) * static_cast<double>(steps_per_epoch - step)).c_str());
        std::fflush(stdout);
      }
    }
    if (live) std::fputs("\r\033[K", stdout);
    if (diverged) {
      EpochLog e{epoch, std::nan(""), seen ? static_cast<double>(correct) / seen : 0.0, std::nan(""),
                 seconds_since(t_epoch), 0};
      st.history.push_back(e);
      log << "  epoch " << epoch << ": " << rec.message << "\n";
      break;
    }
    st.steps += step;
    double secs_train = seconds_since(t_epoch);
    SplitMetrics vm = evaluate(*model, val, cfg, device, size, norm);
    EpochLog e;
    e.epoch = epoch;
    e.train_loss = loss_sum / static_cast<double>(std::max<int64_t>(seen, 1));
    e.train_acc = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(seen, 1));
    e.val_acc = vm.accuracy;
    e.seconds = seconds_since(t_epoch);
    e.images_per_second = static_cast<double>(seen) / std::max(secs_train, 1e-9);
    st.history.push_back(e);
    train_seconds += e.seconds;
    st.epoch = epoch;

    bool improved = e.val_acc > st.best_val_acc + cfg.early_stopping.min_delta;
    if (improved) {
      st.best_val_acc = e.val_acc;
      st.best_epoch = epoch;
      st.bad_epochs = 0;
      json meta = meta_base();
      meta["epoch"] = epoch;
      meta["metrics"] = {{"val_acc", e.val_acc}, {"train_loss", e.train_loss}, {"train_acc", e.train_acc}};
      meta["created_at"] = utc_now();
      save_checkpoint(best, module_state(*model, ""), meta);
    } else {
      ++st.bad_epochs;
    }
    // The state after this epoch, for --resume.
    st.generator_offset = default_generator().offset();
    {
      json meta = meta_base();
      meta["epoch"] = st.epoch;
      meta["best_epoch"] = st.best_epoch;
      meta["best_val_acc"] = st.best_val_acc;
      meta["bad_epochs"] = st.bad_epochs;
      meta["steps"] = st.steps;
      meta["generator_offset"] = st.generator_offset;
      meta["history"] = history_json(st.history);
      meta["created_at"] = utc_now();
      NamedTensors tensors = module_state(*model, "model.");
      for (auto& [k, v] : optimizer->state_dict()) tensors.push_back({"optim." + k, v});
      save_checkpoint(last, tensors, meta);
    }

    double mean_epoch = train_seconds / static_cast<double>(st.history.size());
    char line[320];
    std::snprintf(line, sizeof line,
                  "  epoch %d/%d  step %lld/%lld  loss %.4f  acc %.2f%%  val %.2f%%%s  %.0f img/s  %.1fs  ETA <= %s\n",
                  epoch, cfg.max_epochs, static_cast<long long>(st.steps), static_cast<long long>(total_steps),
                  e.train_loss, 100 * e.train_acc, 100 * e.val_acc, improved ? " *" : "  ", e.images_per_second,
                  e.seconds, fmt_duration(mean_epoch * (cfg.max_epochs - epoch)).c_str());
    log << line;
    // CUDA memory of this epoch (allocated, reserved, their peaks in the epoch).
    if (device.is_cuda()) log << "  " << device_memory_summary(device, /*reset_peak=*/true) << "\n";
    log.flush();
  }
  if (!diverged && st.epoch < cfg.max_epochs && st.bad_epochs >= patience) stopped_early = true;

  rec.epochs_run = st.epoch + (diverged ? 1 : 0);
  rec.best_epoch = st.best_epoch;
  rec.best_val_acc = std::max(0.0, st.best_val_acc);
  rec.history = st.history;
  if (diverged) {
    rec.status = "diverged";
    rec.wall_seconds = seconds_since(t_start);
    rec.finished_at = utc_now();
    return rec;
  }
  if (stopped_early)
    log << "  early stop after epoch " << st.epoch << ": no improvement of the validation accuracy for "
        << patience << " epochs\n";

  // ---- evaluation of the best epoch's weights
  Checkpoint bk = load_checkpoint(best);
  load_module_state(*model, bk.tensors, "");
  // The record describes the weights evaluated: after a kill between writing
  // best and last, best may come from the epoch that was redone.
  rec.best_epoch = bk.meta.at("epoch").get<int>();
  rec.best_val_acc = bk.meta.at("metrics").at("val_acc").get<double>();
  rec.source_test = evaluate(*model, test_split(spec.source), cfg, device, size, norm);
  for (auto& t : targets_for(cfg, spec.source)) {
    if (opt.skipped_targets.count(t)) continue;
    rec.targets[t] = evaluate(*model, test_split(t), cfg, device, size, norm);
  }
  std::ostringstream summary;
  summary.precision(1);
  summary << std::fixed << "  " << run_id << ": best epoch " << rec.best_epoch << ", " << spec.source << " test "
          << 100 * rec.source_test.accuracy << "%";
  for (auto& [t, m] : rec.targets) summary << ", " << t << " " << 100 * m.accuracy << "%";
  log << summary.str() << "\n";

  // The best checkpoint's metadata gains the test metrics.
  json meta = bk.meta;
  meta["metrics"]["source_test_acc"] = rec.source_test.accuracy;
  for (auto& [t, m] : rec.targets) meta["metrics"]["test_acc_" + t] = m.accuracy;
  save_checkpoint(best, bk.tensors, meta);

  rec.wall_seconds = seconds_since(t_start);
  rec.finished_at = utc_now();
  return rec;
}

}  // namespace neurn::experiments
