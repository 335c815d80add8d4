#pragma once
// Reductions. `axes` empty means all axes. keepdim keeps reduced axes as 1.
#include <vector>

#include "framework/tensor.h"

namespace neurn {

Tensor sum(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
// Maximum value; the gradient goes to the first maximal element of each slice.
Tensor max(const Tensor& x, const std::vector<int64_t>& axes = {}, bool keepdim = false);
// Index of the first maximum along `axis`, int64; no gradient.
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);

}  // namespace neurn
