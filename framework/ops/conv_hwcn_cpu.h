#pragma once
// Batch-innermost ("HWCN") convolution on the CPU (framework/ops/conv_hwcn_cpu.cpp),
// float and double, for the small maps of deep layers.
//
// x (N, C, H, W) is transposed to xt (H, W, C, N): at one input position the
// (C, N) slab is contiguous and the slabs of consecutive w follow each other.
// Then a conv is a sum of small gemms whose N is the batch, read where the
// input lies (no im2col) and never multiplying a tap that reads padding:
//   forward  yt[p] (Cout, N) += wt[:, i, j0:j1, :] (Cout, nj C) xt[ih][iw0 ..] (nj C, N)
//            for each output position p and tap row i whose valid taps j0..j1
//            read consecutive input positions (dilation 1, one group: one
//            gemm per (p, i); otherwise one per tap and group);
//   dx       dxt[q] (C, N) = the same gather from the input side: the
//            weights, j flipped, as (kh, kw, Cout, C) read transposed, one
//            "tn" gemm per (q, i) for stride 1 (per tap otherwise);
//   dw       dwt (Cout, kh, kw, C) += dyt[p] (Cout, N) xt_run^T per (p, i),
//            or, with fewer outputs than the run's nj C and at least 4
//            positions, its transpose dwt^T (kh, kw, C, Cout) += xt_run
//            dyt[p]^T (OpenBLAS runs these "nt" products faster with more
//            rows than columns), turned back live taps only.
// Only the weights of taps that read the input are reordered (none for a
// 1x1 kernel). On a 1x1 map with a 3x3 pad-1 kernel only the centre tap is
// multiplied (im2col multiplies all nine). Threads split positions, or the
// batch's columns (blocks of 16) on maps too small to share out; the weight
// gradient splits positions into per-task partial sums where there are
// enough, else its output rows.
//
// conv_cpu.cpp asks use_hwcn_forward / use_hwcn_backward_data /
// use_hwcn_backward_weight for every conv that is not depthwise.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "framework/ops/conv_cpu.h"

namespace neurn::cpu {

// Auto: where hwcn_conv_profitable says so (the default); Off: never
// (NEURN_CONV_HWCN=0); Always: every conv it applies to (NEURN_CONV_HWCN=always;
// tests, benches). NEURN_CONV_HWCN=1 is Auto. Read once, at the first conv.
enum class HwcnMode { Auto, Off, Always };
HwcnMode hwcn_mode();
// Overrides the environment for the whole process (tests, `neurn bench conv`).
void set_hwcn_mode(HwcnMode mode);
// Sets a mode for its lifetime and restores the previous one.
class ScopedHwcnMode {
 public:
  explicit ScopedHwcnMode(HwcnMode mode) : prev_(hwcn_mode()) { set_hwcn_mode(mode); }
  ~ScopedHwcnMode() { set_hwcn_mode(prev_); }
  ScopedHwcnMode(const ScopedHwcnMode&) = delete;
  ScopedHwcnMode& operator=(const ScopedHwcnMode&) = delete;

 private:
  HwcnMode prev_;
};

// Any conv with a non-empty input and output (all strides, paddings,
// dilations and groups).
bool hwcn_applicable(const ConvGeom& g);

// Which pass a decision is about.
enum class HwcnPass { Forward, Data, Weight };

// Whether HWCN beats the other paths for this conv and pass on `threads`
// threads with elements of `elem_size` bytes. The rule comes from `neurn
// bench conv --model` over the backbones (docs/engine-bench.md,
// "Batch-innermost convolution on small maps").
bool hwcn_conv_profitable(const ConvGeom& g, size_t elem_size, HwcnPass pass, int64_t threads);

// The decisions conv_cpu.cpp acts on: the mode, applicability and the rule.
bool use_hwcn_forward(const ConvGeom& g, size_t elem_size);
bool use_hwcn_backward_data(const ConvGeom& g, size_t elem_size);
bool use_hwcn_backward_weight(const ConvGeom& g, size_t elem_size);

// y (N, Cout, Ho, Wo) = conv(x, w) + bias (bias may be null). `tasks`: how
// many pieces the work is split in (0: by the work and cpu::num_threads());
// the result does not depend on the thread that runs a piece.
template <typename T>
void hwcn_conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y, int64_t tasks = 0);

// Overwrites dx (like x) and dw (like w), whichever is not null; x may be
// null when dw is, w when dx is. One transpose of dy serves both.
template <typename T>
void hwcn_conv2d_backward(const ConvGeom& g, const T* x, const T* w, const T* dy, T* dx, T* dw, int64_t tasks = 0);

// While alive, records on this thread every decision use_hwcn_* makes
// (`neurn bench conv --model` lists a model's convs through it).
struct HwcnDecision {
  ConvGeom geom;
  HwcnPass pass = HwcnPass::Forward;
  bool hwcn = false;
};
class HwcnDecisionLog {
 public:
  HwcnDecisionLog();
  ~HwcnDecisionLog();
  HwcnDecisionLog(const HwcnDecisionLog&) = delete;
  HwcnDecisionLog& operator=(const HwcnDecisionLog&) = delete;
  const std::vector<HwcnDecision>& decisions() const { return decisions_; }
  static void record(const HwcnDecision& d);

 private:
  std::vector<HwcnDecision> decisions_;
  HwcnDecisionLog* parent_;
};

}  // namespace neurn::cpu
