// `neurn models`: the registry, with parameter counts from the meta device.
#include <cstdio>

#include "experiments/cli/cli.h"
#include "models/registry.h"

namespace neurn::cli {
namespace {

const char* kHelp =
    "usage: neurn models [--classes N] [--size S] [--tokens]\n"
    "Lists the registered architectures: family, minimum input size, trainable parameters\n"
    "(and Keras's total with BN moving statistics) at N classes (default 10) and SxS inputs\n"
    "(default 32), FLOPs of one image, and the reference. Computed on the meta device: no\n"
    "memory, no arithmetic. --tokens also prints each model's layer sequence.\n";

int run_models(const Args& args) {
  Flags f(args, {"help", "tokens"});
  if (f.has("help")) {
    std::printf("%s", kHelp);
    return 0;
  }
  f.allow_only({"help", "classes", "size", "tokens"});
  ModelOptions o;
  o.num_classes = f.get_int("classes", 10);
  o.input_size = f.get_int("size", 32);
  std::printf("%-16s %-10s %5s %13s %13s %9s  %s\n", "name", "family", "min", "params", "with BN stats", "MFLOPs",
              "reference");
  for (auto& info : list_models()) {
    if (o.input_size < info.min_input_size) {
      std::printf("%-16s %-10s %5lld  (needs at least %lldx%lld inputs)\n", info.name.c_str(), info.family.c_str(),
                  static_cast<long long>(info.min_input_size), static_cast<long long>(info.min_input_size),
                  static_cast<long long>(info.min_input_size));
      continue;
    }
    ModelTrace t = trace_model(info.name, o);
    std::printf("%-16s %-10s %5lld %13lld %13lld %9.1f  %s\n", info.name.c_str(), info.family.c_str(),
                static_cast<long long>(info.min_input_size), static_cast<long long>(t.params),
                static_cast<long long>(t.total_params), static_cast<double>(t.flops) / 1e6, info.reference.c_str());
    if (f.has("tokens")) {
      std::string seq;
      for (auto& tok : t.tokens) seq += (seq.empty() ? "" : " ") + tok;
      std::printf("    %s\n", seq.c_str());
    }
  }
  return 0;
}

Register reg{"models", "list the registered architectures with parameter counts and FLOPs", run_models};

}  // namespace
}  // namespace neurn::cli
