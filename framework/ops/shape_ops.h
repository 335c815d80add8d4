#pragma once
// Shape ops, all differentiable. reshape, flatten, unsqueeze, squeeze,
// permute, transpose, slice, split, chunk and expand return views that share
// storage with their input (reshape copies when no view can describe the new
// shape, as PyTorch's does); concat and pad copy into a new tensor.
#include <vector>

#include "framework/tensor.h"

namespace neurn {

// One entry may be -1 (inferred).
Tensor reshape(const Tensor& x, const Shape& shape);
// Merges axes start..end (inclusive) into one: (N, C, H, W) -> (N, C*H*W).
Tensor flatten(const Tensor& x, int64_t start_axis = 1, int64_t end_axis = -1);
Tensor unsqueeze(const Tensor& x, int64_t axis);
Tensor squeeze(const Tensor& x, int64_t axis);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1);
// Elements start, start+step, ... < end along `axis` (negative start/end
// count from the end; end is clamped to the size).
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step = 1);
// Same shape except along `axis`.
Tensor concat(const std::vector<Tensor>& xs, int64_t axis);
// Pieces of the given sizes along `axis` (they must add up to the size).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis);
// n equal pieces along `axis`.
std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t axis);
Tensor expand(const Tensor& x, const Shape& shape);  // broadcast to shape (a view: stride 0 on expanded axes)

enum class PadMode { Zero, Reflect };
// pads = {left, right} for the last axis, or {left, right, top, bottom} for the
// last two (PyTorch order). Reflect needs pad < size of that axis.
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode = PadMode::Zero, double value = 0.0);

}  // namespace neurn
