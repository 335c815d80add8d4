// permute, transpose, slice (views: they share storage), concat, split,
// chunk and pad. concat and zero padding copy through the one strided copy
// (strided_copy_kernel) into windows of their output; split and chunk are
// slices. reshape and friends live in reshape.cpp.
#include <algorithm>
#include <cstring>

#include "framework/autograd.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/shape_ops.h"
#include "framework/ops/shape_kernels.h"
#include "framework/ops/strided_copy.h"

namespace neurn {

namespace cpu {

namespace {
template <typename E>
void copy_rows(const E* src, E* dst, const StridedCopyPlan& p, int64_t row_begin, int64_t row_end) {
  int nd = p.ndim;
  int64_t inner = p.shape[nd - 1];
  int64_t ss = p.src_strides[nd - 1], ds = p.dst_strides[nd - 1];
  // The outer multi-index of row_begin (mixed radix over the outer axes).
  int64_t counter[StridedCopyPlan::kMaxDims] = {};
  int64_t so = p.src_offset, dof = p.dst_offset;
  int64_t rest = row_begin;
  for (int d = nd - 2; d >= 0; --d) {
    counter[d] = rest % p.shape[d];
    rest /= p.shape[d];
    so += counter[d] * p.src_strides[d];
    dof += counter[d] * p.dst_strides[d];
  }
  for (int64_t r = row_begin; r < row_end; ++r) {
    if (ss == 1 && ds == 1) {
      std::memcpy(dst + dof, src + so, static_cast<size_t>(inner) * sizeof(E));
    } else {
      for (int64_t i = 0; i < inner; ++i) dst[dof + i * ds] = src[so + i * ss];
    }
    for (int d = nd - 2; d >= 0; --d) {  // advance the outer counter
      ++counter[d];
      so += p.src_strides[d];
      dof += p.dst_strides[d];
      if (counter[d] < p.shape[d]) break;
      so -= p.src_strides[d] * p.shape[d];
      dof -= p.dst_strides[d] * p.shape[d];
      counter[d] = 0;
    }
  }
}

// Rows (runs along the innermost axis) are disjoint in dst: split them over threads.
template <typename E>
void copy_elems(const E* src, E* dst, const StridedCopyPlan& p) {
  int64_t inner = std::max<int64_t>(p.shape[p.ndim - 1], 1);
  int64_t rows = p.numel() / inner;
  parallel_for(rows, inner, [&](int64_t b, int64_t e) { copy_rows(src, dst, p, b, e); });
}

struct Bytes2 { uint16_t v; };
struct Bytes1 { uint8_t v; };
}  // namespace

void strided_copy(const void* src, void* dst, size_t elem_size, const StridedCopyPlan& plan) {
  if (plan.numel() == 0) return;
  StridedCopyPlan p = plan;
  if (p.ndim == 0) {  // a scalar
    p.ndim = 1;
    p.shape[0] = 1;
    p.src_strides[0] = p.dst_strides[0] = 1;
  }
  switch (elem_size) {
    case 8: copy_elems(static_cast<const uint64_t*>(src), static_cast<uint64_t*>(dst), p); break;
    case 4: copy_elems(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst), p); break;
    case 2: copy_elems(static_cast<const Bytes2*>(src), static_cast<Bytes2*>(dst), p); break;
    case 1: copy_elems(static_cast<const Bytes1*>(src), static_cast<Bytes1*>(dst), p); break;
    default: NEURN_FAIL("strided_copy: unsupported element size ", elem_size);
  }
}

}  // namespace cpu

StridedCopyPlan copy_plan(const Tensor& src, const Tensor& dst) {
  // Drops unit axes and merges neighbours that both tensors walk as one, so
  // that e.g. a slice of the outer axis becomes one memcpy per block.
  StridedCopyPlan p;
  const Shape& s = dst.shape();
  const std::vector<int64_t>&ss = src.strides(), &ds = dst.strides();
  for (size_t d = 0; d < s.size(); ++d) {
    if (s[d] == 1) continue;
    const int k = p.ndim - 1;
    if (k >= 0 && p.src_strides[k] == ss[d] * s[d] && p.dst_strides[k] == ds[d] * s[d]) {
      p.shape[k] *= s[d];
      p.src_strides[k] = ss[d];
      p.dst_strides[k] = ds[d];
      continue;
    }
    NEURN_CHECK(p.ndim < StridedCopyPlan::kMaxDims, "copy: a copy of shape ", shape_str(s), " from strides ",
                shape_str(ss), " to strides ", shape_str(ds), " has more than ", StridedCopyPlan::kMaxDims,
                " axes that cannot be merged");
    p.shape[p.ndim] = s[d];
    p.src_strides[p.ndim] = ss[d];
    p.dst_strides[p.ndim] = ds[d];
    ++p.ndim;
  }
  return p;
}

NEURN_DEFINE_STRIDED_KERNEL(strided_copy_kernel);
NEURN_DEFINE_KERNEL(pad_reflect_kernel);

namespace {

void strided_copy_cpu(const Tensor& src, const Tensor& dst) {
  cpu::strided_copy(src.strided_raw_data(), dst.strided_raw_data(), dtype_size(src.dtype()), copy_plan(src, dst));
}

inline int64_t reflect_index(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

template <typename T>
void pad_reflect_cpu(const T* x, T* y, const PadGeom& g) {
  int64_t oh = g.h + g.top + g.bottom, ow = g.w + g.left + g.right;
  for (int64_t o = 0; o < g.outer; ++o) {
    const T* xs = x + o * g.h * g.w;
    T* ys = y + o * oh * ow;
    for (int64_t r = 0; r < oh; ++r) {
      const T* xr = xs + reflect_index(r - g.top, g.h) * g.w;
      T* yr = ys + r * ow;
      for (int64_t c = 0; c < ow; ++c) yr[c] = xr[reflect_index(c - g.left, g.w)];
    }
  }
}

template <typename T>
void pad_reflect_backward_cpu(const T* gy, T* dx, const PadGeom& g) {
  int64_t oh = g.h + g.top + g.bottom, ow = g.w + g.left + g.right;
  std::fill(dx, dx + g.outer * g.h * g.w, T(0));
  for (int64_t o = 0; o < g.outer; ++o) {
    T* ds = dx + o * g.h * g.w;
    const T* gs = gy + o * oh * ow;
    for (int64_t r = 0; r < oh; ++r) {
      T* dr = ds + reflect_index(r - g.top, g.h) * g.w;
      const T* gr = gs + r * ow;
      for (int64_t c = 0; c < ow; ++c) dr[reflect_index(c - g.left, g.w)] += gr[c];
    }
  }
}

void pad_reflect_run_cpu(const Tensor& x, const Tensor& out, PadGeom geo, bool backward) {
  dispatch_float(x.dtype(), "pad", [&](auto z) {
    using T = decltype(z);
    if (backward)
      pad_reflect_backward_cpu<T>(x.data<T>(), out.data<T>(), geo);
    else
      pad_reflect_cpu<T>(x.data<T>(), out.data<T>(), geo);
  });
}

}  // namespace

NEURN_REGISTER_KERNEL(strided_copy_kernel, DeviceType::CPU, strided_copy_cpu);
NEURN_REGISTER_KERNEL(pad_reflect_kernel, DeviceType::CPU, pad_reflect_run_cpu);

namespace {

// Axis normalisation whose message also names the shape.
int64_t axis_of(int64_t axis, const Tensor& x, const char* op) {
  int64_t n = x.dim();
  NEURN_CHECK(axis >= -n && axis < n, op, ": axis ", axis, " is out of range for a tensor of shape ",
              shape_str(x.shape()), " (expected ", -n, " <= axis < ", n, ")");
  return axis < 0 ? axis + n : axis;
}

// The view of t at positions start, start + step, ... (count of them) along axis.
Tensor axis_window(const Tensor& t, int64_t axis, int64_t start, int64_t count, int64_t step) {
  Shape shape = t.shape();
  std::vector<int64_t> strides = t.strides();
  int64_t offset = t.storage_offset() + (count > 0 ? start * strides[axis] : 0);
  shape[axis] = count;
  strides[axis] *= step;
  return t.as_strided(shape, strides, offset);
}

}  // namespace

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  NEURN_CHECK(x.defined(), "permute: undefined input");
  NEURN_CHECK(static_cast<int64_t>(dims.size()) == x.dim(), "permute: ", dims.size(),
              " dimensions given for a tensor of shape ", shape_str(x.shape()));
  std::vector<int64_t> inverse(dims.size());
  std::vector<bool> seen(dims.size(), false);
  Shape shape(dims.size());
  std::vector<int64_t> strides(dims.size());
  bool identity = true;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = axis_of(dims[i], x, "permute");
    NEURN_CHECK(!seen[d], "permute: axis ", dims[i], " appears twice in the order given for ", shape_str(x.shape()));
    seen[d] = true;
    inverse[d] = static_cast<int64_t>(i);
    shape[i] = x.shape()[d];
    strides[i] = x.strides()[d];
    identity = identity && d == static_cast<int64_t>(i);
  }
  if (identity) return x;
  Tensor out = x.as_strided(shape, strides, x.storage_offset());
  return attach_grad(out, "permute", {x}, [inverse](const Tensor& g) -> std::vector<Tensor> {
    return {permute(g, inverse)};  // a view of g
  });
}

Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1) {
  int64_t a = axis_of(axis0, x, "transpose"), b = axis_of(axis1, x, "transpose");
  if (a == b) return x;
  std::vector<int64_t> dims(static_cast<size_t>(x.dim()));
  for (int64_t i = 0; i < x.dim(); ++i) dims[i] = i;
  std::swap(dims[a], dims[b]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step) {
  NEURN_CHECK(x.defined(), "slice: undefined input");
  int64_t a = axis_of(axis, x, "slice");
  NEURN_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t n = x.shape()[a];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, 0, n);
  int64_t count = end > start ? (end - start + step - 1) / step : 0;
  if (start == 0 && count == n && step == 1) return x;
  Tensor out = axis_window(x, a, start, count, step);
  Shape full = x.shape();
  return attach_grad(out, "slice", {x}, [full, a, start, count, step](const Tensor& g) -> std::vector<Tensor> {
    // Zeros with g copied into the window the slice read.
    Tensor dx = zeros(full, g.options());
    axis_window(dx, a, start, count, step).copy_(g);
    return {dx};
  });
}

Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  NEURN_CHECK(!xs.empty(), "concat: no tensors given");
  const Tensor& x0 = xs[0];
  NEURN_CHECK(x0.defined(), "concat: tensor 0 is undefined");
  int64_t a = axis_of(axis, x0, "concat");
  Shape os = x0.shape();
  os[a] = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    const Tensor& x = xs[k];
    NEURN_CHECK(x.defined(), "concat: tensor ", k, " is undefined");
    NEURN_CHECK(x.dtype() == x0.dtype(), "concat: tensor ", k, " is ", dtype_name(x.dtype()), " but tensor 0 is ",
                dtype_name(x0.dtype()));
    NEURN_CHECK(x.device() == x0.device(), "concat: tensor ", k, " is on ", x.device().str(), " but tensor 0 is on ",
                x0.device().str());
    bool ok = x.dim() == x0.dim();
    for (int64_t d = 0; ok && d < x.dim(); ++d) ok = d == a || x.shape()[d] == x0.shape()[d];
    NEURN_CHECK(ok, "concat: tensor ", k, " has shape ", shape_str(x.shape()), " but tensor 0 has ",
                shape_str(x0.shape()), "; all sizes must match except along axis ", axis);
    os[a] += x.shape()[a];
  }
  Tensor out = Tensor::empty(os, x0.options());
  std::vector<int64_t> offsets, sizes;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    offsets.push_back(off);
    sizes.push_back(x.shape()[a]);
    axis_window(out, a, off, x.shape()[a], 1).copy_(x);  // x may be a view: copy_ reads its strides
    off += x.shape()[a];
  }
  return attach_grad(out, "concat", xs, [a, offsets, sizes](const Tensor& g) -> std::vector<Tensor> {
    std::vector<Tensor> grads;  // views of g
    for (size_t k = 0; k < sizes.size(); ++k) grads.push_back(axis_window(g, a, offsets[k], sizes[k], 1));
    return grads;
  });
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  NEURN_CHECK(x.defined(), "split: undefined input");
  int64_t a = axis_of(axis, x, "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    NEURN_CHECK(s >= 0, "split: negative piece size ", s, " for ", shape_str(x.shape()));
    total += s;
  }
  NEURN_CHECK(total == x.shape()[a], "split: piece sizes add up to ", total, " but axis ", axis, " of ",
              shape_str(x.shape()), " has size ", x.shape()[a]);
  std::vector<Tensor> out;
  int64_t off = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(x, a, off, off + s));
    off += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t axis) {
  NEURN_CHECK(x.defined(), "chunk: undefined input");
  int64_t a = axis_of(axis, x, "chunk");
  NEURN_CHECK(n > 0 && x.shape()[a] % n == 0, "chunk: axis ", axis, " of ", shape_str(x.shape()), " (size ",
              x.shape()[a], ") cannot be cut into ", n, " equal pieces");
  return split(x, std::vector<int64_t>(static_cast<size_t>(n), x.shape()[a] / n), a);
}

namespace {
Tensor pad_reflect_run(const Tensor& x, const Shape& out_shape, const PadGeom& geo, bool backward) {
  Tensor out = Tensor::empty(out_shape, x.options());
  if (out.numel() > 0) pad_reflect_kernel(x.device(), x, out, geo, backward);
  return out;
}
}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  NEURN_CHECK(x.defined(), "pad: undefined input");
  NEURN_CHECK(pads.size() == 2 || pads.size() == 4, "pad: expected 2 pads {left, right} or 4 {left, right, top, ",
              "bottom}, got ", pads.size());
  int64_t axes = static_cast<int64_t>(pads.size()) / 2;
  NEURN_CHECK(x.dim() >= axes, "pad: ", pads.size(), " pads need a tensor of at least ", axes,
              " dimensions, got shape ", shape_str(x.shape()));
  for (int64_t p : pads) NEURN_CHECK(p >= 0, "pad: negative pad ", p, " for ", shape_str(x.shape()));
  PadGeom geo;
  geo.w = x.shape()[x.dim() - 1];
  geo.left = pads[0];
  geo.right = pads[1];
  if (axes == 2) {
    geo.h = x.shape()[x.dim() - 2];
    geo.top = pads[2];
    geo.bottom = pads[3];
  }
  geo.outer = x.numel() / std::max<int64_t>(geo.h * geo.w, 1);
  if (x.numel() == 0) geo.outer = 0;
  Shape os = x.shape();
  os[x.dim() - 1] += geo.left + geo.right;
  if (axes == 2) os[x.dim() - 2] += geo.top + geo.bottom;
  Shape in_shape = x.shape();

  if (mode == PadMode::Reflect) {
    NEURN_CHECK(geo.left < geo.w && geo.right < geo.w && geo.top < geo.h && geo.bottom < geo.h,
                "pad: reflect padding needs each pad smaller than the padded size; got pads (", pads[0], ", ",
                pads[1], axes == 2 ? ", " + std::to_string(pads[2]) + ", " + std::to_string(pads[3]) : "",
                ") for shape ", shape_str(x.shape()));
    Tensor out = pad_reflect_run(x, os, geo, false);
    return attach_grad(out, "pad", {x}, [geo, in_shape](const Tensor& g) -> std::vector<Tensor> {
      return {pad_reflect_run(g, in_shape, geo, true)};
    });
  }

  // Zero (constant) padding: fill, then copy x into the interior window.
  Tensor out = Tensor::empty(os, x.options());
  out.fill_(value);
  const int64_t last = x.dim() - 1;
  auto interior = [geo, in_shape, axes, last](const Tensor& t) {
    Tensor w = axis_window(t, last, geo.left, in_shape[last], 1);
    return axes == 2 ? axis_window(w, last - 1, geo.top, in_shape[last - 1], 1) : w;
  };
  interior(out).copy_(x);
  return attach_grad(out, "pad", {x}, [interior](const Tensor& g) -> std::vector<Tensor> {
    return {interior(g)};  // a view of g
  });
}

}  // namespace neurn
