#pragma once
// How the cuDNN convolution picks an algorithm from cuDNN's ranking, in plain
// C++ (no cuDNN header) so that the CPU tests drive it with fake rankings.
//
// cuDNN's ranking (cudnnGetConvolution*Algorithm_v7, or the timed
// cudnnFindConvolution*AlgorithmEx) gives each algorithm with the math type it
// was ranked with; since cuDNN 7.4 an algorithm and a math type together say
// which kernel runs, so the convolution descriptor is set to the chosen
// entry's math type before it is run, as PyTorch does. An entry whose math
// type the precision does not allow is skipped: exact float32 (no TF32) runs
// FMA kernels only, so a tensor-op entry never sneaks TF32 in.
#include <cstddef>
#include <vector>

namespace neurn::cuda {

// cuDNN's cudnnMathType_t, mirrored (conv.cu converts both ways).
enum class ConvMath { Default, TensorOp, TensorOpAllowConversion, Fma };

// F32: float32 without TF32 (exact FMA); F32Tf32: float32 with
// NEURN_ALLOW_TF32=1; F64; BF16: autocast's bfloat16 operands.
enum class ConvPrecision { F32, F32Tf32, F64, BF16 };

// One entry of cuDNN's ranking.
struct ConvAlgoCandidate {
  int algo = 0;
  bool succeeded = false;  // status == CUDNN_STATUS_SUCCESS
  size_t workspace = 0;    // bytes
  ConvMath math = ConvMath::Default;
  bool deterministic = true;  // determinism == CUDNN_DETERMINISTIC
};

struct ConvAlgoChoice {
  int algo = 0;
  ConvMath math = ConvMath::Default;
  bool ranked = false;  // false: nothing usable was ranked, the fallback is used
};

// The math type the descriptor carries while cuDNN ranks (and for the
// fallback): it restricts what the ranking may offer.
inline ConvMath ranking_math(ConvPrecision p) {
  switch (p) {
    case ConvPrecision::F32: return ConvMath::Fma;
    case ConvPrecision::BF16: return ConvMath::TensorOp;
    default: return ConvMath::Default;  // float64: exact in any math; TF32 allowed
  }
}

inline bool math_allowed(ConvMath m, ConvPrecision p) {
  // Only exact float32 forbids a math type: every tensor-op (TF32) kernel and
  // cuDNN's default math (which lets float32 use TF32 since cuDNN 8).
  if (p == ConvPrecision::F32) return m == ConvMath::Fma;
  return true;
}

// The first entry in cuDNN's order that ran, fits max_workspace, has an
// allowed math type and, when `deterministic` (NEURN_DETERMINISTIC=1) is
// asked, is deterministic; with that entry's math type. When there is none,
// algorithm 0 (implicit GEMM, which every configuration supports, and which
// is deterministic in every direction) in ranking_math(p).
inline ConvAlgoChoice choose_conv_algo(const std::vector<ConvAlgoCandidate>& ranking, ConvPrecision p,
                                       size_t max_workspace, bool deterministic = false) {
  for (const ConvAlgoCandidate& c : ranking)
    if (c.succeeded && c.workspace <= max_workspace && math_allowed(c.math, p) && (c.deterministic || !deterministic))
      return {c.algo, c.math, true};
  return {0, ranking_math(p), false};
}

}  // namespace neurn::cuda
