#include "framework/cuda/memory_log.h"

namespace neurn {

NEURN_DEFINE_KERNEL(memory_summary_kernel);

namespace {
// CPU tensors come from malloc, not from a caching allocator: no line.
std::string no_cpu_summary(int, bool) { return ""; }
}  // namespace
NEURN_REGISTER_KERNEL(memory_summary_kernel, DeviceType::CPU, no_cpu_summary);

std::string device_memory_summary(Device device, bool reset_peak) {
  if (device.is_meta()) return "";
  return memory_summary_kernel(device, device.index, reset_peak);
}

}  // namespace neurn
