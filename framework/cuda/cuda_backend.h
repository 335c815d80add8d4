#pragma once
// The CUDA backend's entry points used by the device-independent parts of the
// engine (tensor storage, copies). Implemented in framework/cuda/*.cu; only
// compiled and called when NEURN_WITH_CUDA is defined.
#include <cstddef>
#include <cstdint>

#include "framework/dtype.h"

namespace neurn::cuda {

// Number of usable devices; 0 when the driver is missing or too old (the
// reason is printed once).
int device_count();
// From the caching allocator (no cudaMalloc per op).
void* allocate(size_t nbytes);
void deallocate(void* ptr);
// Copies on the compute stream; host pointers may be pageable or pinned.
void copy_host_to_device(void* dst, const void* src, size_t nbytes);
void copy_device_to_host(void* dst, const void* src, size_t nbytes);
void copy_device_to_device(void* dst, const void* src, size_t nbytes);
// Element-wise dtype conversion of n values on the device.
void convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n);
void fill(void* dst, DType dtype, int64_t n, double value);
// Pinned host memory for the data loader.
void* allocate_pinned(size_t nbytes);
void deallocate_pinned(void* ptr);

}  // namespace neurn::cuda
