#pragma once
// The CUDA backend's entry points used by the device-independent parts of the
// engine (tensor storage, copies). Implemented in framework/cuda/*.cu; only
// compiled and called when NEURN_WITH_CUDA is defined.
//
// Devices: every device (cuda:N) has its own compute stream, cuBLAS and cuDNN
// handles and caching allocator, created on first use. Kernels and library
// calls go to the calling thread's *current* device, which is set
// - by allocate(nbytes, N): every op allocates its output on the device of
//   its inputs before it launches anything, so its kernels reach that device;
// - by a DeviceGuard (the launchers that take tensors set one from their
//   input; the optimizer updates and the targets' range check set one from
//   their pointer, which is where nothing was allocated first);
// - explicitly by the copies, fill and convert below, which name their devices.
#include <cstddef>
#include <cstdint>

#include "framework/dtype.h"

namespace neurn::cuda {

// Number of usable devices; 0 when the driver is missing or too old (the
// reason is printed once).
int device_count();
// Throws naming the op when `device` is not in [0, device_count()).
void check_device_index(int device, const char* op);

// The calling thread's current device (0 until something sets it).
int current_device();
void set_current_device(int device);  // checks the index
// Makes `device` current for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_;
};
// The device holding device memory at `ptr` (one query to the driver, made
// only when more than one device is present; otherwise 0).
int device_of(const void* ptr);

// From `device`'s caching allocator (no cudaMalloc per op); makes `device`
// current on this thread (see above).
void* allocate(size_t nbytes, int device);
// Never throws (runs in storage destructors).
void deallocate(void* ptr, int device) noexcept;
// Copies; host pointers may be pageable or pinned. Host <-> device copies
// wait for the device's stream (so the host buffer may be reused at once);
// a copy between two devices waits for both.
void copy_host_to_device(void* dst, int device, const void* src, size_t nbytes);
void copy_device_to_host(void* dst, const void* src, int device, size_t nbytes);
void copy_device_to_device(void* dst, int dst_device, const void* src, int src_device, size_t nbytes);
// Element-wise dtype conversion of n values on `device`.
void convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n, int device);
void fill(void* dst, DType dtype, int64_t n, double value, int device);
// bf16 autocast: the bf16 copy of the n float32 values at device pointer
// `data` when they are the whole of a registered weight (cached until the
// weight's next version: cuda_autocast.h, WeightCache), else nullptr (the
// caller converts into scratch memory). On the current device.
const void* autocast_weight_bf16(const void* data, int64_t n);
// Pinned host memory for the data loader (portable: pinned for every device).
void* allocate_pinned(size_t nbytes);
void deallocate_pinned(void* ptr);

}  // namespace neurn::cuda
