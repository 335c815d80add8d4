// `neurn models`: the registry, with parameter counts from the meta device.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "experiments/cli/cli.h"
#include "framework/error.h"
#include "models/registry.h"
#include "models/similarity/vocabulary.h"

namespace neurn::cli {
namespace {

int run_models(const Flags& f) {
  const bool fixed_classes = f.has("classes"), fixed_size = f.has("image-size");
  const int64_t classes = f.get_int("classes", 10), size = f.get_int("image-size", 32);
  std::printf("%-20s %-12s %-14s %5s %5s %13s %13s %11s  %s\n", "name", "family", "task", "min", "input", "params",
              "with BN stats", "MFLOPs", "reference");
  for (auto& info : list_models()) {
    ModelOptions o;
    o.num_classes = fixed_classes ? classes : info.reference_classes;
    o.in_channels = fixed_classes || fixed_size ? 3 : info.reference_in_channels;
    o.input_size = fixed_size ? size : std::max(info.reference_input_size, info.min_input_size);
    if (o.input_size < info.min_input_size) {
      std::printf("%-20s %-12s %-14s %5lld  (needs at least %lldx%lld inputs)\n", info.name.c_str(),
                  info.family.c_str(), info.task.c_str(), static_cast<long long>(info.min_input_size),
                  static_cast<long long>(info.min_input_size), static_cast<long long>(info.min_input_size));
      continue;
    }
    ModelTrace t = trace_model(info.name, o);
    std::printf("%-20s %-12s %-14s %5lld %5lld %13lld %13lld %11.1f  %s\n", info.name.c_str(), info.family.c_str(),
                info.task.c_str(), static_cast<long long>(info.min_input_size), static_cast<long long>(o.input_size),
                static_cast<long long>(t.params), static_cast<long long>(t.total_params),
                static_cast<double>(t.flops) / 1e6, info.reference.c_str());
    if (f.has("tokens")) {
      std::string seq;
      for (auto& tok : t.tokens) seq += (seq.empty() ? "" : " ") + tok;
      std::printf("    %s\n", seq.c_str());
    }
  }
  return 0;
}

Register reg{{
    .name = "models",
    .summary = "list the registered architectures with parameter counts and FLOPs",
    .flags = {integer("classes", "N", "count every model at N classes (default: its reference's, 1000 or 21)"),
              integer("image-size", "S", "count every model at SxS inputs (default: its reference input)"),
              on_off("tokens", "also print each model's layer sequence")},
    .details = "Lists the registered architectures: family, task, minimum input size, trainable parameters (and "
               "Keras's total with BN moving statistics) and FLOPs of one image, and the reference. Computed on the "
               "meta device: no memory, no arithmetic.",
    .fn = run_models}};

int run_models_trace(const Flags& f) {
  const ModelInfo& info = model_info(f.positional()[0]);
  ModelOptions o;
  o.input_size = info.min_input_size;
  ModelTrace t = trace_model(info.name, o);
  std::vector<std::string> tokens = similarity::to_vocabulary(t.tokens);
  std::string codes = similarity::to_codes(tokens);
  if (f.has("json")) {
    nlohmann::json j{{"model", info.name}, {"tokens", tokens}, {"codes", codes}, {"layer_types", t.tokens}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: %zu tokens (traced at %lldx%lld)\ncodes: %s\n", info.name.c_str(), tokens.size(),
              static_cast<long long>(o.input_size), static_cast<long long>(o.input_size), codes.c_str());
  std::string line;
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::string item = tokens[i] + "(" + codes[i] + ")";
    if (!line.empty() && line.size() + item.size() + 1 > 100) {
      std::printf("  %s\n", line.c_str());
      line.clear();
    }
    line += (line.empty() ? "" : " ") + item;
  }
  if (!line.empty()) std::printf("  %s\n", line.c_str());
  return 0;
}

Register reg_trace{{
    .name = "models trace",
    .summary = "the layer sequence (N-W tokens) of one model",
    .positionals = "NAME",
    .min_positionals = 1,
    .max_positionals = 1,
    .flags = {on_off("json", "{\"model\", \"tokens\", \"codes\", \"layer_types\"} (layer_types: what each layer "
                             "recorded, before the vocabulary)")},
    .details = "The input of the N-W aligner (`neurn similarity`): one token per leaf layer in execution order, "
               "residual adds and concatenations included, in the vocabulary of docs/similarity.md (token and "
               "one-character code). Traced on the meta device at the model's minimum input size.",
    .fn = run_models_trace}};

// The vocabulary as the Markdown table of docs/similarity.md (a test checks
// that the page holds every row).
int run_models_vocabulary(const Flags&) {
  std::printf("| token | code | recorded layer types | what counts as it |\n|---|---|---|---|\n");
  for (auto& t : similarity::vocabulary()) {
    std::string types;
    for (auto& l : t.layer_types) types += (types.empty() ? "" : ", ") + l;
    std::printf("| %s | `%c` | %s | %s |\n", t.name.c_str(), t.code, types.c_str(), t.meaning.c_str());
  }
  return 0;
}

Register reg_vocab{{.name = "models vocabulary",
                    .summary = "the token vocabulary of the traces (Markdown table)",
                    .details = "Token, code, the layer types recorded as it, meaning.",
                    .fn = run_models_vocabulary}};

}  // namespace
}  // namespace neurn::cli
