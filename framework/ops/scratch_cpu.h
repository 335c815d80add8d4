#pragma once
// Per-thread scratch buffers that survive between calls, so the column and
// transform buffers of every training step reuse warm memory instead of
// fresh pages. Each slot is its own buffer (per element type and thread):
// a kernel may hold several slots at once, and two kernels that run one
// after the other on a thread (Winograd's data gradient, then the im2col
// weight gradient) never share one while it is live.
#include <cstddef>
#include <vector>

namespace neurn::cpu {

enum class Scratch : int {
  ConvColumns,      // im2col's column matrix
  ConvOutputs,      // a chunk's (C_out, B P) GEMM output, or dy in that layout
  ConvDataColumns,  // the data gradient's columns before col2im
  WinogradV,        // the transformed input tiles (16 planes)
  WinogradM,        // the 16 GEMMs' products
  WinogradRows,     // the transforms' row buffers
  WinogradU,        // the transformed filters
  HwcnInput,        // x (or the input of dw) as (H, W, C, N)
  HwcnOutput,       // the output, or dy, as (Ho, Wo, Cout, N)
  HwcnWeights,      // the reordered (or flipped) weights
  HwcnDataGrad,     // dx as (H, W, C, N)
  HwcnWeightGrad,   // dw as (Cout, kh, kw, Cg)
  kCount
};

// At least n elements of `slot` for this thread; the contents are what the
// last user left there.
template <typename T>
T* scratch(Scratch slot, size_t n) {
  thread_local std::vector<T> buffers[static_cast<int>(Scratch::kCount)];
  std::vector<T>& b = buffers[static_cast<int>(slot)];
  if (b.size() < n) b.resize(n);
  return b.data();
}

}  // namespace neurn::cpu
