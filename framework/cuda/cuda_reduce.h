#pragma once
// CUDA reductions (framework/cuda/reduce.cu). out has the keepdim shape.
#include "framework/tensor.h"

namespace neurn::cuda {

void reduce_sum(const Tensor& x, const Tensor& out);
// out: maxima; arg: flat input index of each maximum (int64), first on ties.
void reduce_max(const Tensor& x, const Tensor& out, const Tensor& arg);
// arg (int64, the keepdim shape of a max over `axis`): the index along `axis`
// of each maximum, first on ties (NaN counts as the largest), as the CPU's argmax.
void argmax(const Tensor& x, int64_t axis, const Tensor& arg);
// dx.flat[arg[i]] += g.flat[i]
void scatter_add_flat(const Tensor& g, const Tensor& arg, const Tensor& dx);

}  // namespace neurn::cuda
