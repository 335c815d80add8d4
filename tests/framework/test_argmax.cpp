// argmax on the CPU against a plain loop over the axis: every axis of a 3-d
// tensor, keepdim, ties (the first maximum wins), NaN (counts as the
// largest, as max does), the meta device and an empty axis. The CUDA kernel is
// compared with this CPU result in tests/framework/test_cuda.cpp's op table.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "framework/ops.h"
#include "gradcheck.h"

using namespace neurn;

namespace {

// The index along `axis` of the first maximum (NaN first), for each output.
std::vector<int64_t> loop_argmax(const std::vector<float>& v, const Shape& s, int axis) {
  int64_t outer = 1, inner = 1, n = s[axis];
  for (int d = 0; d < axis; ++d) outer *= s[d];
  for (int d = axis + 1; d < static_cast<int>(s.size()); ++d) inner *= s[d];
  std::vector<int64_t> out;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < n; ++k) {
        float b = v[(o * n + best) * inner + i], c = v[(o * n + k) * inner + i];
        if (std::isnan(b)) break;
        if (std::isnan(c) || c > b) best = k;
      }
      out.push_back(best);
    }
  return out;
}

}  // namespace

TEST_CASE("argmax (CPU): every axis, keepdim, ties take the first maximum, NaN wins") {
  Generator g(3);
  Shape s{4, 5, 6};
  std::vector<float> v(shape_numel(s));
  for (auto& e : v) e = static_cast<float>(g.below(3));  // values in {0, 1, 2}: many ties
  v[7] = NAN;
  Tensor x = from_vector(v, s);
  for (int axis = 0; axis < 3; ++axis) {
    CAPTURE(axis);
    Tensor a = argmax(x, axis);
    Shape want = s;
    want.erase(want.begin() + axis);
    CHECK(a.shape() == want);
    CHECK(a.dtype() == DType::Int64);
    CHECK(a.to_vector<int64_t>() == loop_argmax(v, s, axis));
    Tensor k = argmax(x, axis - 3, true);  // a negative axis, keepdim
    Shape want_k = s;
    want_k[axis] = 1;
    CHECK(k.shape() == want_k);
    CHECK(k.to_vector<int64_t>() == loop_argmax(v, s, axis));
  }
  // float64 input gives the same indices.
  CHECK(argmax(x.to(DType::Float64), 1).to_vector<int64_t>() == loop_argmax(v, s, 1));
}

TEST_CASE("argmax: meta shapes and an empty axis") {
  Tensor m = Tensor::empty({3, 7}, {.device = Device::meta()});
  CHECK(argmax(m, 1).shape() == Shape{3});
  CHECK(argmax(m, 1).device().is_meta());
  CHECK_THROWS_CONTAINING(argmax(zeros({3, 0}), 1), "argmax: axis 1 of (3, 0) is empty");
  CHECK_THROWS_CONTAINING(argmax(zeros({3, 2}), 2), "argmax");
}
