#pragma once
// CUDA launchers of the element-wise functors (framework/cuda/elementwise.cu).
#include "framework/dtype.h"
#include "framework/ops/elementwise_functors.h"

namespace neurn::cuda {

void unary(UnaryKind kind, UnaryParams p, const void* x, void* y, DType dtype, int64_t n);
void unary_backward(UnaryKind kind, UnaryParams p, const void* x, const void* y, const void* g, void* dx, DType dtype,
                    int64_t n);
void binary(BinaryKind kind, const void* a, const void* b, void* out, DType dtype, const BroadcastIndex& idx);
// out = cond != 0 ? a : b over the broadcast index (operands 0, 1, 2 = cond, a, b).
void where(const void* cond, const void* a, const void* b, void* out, DType dtype, const BroadcastIndex& idx);

}  // namespace neurn::cuda
