#include "framework/cuda/cuda_autocast.h"

namespace neurn::cuda {

namespace {
thread_local bool g_autocast_bf16 = false;
}

bool autocast_bf16() { return g_autocast_bf16; }
void set_autocast_bf16(bool on) { g_autocast_bf16 = on; }

}  // namespace neurn::cuda
