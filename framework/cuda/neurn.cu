// NeuRN on CUDA (contract in framework/ops/neurn.h), registered in the tables
// of framework/ops/neurn_kernels.h. float32 data, double accumulation, cost
// independent of k.
//
// Forward, one block per plane group: for each plane, its mean (the shift),
// then running window sums of y and y^2 along the rows (one thread per row)
// into scratch, then running sums of those down the columns (one thread per
// column), which gives each pixel's patch mean and sigma. With max_scope image
// or channel the block also takes the maximum over its group and divides: one
// fused kernel. With max_scope batch the blocks cover one plane each and two
// small kernels find the batch maximum and divide.
//
// Backward: a kernel sums dL/dout * out per plane (for dL/dc), then one block
// per plane forms A = dL/dsigma / (2 sigma n) and B = A * mean, and runs the
// transposed box sums (rows, then columns, folding mirrored positions back for
// reflect) to get dL/dx = 2 (y * box(A) - box(B)).
#include "framework/cuda/cuda_check.h"
#include "framework/ops/neurn_kernels.h"
#include "framework/cuda/neurn_sums.h"

namespace neurn::cuda {
namespace {

constexpr int kThreads = 256;

struct Geo {
  int64_t H, W, HW, planes;
  int r, k, padding;  // 0 valid, 1 zero, 2 reflect
  int64_t planes_per_group;
  double eps;
};

// Block-wide sum of one double per thread; every thread gets the result.
__device__ double block_sum(double v, double* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // `shared` may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int w = 0; w < (blockDim.x + 31) / 32; ++w) t += shared[w];
    shared[0] = t;
  }
  __syncthreads();
  return shared[0];
}

// Block-wide maximum with its index (first index on ties); all threads get it.
__device__ void block_argmax(float& v, int64_t& idx, float* sv, int64_t* si) {
  __syncthreads();
  sv[threadIdx.x] = v;
  si[threadIdx.x] = idx;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      float ov = sv[threadIdx.x + s];
      int64_t oi = si[threadIdx.x + s];
      if (ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < si[threadIdx.x])) {
        sv[threadIdx.x] = ov;
        si[threadIdx.x] = oi;
      }
    }
    __syncthreads();
  }
  v = sv[0];
  idx = si[0];
}

// Sigma (into sig) and the shifted patch mean of one plane; h: 2 * HW doubles
// of scratch. Updates this thread's running maximum (value, flat index).
__device__ void plane_stats(const Geo& g, const float* x, float* sig, float* mean, double* h, double* shift_out,
                            int64_t base, float& best, int64_t& best_at, double* red) {
  const int64_t H = g.H, W = g.W, HW = g.HW, r = g.r;
  double part = 0;
  for (int64_t p = threadIdx.x; p < HW; p += blockDim.x) part += static_cast<double>(x[p]);
  const double s = block_sum(part, red) / static_cast<double>(HW);
  if (threadIdx.x == 0) *shift_out = s;
  if (g.k == 1) {  // a single pixel has no spread
    for (int64_t p = threadIdx.x; p < HW; p += blockDim.x) {
      sig[p] = 0.f;
      if (mean) mean[p] = 0.f;
      if (0.f > best || (0.f == best && base + p < best_at)) {
        best = 0.f;
        best_at = base + p;
      }
    }
    return;
  }
  double* h1 = h;
  double* h2 = h + HW;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x)
    neurn_row_sums(x + i * W, W, r, g.padding, s, h1 + i * W, h2 + i * W);
  __syncthreads();
  for (int64_t j = threadIdx.x; j < W; j += blockDim.x)
    neurn_column_stats(h1, h2, H, W, j, r, g.padding, s, sig, mean, base, best, best_at);
  __syncthreads();  // h is reused by the next plane
}

// One block per group of `planes_per_block` planes. fuse: the block holds a
// whole scope group, so it also finds c and divides.
__global__ void neurn_forward_kernel(Geo g, int64_t planes_per_block, bool fuse, const float* x, float* out,
                                     float* mean, double* shift, double* group_max, int64_t* group_arg,
                                     double* block_max, int64_t* block_arg, double* scratch) {
  __shared__ double red[32];
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
  const int64_t blk = blockIdx.x;
  double* h = scratch + blk * 2 * g.HW;
  float best = -1.f;
  int64_t best_at = INT64_MAX;
  for (int64_t q = 0; q < planes_per_block; ++q) {
    const int64_t plane = blk * planes_per_block + q, off = plane * g.HW;
    plane_stats(g, x + off, out + off, mean ? mean + off : nullptr, h, shift + plane, off, best, best_at, red);
  }
  block_argmax(best, best_at, sv, si);
  if (!fuse) {
    if (threadIdx.x == 0) {
      block_max[blk] = best;
      block_arg[blk] = best_at;
    }
    return;
  }
  if (threadIdx.x == 0) {
    group_max[blk] = best;
    group_arg[blk] = best_at;
  }
  const double D = static_cast<double>(best) + g.eps;
  const int64_t n = planes_per_block * g.HW, base = blk * n;
  for (int64_t p = threadIdx.x; p < n; p += blockDim.x)
    out[base + p] = D > 0 ? static_cast<float>(static_cast<double>(out[base + p]) / D) : 0.f;
}

// max_scope batch: c over the plane maxima (first index on ties).
__global__ void neurn_batch_max_kernel(int64_t planes, const double* block_max, const int64_t* block_arg,
                                       double* group_max, int64_t* group_arg) {
  __shared__ float sv[kThreads];
  __shared__ int64_t si[kThreads];
  float best = -1.f;
  int64_t best_at = INT64_MAX;
  for (int64_t p = threadIdx.x; p < planes; p += blockDim.x) {
    float v = static_cast<float>(block_max[p]);
    if (v > best || (v == best && block_arg[p] < best_at)) {
      best = v;
      best_at = block_arg[p];
    }
  }
  block_argmax(best, best_at, sv, si);
  if (threadIdx.x == 0) {
    group_max[0] = best;
    group_arg[0] = best_at;
  }
}

__global__ void neurn_divide_kernel(int64_t n, const double* group_max, double eps, float* out) {
  const double D = group_max[0] + eps;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; p < n;
       p += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[p] = D > 0 ? static_cast<float>(static_cast<double>(out[p]) / D) : 0.f;
}

// sum over the plane of dL/dout * out, one block per plane.
__global__ void neurn_plane_dot_kernel(Geo g, const float* out, const float* gout, double* plane_dot) {
  __shared__ double red[32];
  const int64_t off = blockIdx.x * g.HW;
  double part = 0;
  for (int64_t p = threadIdx.x; p < g.HW; p += blockDim.x)
    part += static_cast<double>(gout[off + p]) * static_cast<double>(out[off + p]);
  double t = block_sum(part, red);
  if (threadIdx.x == 0) plane_dot[blockIdx.x] = t;
}

// One block per plane.
__global__ void neurn_backward_kernel(Geo g, const float* x, const float* out, const float* mean, const double* shift,
                                      const double* group_max, const int64_t* group_arg, const float* gout,
                                      const double* plane_dot, float* dx, double* scratch) {
  const int64_t plane = blockIdx.x, H = g.H, W = g.W, HW = g.HW, r = g.r, off = plane * HW;
  const int64_t grp = plane / g.planes_per_group;
  const double D = group_max[grp] + g.eps;
  if (g.k == 1 || !(D > 0)) {
    for (int64_t p = threadIdx.x; p < HW; p += blockDim.x) dx[off + p] = 0.f;
    return;
  }
  // dL/dc = -sum over the scope of dL/dout * out / D.
  double dot = 0;
  for (int64_t q = 0; q < g.planes_per_group; ++q) dot += plane_dot[grp * g.planes_per_group + q];
  const double dc = -dot / D, s = shift[plane];
  const int64_t arg = group_arg[grp];
  x += off;
  out += off;
  mean += off;
  gout += off;
  dx += off;
  double* ha = scratch + plane * 2 * HW;
  double* hb = ha + HW;
  for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
    const int64_t arg_in_row = (arg >= off + i * W && arg < off + (i + 1) * W) ? arg - off - i * W : -1;
    neurn_row_transposed(out, mean, gout, H, W, r, g.padding, D, dc, i, arg_in_row, ha + i * W, hb + i * W);
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < W; j += blockDim.x)
    neurn_column_transposed(ha, hb, x, H, W, r, g.padding, s, j, dx);
}

Geo make_geo(const NeuRNGeometry& g) {
  Geo o;
  o.H = g.h;
  o.W = g.w;
  o.HW = g.h * g.w;
  o.planes = g.n * g.c;
  o.r = static_cast<int>(g.r);
  o.k = static_cast<int>(2 * g.r + 1);
  o.padding = g.padding;
  o.planes_per_group = g.planes_per_group;
  o.eps = g.eps;
  return o;
}

size_t neurn_scratch_doubles(const NeuRNGeometry& g) {
  const size_t planes = static_cast<size_t>(g.n * g.c);
  // per plane: two (H, W) arrays of sums, plus its maximum, argmax and dot
  return planes * (2 * static_cast<size_t>(g.h * g.w) + 3);
}

void neurn_forward(const NeuRNGeometry& g, const float* x, float* out, float* mean, double* shift, double* group_max,
                   int64_t* group_arg, double* scratch) {
  NEURN_CHECK(g.planes_per_group >= 1 && g.groups * g.planes_per_group == g.n * g.c,
              "neurn_forward (CUDA): inconsistent geometry: ", g.groups, " groups of ", g.planes_per_group,
              " planes for N * C = ", g.n * g.c);
  const Geo geo = make_geo(g);
  const int64_t planes = geo.planes;
  if (planes == 0 || geo.HW == 0) return;
  double* sums = scratch;
  double* block_max = scratch + planes * 2 * geo.HW;
  int64_t* block_arg = reinterpret_cast<int64_t*>(block_max + planes);
  // Image and channel scope: one block per group does everything. Batch:
  // one block per plane, then the maximum over the planes, then the division.
  const bool fuse = g.groups > 1 || planes == 1;
  const int64_t per_block = fuse ? g.planes_per_group : 1;
  const int64_t blocks = fuse ? g.groups : planes;
  neurn_forward_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream()>>>(
      geo, per_block, fuse, x, out, mean, shift, group_max, group_arg, block_max, block_arg, sums);
  NEURN_CUDA_CHECK_LAUNCH();
  if (!fuse) {
    neurn_batch_max_kernel<<<1, kThreads, 0, stream()>>>(planes, block_max, block_arg, group_max, group_arg);
    NEURN_CUDA_CHECK_LAUNCH();
    neurn_divide_kernel<<<grid_for(planes * geo.HW), kThreads, 0, stream()>>>(planes * geo.HW, group_max, g.eps, out);
    NEURN_CUDA_CHECK_LAUNCH();
  }
}

void neurn_backward(const NeuRNGeometry& g, const float* x, const float* out, const float* mean, const double* shift,
                    const double* group_max, const int64_t* group_arg, const float* grad_out, float* dx,
                    double* scratch) {
  const Geo geo = make_geo(g);
  const int64_t planes = geo.planes;
  if (planes == 0 || geo.HW == 0) return;
  double* sums = scratch;
  double* plane_dot = scratch + planes * 2 * geo.HW;
  neurn_plane_dot_kernel<<<static_cast<unsigned>(planes), kThreads, 0, stream()>>>(geo, out, grad_out, plane_dot);
  NEURN_CUDA_CHECK_LAUNCH();
  neurn_backward_kernel<<<static_cast<unsigned>(planes), kThreads, 0, stream()>>>(
      geo, x, out, mean, shift, group_max, group_arg, grad_out, plane_dot, dx, sums);
  NEURN_CUDA_CHECK_LAUNCH();
}

void check_float32(const Tensor& x) {
  NEURN_CHECK(x.dtype() == DType::Float32, "neurn: dtype ", dtype_name(x.dtype()),
              " is not supported on CUDA (expected float32; float64 runs on the CPU)");
}

// Scratch for the window sums, on x's device, freed (to the caching
// allocator) when the call returns.
Tensor scratch_for(const NeuRNGeometry& g, const Tensor& x) {
  return Tensor::empty({static_cast<int64_t>(neurn_scratch_doubles(g))}, {DType::Float64, x.device(), false});
}

void neurn_cuda(const NeuRNGeometry& g, const Tensor& x, const Tensor& out, const Tensor& mean, const Tensor& shift,
                const Tensor& gmax, const Tensor& garg) {
  check_float32(x);
  Tensor scratch = scratch_for(g, x);
  neurn_forward(g, static_cast<const float*>(x.raw_data()), static_cast<float*>(out.raw_data()),
                mean.defined() ? static_cast<float*>(mean.raw_data()) : nullptr, static_cast<double*>(shift.raw_data()),
                static_cast<double*>(gmax.raw_data()), static_cast<int64_t*>(garg.raw_data()),
                static_cast<double*>(scratch.raw_data()));
}

void neurn_backward_cuda(const NeuRNGeometry& g, const Tensor& x, const Tensor& out, const Tensor& mean,
                         const Tensor& shift, const Tensor& gmax, const Tensor& garg, const Tensor& gout,
                         const Tensor& dx) {
  check_float32(x);
  Tensor scratch = scratch_for(g, x);
  neurn_backward(g, static_cast<const float*>(x.raw_data()), static_cast<const float*>(out.raw_data()),
                 static_cast<const float*>(mean.raw_data()), static_cast<const double*>(shift.raw_data()),
                 static_cast<const double*>(gmax.raw_data()), static_cast<const int64_t*>(garg.raw_data()),
                 static_cast<const float*>(gout.raw_data()), static_cast<float*>(dx.raw_data()),
                 static_cast<double*>(scratch.raw_data()));
}

}  // namespace

NEURN_REGISTER_KERNEL(::neurn::neurn_kernel, DeviceType::CUDA, neurn_cuda);
NEURN_REGISTER_KERNEL(::neurn::neurn_backward_kernel, DeviceType::CUDA, neurn_backward_cuda);

}  // namespace neurn::cuda
