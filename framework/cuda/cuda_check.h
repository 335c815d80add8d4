#pragma once
// For .cu files only: the checks every CUDA, cuBLAS and cuDNN call goes
// through, the shared compute stream and library handles, and launch helpers.
// A failed call throws neurn::Error naming the file, the line, the call and
// the library's own message.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstdint>

#include "framework/cuda/cuda_backend.h"
#include "framework/dtype.h"
#include "framework/error.h"

namespace neurn {
class Tensor;
}

namespace neurn::cuda {

[[noreturn]] void fail_cuda(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t st, const char* call, const char* file, int line);
[[noreturn]] void fail_cudnn(cudnnStatus_t st, const char* call, const char* file, int line);

// The current device's compute stream (cuda_backend.h says how the current
// device is chosen): every kernel, library call and copy of a device is
// ordered on its one stream, which is what lets its caching allocator hand a
// freed block to the next op without synchronising. Calling it also points
// the CUDA runtime at that device, so a launch given stream() lands there.
cudaStream_t stream();
cublasHandle_t cublas();  // the current device's, bound to its stream()
cudnnHandle_t cudnn();    // the current device's, bound to its stream()

// fill and convert on the current device (inside launchers, which run on
// the device of the op's tensors).
inline void fill(void* dst, DType dtype, int64_t n, double value) { fill(dst, dtype, n, value, current_device()); }
inline void convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n) {
  convert(src, src_dtype, dst, dst_dtype, n, current_device());
}

// NEURN_ALLOW_TF32=1: float32 GEMMs and convolutions may use TF32 tensor
// cores (faster, about 10 bits of mantissa). Off by default, so that CUDA
// results match the CPU at float32 tolerances.
bool allow_tf32();
// NEURN_CUDNN_BENCHMARK=1: convolution algorithms are chosen by timing them
// (cuDNN's Find) instead of by cuDNN's heuristics.
bool cudnn_benchmark();
// NEURN_DETERMINISTIC=1: reproducible backward passes where neurn controls
// it: cuDNN convolutions take only deterministic algorithms, layer norm's
// weight and bias gradients are summed without atomics (docs/cuda.md lists
// the kernels that still add atomically).
bool deterministic();

// A cuDNN float32 NCHW descriptor of a tensor of up to 4 axes (missing
// leading axes are 1), destroyed with the object.
class FloatTensorDesc {
 public:
  explicit FloatTensorDesc(const Tensor& t);
  ~FloatTensorDesc();
  FloatTensorDesc(const FloatTensorDesc&) = delete;
  FloatTensorDesc& operator=(const FloatTensorDesc&) = delete;
  cudnnTensorDescriptor_t get() const { return d_; }

 private:
  cudnnTensorDescriptor_t d_ = nullptr;
};

// Throws (naming the op) when no usable CUDA device is present.
void require_device(const char* op);

// Multiprocessor count of the current device (for grid sizes).
int sm_count();

// Grid size for a grid-stride loop over n elements with `threads` per block:
// enough blocks to fill the device, not one per element for huge n.
inline unsigned grid_for(int64_t n, int threads = 256) {
  int64_t blocks = (n + threads - 1) / threads;
  int64_t cap = static_cast<int64_t>(sm_count()) * 32;
  if (blocks > cap) blocks = cap;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks);
}

// For the paths that exist in float32 only (bf16 autocast).
inline void require_float32(DType t, const char* op) {
  NEURN_CHECK(t == DType::Float32, op, ": dtype ", dtype_name(t),
              " is not supported here on CUDA (expected float32)");
}

// Scratch memory of the current device from its caching allocator for the
// length of one op: the stream orders its reuse after the kernels queued on
// it, so it may go back to the cache before they have run.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t nbytes)
      : device_(current_device()), p_(nbytes ? allocate(nbytes, device_) : nullptr) {}
  ~DeviceBuffer() { deallocate(p_, device_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T> T* as() const { return static_cast<T*>(p_); }
  void* get() const { return p_; }

 private:
  int device_;
  void* p_;
};

// Calls f(float{}) or f(double{}) for the launchers whose contract allows
// both (the CPU twins run float64 gradient checks through the same API).
template <typename F>
void dispatch_real(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float32: f(float{}); return;
    case DType::Float64: f(double{}); return;
    default: NEURN_FAIL(op, ": dtype ", dtype_name(t), " is not supported on CUDA (expected float32 or float64)");
  }
}

}  // namespace neurn::cuda

#define NEURN_CUDA_CHECK(call)                                                      \
  do {                                                                              \
    cudaError_t neurn_err_ = (call);                                                \
    if (neurn_err_ != cudaSuccess) ::neurn::cuda::fail_cuda(neurn_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define NEURN_CUBLAS_CHECK(call)                                                    \
  do {                                                                              \
    cublasStatus_t neurn_st_ = (call);                                              \
    if (neurn_st_ != CUBLAS_STATUS_SUCCESS) ::neurn::cuda::fail_cublas(neurn_st_, #call, __FILE__, __LINE__); \
  } while (0)

#define NEURN_CUDNN_CHECK(call)                                                     \
  do {                                                                              \
    cudnnStatus_t neurn_st_ = (call);                                               \
    if (neurn_st_ != CUDNN_STATUS_SUCCESS) ::neurn::cuda::fail_cudnn(neurn_st_, #call, __FILE__, __LINE__); \
  } while (0)

// After every kernel launch: catches bad launch configurations at the launch
// site instead of at the next synchronising call.
#define NEURN_CUDA_CHECK_LAUNCH() NEURN_CUDA_CHECK(cudaGetLastError())
