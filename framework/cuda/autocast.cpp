#include "framework/cuda/cuda_autocast.h"

#include <cstdlib>
#include <string>

namespace neurn::cuda {

namespace {
// NEURN_AUTOCAST_BF16=1 turns it on for every thread (a guard still overrides).
bool env_default() {
  static const bool on = [] {
    const char* v = std::getenv("NEURN_AUTOCAST_BF16");
    return v && v[0] && std::string(v) != "0";
  }();
  return on;
}
thread_local bool g_autocast_bf16 = env_default();
}  // namespace

bool autocast_bf16() { return g_autocast_bf16; }
void set_autocast_bf16(bool on) { g_autocast_bf16 = on; }

}  // namespace neurn::cuda
