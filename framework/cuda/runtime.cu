// The CUDA runtime side of the backend: device discovery (a missing or old
// driver means "no device", said once), the compute stream and library
// handles, the caching allocators, copies, conversion and fill.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "framework/cuda/async_copy.h"
#include "framework/cuda/caching_allocator.h"
#include "framework/cuda/cuda_autocast.h"
#include "framework/cuda/cuda_backend.h"
#include "framework/cuda/cuda_check.h"
#include "framework/cuda/cuda_device.h"
#include "framework/cuda/memory_log.h"
#include "framework/tensor.h"

namespace neurn::cuda {

// ---- errors -----------------------------------------------------------------------

void fail_cuda(cudaError_t err, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so the next call does not report it again
  NEURN_FAIL("CUDA error ", static_cast<int>(err), " (", cudaGetErrorName(err), ": ", cudaGetErrorString(err), ") in ",
             call, " at ", file, ":", line);
}

void fail_cublas(cublasStatus_t st, const char* call, const char* file, int line) {
  NEURN_FAIL("cuBLAS error ", static_cast<int>(st), " (", cublasGetStatusName(st), ": ", cublasGetStatusString(st),
             ") in ", call, " at ", file, ":", line);
}

void fail_cudnn(cudnnStatus_t st, const char* call, const char* file, int line) {
  char detail[512] = {};
  cudnnGetLastErrorString(detail, sizeof detail);
  NEURN_FAIL("cuDNN error ", static_cast<int>(st), " (", cudnnGetErrorString(st), detail[0] ? "; " : "", detail,
             ") in ", call, " at ", file, ":", line);
}

// ---- device discovery ------------------------------------------------------------------

namespace {

struct Discovery {
  int count = 0;
  std::string reason;
};

const Discovery& discovery() {
  static const Discovery d = [] {
    Discovery r;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      cudaGetLastError();
      // Error 35 (cudaErrorInsufficientDriver) is what a machine without a
      // driver answers; 100 (cudaErrorNoDevice) one with a driver and no GPU.
      r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err) + " (error " +
                 std::to_string(static_cast<int>(err)) + ", " + cudaGetErrorName(err) + ")";
      n = 0;
    } else if (n == 0) {
      r.reason = "cudaGetDeviceCount found no CUDA device";
    }
    r.count = n;
    if (n == 0) std::fprintf(stderr, "neurn: no usable CUDA device (%s); running on the CPU\n", r.reason.c_str());
    return r;
  }();
  return d;
}

}  // namespace

int device_count() { return discovery().count; }

std::string unavailable_reason() { return discovery().reason; }

void require_device(const char* op) {
  const Discovery& d = discovery();
  NEURN_CHECK(d.count > 0, op, ": no CUDA device is available (", d.reason,
              "); use the cpu device or run on a machine with a GPU and its driver");
}

std::string device_description(int device) {
  if (device_count() == 0) return "";
  check_device_index(device, "device_description");
  cudaDeviceProp prop{};
  NEURN_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s (sm_%d%d, %.1f GiB, %d SMs)", prop.name, prop.major, prop.minor,
                static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), prop.multiProcessorCount);
  return buf;
}

std::string device_description() { return device_description(0); }

std::string library_versions() {
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  if (cudaDriverGetVersion(&drv) != cudaSuccess) cudaGetLastError();
  size_t cudnn_v = cudnnGetVersion();
  int cublas_major = 0, cublas_minor = 0, cublas_patch = 0;
  cublasGetProperty(MAJOR_VERSION, &cublas_major);
  cublasGetProperty(MINOR_VERSION, &cublas_minor);
  cublasGetProperty(PATCH_LEVEL, &cublas_patch);
  char buf[256];
  // cuDNN 9 encodes its version as major * 10000 + minor * 100 + patch.
  std::snprintf(buf, sizeof buf, "CUDA runtime %d.%d, driver %d.%d, cuBLAS %d.%d.%d, cuDNN %zu.%zu.%zu", rt / 1000,
                (rt % 1000) / 10, drv / 1000, (drv % 1000) / 10, cublas_major, cublas_minor, cublas_patch,
                cudnn_v / 10000, (cudnn_v % 10000) / 100, cudnn_v % 100);
  return buf;
}

// ---- devices, streams and handles ------------------------------------------------------

void check_device_index(int device, const char* op) {
  const int n = device_count();
  if (n == 0) require_device(op);
  NEURN_CHECK(device >= 0 && device < n, op, ": cuda:", device, " does not exist: ", n, " CUDA device",
              n == 1 ? " is" : "s are", " present (cuda:0", n > 1 ? " to cuda:" + std::to_string(n - 1) : std::string(),
              ")");
}

namespace {

thread_local int t_current = 0;       // neurn's current device of this thread
thread_local int t_cuda_device = -1;  // what cudaSetDevice was last given on this thread

// cudaSetDevice only when it changes (kernels launch on the CUDA runtime's
// current device, which must own the stream they are given).
void make_cuda_current(int device) {
  if (t_cuda_device == device) return;
  NEURN_CUDA_CHECK(cudaSetDevice(device));
  t_cuda_device = device;
}

CachingAllocator* make_device_allocator(int device);

// One per device, created on first use and never destroyed: tearing down
// handles during static destruction races the driver's own shutdown.
struct Context {
  int device = 0;
  int sm_count = 1;
  cudaStream_t stream = nullptr;
  cudaStream_t copy_stream = nullptr;  // the loader's host-to-device copies (created on first use)
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  CachingAllocator* allocator = nullptr;
  std::once_flag created;
  std::mutex handle_mu;
};

Context& context(int device) {
  static Context* all = [] {
    require_device("CUDA backend");
    return new Context[static_cast<size_t>(device_count())];
  }();
  check_device_index(device, "CUDA backend");
  Context& c = all[device];
  std::call_once(c.created, [&] {
    make_cuda_current(device);
    c.device = device;
    int v = 0;
    NEURN_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, device));
    c.sm_count = v > 0 ? v : 1;
    NEURN_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
    c.allocator = make_device_allocator(device);
  });
  return c;
}

// The current device's context, with the CUDA runtime pointed at it.
Context& current_context() {
  Context& c = context(t_current);
  make_cuda_current(t_current);
  return c;
}

}  // namespace

int current_device() { return t_current; }

void set_current_device(int device) {
  check_device_index(device, "set_current_device");
  t_current = device;
}

DeviceGuard::DeviceGuard(int device) : previous_(t_current) { set_current_device(device); }
DeviceGuard::~DeviceGuard() { t_current = previous_; }

int device_of(const void* ptr) {
  if (device_count() <= 1) return 0;
  cudaPointerAttributes attr{};
  NEURN_CUDA_CHECK(cudaPointerGetAttributes(&attr, ptr));
  NEURN_CHECK(attr.type == cudaMemoryTypeDevice, "device_of: ", ptr, " is not device memory");
  return attr.device;
}

int sm_count() { return context(t_current).sm_count; }

cudaStream_t stream() { return current_context().stream; }

cublasHandle_t cublas() {
  Context& c = current_context();
  std::lock_guard<std::mutex> lock(c.handle_mu);
  if (!c.cublas) {
    NEURN_CUBLAS_CHECK(cublasCreate(&c.cublas));
    NEURN_CUBLAS_CHECK(cublasSetStream(c.cublas, c.stream));
    // Exact float32 by default (no TF32), so GPU results match the CPU at
    // float32 tolerances; TF32 and bf16 autocast are opt-in.
    NEURN_CUBLAS_CHECK(cublasSetMathMode(c.cublas, allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  }
  return c.cublas;
}

cudnnHandle_t cudnn() {
  Context& c = current_context();
  std::lock_guard<std::mutex> lock(c.handle_mu);
  if (!c.cudnn) {
    NEURN_CUDNN_CHECK(cudnnCreate(&c.cudnn));
    NEURN_CUDNN_CHECK(cudnnSetStream(c.cudnn, c.stream));
  }
  return c.cudnn;
}

namespace {
bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && v[0] && std::string(v) != "0";
}
}  // namespace

bool allow_tf32() {
  static const bool on = env_flag("NEURN_ALLOW_TF32");
  return on;
}

bool cudnn_benchmark() {
  static const bool on = env_flag("NEURN_CUDNN_BENCHMARK");
  return on;
}

bool deterministic() {
  static const bool on = env_flag("NEURN_DETERMINISTIC");
  return on;
}

FloatTensorDesc::FloatTensorDesc(const Tensor& t) {
  NEURN_CHECK(t.dim() <= 4, "cuDNN descriptor: tensor ", shape_str(t.shape()), " has more than 4 axes");
  int dims[4] = {1, 1, 1, 1};
  for (int64_t i = 0; i < t.dim(); ++i) {
    NEURN_CHECK(t.shape()[i] <= INT32_MAX, "cuDNN descriptor: axis of ", shape_str(t.shape()), " exceeds 2^31");
    dims[4 - t.dim() + i] = static_cast<int>(t.shape()[i]);
  }
  NEURN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d_));
  NEURN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, dims[0], dims[1], dims[2], dims[3]));
}

FloatTensorDesc::~FloatTensorDesc() {
  if (d_) cudnnDestroyTensorDescriptor(d_);
}

void synchronize() {
  if (device_count() == 0) return;
  NEURN_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void synchronize(int device) {
  if (device_count() == 0) return;
  DeviceGuard g(device);
  NEURN_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

// ---- allocators -------------------------------------------------------------------------

namespace {

CachingAllocator* make_device_allocator(int device) {
  return new CachingAllocator(AllocatorBackend{
      "CUDA (cuda:" + std::to_string(device) + ")",
      [device](size_t n) -> void* {
        make_cuda_current(device);  // cudaMalloc allocates on the runtime's current device
        void* p = nullptr;
        cudaError_t err = cudaMalloc(&p, n);
        if (err == cudaErrorMemoryAllocation) {
          cudaGetLastError();
          return nullptr;
        }
        NEURN_CUDA_CHECK(err);
        return p;
      },
      [device](void* p) {
        // A free segment may still be read by queued kernels of the stream.
        make_cuda_current(device);
        NEURN_CUDA_CHECK(cudaStreamSynchronize(context(device).stream));
        NEURN_CUDA_CHECK(cudaFree(p));
      },
      [device](size_t* free_bytes, size_t* total_bytes) {
        make_cuda_current(device);
        if (cudaMemGetInfo(free_bytes, total_bytes) != cudaSuccess) cudaGetLastError();
      }});
}

CachingAllocator& pinned_allocator() {
  static CachingAllocator* a = new CachingAllocator(AllocatorBackend{
      "pinned host",
      [](size_t n) -> void* {
        void* p = nullptr;
        // Portable: pinned for every device's context, not only the current one.
        cudaError_t err = cudaHostAlloc(&p, n, cudaHostAllocPortable);
        if (err == cudaErrorMemoryAllocation) {
          cudaGetLastError();
          return nullptr;
        }
        NEURN_CUDA_CHECK(err);
        return p;
      },
      [](void* p) { NEURN_CUDA_CHECK(cudaFreeHost(p)); },
      nullptr});
  return *a;
}

}  // namespace

void* allocate(size_t nbytes, int device) {
  check_device_index(device, "allocating CUDA memory");
  Context& c = context(device);  // checks the index; the stream exists before any block is handed out
  t_current = device;
  return c.allocator->allocate(nbytes);
}

void deallocate(void* ptr, int device) noexcept {
  if (!ptr) return;
  // The context exists: it made the block. Nothing here may throw.
  if (device < 0 || device >= device_count()) {
    std::fprintf(stderr, "neurn: deallocate: %p on cuda:%d, which does not exist; ignored\n", ptr, device);
    return;
  }
  try {
    context(device).allocator->deallocate(ptr);
  } catch (...) {
    std::fprintf(stderr, "neurn: deallocate: freeing %p on cuda:%d failed; ignored\n", ptr, device);
  }
}

MemoryStats memory_stats(int device) {
  if (device_count() == 0) return MemoryStats{};
  return context(device).allocator->stats();
}
MemoryStats memory_stats() { return memory_stats(t_current); }

void reset_peak_memory_stats(int device) {
  if (device_count()) context(device).allocator->reset_peak_stats();
}
void reset_peak_memory_stats() { reset_peak_memory_stats(t_current); }

void empty_cache(int device) {
  if (device_count()) context(device).allocator->empty_cache();
}
void empty_cache() {
  for (int d = 0; d < device_count(); ++d) empty_cache(d);
}

std::string memory_summary(int device) {
  if (device_count() == 0) return "";
  const MemoryStats s = memory_stats(device);
  const double mib = 1024.0 * 1024.0;
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "cuda:%d memory: %.1f MiB allocated (peak %.1f), %.1f MiB reserved (peak %.1f) in %llu segments; "
                "%.1f%% of %llu requests from the cache",
                device, static_cast<double>(s.allocated) / mib, static_cast<double>(s.peak_allocated) / mib,
                static_cast<double>(s.reserved) / mib, static_cast<double>(s.peak_reserved) / mib,
                static_cast<unsigned long long>(s.segments),
                s.requests ? 100.0 * static_cast<double>(s.cache_hits) / static_cast<double>(s.requests) : 0.0,
                static_cast<unsigned long long>(s.requests));
  return buf;
}

namespace {
std::string memory_summary_line(int device, bool reset_peak) {
  std::string line = memory_summary(device);
  if (reset_peak && device_count()) reset_peak_memory_stats(device);
  return line;
}
}  // namespace
NEURN_REGISTER_KERNEL(::neurn::memory_summary_kernel, DeviceType::CUDA, memory_summary_line);

const void* autocast_weight_bf16(const void* data, int64_t n) {
  if (n <= 0) return nullptr;
  return autocast_weight_cache().find_or_convert(data, n, [](const void* src, int64_t count) {
    const int device = current_device();
    void* p = allocate(static_cast<size_t>(count) * sizeof(__nv_bfloat16), device);
    convert(src, DType::Float32, p, DType::BFloat16, count, device);
    return std::shared_ptr<void>(p, [device](void* q) { deallocate(q, device); });
  });
}

MemoryStats pinned_memory_stats() { return device_count() ? pinned_allocator().stats() : MemoryStats{}; }

void* allocate_pinned(size_t nbytes) {
  require_device("allocate_pinned");
  return pinned_allocator().allocate(nbytes);
}

void deallocate_pinned(void* ptr) { pinned_allocator().deallocate(ptr); }

// ---- copies -------------------------------------------------------------------------------

void copy_host_to_device(void* dst, int device, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  DeviceGuard g(device);
  NEURN_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, stream()));
  // The caller may reuse or free the host buffer (pinned ones included) as
  // soon as this returns.
  NEURN_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

// ---- asynchronous copies (framework/cuda/async_copy.h) -----------------------------------

namespace {

cudaStream_t copy_stream(int device) {
  Context& c = context(device);
  std::lock_guard<std::mutex> lock(c.handle_mu);
  if (!c.copy_stream) {
    make_cuda_current(device);
    NEURN_CUDA_CHECK(cudaStreamCreateWithFlags(&c.copy_stream, cudaStreamNonBlocking));
  }
  return c.copy_stream;
}

AsyncCopy copy_to_device_async(const Tensor& host, int device) {
  NEURN_CHECK(host.device().is_cpu(), "copy_to_device_async: the source is on ", host.device().str(),
              ", expected the CPU");
  AsyncCopy c;
  c.host = host;
  c.device = Tensor::empty(host.shape(), {host.dtype(), Device::cuda(device)});  // makes `device` current
  if (host.nbytes() == 0) return c;
  cudaStream_t compute = stream(), copy = copy_stream(device);
  // The destination may be a block the compute stream freed with kernels
  // still queued that read it: the copy starts after them.
  cudaEvent_t queued;
  NEURN_CUDA_CHECK(cudaEventCreateWithFlags(&queued, cudaEventDisableTiming));
  NEURN_CUDA_CHECK(cudaEventRecord(queued, compute));
  NEURN_CUDA_CHECK(cudaStreamWaitEvent(copy, queued, 0));
  NEURN_CUDA_CHECK(cudaEventDestroy(queued));  // released once the wait has passed it
  NEURN_CUDA_CHECK(cudaMemcpyAsync(c.device.raw_data(), host.raw_data(), host.nbytes(), cudaMemcpyHostToDevice, copy));
  cudaEvent_t done;
  NEURN_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  NEURN_CUDA_CHECK(cudaEventRecord(done, copy));
  c.event = std::shared_ptr<void>(static_cast<void*>(done),
                                  [](void* e) { (void)cudaEventDestroy(static_cast<cudaEvent_t>(e)); });
  return c;
}

void use_async_copy(const AsyncCopy& c) {
  if (!c.event) return;
  NEURN_CUDA_CHECK(cudaStreamWaitEvent(stream(), static_cast<cudaEvent_t>(c.event.get()), 0));
}

void finish_async_copy(const AsyncCopy& c) {
  if (c.event) NEURN_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(c.event.get())));
}

}  // namespace

NEURN_REGISTER_KERNEL(::neurn::copy_to_device_async_kernel, DeviceType::CUDA, copy_to_device_async);
NEURN_REGISTER_KERNEL(::neurn::use_async_copy_kernel, DeviceType::CUDA, use_async_copy);
NEURN_REGISTER_KERNEL(::neurn::finish_async_copy_kernel, DeviceType::CUDA, finish_async_copy);

void copy_device_to_host(void* dst, const void* src, int device, size_t nbytes) {
  if (nbytes == 0) return;
  DeviceGuard g(device);
  NEURN_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream()));
  NEURN_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy_device_to_device(void* dst, int dst_device, const void* src, int src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device == src_device) {  // ordered on the device's stream, no wait
    DeviceGuard g(dst_device);
    NEURN_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  // Between devices: the source is complete once its stream has drained; the
  // copy runs on the destination's stream and is waited for, so the source
  // block can go back to its allocator (and be reused) right after.
  synchronize(src_device);
  DeviceGuard g(dst_device);
  NEURN_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device, src, src_device, nbytes, stream()));
  NEURN_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

// ---- conversion and fill ---------------------------------------------------------------------

namespace {

// Every conversion goes through double (exact for all the integer and float
// values the engine stores, except int64 beyond 2^53).
template <typename T> __device__ __forceinline__ double to_double(T v) { return static_cast<double>(v); }
template <> __device__ __forceinline__ double to_double(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ double to_double(__half v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T from_double(double v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_double(double v) { return __double2bfloat16(v); }
template <> __device__ __forceinline__ __half from_double(double v) { return __double2half(v); }

template <typename S, typename D>
__global__ void convert_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = from_double<D>(to_double(src[i]));
}

template <typename T>
__global__ void fill_kernel(T* __restrict__ dst, T value, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = value;
}

template <typename F>
void dispatch_storage(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float32: f(float{}); return;
    case DType::Float64: f(double{}); return;
    case DType::Int64: f(int64_t{}); return;
    case DType::UInt8: f(uint8_t{}); return;
    case DType::BFloat16: f(__nv_bfloat16{}); return;
    case DType::Float16: f(__half{}); return;
  }
  NEURN_FAIL(op, ": unknown dtype");
}

// Host-side conversion of the fill value (bf16/half constructors are host-usable).
template <typename T> T host_from_double(double v) { return static_cast<T>(v); }
template <> __nv_bfloat16 host_from_double(double v) { return __nv_bfloat16(static_cast<float>(v)); }
template <> __half host_from_double(double v) { return __half(static_cast<float>(v)); }

}  // namespace

void convert(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n, int device) {
  if (n == 0) return;
  if (src_dtype == dst_dtype) {
    copy_device_to_device(dst, device, src, device, static_cast<size_t>(n) * dtype_size(src_dtype));
    return;
  }
  DeviceGuard g(device);
  dispatch_storage(src_dtype, "convert", [&](auto s) {
    using S = decltype(s);
    dispatch_storage(dst_dtype, "convert", [&](auto d) {
      using D = decltype(d);
      convert_kernel<S, D><<<grid_for(n), 256, 0, stream()>>>(static_cast<const S*>(src), static_cast<D*>(dst), n);
      NEURN_CUDA_CHECK_LAUNCH();
    });
  });
}

void fill(void* dst, DType dtype, int64_t n, double value, int device) {
  if (n == 0) return;
  DeviceGuard g(device);
  dispatch_storage(dtype, "fill", [&](auto z) {
    using T = decltype(z);
    fill_kernel<T><<<grid_for(n), 256, 0, stream()>>>(static_cast<T*>(dst), host_from_double<T>(value), n);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace neurn::cuda
