// Sum and max reductions over any set of axes. A reduction is seen from its
// outputs (framework/cuda/index_math.h): a warp reduces one output when the
// outputs are many, and when they are few and long each output is split over
// several blocks whose partial results a second pass combines. Sums
// accumulate in double for float32 too (each thread's share, then the warp
// and block trees): at least as accurate as the CPU's contract (float32
// lanes of at most 16 values, framework/ops/reduce.cpp), so the two agree
// within the CPU's error bound, not bit for bit.
#include <algorithm>
#include <cmath>

#include "framework/cuda/cuda_backend.h"
#include "framework/cuda/cuda_check.h"
#include "framework/cuda/index_math.h"
#include "framework/ops/reduce_kernels.h"
#include "framework/ops/reduce_math.h"

namespace neurn::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

template <typename T>
struct SumOp {
  using Value = T;
  struct Acc {
    double v;
  };
  static __device__ Acc identity() { return {0.0}; }
  static __device__ Acc make(T x, int64_t) { return {static_cast<double>(x)}; }
  static __device__ void store(Acc a, T* out, int64_t*, int64_t o) { out[o] = static_cast<T>(a.v); }
  static __device__ Acc combine(Acc a, Acc b) { return {a.v + b.v}; }
  static __device__ Acc shfl_down(Acc a, int delta) { return {__shfl_down_sync(0xffffffffu, a.v, delta)}; }
};

// Value and flat input index; NaN wins, then the larger value, then the
// smaller index (the first maximum), as the CPU loop decides.
template <typename T>
struct MaxOp {
  using Value = T;
  struct Acc {
    T v;
    int64_t i;
  };
  static __device__ Acc identity() { return {static_cast<T>(-INFINITY), -1}; }
  static __device__ Acc make(T x, int64_t i) { return {x, i}; }
  static __device__ void store(Acc a, T* out, int64_t* arg, int64_t o) {
    out[o] = a.v;
    arg[o] = a.i;
  }
  static __device__ Acc combine(Acc a, Acc b) {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    bool na = isnan(a.v), nb = isnan(b.v);
    if (na || nb) {
      if (na && nb) return a.i < b.i ? a : b;
      return na ? a : b;
    }
    if (a.v != b.v) return a.v > b.v ? a : b;
    return a.i < b.i ? a : b;
  }
  static __device__ Acc shfl_down(Acc a, int delta) {
    return {__shfl_down_sync(0xffffffffu, a.v, delta), __shfl_down_sync(0xffffffffu, a.i, delta)};
  }
};

template <typename Op>
__device__ typename Op::Acc warp_reduce(typename Op::Acc a) {
  for (int delta = 16; delta > 0; delta /= 2) a = Op::combine(a, Op::shfl_down(a, delta));
  return a;
}

template <typename Op>
__device__ typename Op::Acc load(const ReduceIndex& ri, const typename Op::Value* x, int64_t base, int64_t r) {
  int64_t off = base + (ri.inner_contiguous ? r : reduce_inner_offset(ri, r));
  return Op::make(x[off], off);
}

// One warp per output.
template <typename Op>
__global__ void reduce_warp_kernel(const typename Op::Value* __restrict__ x, typename Op::Value* __restrict__ out,
                                   int64_t* __restrict__ arg, ReduceIndex ri) {
  int lane = threadIdx.x % 32;
  int64_t warp = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32;
  int64_t n_warps = static_cast<int64_t>(gridDim.x) * kWarps;
  for (int64_t o = warp; o < ri.n_out; o += n_warps) {
    int64_t base = ri.inner_contiguous ? o * ri.count : reduce_base_offset(ri, o);
    typename Op::Acc acc = Op::identity();
    for (int64_t r = lane; r < ri.count; r += 32) acc = Op::combine(acc, load<Op>(ri, x, base, r));
    acc = warp_reduce<Op>(acc);
    if (lane == 0) Op::store(acc, out, arg, o);
  }
}

// Block (blockIdx.y) of `splits` blocks working on output blockIdx.x: reduces
// its share of the output's inputs into partial[o * splits + s].
template <typename Op>
__global__ void reduce_split_kernel(const typename Op::Value* __restrict__ x, typename Op::Acc* __restrict__ partial,
                                    ReduceIndex ri) {
  __shared__ typename Op::Acc warp_acc[kWarps];
  int64_t o = blockIdx.x;
  int64_t s = blockIdx.y, splits = gridDim.y;
  int64_t base = ri.inner_contiguous ? o * ri.count : reduce_base_offset(ri, o);
  typename Op::Acc acc = Op::identity();
  for (int64_t r = s * kThreads + threadIdx.x; r < ri.count; r += splits * kThreads)
    acc = Op::combine(acc, load<Op>(ri, x, base, r));
  acc = warp_reduce<Op>(acc);
  if (threadIdx.x % 32 == 0) warp_acc[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    acc = threadIdx.x < kWarps ? warp_acc[threadIdx.x] : Op::identity();
    acc = warp_reduce<Op>(acc);
    if (threadIdx.x == 0) partial[o * splits + s] = acc;
  }
}

// Combines the partials of each output in split order (one warp per output).
template <typename Op>
__global__ void reduce_partials_kernel(const typename Op::Acc* __restrict__ partial, int64_t splits, int64_t n_out,
                                       typename Op::Value* __restrict__ out, int64_t* __restrict__ arg) {
  int lane = threadIdx.x % 32;
  int64_t o = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32;
  if (o >= n_out) return;
  typename Op::Acc acc = Op::identity();
  for (int64_t s = lane; s < splits; s += 32) acc = Op::combine(acc, partial[o * splits + s]);
  acc = warp_reduce<Op>(acc);
  if (lane == 0) Op::store(acc, out, arg, o);
}

template <typename T>
__global__ void scatter_add_kernel(const T* __restrict__ g, const int64_t* __restrict__ arg, T* __restrict__ dx,
                                   int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    atomicAdd(dx + arg[i], g[i]);
}

// NEURN_DETERMINISTIC=1: the max backward as a gather, one thread per input
// element (reduce_math.h), with no atomics.
template <typename T>
__global__ void max_backward_gather_kernel(const T* __restrict__ g, const int64_t* __restrict__ arg,
                                           T* __restrict__ dx, BroadcastIndex idx) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < idx.numel;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dx[i] = max_backward_at(idx, g, arg, i);
}

// a[i]: a flat input index -> its index along the reduced axis.
__global__ void axis_index_kernel(int64_t* __restrict__ a, int64_t stride, int64_t size, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    a[i] = axis_coordinate(a[i], stride, size);
}

void check_cuda_tensor(const Tensor& t, const char* what, const char* op) {
  NEURN_CHECK(t.device().is_cuda(), op, ": ", what, " is on ", t.device().str(), ", expected a cuda tensor");
}

template <typename Op>
void run_reduce(const Tensor& x, const Tensor& out, int64_t* arg, const char* op) {
  using T = typename Op::Value;
  check_cuda_tensor(x, "input", op);
  check_cuda_tensor(out, "output", op);
  NEURN_CHECK(x.dtype() == dtype_of<T>::value && out.dtype() == x.dtype(), op, ": dtypes ", dtype_name(x.dtype()),
              " and ", dtype_name(out.dtype()), " (expected both ", dtype_name(dtype_of<T>::value), ")");
  NEURN_CHECK(x.dim() == out.dim() && x.dim() <= ReduceIndex::kMaxDims, op, ": input ", shape_str(x.shape()),
              " and output ", shape_str(out.shape()), " must have the same rank, at most ", ReduceIndex::kMaxDims);
  for (int64_t d = 0; d < x.dim(); ++d)
    NEURN_CHECK(out.shape()[d] == x.shape()[d] || out.shape()[d] == 1, op, ": output ", shape_str(out.shape()),
                " is not a reduction of ", shape_str(x.shape()));
  if (out.numel() == 0) return;
  ReduceIndex ri = make_reduce_index(x.shape().data(), out.shape().data(), static_cast<int>(x.dim()));
  const T* px = static_cast<const T*>(x.raw_data());
  T* po = static_cast<T*>(out.raw_data());
  if (ri.count == 0) {  // sum over an empty axis
    fill(po, x.dtype(), out.numel(), 0.0);
    return;
  }
  int64_t sms = sm_count();
  if (ri.count >= 8192 && ri.n_out < sms * 4) {
    int64_t splits = std::min<int64_t>((ri.count + kThreads * 16 - 1) / (kThreads * 16),
                                       std::max<int64_t>(1, sms * 8 / ri.n_out));
    splits = std::max<int64_t>(1, std::min<int64_t>(splits, 65535));
    DeviceBuffer partial(static_cast<size_t>(ri.n_out * splits) * sizeof(typename Op::Acc));
    auto* pp = partial.as<typename Op::Acc>();
    reduce_split_kernel<Op><<<dim3(static_cast<unsigned>(ri.n_out), static_cast<unsigned>(splits)), kThreads, 0,
                              stream()>>>(px, pp, ri);
    NEURN_CUDA_CHECK_LAUNCH();
    unsigned blocks = static_cast<unsigned>((ri.n_out + kWarps - 1) / kWarps);
    reduce_partials_kernel<Op><<<blocks, kThreads, 0, stream()>>>(pp, splits, ri.n_out, po, arg);
    NEURN_CUDA_CHECK_LAUNCH();
    return;
  }
  int64_t blocks = std::min<int64_t>((ri.n_out + kWarps - 1) / kWarps, sms * 64);
  reduce_warp_kernel<Op><<<static_cast<unsigned>(blocks), kThreads, 0, stream()>>>(px, po, arg, ri);
  NEURN_CUDA_CHECK_LAUNCH();
}

void reduce_sum(const Tensor& x, const Tensor& out) {
  dispatch_real(x.dtype(), "sum", [&](auto z) { run_reduce<SumOp<decltype(z)>>(x, out, nullptr, "sum"); });
}

void reduce_max(const Tensor& x, const Tensor& out, const Tensor& arg) {
  check_cuda_tensor(arg, "index output", "max");
  NEURN_CHECK(arg.dtype() == DType::Int64 && arg.numel() == out.numel(), "max: index output must be int64 with ",
              out.numel(), " elements, got ", dtype_name(arg.dtype()), " ", shape_str(arg.shape()));
  dispatch_real(x.dtype(), "max", [&](auto z) {
    run_reduce<MaxOp<decltype(z)>>(x, out, static_cast<int64_t*>(arg.raw_data()), "max");
  });
}

void argmax(const Tensor& x, int64_t axis, const Tensor& arg) {
  check_cuda_tensor(x, "input", "argmax");
  check_cuda_tensor(arg, "index output", "argmax");
  NEURN_CHECK(axis >= 0 && axis < x.dim(), "argmax: axis ", axis, " out of range for ", shape_str(x.shape()));
  // The maxima themselves are a by-product of the max reduction's kernels.
  Tensor vals = Tensor::empty(arg.shape(), {x.dtype(), x.device(), false});
  reduce_max(x, vals, arg);
  int64_t n = arg.numel();
  if (n == 0) return;
  int64_t stride = 1;  // of `axis` in the contiguous input
  for (int64_t d = axis + 1; d < x.dim(); ++d) stride *= x.shape()[d];
  axis_index_kernel<<<grid_for(n), kThreads, 0, stream()>>>(static_cast<int64_t*>(arg.raw_data()), stride,
                                                            x.shape()[axis], n);
  NEURN_CUDA_CHECK_LAUNCH();
}

// dx = 0, then dx.flat[arg[o]] += g[o] (atomically: the default), or the
// gather of max_backward_at under NEURN_DETERMINISTIC=1.
void max_backward(const Tensor& g, const Tensor& arg, const Tensor& dx, const BroadcastIndex& idx) {
  const char* op = "max backward";
  check_cuda_tensor(g, "gradient", op);
  check_cuda_tensor(arg, "indices", op);
  check_cuda_tensor(dx, "input gradient", op);
  NEURN_CHECK(g.dtype() == dx.dtype(), op, ": gradient is ", dtype_name(g.dtype()), ", input gradient ",
              dtype_name(dx.dtype()));
  NEURN_CHECK(arg.dtype() == DType::Int64 && arg.numel() == g.numel(), op, ": ", arg.numel(), " ",
              dtype_name(arg.dtype()), " indices for a gradient of ", g.numel(), " elements (expected int64, equal)");
  NEURN_CHECK(idx.numel == dx.numel(), op, ": index over ", idx.numel, " inputs for an input gradient of ",
              dx.numel());
  if (dx.numel() == 0) return;
  dispatch_real(g.dtype(), op, [&](auto z) {
    using T = decltype(z);
    auto pg = static_cast<const T*>(g.raw_data());
    auto pa = static_cast<const int64_t*>(arg.raw_data());
    auto pd = static_cast<T*>(dx.raw_data());
    if (deterministic()) {
      max_backward_gather_kernel<T><<<grid_for(dx.numel()), kThreads, 0, stream()>>>(pg, pa, pd, idx);
      NEURN_CUDA_CHECK_LAUNCH();
      return;
    }
    fill(pd, dx.dtype(), dx.numel(), 0.0);
    const int64_t n = g.numel();
    if (n == 0) return;
    scatter_add_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(pg, pa, pd, n);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

NEURN_REGISTER_KERNEL(::neurn::sum_kernel, DeviceType::CUDA, reduce_sum);
NEURN_REGISTER_KERNEL(::neurn::max_kernel, DeviceType::CUDA, reduce_max);
NEURN_REGISTER_KERNEL(::neurn::argmax_kernel, DeviceType::CUDA, argmax);
NEURN_REGISTER_KERNEL(::neurn::max_backward_kernel, DeviceType::CUDA, max_backward);

}  // namespace neurn::cuda
