// `neurn train`: one run (or the two NeuRN variants) from flags, without a
// config file. The flags become a config, checked by the same schema.
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <iostream>

#include "experiments/cli/cli.h"
#include "experiments/sweep.h"
#include "framework/error.h"

namespace neurn::cli {
namespace {

int cmd_train(const Flags& f) {
  NEURN_CHECK(f.has("model") && f.has("source"), "--model and --source are required (see neurn train --help)");

  // Flags -> YAML -> the config schema, so flags get the same checks as files.
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << "train";
  e << YAML::Key << "output_dir" << YAML::Value << f.get("output", "runs/train");
  if (f.has("data-root")) e << YAML::Key << "data_root" << YAML::Value << f.get("data-root");
  e << YAML::Key << "models" << YAML::Value << YAML::BeginSeq;
  if (f.has("weights") || f.has("normalize") || f.has("arch")) {
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << f.get("model");
    if (f.has("weights")) {
      e << YAML::Key << "weights" << YAML::Value << YAML::BeginMap << YAML::Key << "path" << YAML::Value
        << f.get("weights");
      if (f.has("weights-format")) e << YAML::Key << "format" << YAML::Value << f.get("weights-format");
      e << YAML::EndMap;
    }
    if (f.has("normalize")) e << YAML::Key << "normalize" << YAML::Value << f.get("normalize");
    if (f.has("arch")) e << YAML::Key << "arch" << YAML::Value << f.get("arch");
    e << YAML::EndMap;
  } else {
    e << f.get("model");
  }
  e << YAML::EndSeq;
  e << YAML::Key << "sources" << YAML::Value << YAML::Flow << YAML::BeginSeq << f.get("source") << YAML::EndSeq;
  if (f.has("targets")) {
    e << YAML::Key << "targets" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    std::string t = f.get("targets");
    for (size_t a = 0; a <= t.size();) {
      size_t b = t.find(',', a);
      if (b == std::string::npos) b = t.size();
      if (b > a) e << t.substr(a, b - a);
      a = b + 1;
    }
    e << YAML::EndSeq;
  }
  e << YAML::Key << "skip_missing_targets" << YAML::Value << f.has("skip-missing-targets");
  std::string nv = f.get("neurn", "false");
  NEURN_CHECK(nv == "true" || nv == "false" || nv == "both", "--neurn takes no value, or 'both'; got '", nv, "'");
  e << YAML::Key << "neurn" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  if (nv == "both") e << false << true;
  else e << (nv == "true");
  e << YAML::EndSeq;
  auto scalar = [&](const char* flag, const char* key) {
    if (f.has(flag)) e << YAML::Key << key << YAML::Value << f.get(flag);
  };
  scalar("seed", "seeds");
  scalar("epochs", "max_epochs");
  scalar("batch-size", "batch_size");
  scalar("image-size", "image_size");
  scalar("device", "device");
  if (f.has("patience"))
    e << YAML::Key << "early_stopping" << YAML::Value << YAML::BeginMap << YAML::Key << "patience" << YAML::Value
      << f.get("patience") << YAML::EndMap;
  e << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << f.get("optimizer", "adam");
  if (f.has("lr")) e << YAML::Key << "lr" << YAML::Value << f.get("lr");
  if (f.has("weight-decay")) e << YAML::Key << "weight_decay" << YAML::Value << f.get("weight-decay");
  if (f.has("momentum")) e << YAML::Key << "momentum" << YAML::Value << f.get("momentum");
  e << YAML::EndMap;
  e << YAML::Key << "protocol" << YAML::Value << YAML::BeginMap;
  if (f.has("train-images")) e << YAML::Key << "train_images" << YAML::Value << f.get("train-images");
  if (f.has("val-images")) e << YAML::Key << "val_images" << YAML::Value << f.get("val-images");
  if (f.has("test-images")) e << YAML::Key << "test_images" << YAML::Value << f.get("test-images");
  e << YAML::EndMap;
  if (f.has("neurn-options")) {
    // "k=3,padding=zero" -> a mapping
    e << YAML::Key << "neurn_options" << YAML::Value << YAML::BeginMap;
    std::string s = f.get("neurn-options");
    for (size_t a = 0; a < s.size();) {
      size_t b = s.find(',', a);
      if (b == std::string::npos) b = s.size();
      std::string kv = s.substr(a, b - a);
      auto eq = kv.find('=');
      NEURN_CHECK(eq != std::string::npos, "--neurn-options expects key=value pairs, got '", kv, "'");
      e << YAML::Key << kv.substr(0, eq) << YAML::Value << kv.substr(eq + 1);
      a = b + 1;
    }
    e << YAML::EndMap;
  }
  e << YAML::Key << "report" << YAML::Value << false;
  e << YAML::EndMap;
  experiments::ExperimentConfig cfg = experiments::parse_config(e.c_str(), "neurn train flags");

  experiments::SweepOptions opt;
  opt.resume = f.has("resume");
  experiments::SweepSummary s = experiments::run_sweep(cfg, opt);
  std::cout << "results: " << s.results_file << "\n";
  return s.failed > 0 ? 1 : 0;
}

Register reg{{
    .name = "train",
    .summary = "train and evaluate one model from flags (no config file)",
    .flags = {text("model", "NAME", "registry name, required (neurn models lists them)"),
              text("source", "DOMAIN", "mnist, usps, svhn, mnistm or syn, required"),
              text("targets", "A,B", "target domains (default: every other domain)"),
              optional("neurn", "both", "NeuRN in front of the model (--neurn both: both variants)"),
              text("neurn-options", "SPEC", "e.g. k=3,padding=valid,max_scope=image,eps=1e-6"),
              integer("seed", "N", "(0)"),
              integer("epochs", "N", "maximum epochs (30)"),
              integer("patience", "N", "early-stopping patience in epochs (5)"),
              integer("batch-size", "N", "(256)"),
              text("optimizer", "adam|sgd", "(adam)"),
              real("lr", "X", "(0.001)"),
              real("weight-decay", "X", "(0)"),
              real("momentum", "X", "sgd only (0.9)"),
              integer("train-images", "N", "first N source training images (all)"),
              integer("val-images", "N", "validation images held out of them (10%)"),
              integer("test-images", "N", "cap on each test split (all)"),
              integer("image-size", "N", "(the model's: 32 for the digit models)"),
              text("weights", "FILE", "initial weights (the head is re-initialised)"),
              text("weights-format", "F", "where they come from: torchvision | keras | neurn (needed unless FILE "
                                          "ends in .h5: keras); sets the normalization"),
              text("normalize", "MODE", "none | imagenet | torch | tf | caffe (from the weights)"),
              text("arch", "ARCH", "architecture of a searched model (spos, autoformer)"),
              text("device", "auto|cpu|cuda", "(auto)"),
              text("data-root", "DIR", "($NEURN_DATA, else ./data)"),
              text("output", "DIR", "(runs/train)"),
              on_off("skip-missing-targets", "test on the available targets only"),
              on_off("resume", "continue from the last checkpoint / skip a recorded run")},
    .details = "Trains one model on one source domain with early stopping on the source validation accuracy, "
               "evaluates it on the source test split and the targets, and appends the record to "
               "OUTPUT/results.jsonl (the best checkpoint is in OUTPUT/runs/<run>/best.safetensors + best.json).",
    .fn = cmd_train}};

}  // namespace
}  // namespace neurn::cli
