#pragma once
// A device's memory in one line, for logs that must not depend on the build
// (the trainer prints it per epoch when it trains on CUDA). Declared without
// CUDA headers: the CUDA backend registers the kernel (runtime.cu); in a
// build without it a cuda device cannot exist, and cpu and meta have no
// caching allocator to report.
#include <string>

#include "framework/device.h"
#include "framework/dispatch.h"

namespace neurn {

// The caching allocator's summary of cuda:N (cuda::memory_summary: allocated,
// reserved and their peaks, segments, cache hits); with reset_peak, the
// peaks start again from the current values after the line is made (so the
// next line's peaks are those of the interval between the two).
NEURN_DECLARE_KERNEL(memory_summary_kernel, std::string(int device, bool reset_peak));

// The line for `device`: "" on cpu and meta.
std::string device_memory_summary(Device device, bool reset_peak = false);

}  // namespace neurn
