#pragma once
// CPU kernels of conv2d (framework/ops/conv_cpu.cpp), float and double.
//
// General case: the input patches of a chunk of B images are unrolled into
// col (C_in kH kW, B H_out W_out) (im2col) and each group is one OpenBLAS gemm
// (C_out/g, K) x (K, B P). Chunks of several images make the gemm wide enough
// to run near peak when the output planes are small (deep layers); a chunk of
// one image writes the gemm result straight into y. With several cores the
// threads split the batch, each running single-threaded gemms. Backward recomputes
// the columns chunk by chunk instead of keeping them from the forward pass:
// the unrolled input of a whole batch is large, and rebuilding it is cheap
// next to the gemms. Channels that read one input channel each (depthwise)
// use direct loops instead.
#include <cstdint>

#include "framework/ops/gemm_cpu.h"  // gemm, parallel_gemm (used to live here)

namespace neurn::cpu {

struct ConvGeom {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input (N, C, H, W)
  int64_t Cout = 0, kh = 1, kw = 1;    // weight (Cout, C / groups, kh, kw)
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  int64_t Ho = 0, Wo = 0;              // output (N, Cout, Ho, Wo)

  int64_t Cg() const { return C / groups; }     // input channels per group
  int64_t Og() const { return Cout / groups; }  // output channels per group
  int64_t P() const { return Ho * Wo; }
  int64_t K() const { return Cg() * kh * kw; }  // gemm inner size per group
};

// y (N, Cout, Ho, Wo) = conv(x, w) + bias; bias may be null.
template <typename T>
void conv2d_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y);

// Overwrites whichever of dx (like x), dw (like w), db (Cout) is not null.
template <typename T>
void conv2d_backward(const ConvGeom& g, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);

// im2col's weight gradient is dW_g (Og, K) += dY_g (Og, B P) col_g^T chunk by
// chunk, an "nt" product; OpenBLAS runs those slower when they have fewer
// rows than columns (the stem convs of Inception v3: 32 x 288 at about 2/3 of
// 288 x 32's rate). Transposed: dW_g^T (K, Og) += col_g dY_g^T, summed over
// the chunks (and the threads' partial sums) and turned back once.
// Auto (the default) takes it when Og < K and the output has at least 16
// positions; Never and Always are for tests and benches. The result is the
// same sum in another order.
enum class Im2colWeightMode { Auto, Never, Always };
Im2colWeightMode im2col_weight_mode();
void set_im2col_weight_mode(Im2colWeightMode mode);
class ScopedIm2colWeightMode {
 public:
  explicit ScopedIm2colWeightMode(Im2colWeightMode mode) : prev_(im2col_weight_mode()) { set_im2col_weight_mode(mode); }
  ~ScopedIm2colWeightMode() { set_im2col_weight_mode(prev_); }
  ScopedIm2colWeightMode(const ScopedIm2colWeightMode&) = delete;
  ScopedIm2colWeightMode& operator=(const ScopedIm2colWeightMode&) = delete;

 private:
  Im2colWeightMode prev_;
};
// Whether im2col's weight gradient of this conv is taken transposed (the mode
// and, for Auto, the rule).
bool im2col_weight_transposed(const ConvGeom& g);

}  // namespace neurn::cpu
