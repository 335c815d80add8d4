// Pooling and upsampling kernels, registered in the tables of
// framework/ops/pool_kernels.h. These are the backend's own rather than
// cuDNN's: cuDNN pooling has no ceil mode, no PyTorch divisor for windows
// that overhang the padded border, and no stated rule for ties in the max
// backward, and the contract (PyTorch's semantics, which the CPU implements)
// needs all three. The window and tap arithmetic is the NEURN_HD code of
// framework/ops/pool_math.h and upsample_math.h, which the CPU runs too.
//
// Forward: one thread per output. Backward, two ways:
// - by default one thread per output scattering into a zeroed dx with
//   atomicAdd (windows may overlap): fast, but the order of the additions
//   into one input changes from run to run, and so may its last bits;
// - with NEURN_DETERMINISTIC=1 one thread per input gathering from the
//   outputs whose windows contain it (max_pool_grad_at, avg_pool_grad_at,
//   adaptive_grad_at, upsample_grad_at), in a fixed order and without
//   atomics: the same bits on every run, and the same bits as the CPU.
#include <cmath>

#include "framework/cuda/cuda_check.h"
#include "framework/cuda/cuda_device.h"
#include "framework/ops/pool_kernels.h"
#include "framework/ops/upsample_math.h"
#include "framework/tensor.h"

namespace neurn::cuda {

namespace {

#define NEURN_GRID_STRIDE(i, n)                                                         \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// ---- max pooling ------------------------------------------------------------------

// Writes y and, when idx is not null, the flat in-plane index of the first
// maximum (NaN wins once, as on the CPU: pool_beats).
template <typename T>
__global__ void max_pool_forward_kernel(PoolGeometry g, const T* __restrict__ x, T* __restrict__ y,
                                        int64_t* __restrict__ idx) {
  NEURN_GRID_STRIDE(i, g.planes * g.Ho * g.Wo) {
    const int64_t ow = i % g.Wo, oh = (i / g.Wo) % g.Ho, plane = i / (g.Wo * g.Ho);
    const T* xp = x + plane * g.H * g.W;
    const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph), sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
    int64_t best_i = sh.begin * g.W + sw.begin;
    T best = xp[best_i];
    for (int64_t h = sh.begin; h < sh.end; ++h)
      for (int64_t w = sw.begin; w < sw.end; ++w) {
        const T v = xp[h * g.W + w];
        if (pool_beats(v, best)) {
          best = v;
          best_i = h * g.W + w;
        }
      }
    y[i] = best;
    if (idx) idx[i] = best_i;
  }
}

template <typename T>
__global__ void max_pool_scatter_kernel(PoolGeometry g, const T* __restrict__ dy, const int64_t* __restrict__ idx,
                                        T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, g.planes * g.Ho * g.Wo) {
    const int64_t plane = i / (g.Wo * g.Ho);
    atomicAdd(dx + plane * g.H * g.W + idx[i], dy[i]);
  }
}

template <typename T>
__global__ void max_pool_gather_kernel(PoolGeometry g, const T* __restrict__ dy, const int64_t* __restrict__ idx,
                                       T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, g.planes * g.H * g.W) {
    const int64_t w = i % g.W, h = (i / g.W) % g.H, plane = i / (g.W * g.H);
    const int64_t off = plane * g.Ho * g.Wo;
    dx[i] = max_pool_grad_at(g, dy + off, idx + off, h, w);
  }
}

// ---- average pooling ------------------------------------------------------------------

template <typename T>
__global__ void avg_pool_forward_kernel(PoolGeometry g, bool include_pad, const T* __restrict__ x,
                                        T* __restrict__ y) {
  NEURN_GRID_STRIDE(i, g.planes * g.Ho * g.Wo) {
    const int64_t ow = i % g.Wo, oh = (i / g.Wo) % g.Ho, plane = i / (g.Wo * g.Ho);
    const T* xp = x + plane * g.H * g.W;
    const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph), sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
    const int64_t d = pool_divisor(sh, sw, include_pad);
    T acc = 0;
    for (int64_t h = sh.begin; h < sh.end; ++h)
      for (int64_t w = sw.begin; w < sw.end; ++w) acc += xp[h * g.W + w];
    y[i] = d > 0 ? acc / static_cast<T>(d) : T(0);
  }
}

template <typename T>
__global__ void avg_pool_scatter_kernel(PoolGeometry g, bool include_pad, const T* __restrict__ dy,
                                        T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, g.planes * g.Ho * g.Wo) {
    const int64_t ow = i % g.Wo, oh = (i / g.Wo) % g.Ho, plane = i / (g.Wo * g.Ho);
    const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph), sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
    const int64_t d = pool_divisor(sh, sw, include_pad);
    if (d <= 0) continue;
    const T v = dy[i] / static_cast<T>(d);
    T* dxp = dx + plane * g.H * g.W;
    for (int64_t h = sh.begin; h < sh.end; ++h)
      for (int64_t w = sw.begin; w < sw.end; ++w) atomicAdd(dxp + h * g.W + w, v);
  }
}

template <typename T>
__global__ void avg_pool_gather_kernel(PoolGeometry g, bool include_pad, const T* __restrict__ dy,
                                       T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, g.planes * g.H * g.W) {
    const int64_t w = i % g.W, h = (i / g.W) % g.H, plane = i / (g.W * g.H);
    dx[i] = avg_pool_grad_at(g, include_pad, dy + plane * g.Ho * g.Wo, h, w);
  }
}

// ---- adaptive average pooling ------------------------------------------------------------

template <typename T>
__global__ void adaptive_forward_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                        const T* __restrict__ x, T* __restrict__ y) {
  NEURN_GRID_STRIDE(i, planes * Ho * Wo) {
    const int64_t ow = i % Wo, oh = (i / Wo) % Ho, plane = i / (Wo * Ho);
    const PoolSpan sh = adaptive_span(oh, H, Ho), sw = adaptive_span(ow, W, Wo);
    const T* xp = x + plane * H * W;
    T acc = 0;
    for (int64_t h = sh.begin; h < sh.end; ++h)
      for (int64_t w = sw.begin; w < sw.end; ++w) acc += xp[h * W + w];
    y[i] = acc / static_cast<T>((sh.end - sh.begin) * (sw.end - sw.begin));
  }
}

template <typename T>
__global__ void adaptive_scatter_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                        const T* __restrict__ dy, T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, planes * Ho * Wo) {
    const int64_t ow = i % Wo, oh = (i / Wo) % Ho, plane = i / (Wo * Ho);
    const PoolSpan sh = adaptive_span(oh, H, Ho), sw = adaptive_span(ow, W, Wo);
    const T v = dy[i] / static_cast<T>((sh.end - sh.begin) * (sw.end - sw.begin));
    T* dxp = dx + plane * H * W;
    for (int64_t h = sh.begin; h < sh.end; ++h)
      for (int64_t w = sw.begin; w < sw.end; ++w) atomicAdd(dxp + h * W + w, v);
  }
}

template <typename T>
__global__ void adaptive_gather_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                       const T* __restrict__ dy, T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, planes * H * W) {
    const int64_t w = i % W, h = (i / W) % H, plane = i / (W * H);
    dx[i] = adaptive_grad_at(H, W, Ho, Wo, dy + plane * Ho * Wo, h, w);
  }
}

// ---- upsampling -------------------------------------------------------------------------

template <typename T>
__global__ void upsample_forward_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, bool bilinear,
                                        bool align, const T* __restrict__ x, T* __restrict__ y) {
  NEURN_GRID_STRIDE(i, planes * Ho * Wo) {
    const int64_t ow = i % Wo, oh = (i / Wo) % Ho, plane = i / (Wo * Ho);
    const UpsampleTap th = upsample_tap(oh, H, Ho, bilinear, align), tw = upsample_tap(ow, W, Wo, bilinear, align);
    const T* r0 = x + plane * H * W + th.i0 * W;
    const T* r1 = x + plane * H * W + th.i1 * W;
    const T a0 = static_cast<T>(th.l0), a1 = static_cast<T>(th.l1);
    const T b0 = static_cast<T>(tw.l0), b1 = static_cast<T>(tw.l1);
    y[i] = a0 * (b0 * r0[tw.i0] + b1 * r0[tw.i1]) + a1 * (b0 * r1[tw.i0] + b1 * r1[tw.i1]);
  }
}

template <typename T>
__global__ void upsample_scatter_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, bool bilinear,
                                        bool align, const T* __restrict__ dy, T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, planes * Ho * Wo) {
    const int64_t ow = i % Wo, oh = (i / Wo) % Ho, plane = i / (Wo * Ho);
    const UpsampleTap th = upsample_tap(oh, H, Ho, bilinear, align), tw = upsample_tap(ow, W, Wo, bilinear, align);
    T* r0 = dx + plane * H * W + th.i0 * W;
    T* r1 = dx + plane * H * W + th.i1 * W;
    const T a0 = static_cast<T>(th.l0), a1 = static_cast<T>(th.l1);
    const T b0 = static_cast<T>(tw.l0), b1 = static_cast<T>(tw.l1);
    const T v = dy[i];
    atomicAdd(r0 + tw.i0, a0 * b0 * v);
    atomicAdd(r0 + tw.i1, a0 * b1 * v);
    atomicAdd(r1 + tw.i0, a1 * b0 * v);
    atomicAdd(r1 + tw.i1, a1 * b1 * v);
  }
}

template <typename T>
__global__ void upsample_gather_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, bool bilinear,
                                       bool align, const T* __restrict__ dy, T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, planes * H * W) {
    const int64_t w = i % W, h = (i / W) % H, plane = i / (W * H);
    const UpsampleRange rh = upsample_inverse_span(h, H, Ho, bilinear, align);
    const UpsampleRange rw = upsample_inverse_span(w, W, Wo, bilinear, align);
    dx[i] = upsample_grad_at(H, W, Ho, Wo, bilinear, align, dy + plane * Ho * Wo, h, w, rh, rw);
  }
}

void zero(const Tensor& t) { fill(t.raw_data(), t.dtype(), t.numel(), 0.0); }

template <typename T>
const T* in(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}
template <typename T>
T* out(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// ---- the registered kernels ---------------------------------------------------------------

void max_pool2d_cuda(const PoolGeometry& g, const Tensor& x, const Tensor& y, const Tensor& idx) {
  const int64_t n = y.numel();
  if (n == 0) return;
  dispatch_real(x.dtype(), "max_pool2d", [&](auto z) {
    using T = decltype(z);
    max_pool_forward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(g, in<T>(x), out<T>(y),
                                                                  idx.defined() ? out<int64_t>(idx) : nullptr);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void max_pool2d_backward_cuda(const PoolGeometry& g, const Tensor& dy, const Tensor& idx, const Tensor& dx) {
  dispatch_real(dx.dtype(), "max_pool2d backward", [&](auto z) {
    using T = decltype(z);
    if (deterministic()) {
      max_pool_gather_kernel<T><<<grid_for(dx.numel()), 256, 0, stream()>>>(g, in<T>(dy), in<int64_t>(idx),
                                                                             out<T>(dx));
    } else {
      zero(dx);
      if (dy.numel() == 0) return;
      max_pool_scatter_kernel<T><<<grid_for(dy.numel()), 256, 0, stream()>>>(g, in<T>(dy), in<int64_t>(idx),
                                                                              out<T>(dx));
    }
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_cuda(const PoolGeometry& g, bool include_pad, const Tensor& x, const Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return;
  dispatch_real(x.dtype(), "avg_pool2d", [&](auto z) {
    using T = decltype(z);
    avg_pool_forward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(g, include_pad, in<T>(x), out<T>(y));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_backward_cuda(const PoolGeometry& g, bool include_pad, const Tensor& dy, const Tensor& dx) {
  dispatch_real(dx.dtype(), "avg_pool2d backward", [&](auto z) {
    using T = decltype(z);
    if (deterministic()) {
      avg_pool_gather_kernel<T><<<grid_for(dx.numel()), 256, 0, stream()>>>(g, include_pad, in<T>(dy), out<T>(dx));
    } else {
      zero(dx);
      if (dy.numel() == 0) return;
      avg_pool_scatter_kernel<T><<<grid_for(dy.numel()), 256, 0, stream()>>>(g, include_pad, in<T>(dy), out<T>(dx));
    }
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void adaptive_avg_pool2d_cuda(const Tensor& x, const Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return;
  dispatch_real(x.dtype(), "adaptive_avg_pool2d", [&](auto z) {
    using T = decltype(z);
    adaptive_forward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(x.size(0) * x.size(1), x.size(2), x.size(3),
                                                                  y.size(2), y.size(3), in<T>(x), out<T>(y));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void adaptive_avg_pool2d_backward_cuda(const Tensor& dy, const Tensor& dx) {
  const int64_t planes = dx.size(0) * dx.size(1), H = dx.size(2), W = dx.size(3), Ho = dy.size(2), Wo = dy.size(3);
  dispatch_real(dx.dtype(), "adaptive_avg_pool2d backward", [&](auto z) {
    using T = decltype(z);
    if (deterministic()) {
      adaptive_gather_kernel<T><<<grid_for(dx.numel()), 256, 0, stream()>>>(planes, H, W, Ho, Wo, in<T>(dy),
                                                                              out<T>(dx));
    } else {
      zero(dx);
      if (dy.numel() == 0) return;
      adaptive_scatter_kernel<T><<<grid_for(dy.numel()), 256, 0, stream()>>>(planes, H, W, Ho, Wo, in<T>(dy),
                                                                               out<T>(dx));
    }
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void upsample_cuda(UpsampleMode mode, bool align_corners, const Tensor& x, const Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return;
  const bool bilinear = mode == UpsampleMode::Bilinear;
  dispatch_real(x.dtype(), "upsample", [&](auto z) {
    using T = decltype(z);
    upsample_forward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(x.size(0) * x.size(1), x.size(2), x.size(3),
                                                                  y.size(2), y.size(3), bilinear, align_corners,
                                                                  in<T>(x), out<T>(y));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void upsample_backward_cuda(UpsampleMode mode, bool align_corners, const Tensor& dy, const Tensor& dx) {
  const bool bilinear = mode == UpsampleMode::Bilinear;
  const int64_t planes = dx.size(0) * dx.size(1), H = dx.size(2), W = dx.size(3), Ho = dy.size(2), Wo = dy.size(3);
  dispatch_real(dx.dtype(), "upsample backward", [&](auto z) {
    using T = decltype(z);
    if (deterministic()) {
      upsample_gather_kernel<T><<<grid_for(dx.numel()), 256, 0, stream()>>>(planes, H, W, Ho, Wo, bilinear,
                                                                              align_corners, in<T>(dy), out<T>(dx));
    } else {
      zero(dx);
      if (dy.numel() == 0) return;
      upsample_scatter_kernel<T><<<grid_for(dy.numel()), 256, 0, stream()>>>(planes, H, W, Ho, Wo, bilinear,
                                                                               align_corners, in<T>(dy), out<T>(dx));
    }
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

NEURN_REGISTER_KERNEL(::neurn::max_pool2d_kernel, DeviceType::CUDA, max_pool2d_cuda);
NEURN_REGISTER_KERNEL(::neurn::max_pool2d_backward_kernel, DeviceType::CUDA, max_pool2d_backward_cuda);
NEURN_REGISTER_KERNEL(::neurn::avg_pool2d_kernel, DeviceType::CUDA, avg_pool2d_cuda);
NEURN_REGISTER_KERNEL(::neurn::avg_pool2d_backward_kernel, DeviceType::CUDA, avg_pool2d_backward_cuda);
NEURN_REGISTER_KERNEL(::neurn::adaptive_avg_pool2d_kernel, DeviceType::CUDA, adaptive_avg_pool2d_cuda);
NEURN_REGISTER_KERNEL(::neurn::adaptive_avg_pool2d_backward_kernel, DeviceType::CUDA,
                      adaptive_avg_pool2d_backward_cuda);
NEURN_REGISTER_KERNEL(::neurn::upsample_kernel, DeviceType::CUDA, upsample_cuda);
NEURN_REGISTER_KERNEL(::neurn::upsample_backward_kernel, DeviceType::CUDA, upsample_backward_cuda);

}  // namespace neurn::cuda
