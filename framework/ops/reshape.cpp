// reshape, flatten, squeeze, unsqueeze and expand: views that share storage
// with their input. reshape copies (as PyTorch's does) only when the input's
// strides cannot describe the new shape, e.g. flattening a permuted tensor.
#include <optional>

#include "framework/autograd.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

namespace {

// Strides that let a tensor of shape `old_shape` / `old_strides` be read as
// `new_shape` (same numel) without moving data, if any. The old axes are cut
// into chunks whose elements are evenly spaced (each axis' stride is the
// next one's stride times its size); a chunk maps onto a run of new axes of
// the same element count, which get row-major strides scaled by the stride
// of the chunk's innermost axis. No chunk boundary falling where the new
// shape needs one means no view exists.
std::optional<std::vector<int64_t>> view_strides(const Shape& old_shape, const std::vector<int64_t>& old_strides,
                                                 const Shape& new_shape) {
  const int64_t numel = shape_numel(old_shape);
  if (numel == 0 || old_shape.empty()) return contiguous_strides(new_shape);
  std::vector<int64_t> strides(new_shape.size(), 0);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_stride = old_strides.back();
  int64_t chunk_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    chunk_numel *= old_shape[d];
    const bool chunk_ends = d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != chunk_numel * chunk_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < chunk_numel || new_shape[view_d] == 1)) {
      strides[view_d] = view_numel * chunk_stride;
      view_numel *= new_shape[view_d];
      --view_d;
    }
    if (view_numel != chunk_numel) return std::nullopt;
    if (d > 0) {
      chunk_stride = old_strides[d - 1];
      chunk_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return strides;
}

// A view of x with another shape of the same numel; its backward reshapes
// the gradient back.
Tensor view_as_shape(const Tensor& x, const Shape& s, const std::vector<int64_t>& strides, const char* op) {
  Tensor out = x.as_strided(s, strides, x.storage_offset());
  Shape in_shape = x.shape();
  return attach_grad(out, op, {x}, [in_shape](const Tensor& g) -> std::vector<Tensor> {
    return {reshape(g, in_shape)};
  });
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      NEURN_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      NEURN_CHECK(s[i] >= 0, "reshape: invalid size in ", shape_str(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    NEURN_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot reshape ", shape_str(x.shape()), " (",
                x.numel(), " elements) into ", shape_str(shape));
    s[infer] = x.numel() / known;
  }
  NEURN_CHECK(shape_numel(s) == x.numel(), "reshape: cannot reshape ", shape_str(x.shape()), " (", x.numel(),
              " elements) into ", shape_str(shape));
  if (s == x.shape()) return x;
  if (auto strides = view_strides(x.shape(), x.strides(), s)) return view_as_shape(x, s, *strides, "reshape");
  // No view exists: reshape a contiguous copy (contiguous() carries the
  // gradient back to x).
  Tensor c = x.contiguous();
  return view_as_shape(c, s, contiguous_strides(s), "reshape");
}

Tensor Tensor::reshape(const Shape& s) const { return neurn::reshape(*this, s); }

Tensor flatten(const Tensor& x, int64_t start_axis, int64_t end_axis) {
  if (x.dim() == 0) return reshape(x, {1});
  int64_t s = normalize_axis(start_axis, x.dim(), "flatten");
  int64_t e = normalize_axis(end_axis, x.dim(), "flatten");
  NEURN_CHECK(s <= e, "flatten: start axis ", start_axis, " is after end axis ", end_axis, " for ", shape_str(x.shape()));
  Shape out;
  int64_t merged = 1;
  for (int64_t i = 0; i < x.dim(); ++i) {
    if (i < s || i > e) {
      out.push_back(x.shape()[i]);
    } else {
      merged *= x.shape()[i];
      if (i == e) out.push_back(merged);
    }
  }
  return reshape(x, out);
}

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  int64_t a = normalize_axis(axis, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  std::vector<int64_t> st = x.strides();
  // Any stride describes a size-1 axis; this one keeps a contiguous input contiguous.
  const int64_t stride = a < x.dim() ? st[a] * s[a] : 1;
  s.insert(s.begin() + a, 1);
  st.insert(st.begin() + a, stride);
  return view_as_shape(x, s, st, "unsqueeze");
}

Tensor squeeze(const Tensor& x, int64_t axis) {
  int64_t a = normalize_axis(axis, x.dim(), "squeeze");
  NEURN_CHECK(x.shape()[a] == 1, "squeeze: axis ", axis, " of ", shape_str(x.shape()), " has size ", x.shape()[a],
              ", not 1");
  Shape s = x.shape();
  std::vector<int64_t> st = x.strides();
  s.erase(s.begin() + a);
  st.erase(st.begin() + a);
  return view_as_shape(x, s, st, "squeeze");
}

Tensor expand(const Tensor& x, const Shape& shape) {
  Shape out_shape = broadcast_shapes(x.shape(), shape, "expand");
  NEURN_CHECK(out_shape == shape, "expand: ", shape_str(x.shape()), " cannot be expanded to ", shape_str(shape));
  if (out_shape == x.shape()) return x;
  // New leading axes and expanded size-1 axes read the same element: stride 0.
  const int64_t lead = static_cast<int64_t>(shape.size()) - x.dim();
  std::vector<int64_t> strides(shape.size(), 0);
  for (int64_t d = 0; d < x.dim(); ++d)
    strides[lead + d] = x.shape()[d] == shape[lead + d] ? x.strides()[d] : 0;
  Tensor out = x.as_strided(out_shape, strides, x.storage_offset());
  Shape in_shape = x.shape();
  return attach_grad(out, "expand", {x}, [in_shape](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to_shape(g, in_shape)};
  });
}

}  // namespace neurn
