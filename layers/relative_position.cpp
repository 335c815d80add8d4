#include "layers/relative_position.h"

#include <algorithm>
#include <cmath>

#include "framework/ops/elementwise.h"
#include "framework/ops/linalg.h"
#include "framework/ops/shape_ops.h"
#include "layers/init.h"

namespace neurn {

RelativePosition2D::RelativePosition2D(int64_t units, int64_t max_relative_position)
    : units_(units), max_rel_(max_relative_position) {
  NEURN_CHECK(units > 0 && max_relative_position > 0, "RelativePosition2D: units (", units,
              ") and max_relative_position (", max_relative_position, ") must be positive");
  // the reference draws both tables with trunc_normal(std .02)
  for (const char* name : {"embeddings_table_v", "embeddings_table_h"})
    trunc_normal_(register_parameter(name, new_full({2 * max_relative_position + 2, units}, 0.0)), 0.02);
}

Tensor relative_position_one_hot(int64_t tokens, int64_t m, bool vertical, TensorOptions opt) {
  NEURN_CHECK(tokens >= 2, "relative position: needs the class token and at least one patch, got ", tokens,
              " tokens");
  const int64_t patches = tokens - 1, rows = 2 * m + 2;
  if (opt.device.is_meta()) return zeros({tokens * tokens, rows}, opt);  // shapes only
  // the reference's int(length ** 0.5): a non-square count uses the floor
  auto side = static_cast<int64_t>(std::floor(std::sqrt(static_cast<double>(patches)) + 1e-9));
  std::vector<double> hot(static_cast<size_t>(tokens * tokens * rows), 0.0);
  for (int64_t i = 0; i < tokens; ++i)
    for (int64_t j = 0; j < tokens; ++j) {
      int64_t idx = 0;  // a pair with the class token
      if (i > 0 && j > 0) {
        int64_t a = i - 1, b = j - 1;
        int64_t dist = vertical ? b / side - a / side : b % side - a % side;
        idx = std::clamp(dist, -m, m) + m + 1;
      }
      hot[static_cast<size_t>((i * tokens + j) * rows + idx)] = 1.0;
    }
  Tensor t = from_vector<double>(hot, {tokens * tokens, rows});
  if (opt.dtype != DType::Float64) t = t.to(opt.dtype);
  return opt.device.is_cpu() ? t : t.to(opt.device);
}

Tensor RelativePosition2D::embeddings(int64_t tokens, int64_t width) {
  NEURN_CHECK(width >= 1 && width <= units_, "RelativePosition2D(", units_, " units): width ", width,
              " outside 1..", units_);
  const Tensor& tv = param("embeddings_table_v");
  const Tensor& th = param("embeddings_table_h");
  Tensor v = width == units_ ? tv : slice(tv, 1, 0, width);  // (2 m + 2, width)
  Tensor h = width == units_ ? th : slice(th, 1, 0, width);
  TensorOptions opt = tv.options();
  Tensor e = add(matmul(relative_position_one_hot(tokens, max_rel_, true, opt), v),
                 matmul(relative_position_one_hot(tokens, max_rel_, false, opt), h));  // (L L, width)
  return reshape(e, {tokens, tokens, width});
}

Tensor RelativePosition2D::forward(const Tensor&) {
  NEURN_FAIL("RelativePosition2D: not a layer of its own; attention calls embeddings(tokens, width)");
}

}  // namespace neurn
