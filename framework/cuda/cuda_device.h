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
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB, 132 SMs)" for cuda:N (no argument:
// cuda:0); "" without a device.
std::string device_description(int device);
std::string device_description();
// Versions found at run time: "CUDA runtime 13.0, driver 13.0, cuBLAS 13.0.0, cuDNN 9.13.0".
std::string library_versions();

// The caching allocator of a device's memory (no argument: the calling
// thread's current device, cuda_backend.h).
MemoryStats memory_stats(int device);
MemoryStats memory_stats();
void reset_peak_memory_stats(int device);
void reset_peak_memory_stats();
// Gives every wholly free segment back to the driver (segments with a block
// in use stay); no argument: on every device.
void empty_cache(int device);
void empty_cache();
// One line for logs: "cuda:0 memory: 812.3 MiB allocated (peak 1024.0), 1040.0
// MiB reserved (peak 1060.0) in 14 segments; 98.7% of 5120 requests from the
// cache" ("" without a device).
std::string memory_summary(int device);
// The caching allocator of pinned host memory (data loader buffers).
MemoryStats pinned_memory_stats();
// NEURN_DETERMINISTIC=1 was set (framework/cuda/cuda_check.h says what it does).
bool deterministic();
// Waits for all work queued on the compute stream of the current device, or
// of cuda:N (benchmarks, timing).
void synchronize();
void synchronize(int device);

}  // namespace neurn::cuda
