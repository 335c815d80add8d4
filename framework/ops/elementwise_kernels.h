#pragma once
// The kernels of the element-wise ops (framework/dispatch.h). The front
// functions in elementwise.cpp check and shape; the CPU kernels sit beside
// them, the CUDA ones in framework/cuda/elementwise_*.cu. Every tensor is
// allocated by the front function with its final shape; the kernels only
// write the output's values.
#include "framework/dispatch.h"
#include "framework/ops/elementwise_functors.h"
#include "framework/tensor.h"

namespace neurn {

// y = f(x), same shape.
NEURN_DECLARE_KERNEL(unary_kernel, void(UnaryKind kind, UnaryParams p, const Tensor& x, const Tensor& y));
// dx = g * f'(x, y), same shapes (an operand the functor does not read may be any tensor of that shape).
// dx may be g itself (the front reuses a gradient buffer nothing else sees); x and y never share its memory.
NEURN_DECLARE_KERNEL(unary_backward_kernel, void(UnaryKind kind, UnaryParams p, const Tensor& x, const Tensor& y,
                                                 const Tensor& g, const Tensor& dx));
// out = f(a, b) over `idx` (operand 0 = a, 1 = b, coalesced).
NEURN_DECLARE_KERNEL(binary_kernel, void(BinaryKind kind, const Tensor& a, const Tensor& b, const Tensor& out,
                                         const BroadcastIndex& idx));
// dst += src in place (autograd's sums of gradients, add_): dst is
// contiguous and shares no memory with src; src is broadcast to dst's shape
// over `idx` (operand 0 = src, its real strides, coalesced). Each element is
// the Add functor of dst's and src's values, so the result is bit for bit that
// of add(dst, src).
NEURN_DECLARE_KERNEL(accumulate_kernel, void(const Tensor& dst, const Tensor& src, const BroadcastIndex& idx));
// out = cond != 0 ? a : b over `idx` (operands 0, 1, 2 = cond, a, b).
NEURN_DECLARE_KERNEL(where_kernel, void(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out,
                                        const BroadcastIndex& idx));

}  // namespace neurn
