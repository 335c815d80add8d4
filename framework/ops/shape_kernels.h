#pragma once
// The kernels of the shape ops that are not views or strided copies
// (framework/dispatch.h): reflect padding. The front function in
// shape_ops.cpp allocates the output; the CPU kernel sits beside it, the CUDA
// one in framework/cuda/shape.cu.
#include <cstdint>

#include "framework/dispatch.h"
#include "framework/tensor.h"

namespace neurn {

// The last two axes of a tensor seen as (outer, h, w) and the pads of each
// side (a 1-D pad is h = 1, top = bottom = 0). Each pad is < its size.
struct PadGeom {
  int64_t outer = 1, h = 1, w = 1, top = 0, bottom = 0, left = 0, right = 0;
};

// backward false: y (outer, h + top + bottom, w + left + right) reads
// x (outer, h, w) at (reflect(r - top, h), reflect(c - left, w)), with
// reflect(i, n) = -i for i < 0, 2 (n - 1) - i for i >= n, else i.
// backward true: x is the gradient of y's shape and y (outer, h, w) is
// overwritten with the sum of x over every position that reads each element.
NEURN_DECLARE_KERNEL(pad_reflect_kernel, void(const Tensor& x, const Tensor& y, PadGeom geo, bool backward));

}  // namespace neurn
