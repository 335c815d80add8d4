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

const char* kHelp =
    "usage: neurn models [--classes N] [--size S] [--tokens]\n"
    "Lists the registered architectures: family, task, minimum input size, trainable\n"
    "parameters (and Keras's total with BN moving statistics) and FLOPs of one image, and the\n"
    "reference. By default each model is counted as its reference counts it: at its reference\n"
    "classes (1000 ImageNet, 21 VOC) and reference input (224, 299, ...); --classes and --size\n"
    "count every model at N classes and SxS inputs instead. Computed on the meta device: no\n"
    "memory, no arithmetic. --tokens also prints each model's layer sequence.\n";

int run_models(const Args& args) {
  Flags f(args, {"help", "tokens"});
  if (f.has("help")) {
    std::printf("%s", kHelp);
    return 0;
  }
  f.allow_only({"help", "classes", "size", "tokens"});
  const bool fixed_classes = f.has("classes"), fixed_size = f.has("size");
  const int64_t classes = f.get_int("classes", 10), size = f.get_int("size", 32);
  std::printf("%-20s %-12s %-14s %5s %5s %13s %13s %11s  %s\n", "name", "family", "task", "min", "input", "params",
              "with BN stats", "MFLOPs", "reference");
  for (auto& info : list_models()) {
    ModelOptions o;
    o.num_classes = fixed_classes ? classes : info.reference_classes;
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

Register reg{"models", "list the registered architectures with parameter counts and FLOPs", run_models};

const char* kTraceHelp =
    "usage: neurn models trace NAME [--json]\n"
    "The layer sequence of a registered model, the input of the N-W aligner (`neurn similarity`):\n"
    "one token per leaf layer in execution order, residual adds and concatenations included, in\n"
    "the vocabulary of docs/similarity.md (token and one-character code). Traced on the meta\n"
    "device at the model's minimum input size. --json: {\"model\", \"tokens\", \"codes\",\n"
    "\"layer_types\"} (layer_types: what each layer recorded, before the vocabulary).\n";

int run_models_trace(const Args& args) {
  Flags f(args, {"help", "json"});
  if (f.has("help")) {
    std::printf("%s", kTraceHelp);
    return 0;
  }
  f.allow_only({"help", "json"});
  NEURN_CHECK(f.positional().size() == 1, "models trace: expected one model name, got ", f.positional().size(),
              " (usage: neurn models trace NAME [--json])");
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

Register reg_trace{"models trace", "the layer sequence (N-W tokens) of one model", run_models_trace};

// The vocabulary as the Markdown table of docs/similarity.md (a test checks
// that the page holds every row).
int run_models_vocabulary(const Args& args) {
  Flags f(args, {"help"});
  if (f.has("help")) {
    std::printf("usage: neurn models vocabulary\nThe trace vocabulary as a Markdown table: token, code, the layer "
                "types recorded as it, meaning.\n");
    return 0;
  }
  f.allow_only({"help"});
  std::printf("| token | code | recorded layer types | what counts as it |\n|---|---|---|---|\n");
  for (auto& t : similarity::vocabulary()) {
    std::string types;
    for (auto& l : t.layer_types) types += (types.empty() ? "" : ", ") + l;
    std::printf("| %s | `%c` | %s | %s |\n", t.name.c_str(), t.code, types.c_str(), t.meaning.c_str());
  }
  return 0;
}

Register reg_vocab{"models vocabulary", "the token vocabulary of the traces (Markdown table)", run_models_vocabulary};

}  // namespace
}  // namespace neurn::cli
