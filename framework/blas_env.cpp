#include "framework/blas_env.h"

#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace neurn {

namespace {

// OpenBLAS's x86 kernel sets without AVX2 (the Intel ones its fallback lands on).
bool pre_avx2(std::string core) {
  std::transform(core.begin(), core.end(), core.begin(), [](unsigned char c) { return std::tolower(c); });
  static const char* old[] = {"prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge", "atom",
                              "generic", "katmai", "coppermine", "northwood", "banias"};
  for (const char* o : old)
    if (core == o) return true;
  return false;
}

// OpenBLAS's kernel sets of AVX2 width: Haswell's, and the Zen sets built on
// them. On an AVX-512 CPU the AVX-512 kernels are worth a restart: on a
// 2-core AMD EPYC VM with AVX-512, sgemm on one thread ran at 114-122
// GFLOP/s with OPENBLAS_CORETYPE=Haswell against 213-232 with SkylakeX's
// kernels, and Inception v3's training step (75x75, batch 64, one thread)
// took 771-792 against 498-500 ms.
bool avx2_only(std::string core) {
  std::transform(core.begin(), core.end(), core.begin(), [](unsigned char c) { return std::tolower(c); });
  return core == "haswell" || core == "zen";
}

}  // namespace

BlasCore blas_core() {
  BlasCore b;
  const char* name = openblas_get_corename();
  b.chosen = name ? name : "";
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (pre_avx2(b.chosen)) {
    if (avx512)
      b.suggested = "SkylakeX";
    else if (avx2)
      b.suggested = "Haswell";
  } else if (avx2_only(b.chosen) && avx512) {
    b.suggested = "SkylakeX";
  }
#endif
  return b;
}

void ensure_blas_kernels(int argc, char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user's (or our earlier) choice
  const char* keep = std::getenv("NEURN_KEEP_BLAS_CORE");
  if (keep != nullptr && std::string(keep) == "1") return;
  const BlasCore b = blas_core();
  if (b.suggested.empty()) return;
  std::fprintf(stderr,
               "neurn: OpenBLAS chose its %s kernels, but this CPU has %s: restarting with OPENBLAS_CORETYPE=%s "
               "(set OPENBLAS_CORETYPE yourself to choose, or NEURN_KEEP_BLAS_CORE=1 to keep %s)\n",
               b.chosen.c_str(), b.suggested == "SkylakeX" ? "AVX-512" : "AVX2 and FMA", b.suggested.c_str(),
               b.chosen.c_str());
  std::fflush(stderr);
  if (setenv("OPENBLAS_CORETYPE", b.suggested.c_str(), 1) != 0) return;
  setenv("NEURN_BLAS_CORE_SET", b.suggested.c_str(), 1);  // tells the restarted program the choice was neurn's
  std::vector<char*> args(argv, argv + argc);
  args.push_back(nullptr);
  execv("/proc/self/exe", args.data());
  // Only reached when exec failed: carry on with the kernels we have.
  std::fprintf(stderr, "neurn: could not restart (/proc/self/exe); continuing with OpenBLAS's %s kernels\n",
               b.chosen.c_str());
}

}  // namespace neurn
