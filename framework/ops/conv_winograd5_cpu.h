#pragma once
// Winograd F(2x2, 5x5) convolution on the CPU (framework/ops/conv_winograd5_cpu.cpp),
// float and double, for 5x5, stride 1, dilation 1, ungrouped convs: every 2x2
// output tile is Y = A^T [(G g G^T) . (B^T d B)] A over its 6x6 input tile d,
// 36 multiplies per tile and channel pair instead of the direct 100 (Lavin &
// Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016, give
// the construction; the matrices here come from the Toom-Cook points 0, 1,
// -1, 2, -2 and infinity, derived in docs/engine-bench.md, "Winograd for 5x5
// kernels"):
//   G   = [ 1/4    0     0     0    0  ]     B^T = [ 4  0 -5  0  1  0 ]
//         [-1/6  -1/6  -1/6  -1/6 -1/6 ]           [ 0 -4 -4  1  1  0 ]
//         [-1/6   1/6  -1/6   1/6 -1/6 ]           [ 0  4 -4 -1  1  0 ]
//         [ 1/24  1/12  1/6   1/3  2/3 ]           [ 0 -2 -1  2  1  0 ]
//         [ 1/24 -1/12  1/6  -1/3  2/3 ]           [ 0  2 -1 -2  1  0 ]
//         [  0     0     0     0    1  ]           [ 0  4  0 -5  0  1 ]
//   A^T = [ 1  1  1  1  1  0 ]
//         [ 0  1 -1  2 -2  1 ]
// Over all channels the 36 element-wise products become 36 OpenBLAS gemms,
// as in F(2x2, 3x3) (conv_winograd_cpu.h). The three passes:
//   forward          M_k (Co, T) = U_k (Co, C) V_k (C, T), Y from M;
//   data gradient    the forward's adjoint over the forward's tiles:
//                    D_k = (A dy_t A^T)_k, M_k (C, T) = U_k^T D_k, and
//                    B m B^T added into dx at each tile's 6x6 input window
//                    (about half the gemm work of the full correlation of dy
//                    at padding 4 - p, which has (Ho + 4)^2 / 4 tiles);
//   weight gradient  dW = G^T [ sum over tiles (A dy_t A^T) . (B^T x_t B) ] G,
//                    36 gemms (Co, T) x (T, C) summed over the tiles.
// The input, output and gradient transforms multiply only by powers of two
// (5 d is 4 d + d), so their instruction-set clones give the same bits; the
// weight transforms (1/6, 1/24) are not cloned.
//
// conv_winograd_cpu.cpp's winograd_conv2d_forward / _backward_data call the
// first two for 5x5 kernels; conv_cpu.cpp calls the weight gradient where
// use_winograd_backward_weight (conv_winograd_cpu.h) says so.
#include "framework/ops/conv_cpu.h"

namespace neurn::cpu {

// 5x5 kernel, stride 1, dilation 1, groups 1, nonempty; any padding.
bool winograd5_applicable(const ConvGeom& g);

// y (N, Cout, Ho, Wo) = conv(x, w) + bias (bias may be null).
template <typename T>
void winograd5_conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);

// dx (N, C, H, W), overwritten, from dy (N, Cout, Ho, Wo).
template <typename T>
void winograd5_conv2d_backward_data(const ConvGeom& g, const T* w, const T* dy, T* dx);

// dw (Cout, C, 5, 5), overwritten, from x and dy.
template <typename T>
void winograd5_conv2d_backward_weight(const ConvGeom& g, const T* x, const T* dy, T* dw);

}  // namespace neurn::cpu
