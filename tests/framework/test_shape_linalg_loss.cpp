// Known-value and bad-input tests of the shape ops, matmul/linear and the
// losses. Gradients are checked in test_gradcheck_table.cpp.
#include <doctest/doctest.h>

#include <cmath>

#include "framework/ops.h"
#include "gradcheck.h"

using namespace neurn;
using namespace neurn::testing;

namespace {

Tensor iota(const Shape& s, DType dt = DType::Float32) {
  return arange(0, static_cast<double>(shape_numel(s)), 1.0, {dt}).reshape(s);
}

}  // namespace

// ---- shape ops ---------------------------------------------------------------

TEST_CASE("permute and transpose move elements to their new positions") {
  Tensor x = iota({2, 3, 4});
  Tensor y = permute(x, {2, 0, 1});  // (4, 2, 3)
  CHECK(y.shape() == Shape{4, 2, 3});
  auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t c = 0; c < 4; ++c) CHECK(yv[(c * 2 + a) * 3 + b] == xv[(a * 3 + b) * 4 + c]);
  Tensor t = transpose(iota({2, 3}), 0, 1);
  CHECK(t.shape() == Shape{3, 2});
  CHECK(t.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(transpose(iota({2, 3}), -1, -2).to_vector<float>() == t.to_vector<float>());
  CHECK_THROWS_CONTAINING(permute(x, {0, 0, 1}), "permute: axis 0 appears twice");
  CHECK_THROWS_CONTAINING(permute(x, {0, 1}), "permute: 2 dimensions given for a tensor of shape (2, 3, 4)");
  CHECK_THROWS_CONTAINING(transpose(x, 0, 3), "transpose: axis 3 is out of range for a tensor of shape (2, 3, 4)");
}

TEST_CASE("slice with negative bounds, steps and clamping") {
  Tensor x = iota({3, 5});
  CHECK(slice(x, 1, 1, 4).to_vector<float>() == std::vector<float>{1, 2, 3, 6, 7, 8, 11, 12, 13});
  CHECK(slice(x, 1, 0, 5, 2).to_vector<float>() == std::vector<float>{0, 2, 4, 5, 7, 9, 10, 12, 14});
  CHECK(slice(x, 0, -1, 100).to_vector<float>() == std::vector<float>{10, 11, 12, 13, 14});
  CHECK(slice(x, -1, -2, -1).to_vector<float>() == std::vector<float>{3, 8, 13});
  CHECK(slice(x, 0, 2, 1).shape() == Shape{0, 5});
  CHECK_THROWS_CONTAINING(slice(x, 2, 0, 1), "slice: axis 2 is out of range for a tensor of shape (3, 5)");
  CHECK_THROWS_CONTAINING(slice(x, 0, 0, 1, 0), "slice: step must be positive");
}

TEST_CASE("concat, split and chunk are inverse to each other") {
  Tensor a = iota({2, 2}), b = add(iota({2, 3}), 100.0);
  Tensor c = concat({a, b}, 1);
  CHECK(c.shape() == Shape{2, 5});
  CHECK(c.to_vector<float>() == std::vector<float>{0, 1, 100, 101, 102, 2, 3, 103, 104, 105});
  auto parts = split(c, {2, 3}, -1);
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].to_vector<float>() == a.to_vector<float>());
  CHECK(parts[1].to_vector<float>() == b.to_vector<float>());
  Tensor r = concat({iota({1, 3}), iota({2, 3})}, 0);
  CHECK(r.to_vector<float>() == std::vector<float>{0, 1, 2, 0, 1, 2, 3, 4, 5});
  auto ch = chunk(iota({4, 2}), 2, 0);
  CHECK(ch[1].to_vector<float>() == std::vector<float>{4, 5, 6, 7});
  CHECK_THROWS_CONTAINING(concat({a, iota({3, 3})}, 1),
                          "concat: tensor 1 has shape (3, 3) but tensor 0 has (2, 2); all sizes must match except "
                          "along axis 1");
  CHECK_THROWS_CONTAINING(concat({a, iota({2, 2}, DType::Float64)}, 0), "concat: tensor 1 is float64");
  CHECK_THROWS_CONTAINING(concat({a, b}, 2), "concat: axis 2 is out of range for a tensor of shape (2, 2)");
  CHECK_THROWS_CONTAINING(split(c, {2, 2}, 1), "split: piece sizes add up to 4 but axis 1 of (2, 5) has size 5");
  CHECK_THROWS_CONTAINING(chunk(c, 2, 1), "chunk: axis 1 of (2, 5) (size 5) cannot be cut into 2 equal pieces");
}

TEST_CASE("pad: zero/constant and reflect, 1-D and 2-D") {
  Tensor x = iota({1, 3});
  CHECK(pad(x, {1, 2}).to_vector<float>() == std::vector<float>{0, 0, 1, 2, 0, 0});
  CHECK(pad(x, {1, 0}, PadMode::Zero, 9.0).to_vector<float>() == std::vector<float>{9, 0, 1, 2});
  CHECK(pad(x, {2, 2}, PadMode::Reflect).to_vector<float>() == std::vector<float>{2, 1, 0, 1, 2, 1, 0});
  Tensor m = iota({1, 1, 2, 3});
  Tensor z = pad(m, {1, 1, 1, 0});  // left, right, top, bottom
  CHECK(z.shape() == Shape{1, 1, 3, 5});
  CHECK(z.to_vector<float>() == std::vector<float>{0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 5, 0});
  Tensor rf = pad(m, {1, 1, 1, 1}, PadMode::Reflect);
  CHECK(rf.shape() == Shape{1, 1, 4, 5});
  // rows reflect as 1 0 1 0, columns as 1 0 1 2 1
  CHECK(rf.to_vector<float>() ==
        std::vector<float>{4, 3, 4, 5, 4, 1, 0, 1, 2, 1, 4, 3, 4, 5, 4, 1, 0, 1, 2, 1});
  CHECK_THROWS_CONTAINING(pad(m, {3, 0}, PadMode::Reflect), "pad: reflect padding needs each pad smaller");
  CHECK_THROWS_CONTAINING(pad(m, {1, 1, 1}), "pad: expected 2 pads");
}

TEST_CASE("shape ops on the meta device give shapes and no data") {
  TensorOptions meta{.device = Device::meta()};
  Tensor x = zeros({2, 3, 4}, meta);
  CHECK(permute(x, {1, 2, 0}).shape() == Shape{3, 4, 2});
  CHECK(slice(x, 2, 1, 3).shape() == Shape{2, 3, 2});
  CHECK(concat({x, x}, 0).shape() == Shape{4, 3, 4});
  Tensor p = pad(x, {1, 2, 1, 2}, PadMode::Reflect);
  CHECK(p.shape() == Shape{2, 6, 7});
  CHECK(p.raw_data() == nullptr);
}
