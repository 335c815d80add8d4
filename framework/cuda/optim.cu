// Fused optimizer updates: every thread runs the same element function as
// the CPU loop (framework/optim/update_functors.h), reading and writing
// parameter, gradient and state once per step. SGD and Adam update all
// parameters of a device in one launch (multi-tensor apply: a table of
// pointers, per-tensor constants and chunks in device memory, one block per
// chunk); AutoFormer's SliceAdam keeps its own launcher (cuda_optim.h).
#include <cstring>
#include <vector>

#include "framework/cuda/cuda_check.h"
#include "framework/cuda/cuda_optim.h"
#include "framework/optim/multi_tensor.h"
#include "framework/optim/optim_kernels.h"

namespace neurn::cuda {

namespace {

constexpr int kMaxBoxRank = 8;
struct Box {
  int rank;
  int64_t shape[kMaxBoxRank], extent[kMaxBoxRank];
};

// Thread i takes the i-th element of the box in row-major order and finds its
// offset in the whole tensor.
template <typename T>
__global__ void slice_adam_kernel(int64_t n, Box box, T* __restrict__ param, const T* __restrict__ grad,
                                  T* __restrict__ m, T* __restrict__ v, T* __restrict__ count, AdamStep a) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t rest = i, off = 0, stride = 1;
    for (int d = box.rank - 1; d >= 0; --d) {
      off += (rest % box.extent[d]) * stride;
      rest /= box.extent[d];
      stride *= box.shape[d];
    }
    const double c = static_cast<double>(count[off]) + 1.0;
    count[off] = static_cast<T>(c);
    const double bc1 = 1.0 - pow(a.beta1, c), sqrt_bc2 = sqrt(1.0 - pow(a.beta2, c));
    adam_update_element<T>(param[off], grad[off], m[off], v[off], a, bc1, sqrt_bc2);
  }
}

}  // namespace

void slice_adam_update(DType dtype, int rank, const int64_t* shape, const int64_t* extent, void* param,
                       const void* grad, void* exp_avg, void* exp_avg_sq, void* step_count, const AdamStep& a) {
  NEURN_CHECK(rank >= 0 && rank <= kMaxBoxRank, "SliceAdam (CUDA): rank ", rank, " above ", kMaxBoxRank);
  Box box{rank, {}, {}};
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) {
    NEURN_CHECK(extent[d] >= 0 && extent[d] <= shape[d], "SliceAdam (CUDA): extent ", extent[d], " of axis ", d,
                " outside 0..", shape[d]);
    box.shape[d] = shape[d], box.extent[d] = extent[d];
    n *= extent[d];
  }
  if (n == 0) return;
  DeviceGuard on_param(device_of(param));  // nothing was allocated before an update
  dispatch_real(dtype, "SliceAdam", [&](auto z) {
    using T = decltype(z);
    slice_adam_kernel<T><<<grid_for(n), 256, 0, stream()>>>(n, box, static_cast<T*>(param),
                                                            static_cast<const T*>(grad), static_cast<T*>(exp_avg),
                                                            static_cast<T*>(exp_avg_sq), static_cast<T*>(step_count), a);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

// ---- multi-tensor apply ----------------------------------------------------------------

namespace {

template <typename T>
struct SgdEntry {
  T* p;
  const T* g;
  T* buf;
  SgdCoeffs<T> c;
};

template <typename T>
struct AdamEntry {
  T* p;
  const T* g;
  T* m;
  T* v;
  AdamCoeffs<T> c;
};

constexpr int kThreads = 256;

// Block b updates chunk b: a range of one tensor (framework/optim/multi_tensor.h).
template <bool kMomentum, bool kNesterov, typename T>
__global__ void sgd_multi_kernel(const SgdEntry<T>* __restrict__ entries, const TensorChunk* __restrict__ chunks) {
  const TensorChunk ch = chunks[blockIdx.x];
  const SgdEntry<T> e = entries[ch.tensor];
  for (int64_t i = ch.begin + threadIdx.x; i < ch.end; i += blockDim.x)
    sgd_update_element<kMomentum, kNesterov, T>(e.p[i], e.g[i], kMomentum ? e.buf + i : nullptr, e.c);
}

template <typename T>
__global__ void adam_multi_kernel(const AdamEntry<T>* __restrict__ entries, const TensorChunk* __restrict__ chunks) {
  const TensorChunk ch = chunks[blockIdx.x];
  const AdamEntry<T> e = entries[ch.tensor];
  for (int64_t i = ch.begin + threadIdx.x; i < ch.end; i += blockDim.x)
    adam_update_element<T>(e.p[i], e.g[i], e.m[i], e.v[i], e.c);
}

// The table of a launch in device memory: the entries, then the chunks.
// cudaMemcpyAsync from pageable memory returns once the driver has staged
// the bytes (CUDA's "API synchronization behavior"), so the host vector may
// go right after and the step waits for nothing; the device buffer goes back
// to the stream-ordered cache after the launch that reads it.
template <typename Entry>
struct LaunchTable {
  DeviceBuffer buf;
  const Entry* entries;
  const TensorChunk* chunks;
  unsigned blocks;
  LaunchTable(const std::vector<Entry>& es, const std::vector<TensorChunk>& chunks_host)
      : buf(bytes(es.size(), chunks_host.size())), blocks(static_cast<unsigned>(chunks_host.size())) {
    NEURN_CHECK(chunks_host.size() < (size_t{1} << 31), "multi-tensor apply: ", chunks_host.size(),
                " chunks exceed CUDA's grid");
    const size_t off = chunk_offset(es.size());
    std::vector<unsigned char> host(bytes(es.size(), chunks_host.size()));
    std::memcpy(host.data(), es.data(), es.size() * sizeof(Entry));
    std::memcpy(host.data() + off, chunks_host.data(), chunks_host.size() * sizeof(TensorChunk));
    NEURN_CUDA_CHECK(cudaMemcpyAsync(buf.get(), host.data(), host.size(), cudaMemcpyHostToDevice, stream()));
    entries = buf.as<const Entry>();
    chunks = reinterpret_cast<const TensorChunk*>(static_cast<const unsigned char*>(buf.get()) + off);
  }
  static size_t chunk_offset(size_t n) {
    const size_t a = alignof(TensorChunk);
    return (n * sizeof(Entry) + a - 1) / a * a;
  }
  static size_t bytes(size_t n, size_t c) { return chunk_offset(n) + c * sizeof(TensorChunk); }
};

void sgd_update_cuda(const std::vector<SgdSlot>& slots) {
  if (slots.empty()) return;
  const bool momentum = slots[0].momentum_buffer.defined(), nesterov = slots[0].step.nesterov;
  dispatch_real(slots[0].param.dtype(), "SGD", [&](auto z) {
    using T = decltype(z);
    std::vector<SgdEntry<T>> es;
    std::vector<int64_t> sizes;
    for (const SgdSlot& s : slots) {
      es.push_back({static_cast<T*>(s.param.raw_data()), static_cast<const T*>(s.grad.raw_data()),
                    momentum ? static_cast<T*>(s.momentum_buffer.raw_data()) : nullptr, SgdCoeffs<T>(s.step)});
      sizes.push_back(s.param.numel());
    }
    const std::vector<TensorChunk> chunks = chunk_tensors(sizes);
    if (chunks.empty()) return;
    LaunchTable<SgdEntry<T>> t(es, chunks);
    if (!momentum) sgd_multi_kernel<false, false, T><<<t.blocks, kThreads, 0, stream()>>>(t.entries, t.chunks);
    else if (nesterov) sgd_multi_kernel<true, true, T><<<t.blocks, kThreads, 0, stream()>>>(t.entries, t.chunks);
    else sgd_multi_kernel<true, false, T><<<t.blocks, kThreads, 0, stream()>>>(t.entries, t.chunks);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void adam_update_cuda(const std::vector<AdamSlot>& slots) {
  if (slots.empty()) return;
  dispatch_real(slots[0].param.dtype(), slots[0].step.decoupled ? "AdamW" : "Adam", [&](auto z) {
    using T = decltype(z);
    std::vector<AdamEntry<T>> es;
    std::vector<int64_t> sizes;
    for (const AdamSlot& s : slots) {
      es.push_back({static_cast<T*>(s.param.raw_data()), static_cast<const T*>(s.grad.raw_data()),
                    static_cast<T*>(s.exp_avg.raw_data()), static_cast<T*>(s.exp_avg_sq.raw_data()),
                    AdamCoeffs<T>(s.step, s.bc1, s.sqrt_bc2)});
      sizes.push_back(s.param.numel());
    }
    const std::vector<TensorChunk> chunks = chunk_tensors(sizes);
    if (chunks.empty()) return;
    LaunchTable<AdamEntry<T>> t(es, chunks);
    adam_multi_kernel<T><<<t.blocks, kThreads, 0, stream()>>>(t.entries, t.chunks);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

// ---- gradient clipping: the sum of squares and the scale, one launch each ----------------

template <typename T>
struct GradEntry {
  T* g;
};

// The sum of every thread's `v` over a block of kThreads, as a tree in a
// fixed order (no atomics), returned to every thread.
__device__ double block_sum(double v, double* red) {
  red[threadIdx.x] = v;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
    __syncthreads();
  }
  return red[0];
}

// Block b sums the squares of chunk b in double: a strided loop per thread,
// then a tree over the block in a fixed order (no atomics: the result
// depends on the gradients alone).
template <typename T>
__global__ void grad_sq_chunks_kernel(const GradEntry<T>* __restrict__ entries, const TensorChunk* __restrict__ chunks,
                                      double* __restrict__ partial) {
  __shared__ double red[kThreads];
  const TensorChunk ch = chunks[blockIdx.x];
  const T* g = entries[ch.tensor].g;
  double s = 0.0;
  for (int64_t i = ch.begin + threadIdx.x; i < ch.end; i += blockDim.x) {
    const double v = static_cast<double>(g[i]);
    s += v * v;
  }
  s = block_sum(s, red);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// One block adds the chunks' sums, in the same fixed order.
__global__ void sum_partials_kernel(const double* __restrict__ partial, unsigned n, double* __restrict__ out) {
  __shared__ double red[kThreads];
  double s = 0.0;
  for (unsigned i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  s = block_sum(s, red);
  if (threadIdx.x == 0) *out = s;
}

template <typename T>
__global__ void grad_scale_chunks_kernel(const GradEntry<T>* __restrict__ entries, const TensorChunk* __restrict__ chunks,
                                         T coef) {
  const TensorChunk ch = chunks[blockIdx.x];
  T* g = entries[ch.tensor].g;
  for (int64_t i = ch.begin + threadIdx.x; i < ch.end; i += blockDim.x) g[i] *= coef;
}

// Runs f(table) with the launch table of `grads` (one entry per gradient,
// its chunks), or nothing when every gradient is empty.
template <typename T, typename F>
void with_grad_table(const std::vector<Tensor>& grads, F&& f) {
  std::vector<GradEntry<T>> es;
  std::vector<int64_t> sizes;
  for (const Tensor& g : grads) {
    es.push_back({static_cast<T*>(g.raw_data())});
    sizes.push_back(g.numel());
  }
  const std::vector<TensorChunk> chunks = chunk_tensors(sizes);
  if (chunks.empty()) return;
  LaunchTable<GradEntry<T>> t(es, chunks);
  f(t);
}

double grad_sq_sum_cuda(const std::vector<Tensor>& grads) {
  if (grads.empty()) return 0.0;
  double result = 0.0;
  dispatch_real(grads[0].dtype(), "clip_grad_norm", [&](auto z) {
    using T = decltype(z);
    with_grad_table<T>(grads, [&](const LaunchTable<GradEntry<T>>& t) {
      DeviceBuffer partial((t.blocks + 1) * sizeof(double));  // the chunks' sums, then the total
      double* part = partial.as<double>();
      grad_sq_chunks_kernel<T><<<t.blocks, kThreads, 0, stream()>>>(t.entries, t.chunks, part);
      NEURN_CUDA_CHECK_LAUNCH();
      sum_partials_kernel<<<1, kThreads, 0, stream()>>>(part, t.blocks, part + t.blocks);
      NEURN_CUDA_CHECK_LAUNCH();
      NEURN_CUDA_CHECK(cudaMemcpyAsync(&result, part + t.blocks, sizeof(double), cudaMemcpyDeviceToHost, stream()));
      NEURN_CUDA_CHECK(cudaStreamSynchronize(stream()));  // the clip's one wait on this device
    });
  });
  return result;
}

void grad_scale_cuda(const std::vector<Tensor>& grads, double coef) {
  if (grads.empty()) return;
  dispatch_real(grads[0].dtype(), "clip_grad_norm", [&](auto z) {
    using T = decltype(z);
    with_grad_table<T>(grads, [&](const LaunchTable<GradEntry<T>>& t) {
      grad_scale_chunks_kernel<T><<<t.blocks, kThreads, 0, stream()>>>(t.entries, t.chunks, static_cast<T>(coef));
      NEURN_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace

}  // namespace neurn::cuda

NEURN_REGISTER_KERNEL(::neurn::grad_sq_sum_kernel, ::neurn::DeviceType::CUDA, ::neurn::cuda::grad_sq_sum_cuda);
NEURN_REGISTER_KERNEL(::neurn::grad_scale_kernel, ::neurn::DeviceType::CUDA, ::neurn::cuda::grad_scale_cuda);
NEURN_REGISTER_KERNEL(::neurn::sgd_update_kernel, ::neurn::DeviceType::CUDA, ::neurn::cuda::sgd_update_cuda);
NEURN_REGISTER_KERNEL(::neurn::adam_update_kernel, ::neurn::DeviceType::CUDA, ::neurn::cuda::adam_update_cuda);
