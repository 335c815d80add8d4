#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace neurn {

using Shape = std::vector<int64_t>;

inline int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

// "(2, 3, 32, 32)"
std::string shape_str(const Shape& s);

// Normalises a possibly negative axis against `ndim`, throwing an error that
// names the op when it is out of range.
int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op);

// Row-major strides of a contiguous tensor of shape s.
std::vector<int64_t> contiguous_strides(const Shape& s);

// The broadcast shape of a and b (NumPy rules), or an error naming the op and
// both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace neurn
