#pragma once
// Winograd F(2x2, 3x3) convolution on the CPU (framework/ops/conv_winograd_cpu.cpp),
// float and double: Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks" (CVPR 2016). For a 3x3, stride 1, dilation 1, ungrouped conv every
// 2x2 output tile is Y = A^T [(G g G^T) . (B^T d B)] A over its 4x4 input tile
// d: 16 multiplies per tile and channel pair instead of im2col's 36. Over all
// channels the 16 element-wise products become 16 independent OpenBLAS gemms
//   M_k (C_out, T) = U_k (C_out, C_in) V_k (C_in, T),   k = 0..15,
// between the input transform V = B^T d B of T tiles and the output transform.
// The data gradient of the same conv is the "full" correlation of dY with the
// weights rotated by 180 degrees and transposed in (C_out, C_in), i.e. the same
// routine with padding 2 - p; the 3x3 weight gradient stays on the im2col path.
// 5x5 kernels run F(2x2, 5x5) (conv_winograd5_cpu.h) behind the same entry
// points, and their weight gradient too (winograd_conv2d_backward_weight).
//
// conv_cpu.cpp asks use_winograd_forward / use_winograd_backward_data /
// use_winograd_backward_weight for every conv and calls these routines where
// they say yes.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "framework/ops/conv_cpu.h"

namespace neurn::cpu {

// Auto: where winograd_conv_profitable says so (the default); Off: never
// (NEURN_CONV_WINOGRAD=0, for A/B runs and debugging); Always: every conv it
// applies to (NEURN_CONV_WINOGRAD=always; tests, benches). NEURN_CONV_WINOGRAD=1
// is Auto. The variable is read once, at the first conv.
enum class WinogradMode { Auto, Off, Always };
WinogradMode winograd_mode();
// Overrides the environment for the whole process (tests, `neurn bench conv`).
void set_winograd_mode(WinogradMode mode);
// Sets a mode for its lifetime and restores the previous one.
class ScopedWinogradMode {
 public:
  explicit ScopedWinogradMode(WinogradMode mode) : prev_(winograd_mode()) { set_winograd_mode(mode); }
  ~ScopedWinogradMode() { set_winograd_mode(prev_); }
  ScopedWinogradMode(const ScopedWinogradMode&) = delete;
  ScopedWinogradMode& operator=(const ScopedWinogradMode&) = delete;

 private:
  WinogradMode prev_;
};

// 3x3 or 5x5 kernel, stride 1, dilation 1, groups 1, any padding (the data
// gradient runs at padding k - 1 - p, negative for larger p: it then crops
// instead of pads).
bool winograd_applicable(const ConvGeom& g);
// The weight gradient: 5x5 kernels only (winograd5_applicable).
bool winograd_weight_applicable(const ConvGeom& g);

// Whether Winograd beats im2col + gemm for this conv (forward, or the data
// gradient when backward_data), on `threads` threads with elements of
// `elem_size` bytes. The rule comes from `neurn bench conv` on the backbones'
// 3x3 convs (docs/engine-bench.md, "Winograd F(2x2,3x3) on the CPU"), and
// for 5x5 kernels from the digits ConvNet's ("Winograd for 5x5 kernels").
bool winograd_conv_profitable(const ConvGeom& g, size_t elem_size, bool backward_data, int64_t threads);
// The same for the 5x5 weight gradient.
bool winograd_weight_profitable(const ConvGeom& g, size_t elem_size, int64_t threads);

// The decisions conv_cpu.cpp acts on: the mode, applicability and the rule.
bool use_winograd_forward(const ConvGeom& g, size_t elem_size);
bool use_winograd_backward_data(const ConvGeom& g, size_t elem_size);
bool use_winograd_backward_weight(const ConvGeom& g, size_t elem_size);

// y (N, Cout, Ho, Wo) = conv(x, w) + bias (bias may be null); g must be
// winograd_applicable.
template <typename T>
void winograd_conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);

// dx (N, C, H, W) = the gradient of the conv's input for dy (N, Cout, Ho, Wo),
// overwritten.
template <typename T>
void winograd_conv2d_backward_data(const ConvGeom& g, const T* w, const T* dy, T* dx);

// dw (Cout, C, kh, kw), overwritten, from x and dy; g must be
// winograd_weight_applicable.
template <typename T>
void winograd_conv2d_backward_weight(const ConvGeom& g, const T* x, const T* dy, T* dw);

// While alive, records on this thread every decision use_winograd_* makes
// (`neurn bench conv --model` lists a model's convs through it).
struct WinogradDecision {
  ConvGeom geom;
  bool backward_data = false;
  bool backward_weight = false;
  bool winograd = false;
};
class WinogradDecisionLog {
 public:
  WinogradDecisionLog();
  ~WinogradDecisionLog();
  WinogradDecisionLog(const WinogradDecisionLog&) = delete;
  WinogradDecisionLog& operator=(const WinogradDecisionLog&) = delete;
  const std::vector<WinogradDecision>& decisions() const { return decisions_; }
  static void record(const WinogradDecision& d);

 private:
  std::vector<WinogradDecision> decisions_;
  WinogradDecisionLog* parent_;
};

}  // namespace neurn::cpu
