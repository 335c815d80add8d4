// `neurn eval CHECKPOINT`: a trained model on any domain's test split.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "datasets/datasets.h"
#include "experiments/checkpoint.h"
#include "experiments/cli/cli.h"
#include "experiments/trainer.h"
#include "framework/error.h"

namespace neurn::cli {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  for (size_t a = 0; a <= s.size();) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

int cmd_eval(const Flags& f) {
  std::string path = f.positional()[0];
  if (std::filesystem::is_directory(path)) path += "/best";
  if (path.size() > 12 && path.substr(path.size() - 12) == ".safetensors") path = path.substr(0, path.size() - 12);
  experiments::Checkpoint ck = experiments::load_checkpoint(path);
  const auto& meta = ck.meta;
  NEURN_CHECK(meta.contains("config") && meta.contains("model") && meta.contains("source"), path,
              ".safetensors: the metadata lacks config/model/source");
  experiments::ExperimentConfig cfg =
      experiments::parse_config(meta.at("config").get<std::string>(), path + ".safetensors (stored config)");
  if (f.has("device")) cfg.device = f.get("device");
  cfg.protocol.test_images = f.get_int("test-images", 0);
  std::string root = f.get("data-root", cfg.data_root.empty() ? data::data_root() : cfg.data_root);

  experiments::RunSpec spec;
  spec.model.name = meta.at("model").get<std::string>();
  for (auto& m : cfg.models)
    if (m.name == spec.model.name && (!meta.contains("variant") || m.variant() == meta.at("variant"))) {
      spec.model = m;
      spec.model.weights.clear();  // the stored weights replace any initial weights
    }
  spec.neurn = meta.at("neurn").get<bool>();
  // The front by its label among the stored config's (checkpoints before
  // fronts name none: `neurn` says then).
  if (meta.contains("front") && meta.at("front").is_object()) {
    std::string label = meta.at("front").value("label", std::string());
    for (const auto& fr : experiments::run_fronts(cfg))
      if (!fr.none() && fr.label == label) spec.front = fr;
    NEURN_CHECK(label.empty() || !spec.front.none(), path, ".safetensors: its front '", label,
                "' is not among the stored config's fronts");
  }
  spec.source = meta.at("source").get<std::string>();
  spec.seed = meta.at("seed").get<uint64_t>();
  Device device = experiments::resolve_device(cfg.device);
  ModulePtr model = experiments::build_run_model(cfg, spec, device);
  experiments::load_module_state(*model, ck.tensors, "");
  int64_t size = experiments::run_image_size(cfg, spec);
  // The input normalization the run trained with (checkpoints before it was
  // recorded trained on [0, 1]).
  data::InputNormalization norm = data::input_normalization(meta.value("normalize", std::string("none")));

  std::vector<std::string> domains = f.has("domains") ? split_list(f.get("domains")) : experiments::all_domains();
  std::printf("%s (epoch %d, trained on %s)\n", meta.value("run_id", spec.run_id()).c_str(), meta.value("epoch", 0),
              spec.source.c_str());
  for (auto& d : domains) {
    if (!f.has("domains") && !data::domain_available(d, root)) {
      std::printf("  %-8s not available\n", d.c_str());
      continue;
    }
    data::Dataset ds = data::load_domain(d, "test", root);
    if (cfg.protocol.test_images > 0) ds = ds.first(cfg.protocol.test_images);
    experiments::SplitMetrics m = experiments::evaluate(*model, ds, cfg, device, size, norm);
    std::printf("  %-8s %6.2f%% of %lld   per class:", d.c_str(), 100 * m.accuracy, static_cast<long long>(m.images));
    for (double a : m.per_class) std::printf(" %5.1f", 100 * a);
    std::printf("\n");
    if (f.has("confusion")) {
      for (auto& row : m.confusion) {
        std::printf("            ");
        for (auto v : row) std::printf(" %5lld", static_cast<long long>(v));
        std::printf("\n");
      }
    }
  }
  return 0;
}

Register reg{{
    .name = "eval",
    .summary = "evaluate a checkpoint on the test splits of any domains",
    .positionals = "CHECKPOINT",
    .min_positionals = 1,
    .max_positionals = 1,
    .flags = {text("domains", "A,B", "(every available domain)"),
              integer("test-images", "N", "cap on each test split (all)"), text("device", "auto|cpu|cuda", "(the run's)"),
              text("data-root", "DIR", "(the run's, else $NEURN_DATA, else ./data)"),
              on_off("confusion", "print the confusion matrices too")},
    .details = "Loads a checkpoint written by neurn run/train (RUN_DIR/best.safetensors, or the run directory "
               "itself), rebuilds its model from the config stored in it, and prints the accuracy and per-class "
               "accuracy on the test split of each domain.",
    .fn = cmd_eval}};

}  // namespace
}  // namespace neurn::cli
