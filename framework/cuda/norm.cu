// Batch norm over cuDNN (spatial mode: one mean and variance per channel over
// N and every spatial position) and layer norm with the backend's own
// kernels: a warp normalises one row, each lane reducing its share of the row
// to moments in one pass and the lanes merging them (norm_math.h, the CPU's
// formulas); the weight and bias gradients are column sums over the rows,
// split into row chunks that add atomically (or in chunk order under
// NEURN_DETERMINISTIC=1).
#include <algorithm>
#include <cmath>
#include <memory>

#include "framework/cuda/cuda_backend.h"
#include "framework/cuda/cuda_check.h"
#include "framework/ops/norm_kernels.h"
#include "framework/ops/norm_math.h"
#include "framework/tensor.h"

namespace neurn::cuda {

namespace {

// ---- batch norm ----------------------------------------------------------------------

// x (N, C, ...) as cuDNN's (N, C, S, 1), and the derived (1, C, 1, 1)
// descriptor of the per-channel parameters and statistics.
struct BnDescs {
  cudnnTensorDescriptor_t x = nullptr, param = nullptr;
  explicit BnDescs(const Tensor& t) {
    NEURN_CHECK(t.dim() >= 2, "batch_norm (CUDA): input must be (N, C, ...), got ", shape_str(t.shape()));
    int64_t s = 1;
    for (int64_t i = 2; i < t.dim(); ++i) s *= t.shape()[i];
    NEURN_CHECK(t.size(0) <= INT32_MAX && t.size(1) <= INT32_MAX && s <= INT32_MAX, "batch_norm (CUDA): input ",
                shape_str(t.shape()), " exceeds cuDNN's 32-bit sizes");
    cudnnDataType_t dt = t.dtype() == DType::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    NEURN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    NEURN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&param));
    NEURN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, dt, static_cast<int>(t.size(0)),
                                                 static_cast<int>(t.size(1)), static_cast<int>(s), 1));
    NEURN_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(param, x, CUDNN_BATCHNORM_SPATIAL));
  }
  ~BnDescs() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (param) cudnnDestroyTensorDescriptor(param);
  }
  BnDescs(const BnDescs&) = delete;
  BnDescs& operator=(const BnDescs&) = delete;
};

// A parameter's data, or a buffer of C copies of `value` when it is undefined
// (weight 1, bias 0).
struct ParamOr {
  std::unique_ptr<DeviceBuffer> buf;
  const void* ptr;
  ParamOr(const Tensor& p, const Tensor& x, double value) : ptr(p.defined() ? p.raw_data() : nullptr) {
    if (p.defined()) {
      NEURN_CHECK(p.device() == x.device() && p.dtype() == x.dtype(), "batch_norm (CUDA): a parameter is ",
                  dtype_name(p.dtype()), " on ", p.device().str(), ", the input ", dtype_name(x.dtype()), " on ",
                  x.device().str());
      return;
    }
    int64_t c = x.size(1);
    buf = std::make_unique<DeviceBuffer>(static_cast<size_t>(c) * dtype_size(x.dtype()));
    fill(buf->get(), x.dtype(), c, value);
    ptr = buf->get();
  }
};

// alpha/beta scalars in the type cuDNN expects (double for double data).
struct Scalars {
  float f1 = 1.0f, f0 = 0.0f;
  double d1 = 1.0, d0 = 0.0;
  bool dbl;
  explicit Scalars(DType t) : dbl(t == DType::Float64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return dbl ? static_cast<const void*>(&d0) : &f0; }
};

void check_bn_input(const Tensor& x, const char* op) {
  NEURN_CHECK(x.device().is_cuda(), op, " (CUDA): input is on ", x.device().str());
  NEURN_CHECK(x.dtype() == DType::Float32 || x.dtype() == DType::Float64, op, " (CUDA): dtype ", dtype_name(x.dtype()),
              " (expected float32 or float64)");
}

// ---- layer norm --------------------------------------------------------------------------

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

template <typename T>
__device__ T warp_sum(T v) {
  for (int d = 16; d > 0; d /= 2) v += __shfl_xor_sync(0xffffffffu, v, d);
  return v;
}

// The moments of every lane merged across the warp (butterfly), then lane 0's
// result given to all, so every lane normalises with the same numbers.
template <typename T>
__device__ Moments<T> warp_moments(Moments<T> m) {
  for (int d = 16; d > 0; d /= 2) {
    Moments<T> o;
    o.n = __shfl_xor_sync(0xffffffffu, m.n, d);
    o.mean = __shfl_xor_sync(0xffffffffu, m.mean, d);
    o.m2 = __shfl_xor_sync(0xffffffffu, m.m2, d);
    m = moments_merge(m, o);
  }
  m.n = __shfl_sync(0xffffffffu, m.n, 0);
  m.mean = __shfl_sync(0xffffffffu, m.mean, 0);
  m.m2 = __shfl_sync(0xffffffffu, m.m2, 0);
  return m;
}

template <typename T>
__global__ void layer_norm_forward_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                          int64_t rows, int64_t d, T eps, T* __restrict__ y, T* __restrict__ mean,
                                          T* __restrict__ invstd) {
  const int lane = threadIdx.x % 32;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * kWarps) {
    const T* xr = x + r * d;
    Moments<T> m;
    for (int64_t j = lane; j < d; j += 32) m = moments_add(m, xr[j]);
    m = warp_moments(m);
    const T mu = m.mean, is = norm_invstd(m.m2 / static_cast<T>(d), eps);  // biased variance
    T* yr = y + r * d;
    for (int64_t j = lane; j < d; j += 32) yr[j] = norm_apply<T>(xr[j], mu, is, w ? w[j] : T(1), b ? b[j] : T(0));
    if (lane == 0) {
      mean[r] = mu;
      invstd[r] = is;
    }
  }
}

// dx = invstd (gw - mean(gw) - xhat mean(gw xhat)), gw = g * weight
// (norm_math.h's norm_backward_at with k = invstd).
template <typename T>
__global__ void layer_norm_backward_dx_kernel(const T* __restrict__ x, const T* __restrict__ g,
                                              const T* __restrict__ w, const T* __restrict__ mean,
                                              const T* __restrict__ invstd, int64_t rows, int64_t d,
                                              T* __restrict__ dx) {
  const int lane = threadIdx.x % 32;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * kWarps) {
    const T *xr = x + r * d, *gr = g + r * d;
    T mu = mean[r], is = invstd[r];
    T s1 = 0, s2 = 0;
    for (int64_t j = lane; j < d; j += 32) {
      T gw = w ? gr[j] * w[j] : gr[j];
      s1 += gw;
      s2 += gw * (xr[j] - mu) * is;
    }
    const T dd = static_cast<T>(d);
    const NormBackward<T> bk{is, warp_sum(s1) / dd, warp_sum(s2) / dd * is, mu};
    T* dr = dx + r * d;
    for (int64_t j = lane; j < d; j += 32) dr[j] = norm_backward_at(bk, xr[j], w ? gr[j] * w[j] : gr[j]);
  }
}

// Column sums over a chunk of rows: dw[j] += sum g xhat, db[j] += sum g;
// or, in the deterministic mode (kPartials), each chunk's sums written to row
// blockIdx.y of dw and db, (chunks, d) buffers summed in chunk order after.
template <typename T, bool kPartials>
__global__ void layer_norm_backward_params_kernel(const T* __restrict__ x, const T* __restrict__ g,
                                                  const T* __restrict__ mean, const T* __restrict__ invstd,
                                                  int64_t rows, int64_t d, int64_t rows_per_chunk,
                                                  T* __restrict__ dw, T* __restrict__ db) {
  int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= d) return;
  int64_t r0 = blockIdx.y * rows_per_chunk, r1 = min(r0 + rows_per_chunk, rows);
  T sw = 0, sb = 0;
  for (int64_t r = r0; r < r1; ++r) {
    T gv = g[r * d + j];
    sw += gv * (x[r * d + j] - mean[r]) * invstd[r];
    sb += gv;
  }
  if constexpr (kPartials) {
    if (dw) dw[blockIdx.y * d + j] = sw;
    if (db) db[blockIdx.y * d + j] = sb;
  } else {
    if (dw) atomicAdd(dw + j, sw);
    if (db) atomicAdd(db + j, sb);
  }
}

// out[j] = sum over c in order of part[c * d + j] (the deterministic mode).
template <typename T>
__global__ void sum_chunks_kernel(const T* __restrict__ part, int64_t chunks, int64_t d, T* __restrict__ out) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < d;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T s = 0;
    for (int64_t c = 0; c < chunks; ++c) s += part[c * d + j];
    out[j] = s;
  }
}

unsigned warp_grid(int64_t rows) {
  int64_t blocks = (rows + kWarps - 1) / kWarps;
  int64_t cap = static_cast<int64_t>(sm_count()) * 64;
  return static_cast<unsigned>(blocks < cap ? (blocks > 0 ? blocks : 1) : cap);
}

const void* data_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

// mean = running_mean, invstd = 1 / sqrt(running_var + eps): the statistics
// an eval-mode batch norm normalised with, for its backward.
template <typename T>
__global__ void bn_eval_stats_kernel(const T* __restrict__ rm, const T* __restrict__ rv, double eps,
                                     T* __restrict__ mean, T* __restrict__ invstd, int64_t c) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < c;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    mean[i] = rm[i];
    invstd[i] = static_cast<T>(norm_invstd(static_cast<double>(rv[i]), eps));
  }
}

}  // namespace

void batch_norm_forward_training(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                                 const Tensor& running_var, double momentum, double eps, const Tensor& y,
                                 const Tensor& save_mean, const Tensor& save_invstd) {
  check_bn_input(x, "batch_norm");
  BnDescs d(x);
  ParamOr w(weight, x, 1.0), b(bias, x, 0.0);
  Scalars s(x.dtype());
  NEURN_CHECK(running_mean.defined() == running_var.defined(),
              "batch_norm (CUDA): running_mean and running_var must be given together");
  NEURN_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
      cudnn(), CUDNN_BATCHNORM_SPATIAL, s.one(), s.zero(), d.x, x.raw_data(), d.x, y.raw_data(), d.param, w.ptr, b.ptr,
      momentum, running_mean.defined() ? running_mean.raw_data() : nullptr,
      running_var.defined() ? running_var.raw_data() : nullptr, eps, save_mean.raw_data(), save_invstd.raw_data()));
}

void batch_norm_forward_inference(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                                  const Tensor& running_var, double eps, const Tensor& y, const Tensor& save_mean,
                                  const Tensor& save_invstd) {
  check_bn_input(x, "batch_norm");
  BnDescs d(x);
  ParamOr w(weight, x, 1.0), b(bias, x, 0.0);
  Scalars s(x.dtype());
  NEURN_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(cudnn(), CUDNN_BATCHNORM_SPATIAL, s.one(), s.zero(), d.x,
                                                            x.raw_data(), d.x, y.raw_data(), d.param, w.ptr, b.ptr,
                                                            running_mean.raw_data(), running_var.raw_data(), eps));
  const int64_t c = x.size(1);
  if (c == 0) return;
  dispatch_real(x.dtype(), "batch_norm", [&](auto z) {
    using T = decltype(z);
    bn_eval_stats_kernel<T><<<grid_for(c), kThreads, 0, stream()>>>(
        static_cast<const T*>(running_mean.raw_data()), static_cast<const T*>(running_var.raw_data()), eps,
        static_cast<T*>(save_mean.raw_data()), static_cast<T*>(save_invstd.raw_data()), c);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void batch_norm_backward_training(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& save_mean,
                                  const Tensor& save_invstd, double eps, const Tensor& dx, const Tensor& dweight,
                                  const Tensor& dbias) {
  check_bn_input(x, "batch_norm backward");
  NEURN_CHECK(dy.device() == x.device(), "batch_norm backward (CUDA): gradient on ",
              dy.device().str(), ", input on ", x.device().str());
  BnDescs d(x);
  ParamOr w(weight, x, 1.0);
  Scalars s(x.dtype());
  // cuDNN computes all three; an output nobody asked for gets a scratch buffer.
  const int64_t c = x.size(1);
  const size_t esize = dtype_size(x.dtype());
  DeviceBuffer sx(dx.defined() ? 0 : static_cast<size_t>(x.numel()) * esize);
  DeviceBuffer sw(dweight.defined() ? 0 : static_cast<size_t>(c) * esize);
  DeviceBuffer sb(dbias.defined() ? 0 : static_cast<size_t>(c) * esize);
  void* pdx = dx.defined() ? dx.raw_data() : sx.get();
  void* pdw = dweight.defined() ? dweight.raw_data() : sw.get();
  void* pdb = dbias.defined() ? dbias.raw_data() : sb.get();
  // cuDNN's documentation asks for the forward's epsilon here, saved statistics
  // or not (it was a hard-coded 1e-5, wrong for every eps other than that).
  NEURN_CUDNN_CHECK(cudnnBatchNormalizationBackward(cudnn(), CUDNN_BATCHNORM_SPATIAL, s.one(), s.zero(), s.one(),
                                                    s.zero(), d.x, x.raw_data(), d.x, dy.raw_data(), d.x, pdx,
                                                    d.param, w.ptr, pdw, pdb, eps, save_mean.raw_data(),
                                                    save_invstd.raw_data()));
}

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t inner, double eps,
                        const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd) {
  NEURN_CHECK(x.device().is_cuda(), "layer_norm (CUDA): input is on ", x.device().str());
  int64_t rows = inner ? x.numel() / inner : 0;
  if (rows == 0) return;
  dispatch_real(x.dtype(), "layer_norm", [&](auto z) {
    using T = decltype(z);
    layer_norm_forward_kernel<T><<<warp_grid(rows), kThreads, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<const T*>(data_or_null(weight)),
        static_cast<const T*>(data_or_null(bias)), rows, inner, static_cast<T>(eps), static_cast<T*>(y.raw_data()),
        static_cast<T*>(save_mean.raw_data()), static_cast<T*>(save_invstd.raw_data()));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void layer_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& weight, const Tensor& save_mean,
                         const Tensor& save_invstd, int64_t inner, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias) {
  NEURN_CHECK(x.device().is_cuda() && dy.device() == x.device(), "layer_norm backward (CUDA): input on ",
              x.device().str(), ", gradient on ", dy.device().str());
  int64_t rows = inner ? x.numel() / inner : 0;
  if (dweight.defined()) fill(dweight.raw_data(), dweight.dtype(), dweight.numel(), 0.0);
  if (dbias.defined()) fill(dbias.raw_data(), dbias.dtype(), dbias.numel(), 0.0);
  if (rows == 0) {
    if (dx.defined()) fill(dx.raw_data(), dx.dtype(), dx.numel(), 0.0);
    return;
  }
  dispatch_real(x.dtype(), "layer_norm backward", [&](auto z) {
    using T = decltype(z);
    auto px = static_cast<const T*>(x.raw_data());
    auto pg = static_cast<const T*>(dy.raw_data());
    auto pm = static_cast<const T*>(save_mean.raw_data());
    auto pi = static_cast<const T*>(save_invstd.raw_data());
    if (dx.defined()) {
      layer_norm_backward_dx_kernel<T><<<warp_grid(rows), kThreads, 0, stream()>>>(
          px, pg, static_cast<const T*>(data_or_null(weight)), pm, pi, rows, inner, static_cast<T*>(dx.raw_data()));
      NEURN_CUDA_CHECK_LAUNCH();
    }
    if (dweight.defined() || dbias.defined()) {
      // Enough chunks of rows to fill the device; each adds its column sums.
      int64_t col_blocks = (inner + kThreads - 1) / kThreads;
      int64_t chunks = std::max<int64_t>(1, std::min<int64_t>((rows + 31) / 32, sm_count() * 8 / col_blocks + 1));
      chunks = std::min<int64_t>(chunks, 65535);
      int64_t per_chunk = (rows + chunks - 1) / chunks;
      chunks = (rows + per_chunk - 1) / per_chunk;
      const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(chunks));
      T* dw = static_cast<T*>(dweight.defined() ? dweight.raw_data() : nullptr);
      T* db = static_cast<T*>(dbias.defined() ? dbias.raw_data() : nullptr);
      if (!deterministic()) {
        layer_norm_backward_params_kernel<T, false>
            <<<grid, kThreads, 0, stream()>>>(px, pg, pm, pi, rows, inner, per_chunk, dw, db);
        NEURN_CUDA_CHECK_LAUNCH();
      } else {
        // The same chunk sums, added in chunk order: bit-for-bit reproducible.
        const size_t part_bytes = static_cast<size_t>(chunks * inner) * sizeof(T);
        DeviceBuffer pw(dw ? part_bytes : 0), pb(db ? part_bytes : 0);
        layer_norm_backward_params_kernel<T, true>
            <<<grid, kThreads, 0, stream()>>>(px, pg, pm, pi, rows, inner, per_chunk, pw.as<T>(), pb.as<T>());
        NEURN_CUDA_CHECK_LAUNCH();
        if (dw) sum_chunks_kernel<T><<<grid_for(inner), kThreads, 0, stream()>>>(pw.as<T>(), chunks, inner, dw);
        NEURN_CUDA_CHECK_LAUNCH();
        if (db) sum_chunks_kernel<T><<<grid_for(inner), kThreads, 0, stream()>>>(pb.as<T>(), chunks, inner, db);
        NEURN_CUDA_CHECK_LAUNCH();
      }
    }
  });
}

NEURN_REGISTER_KERNEL(::neurn::batch_norm_train_kernel, DeviceType::CUDA, batch_norm_forward_training);
NEURN_REGISTER_KERNEL(::neurn::batch_norm_eval_kernel, DeviceType::CUDA, batch_norm_forward_inference);
NEURN_REGISTER_KERNEL(::neurn::batch_norm_backward_kernel, DeviceType::CUDA, batch_norm_backward_training);
NEURN_REGISTER_KERNEL(::neurn::layer_norm_kernel, DeviceType::CUDA, layer_norm_forward);
NEURN_REGISTER_KERNEL(::neurn::layer_norm_backward_kernel, DeviceType::CUDA, layer_norm_backward);

}  // namespace neurn::cuda
