#include "framework/cuda/memory_log.h"

namespace neurn {

NEURN_DEFINE_KERNEL(memory_summary_kernel, std::string(int device, bool reset_peak));

std::string device_memory_summary(Device device, bool reset_peak) {
  if (!device.is_cuda()) return "";
  return memory_summary_kernel(device, device.index, reset_peak);
}

}  // namespace neurn
