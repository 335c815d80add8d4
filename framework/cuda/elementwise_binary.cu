// CUDA grids over the binary element-wise functors of
// framework/ops/elementwise_functors.h, with NumPy broadcasting through
// BroadcastIndex, and where(): the same functor objects the CPU loops call.
#include "framework/cuda/cuda_check.h"
#include "framework/ops/elementwise_kernels.h"
#include "framework/cuda/index_math.h"

namespace neurn::cuda {

namespace {

#define NEURN_GRID_STRIDE(i, n)                                                         \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// Operand layouts of a binary op: both full, one a scalar, or a general broadcast.
enum class Layout { Same, ScalarB, ScalarA, Broadcast };

template <Layout L, typename T, typename F>
__global__ void binary_grid(F f, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                              BroadcastIndex idx) {
  NEURN_GRID_STRIDE(i, idx.numel) {
    if constexpr (L == Layout::Same) {
      out[i] = f(a[i], b[i]);
    } else if constexpr (L == Layout::ScalarB) {
      out[i] = f(a[i], b[0]);
    } else if constexpr (L == Layout::ScalarA) {
      out[i] = f(a[0], b[i]);
    } else {
      int64_t off[3];
      broadcast_offsets(idx, i, off);
      out[i] = f(a[off[0]], b[off[1]]);
    }
  }
}

template <typename T>
__global__ void where_grid(const T* __restrict__ c, const T* __restrict__ a, const T* __restrict__ b,
                             T* __restrict__ out, BroadcastIndex idx) {
  NEURN_GRID_STRIDE(i, idx.numel) {
    int64_t off[3];
    broadcast_offsets(idx, i, off);
    out[i] = c[off[0]] != T(0) ? a[off[1]] : b[off[2]];
  }
}

// dst += src (src broadcast through operand 0 of idx): the CPU loop's
// functor, so the sums are add's, bit for bit.
template <typename T>
__global__ void accumulate_grid(T* __restrict__ dst, const T* __restrict__ src, BroadcastIndex idx) {
  const fn::Binary<BinaryKind::Add> f;
  NEURN_GRID_STRIDE(i, idx.numel) {
    int64_t off[3];
    broadcast_offsets(idx, i, off);
    dst[i] = f(dst[i], src[off[0]]);
  }
}

// Number of elements an operand of `idx` spans: 1 when every stride is 0 (a
// scalar broadcast), numel when its strides are those of the output.
int64_t operand_extent(const BroadcastIndex& idx, int k) {
  int64_t extent = 1;
  for (int d = 0; d < idx.ndim; ++d)
    if (idx.strides[k][d] != 0) extent *= idx.shape[d];
  return extent;
}

bool is_full(const BroadcastIndex& idx, int k) {
  int64_t stride = 1;
  for (int d = idx.ndim - 1; d >= 0; --d) {
    if (idx.shape[d] != 1 && idx.strides[k][d] != stride) return false;
    stride *= idx.shape[d];
  }
  return true;
}

void binary(BinaryKind kind, const Tensor& at, const Tensor& bt, const Tensor& outt, const BroadcastIndex& idx) {
  // a and b may be views: idx holds their real strides (a strided table).
  const void *a = at.strided_raw_data(), *b = bt.strided_raw_data();
  void* out = outt.raw_data();
  const DType dtype = at.dtype();
  if (idx.numel == 0) return;
  bool full_a = is_full(idx, 0), full_b = is_full(idx, 1);
  bool scalar_a = operand_extent(idx, 0) == 1, scalar_b = operand_extent(idx, 1) == 1;
  unsigned grid = grid_for(idx.numel);
  dispatch_real(dtype, "binary op", [&](auto z) {
    using T = decltype(z);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    visit_binary(kind, [&](auto f) {
      if (full_a && full_b)
        binary_grid<Layout::Same, T><<<grid, 256, 0, stream()>>>(f, pa, pb, po, idx);
      else if (full_a && scalar_b)
        binary_grid<Layout::ScalarB, T><<<grid, 256, 0, stream()>>>(f, pa, pb, po, idx);
      else if (scalar_a && full_b)
        binary_grid<Layout::ScalarA, T><<<grid, 256, 0, stream()>>>(f, pa, pb, po, idx);
      else
        binary_grid<Layout::Broadcast, T><<<grid, 256, 0, stream()>>>(f, pa, pb, po, idx);
      NEURN_CUDA_CHECK_LAUNCH();
    });
  });
}

void where(const Tensor& ct, const Tensor& at, const Tensor& bt, const Tensor& outt, const BroadcastIndex& idx) {
  const void *cond = ct.strided_raw_data(), *a = at.strided_raw_data(), *b = bt.strided_raw_data();
  void* out = outt.raw_data();
  const DType dtype = at.dtype();
  if (idx.numel == 0) return;
  dispatch_real(dtype, "where", [&](auto z) {
    using T = decltype(z);
    where_grid<T><<<grid_for(idx.numel), 256, 0, stream()>>>(static_cast<const T*>(cond), static_cast<const T*>(a),
                                                               static_cast<const T*>(b), static_cast<T*>(out), idx);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void accumulate(const Tensor& dt, const Tensor& st, const BroadcastIndex& idx) {
  // st may be a view: idx holds its real strides (a strided table).
  const void* src = st.strided_raw_data();
  void* dst = dt.raw_data();
  if (idx.numel == 0) return;
  dispatch_real(dt.dtype(), "accumulate", [&](auto z) {
    using T = decltype(z);
    accumulate_grid<T><<<grid_for(idx.numel), 256, 0, stream()>>>(static_cast<T*>(dst), static_cast<const T*>(src), idx);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

NEURN_REGISTER_KERNEL(::neurn::binary_kernel, DeviceType::CUDA, binary);
NEURN_REGISTER_KERNEL(::neurn::accumulate_kernel, DeviceType::CUDA, accumulate);
NEURN_REGISTER_KERNEL(::neurn::where_kernel, DeviceType::CUDA, where);

}  // namespace neurn::cuda
