// CUDA kernels of the tensor's own tables and the shape ops: the strided copy
// behind copy_, contiguous(), concat and zero padding
// (framework/ops/strided_copy.h), the dtype conversion and fill of
// framework/tensor_kernels.h, and reflect padding (shape_kernels.h).
#include "framework/cuda/cuda_backend.h"
#include "framework/cuda/cuda_check.h"
#include "framework/cuda/index_math.h"
#include "framework/ops/shape_kernels.h"
#include "framework/ops/strided_copy.h"
#include "framework/tensor_kernels.h"

namespace neurn::cuda {

namespace {

#define NEURN_GRID_STRIDE(i, n)                                                         \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// T: an unsigned integer of the element's size (values move bit for bit).
template <typename T>
__global__ void strided_copy_grid(const T* __restrict__ src, T* __restrict__ dst, StridedCopyPlan plan,
                                    int64_t n) {
  NEURN_GRID_STRIDE(o, n) {
    int64_t rest = o, s = plan.src_offset, d = plan.dst_offset;
    for (int k = plan.ndim - 1; k >= 0; --k) {
      int64_t c = rest % plan.shape[k];
      rest /= plan.shape[k];
      s += c * plan.src_strides[k];
      d += c * plan.dst_strides[k];
    }
    dst[d] = src[s];
  }
}

template <typename T>
__global__ void pad_reflect_grid(const T* __restrict__ x, T* __restrict__ y, int64_t outer, int64_t h, int64_t w,
                                   int64_t top, int64_t left, int64_t oh, int64_t ow) {
  NEURN_GRID_STRIDE(i, outer * oh * ow) {
    int64_t c = i % ow, r = (i / ow) % oh, o = i / (ow * oh);
    y[i] = x[(o * h + reflect_index(r - top, h)) * w + reflect_index(c - left, w)];
  }
}

// One thread per input element, gathering every output position that reads
// it: with pad < size, each input coordinate is read by at most two output
// coordinates per axis (itself and its mirror image), so there are no races.
template <typename T>
__global__ void pad_reflect_backward_grid(const T* __restrict__ g, T* __restrict__ dx, int64_t outer, int64_t h,
                                            int64_t w, int64_t top, int64_t bottom, int64_t left, int64_t right,
                                            int64_t oh, int64_t ow) {
  NEURN_GRID_STRIDE(i, outer * h * w) {
    int64_t c = i % w, r = (i / w) % h, o = i / (w * h);
    int64_t rows[3], cols[3];
    int nrows = reflect_sources(r, h, top, bottom, rows);
    int ncols = reflect_sources(c, w, left, right, cols);
    T acc = T(0);
    for (int a = 0; a < nrows; ++a)
      for (int b = 0; b < ncols; ++b) acc += g[(o * oh + rows[a]) * ow + cols[b]];
    dx[i] = acc;
  }
}

// dst[plan.dst_offset + sum_d i_d dst_strides[d]] = src[plan.src_offset + sum_d i_d src_strides[d]]
// for every multi-index i of plan.shape; elem_size is 1, 2, 4 or 8 bytes
// (values move bit for bit).
void strided_copy(const void* src, void* dst, size_t elem_size, const StridedCopyPlan& plan) {
  int64_t n = plan.numel();
  if (n == 0) return;
  auto launch = [&](auto z) {
    using T = decltype(z);
    strided_copy_grid<T><<<grid_for(n), 256, 0, stream()>>>(static_cast<const T*>(src), static_cast<T*>(dst), plan,
                                                              n);
    NEURN_CUDA_CHECK_LAUNCH();
  };
  switch (elem_size) {
    case 1: launch(uint8_t{}); return;
    case 2: launch(uint16_t{}); return;
    case 4: launch(uint32_t{}); return;
    case 8: launch(uint64_t{}); return;
  }
  NEURN_FAIL("strided_copy: element size ", elem_size, " bytes (expected 1, 2, 4 or 8)");
}

void pad_reflect(const void* x, void* y, DType dtype, int64_t outer, int64_t h, int64_t w, int64_t top,
                 int64_t bottom, int64_t left, int64_t right) {
  NEURN_CHECK(top < h && bottom < h && left < w && right < w, "pad (reflect): pads (", left, ", ", right, ", ", top,
              ", ", bottom, ") must be smaller than the padded sizes (", h, ", ", w, ")");
  int64_t oh = h + top + bottom, ow = w + left + right, n = outer * oh * ow;
  if (n == 0) return;
  dispatch_real(dtype, "pad (reflect)", [&](auto z) {
    using T = decltype(z);
    pad_reflect_grid<T><<<grid_for(n), 256, 0, stream()>>>(static_cast<const T*>(x), static_cast<T*>(y), outer, h,
                                                             w, top, left, oh, ow);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void pad_reflect_backward(const void* g, void* dx, DType dtype, int64_t outer, int64_t h, int64_t w, int64_t top,
                          int64_t bottom, int64_t left, int64_t right) {
  NEURN_CHECK(top < h && bottom < h && left < w && right < w, "pad (reflect) backward: pads (", left, ", ", right,
              ", ", top, ", ", bottom, ") must be smaller than the padded sizes (", h, ", ", w, ")");
  int64_t oh = h + top + bottom, ow = w + left + right, n = outer * h * w;
  if (n == 0) return;
  dispatch_real(dtype, "pad (reflect) backward", [&](auto z) {
    using T = decltype(z);
    pad_reflect_backward_grid<T><<<grid_for(n), 256, 0, stream()>>>(static_cast<const T*>(g), static_cast<T*>(dx),
                                                                      outer, h, w, top, bottom, left, right, oh, ow);
    NEURN_CUDA_CHECK_LAUNCH();
  });
}

void strided_copy_cuda(const Tensor& src, const Tensor& dst) {
  strided_copy(src.strided_raw_data(), dst.strided_raw_data(), dtype_size(src.dtype()), copy_plan(src, dst));
}

void pad_reflect_cuda(const Tensor& x, const Tensor& y, PadGeom g, bool backward) {
  if (backward)
    pad_reflect_backward(x.raw_data(), y.raw_data(), x.dtype(), g.outer, g.h, g.w, g.top, g.bottom, g.left, g.right);
  else
    pad_reflect(x.raw_data(), y.raw_data(), x.dtype(), g.outer, g.h, g.w, g.top, g.bottom, g.left, g.right);
}

void convert_cuda(const Tensor& src, const Tensor& dst) {
  convert(src.raw_data(), src.dtype(), dst.raw_data(), dst.dtype(), src.numel(), src.device().index);
}

void fill_cuda(const Tensor& t, double value) { fill(t.raw_data(), t.dtype(), t.numel(), value, t.device().index); }

}  // namespace

NEURN_REGISTER_KERNEL(::neurn::strided_copy_kernel, DeviceType::CUDA, strided_copy_cuda);
NEURN_REGISTER_KERNEL(::neurn::pad_reflect_kernel, DeviceType::CUDA, pad_reflect_cuda);
NEURN_REGISTER_KERNEL(::neurn::convert_kernel, DeviceType::CUDA, convert_cuda);
NEURN_REGISTER_KERNEL(::neurn::fill_kernel, DeviceType::CUDA, fill_cuda);

}  // namespace neurn::cuda
