// `neurn kernels`: the engine's kernel tables (framework/dispatch.h) and the
// devices each has a kernel for, so a missing CUDA kernel shows before a run
// reaches it.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "experiments/cli/cli.h"
#include "framework/dispatch.h"

namespace neurn::cli {
namespace {

int run_kernels(const Flags& f) {
  std::vector<const KernelTableBase*> tables = kernel_tables();
  std::sort(tables.begin(), tables.end(),
            [](const KernelTableBase* a, const KernelTableBase* b) { return std::string(a->name()) < b->name(); });
  size_t width = 5;
  for (const KernelTableBase* t : tables) width = std::max(width, std::string(t->name()).size());
  std::printf("%-*s  cpu   cuda  meta\n", static_cast<int>(width), "table");
  int cpu = 0, cuda = 0;
  for (const KernelTableBase* t : tables) {
    const bool c = t->has(DeviceType::CPU), g = t->has(DeviceType::CUDA), m = t->has(DeviceType::Meta);
    cpu += c;
    cuda += g;
    std::printf("%-*s  %-4s  %-4s  %s\n", static_cast<int>(width), t->name(), c ? "yes" : "-", g ? "yes" : "-",
                m ? "yes" : "(none)");
  }
  std::printf("%zu tables: %d with a CPU kernel, %d with a CUDA kernel%s\n", tables.size(), cpu, cuda,
#ifdef NEURN_WITH_CUDA
              ""
#else
              " (this build has no CUDA backend)"
#endif
  );
  return 0;
}

Register reg{{
    .name = "kernels",
    .summary = "list the engine's kernel tables and the devices each has a kernel for",
    .flags = {},
    .details = "Every op reaches its kernel through a table (framework/dispatch.h); this lists the tables with a "
               "CPU, CUDA and meta column. Meta: \"(none)\" means the op only computes shapes there (its kernel "
               "returns nothing, so nothing runs).",
    .fn = run_kernels}};

}  // namespace
}  // namespace neurn::cli
