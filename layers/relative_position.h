#pragma once
// AutoFormer's 2-D relative position encoding (Chen et al. 2021, the
// RelativePosition2D_super of microsoft/Cream's AutoFormer, after Shaw et al.
// 2018). Two learned tables, "embeddings_table_v" (vertical) and
// "embeddings_table_h" (horizontal), each (2 m + 2, units) with m the largest
// relative distance (max_relative_position, the reference's 14). For L
// tokens (the class token first, then a square grid of s x s patches, s =
// floor(sqrt(L - 1))), patch i = (row i / s, column i % s) and patch j give
//   e(i, j) = table_v[clip(row_j - row_i, -m, m) + m + 1]
//           + table_h[clip(col_j - col_i, -m, m) + m + 1],
// and every pair that involves the class token uses row 0 of both tables.
// The attention adds q_i . e_k(i, j) / sqrt(d) to its logits and
// sum_j a_ij e_v(i, j) to its output (attention_heads in layers/attention.h).
#include "layers/module.h"

namespace neurn {

class RelativePosition2D : public Module {
 public:
  RelativePosition2D(int64_t units, int64_t max_relative_position = 14);
  // e(i, j) for `tokens` tokens over the first `width` columns of the tables
  // (width <= units: an AutoFormer subnet's head dim): (tokens, tokens, width).
  Tensor embeddings(int64_t tokens, int64_t width);
  Tensor embeddings(int64_t tokens) { return embeddings(tokens, units_); }
  // Not a layer of its own: attention calls embeddings().
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "RelativePosition2D"; }
  int64_t units() const { return units_; }
  int64_t max_relative_position() const { return max_rel_; }

 private:
  int64_t units_, max_rel_;
};

// The table rows of e(i, j) as one-hot rows: (tokens * tokens, 2 m + 2), row
// i * tokens + j has a 1 at the index of the vertical (vertical = true) or
// horizontal distance. A constant: the embeddings are this times the table,
// so the tables' gradient comes from matmul.
Tensor relative_position_one_hot(int64_t tokens, int64_t max_relative_position, bool vertical, TensorOptions opt);

}  // namespace neurn
