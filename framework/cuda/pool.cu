// Pooling and upsampling kernels. These are the backend's own rather than
// cuDNN's: cuDNN pooling has no ceil mode, no PyTorch divisor for windows
// that overhang the padded border, and no stated rule for ties in the max
// backward, and the contract of framework/cuda/cuda_pool.h (PyTorch's
// semantics, which the CPU implements) needs all three. Forward: one thread
// per output. Backward: one thread per output scattering into a zeroed dx
// with atomicAdd (windows may overlap).
#include <cmath>

#include "framework/cuda/cuda_check.h"
#include "framework/cuda/cuda_pool.h"
#include "framework/ops/pool_math.h"
#include "framework/ops/upsample_math.h"
#include "framework/tensor.h"

namespace neurn::cuda {

namespace {

#define NEURN_GRID_STRIDE(i, n)                                                         \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

struct PoolGeom {
  int64_t planes, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw;
  bool include_pad;
};

PoolGeom geom(const Tensor& x, const Tensor& y, const Pool2dOptions& o) {
  PoolGeom g;
  g.planes = x.size(0) * x.size(1), g.H = x.size(2), g.W = x.size(3), g.Ho = y.size(2), g.Wo = y.size(3);
  g.kh = o.kernel[0], g.kw = o.kernel[1];
  g.sh = o.stride[0] ? o.stride[0] : o.kernel[0], g.sw = o.stride[1] ? o.stride[1] : o.kernel[1];
  g.ph = o.padding[0], g.pw = o.padding[1];
  g.include_pad = o.count_include_pad;
  return g;
}

// Flat in-plane index of the first maximum of output o's window (NaN wins
// once, as on the CPU).
template <typename T>
__device__ int64_t window_argmax(const PoolGeom& g, const T* xp, int64_t oh, int64_t ow) {
  const PoolSpan sh = pool_span(oh, g.H, g.kh, g.sh, g.ph), sw = pool_span(ow, g.W, g.kw, g.sw, g.pw);
  const int64_t h0 = sh.begin, h1 = sh.end, w0 = sw.begin, w1 = sw.end;
  int64_t best_i = h0 * g.W + w0;
  T best = xp[best_i];
  for (int64_t h = h0; h < h1; ++h)
    for (int64_t w = w0; w < w1; ++w) {
      T v = xp[h * g.W + w];
      if (pool_beats(v, best)) {
        best = v;
        best_i = h * g.W + w;
      }
    }
  return best_i;
}

template <typename T>
__global__ void max_pool_forward_kernel(PoolGeom g, const T* __restrict__ x, T* __restrict__ y) {
  NEURN_GRID_STRIDE(i, g.planes * g.Ho * g.Wo) {
    int64_t ow = i % g.Wo, oh = (i / g.Wo) % g.Ho, plane = i / (g.Wo * g.Ho);
    const T* xp = x + plane * g.H * g.W;
    y[i] = xp[window_argmax(g, xp, oh, ow)];
  }
}

template <typename T>
__global__ void max_pool_backward_kernel(PoolGeom g, const T* __restrict__ x, const T* __restrict__ dy,
                                         T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, g.planes * g.Ho * g.Wo) {
    int64_t ow = i % g.Wo, oh = (i / g.Wo) % g.Ho, plane = i / (g.Wo * g.Ho);
    int64_t off = plane * g.H * g.W;
    atomicAdd(dx + off + window_argmax(g, x + off, oh, ow), dy[i]);
  }
}

// PyTorch's window and divisor: pool_span and pool_divisor of
// framework/ops/pool_math.h, the functions the CPU loops call.
struct AvgWindow {
  int64_t h0, h1, w0, w1, divisor;
};

__device__ AvgWindow avg_window(const PoolGeom& g, int64_t oh, int64_t ow) {
  const PoolSpan h = pool_span(oh, g.H, g.kh, g.sh, g.ph), w = pool_span(ow, g.W, g.kw, g.sw, g.pw);
  return {h.begin, h.end, w.begin, w.end, pool_divisor(h, w, g.include_pad)};
}

template <typename T>
__global__ void avg_pool_forward_kernel(PoolGeom g, const T* __restrict__ x, T* __restrict__ y) {
  NEURN_GRID_STRIDE(i, g.planes * g.Ho * g.Wo) {
    int64_t ow = i % g.Wo, oh = (i / g.Wo) % g.Ho, plane = i / (g.Wo * g.Ho);
    const T* xp = x + plane * g.H * g.W;
    AvgWindow a = avg_window(g, oh, ow);
    T acc = 0;
    for (int64_t h = a.h0; h < a.h1; ++h)
      for (int64_t w = a.w0; w < a.w1; ++w) acc += xp[h * g.W + w];
    y[i] = a.divisor > 0 ? acc / static_cast<T>(a.divisor) : T(0);
  }
}

template <typename T>
__global__ void avg_pool_backward_kernel(PoolGeom g, const T* __restrict__ dy, T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, g.planes * g.Ho * g.Wo) {
    int64_t ow = i % g.Wo, oh = (i / g.Wo) % g.Ho, plane = i / (g.Wo * g.Ho);
    AvgWindow a = avg_window(g, oh, ow);
    if (a.divisor <= 0) continue;
    T v = dy[i] / static_cast<T>(a.divisor);
    T* dxp = dx + plane * g.H * g.W;
    for (int64_t h = a.h0; h < a.h1; ++h)
      for (int64_t w = a.w0; w < a.w1; ++w) atomicAdd(dxp + h * g.W + w, v);
  }
}

// Adaptive windows: adaptive_span of framework/ops/pool_math.h.
__device__ __forceinline__ int64_t adaptive_start(int64_t i, int64_t in, int64_t out) {
  return adaptive_span(i, in, out).begin;
}
__device__ __forceinline__ int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return adaptive_span(i, in, out).end;
}

template <typename T>
__global__ void adaptive_forward_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                        const T* __restrict__ x, T* __restrict__ y) {
  NEURN_GRID_STRIDE(i, planes * Ho * Wo) {
    int64_t ow = i % Wo, oh = (i / Wo) % Ho, plane = i / (Wo * Ho);
    int64_t h0 = adaptive_start(oh, H, Ho), h1 = adaptive_end(oh, H, Ho);
    int64_t w0 = adaptive_start(ow, W, Wo), w1 = adaptive_end(ow, W, Wo);
    const T* xp = x + plane * H * W;
    T acc = 0;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) acc += xp[h * W + w];
    y[i] = acc / static_cast<T>((h1 - h0) * (w1 - w0));
  }
}

template <typename T>
__global__ void adaptive_backward_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                         const T* __restrict__ dy, T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, planes * Ho * Wo) {
    int64_t ow = i % Wo, oh = (i / Wo) % Ho, plane = i / (Wo * Ho);
    int64_t h0 = adaptive_start(oh, H, Ho), h1 = adaptive_end(oh, H, Ho);
    int64_t w0 = adaptive_start(ow, W, Wo), w1 = adaptive_end(ow, W, Wo);
    T v = dy[i] / static_cast<T>((h1 - h0) * (w1 - w0));
    T* dxp = dx + plane * H * W;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) atomicAdd(dxp + h * W + w, v);
  }
}

template <typename T>
__global__ void upsample_forward_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, bool bilinear, bool align,
                                        const T* __restrict__ x, T* __restrict__ y) {
  NEURN_GRID_STRIDE(i, planes * Ho * Wo) {
    int64_t ow = i % Wo, oh = (i / Wo) % Ho, plane = i / (Wo * Ho);
    UpsampleTap th = upsample_tap(oh, H, Ho, bilinear, align), tw = upsample_tap(ow, W, Wo, bilinear, align);
    const T* r0 = x + plane * H * W + th.i0 * W;
    const T* r1 = x + plane * H * W + th.i1 * W;
    T a0 = static_cast<T>(th.l0), a1 = static_cast<T>(th.l1), b0 = static_cast<T>(tw.l0), b1 = static_cast<T>(tw.l1);
    y[i] = a0 * (b0 * r0[tw.i0] + b1 * r0[tw.i1]) + a1 * (b0 * r1[tw.i0] + b1 * r1[tw.i1]);
  }
}

template <typename T>
__global__ void upsample_backward_kernel(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, bool bilinear, bool align,
                                         const T* __restrict__ dy, T* __restrict__ dx) {
  NEURN_GRID_STRIDE(i, planes * Ho * Wo) {
    int64_t ow = i % Wo, oh = (i / Wo) % Ho, plane = i / (Wo * Ho);
    UpsampleTap th = upsample_tap(oh, H, Ho, bilinear, align), tw = upsample_tap(ow, W, Wo, bilinear, align);
    T* r0 = dx + plane * H * W + th.i0 * W;
    T* r1 = dx + plane * H * W + th.i1 * W;
    T a0 = static_cast<T>(th.l0), a1 = static_cast<T>(th.l1), b0 = static_cast<T>(tw.l0), b1 = static_cast<T>(tw.l1);
    T v = dy[i];
    atomicAdd(r0 + tw.i0, a0 * b0 * v);
    atomicAdd(r0 + tw.i1, a0 * b1 * v);
    atomicAdd(r1 + tw.i0, a1 * b0 * v);
    atomicAdd(r1 + tw.i1, a1 * b1 * v);
  }
}

void check_pair(const Tensor& a, const Tensor& b, const char* op) {
  NEURN_CHECK(a.device().is_cuda() && b.device() == a.device(), op, ": tensors are on ", a.device().str(), " and ",
              b.device().str(), " (expected both on the same cuda device)");
  NEURN_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
}

void zero(const Tensor& t) { fill(t.raw_data(), t.dtype(), t.numel(), 0.0); }

}  // namespace

void max_pool2d_forward(const Tensor& x, const Tensor& y, const Pool2dOptions& opt) {
  check_pair(x, y, "max_pool2d");
  PoolGeom g = geom(x, y, opt);
  int64_t n = y.numel();
  if (n == 0) return;
  dispatch_real(x.dtype(), "max_pool2d", [&](auto z) {
    using T = decltype(z);
    max_pool_forward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(g, static_cast<const T*>(x.raw_data()),
                                                                  static_cast<T*>(y.raw_data()));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                         const Pool2dOptions& opt) {
  check_pair(x, dy, "max_pool2d backward");
  check_pair(x, dx, "max_pool2d backward");
  PoolGeom g = geom(x, y, opt);
  zero(dx);
  int64_t n = dy.numel();
  if (n == 0) return;
  dispatch_real(x.dtype(), "max_pool2d backward", [&](auto z) {
    using T = decltype(z);
    max_pool_backward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(g, static_cast<const T*>(x.raw_data()),
                                                                   static_cast<const T*>(dy.raw_data()),
                                                                   static_cast<T*>(dx.raw_data()));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_forward(const Tensor& x, const Tensor& y, const Pool2dOptions& opt) {
  check_pair(x, y, "avg_pool2d");
  PoolGeom g = geom(x, y, opt);
  int64_t n = y.numel();
  if (n == 0) return;
  dispatch_real(x.dtype(), "avg_pool2d", [&](auto z) {
    using T = decltype(z);
    avg_pool_forward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(g, static_cast<const T*>(x.raw_data()),
                                                                  static_cast<T*>(y.raw_data()));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void avg_pool2d_backward(const Tensor& dy, const Tensor& dx, const Pool2dOptions& opt) {
  check_pair(dx, dy, "avg_pool2d backward");
  PoolGeom g = geom(dx, dy, opt);
  zero(dx);
  int64_t n = dy.numel();
  if (n == 0) return;
  dispatch_real(dx.dtype(), "avg_pool2d backward", [&](auto z) {
    using T = decltype(z);
    avg_pool_backward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(g, static_cast<const T*>(dy.raw_data()),
                                                                   static_cast<T*>(dx.raw_data()));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void adaptive_avg_pool2d_forward(const Tensor& x, const Tensor& y) {
  check_pair(x, y, "adaptive_avg_pool2d");
  int64_t n = y.numel();
  if (n == 0) return;
  dispatch_real(x.dtype(), "adaptive_avg_pool2d", [&](auto z) {
    using T = decltype(z);
    adaptive_forward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(
        x.size(0) * x.size(1), x.size(2), x.size(3), y.size(2), y.size(3), static_cast<const T*>(x.raw_data()),
        static_cast<T*>(y.raw_data()));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void adaptive_avg_pool2d_backward(const Tensor& dy, const Tensor& dx) {
  check_pair(dx, dy, "adaptive_avg_pool2d backward");
  zero(dx);
  int64_t n = dy.numel();
  if (n == 0) return;
  dispatch_real(dx.dtype(), "adaptive_avg_pool2d backward", [&](auto z) {
    using T = decltype(z);
    adaptive_backward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(
        dx.size(0) * dx.size(1), dx.size(2), dx.size(3), dy.size(2), dy.size(3), static_cast<const T*>(dy.raw_data()),
        static_cast<T*>(dx.raw_data()));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void upsample_forward(const Tensor& x, const Tensor& y, UpsampleMode mode, bool align_corners) {
  check_pair(x, y, "upsample");
  int64_t n = y.numel();
  if (n == 0) return;
  bool bilinear = mode == UpsampleMode::Bilinear;
  dispatch_real(x.dtype(), "upsample", [&](auto z) {
    using T = decltype(z);
    upsample_forward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(
        x.size(0) * x.size(1), x.size(2), x.size(3), y.size(2), y.size(3), bilinear, align_corners,
        static_cast<const T*>(x.raw_data()), static_cast<T*>(y.raw_data()));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void upsample_backward(const Tensor& dy, const Tensor& dx, UpsampleMode mode, bool align_corners) {
  check_pair(dx, dy, "upsample backward");
  zero(dx);
  int64_t n = dy.numel();
  if (n == 0) return;
  bool bilinear = mode == UpsampleMode::Bilinear;
  dispatch_real(dx.dtype(), "upsample backward", [&](auto z) {
    using T = decltype(z);
    upsample_backward_kernel<T><<<grid_for(n), 256, 0, stream()>>>(
        dx.size(0) * dx.size(1), dx.size(2), dx.size(3), dy.size(2), dy.size(3), bilinear, align_corners,
        static_cast<const T*>(dy.raw_data()), static_cast<T*>(dx.raw_data()));
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace neurn::cuda
