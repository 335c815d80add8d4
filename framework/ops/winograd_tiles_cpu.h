#pragma once
// The tiling shared by the CPU Winograd convolutions F(2x2, 3x3)
// (conv_winograd_cpu.cpp) and F(2x2, 5x5) (conv_winograd5_cpu.cpp).
#include <cstdint>

namespace neurn::cpu::winograd {

// One Winograd problem: input (N, Ci, H, W) -> output (N, Co, Ho, Wo) with
// Ho = H + 2 ph - (r - 1) for an r x r kernel (padding may be negative: the
// data gradient of a conv padded by more than r - 1 crops). Output tiles of
// 2x2, th x tw per image; a "row" is one row of tiles of one image,
// r = n th + ty, the unit the work is split in.
struct Problem {
  int64_t N = 0, Ci = 0, H = 0, W = 0, Co = 0, ph = 0, pw = 0, Ho = 0, Wo = 0;
  int64_t th = 0, tw = 0;
  int64_t rows() const { return N * th; }
};

inline Problem make_problem(int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co, int64_t ph, int64_t pw, int64_t Ho,
                     int64_t Wo) {
  Problem p;
  p.N = N, p.Ci = Ci, p.H = H, p.W = W, p.Co = Co, p.ph = ph, p.pw = pw, p.Ho = Ho, p.Wo = Wo;
  p.th = (Ho + 1) / 2, p.tw = (Wo + 1) / 2;
  return p;
}

// The distance between the planes of the transformed weights, inputs and
// products: the plane rounded up to 16 elements plus 16 more, so the planes do
// not start a power of two apart. (With 512 x 512 channels the 3x3 weights'
// planes were exactly 1 MiB apart, and all 16 writes of one filter fell into
// the same cache set.)
inline int64_t plane_stride(int64_t n) { return (n + 15) / 16 * 16 + 16; }

}  // namespace neurn::cpu::winograd
