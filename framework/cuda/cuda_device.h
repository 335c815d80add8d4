#pragma once
// What the CUDA backend knows about the device and its memory, for the CLI,
// benchmarks and tests. Declared without CUDA headers; implemented in
// framework/cuda/runtime.cu and allocator.cu (CUDA builds only).
#include <string>

#include "framework/cuda/caching_allocator.h"

namespace neurn::cuda {

// Why no device is usable ("" when one is): the runtime's message and error
// code, e.g. error 35 when the driver is missing or older than the runtime.
std::string unavailable_reason();
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"; "" without a device.
std::string device_description();
// Versions found at run time: "CUDA runtime 13.0, driver 13.0, cuBLAS 13.0.0, cuDNN 9.13.0".
std::string library_versions();

// The caching allocator of device memory.
MemoryStats memory_stats();
void reset_peak_memory_stats();
// Gives every cached block back to the driver (blocks in use stay).
void empty_cache();
// The caching allocator of pinned host memory (data loader buffers).
MemoryStats pinned_memory_stats();
// Waits for all work queued on the compute stream (benchmarks, timing).
void synchronize();

}  // namespace neurn::cuda
