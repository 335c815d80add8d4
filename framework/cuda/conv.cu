// conv2d over cuDNN. One plan per shape signature holds the descriptors and
// the algorithms, chosen once (cuDNN's heuristics by default, its timed
// search with NEURN_CUDNN_BENCHMARK=1) and cached; workspaces come from the
// caching allocator. float32 runs in exact FMA math unless NEURN_ALLOW_TF32=1;
// under bf16 autocast the operands are converted to bfloat16 and cuDNN
// accumulates in float32. Each direction (forward, backward data, backward
// filter) has its own convolution descriptor, set to the math type cuDNN
// ranked its chosen algorithm with (framework/cuda/conv_algo.h).
#include <cuda_bf16.h>

#include <array>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "framework/cuda/conv_algo.h"
#include "framework/cuda/cuda_autocast.h"
#include "framework/cuda/cuda_check.h"
#include "framework/ops/conv_kernels.h"
#include "framework/tensor.h"

namespace neurn::cuda {

namespace {

// Larger workspaces are skipped in favour of the next algorithm.
constexpr size_t kMaxWorkspace = size_t{1} << 30;

enum class Precision : int { F32, F64, BF16 };

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  // One per direction: each carries the math type of its own chosen algorithm.
  cudnnConvolutionDescriptor_t conv_fwd = nullptr, conv_bwd_data = nullptr, conv_bwd_filter = nullptr;
  ConvPrecision precision = ConvPrecision::F32;
  bool have_fwd = false, have_bwd_data = false, have_bwd_filter = false;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd_data{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter{};
  size_t fwd_ws = 0, bwd_data_ws = 0, bwd_filter_ws = 0;
};

using PlanKey = std::array<int64_t, 16>;

cudnnMathType_t to_cudnn(ConvMath m) {
  switch (m) {
    case ConvMath::TensorOp: return CUDNN_TENSOR_OP_MATH;
    case ConvMath::TensorOpAllowConversion: return CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    case ConvMath::Fma: return CUDNN_FMA_MATH;
    default: return CUDNN_DEFAULT_MATH;
  }
}

ConvMath from_cudnn(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_TENSOR_OP_MATH: return ConvMath::TensorOp;
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return ConvMath::TensorOpAllowConversion;
    case CUDNN_FMA_MATH: return ConvMath::Fma;
    default: return ConvMath::Default;
  }
}

ConvPrecision conv_precision(Precision p) {
  switch (p) {
    case Precision::F64: return ConvPrecision::F64;
    case Precision::BF16: return ConvPrecision::BF16;
    default: return allow_tf32() ? ConvPrecision::F32Tf32 : ConvPrecision::F32;
  }
}

cudnnDataType_t data_type(Precision p) {
  switch (p) {
    case Precision::F64: return CUDNN_DATA_DOUBLE;
    case Precision::BF16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
  }
}

ConvPlan* plan_for(const Tensor& x, const Tensor& w, const Conv2dOptions& opt, Precision prec) {
  static std::mutex mu;
  static std::map<PlanKey, std::unique_ptr<ConvPlan>> plans;  // never freed: descriptors live for the process
  int n = static_cast<int>(x.size(0)), c = static_cast<int>(x.size(1)), h = static_cast<int>(x.size(2)),
      wd = static_cast<int>(x.size(3));
  int k = static_cast<int>(w.size(0)), kh = static_cast<int>(w.size(2)), kw = static_cast<int>(w.size(3));
  PlanKey key{n, c, h, wd, k, kh, kw, opt.stride[0], opt.stride[1], opt.padding[0], opt.padding[1], opt.dilation[0],
              opt.dilation[1], opt.groups, static_cast<int64_t>(prec), x.device().index};
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = plans[key];
  if (slot) return slot.get();
  auto p = std::make_unique<ConvPlan>();
  cudnnDataType_t dt = data_type(prec);
  // bf16 data accumulates in float; float and double in their own type.
  cudnnDataType_t compute = prec == Precision::F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  NEURN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  NEURN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  NEURN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->bias));
  NEURN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  NEURN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, dt, n, c, h, wd));
  NEURN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, dt, CUDNN_TENSOR_NCHW, k, static_cast<int>(w.size(1)), kh, kw));
  // float32: FMA-only kernels (exact float32, as PyTorch does with TF32 off)
  // unless TF32 is allowed; float64 kernels are exact in any math mode. This
  // is the math type the ranking runs under; each direction then takes its
  // chosen algorithm's.
  p->precision = conv_precision(prec);
  const cudnnMathType_t math = to_cudnn(ranking_math(p->precision));
  for (cudnnConvolutionDescriptor_t* d : {&p->conv_fwd, &p->conv_bwd_data, &p->conv_bwd_filter}) {
    NEURN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(d));
    NEURN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
        *d, static_cast<int>(opt.padding[0]), static_cast<int>(opt.padding[1]), static_cast<int>(opt.stride[0]),
        static_cast<int>(opt.stride[1]), static_cast<int>(opt.dilation[0]), static_cast<int>(opt.dilation[1]),
        CUDNN_CROSS_CORRELATION, compute));
    NEURN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(*d, static_cast<int>(opt.groups)));
    NEURN_CUDNN_CHECK(cudnnSetConvolutionMathType(*d, math));
  }
  int on, oc, oh, ow;
  NEURN_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv_fwd, p->x, p->w, &on, &oc, &oh, &ow));
  NEURN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, dt, on, oc, oh, ow));
  // The bias is added in the output's own precision (float32 under autocast).
  cudnnDataType_t bias_dt = prec == Precision::F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  NEURN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, bias_dt, 1, k, 1, 1));
  slot = std::move(p);
  return slot.get();
}

// Picks from cuDNN's ranking (conv_algo.h: the first entry that ran, fits
// the workspace limit and has a math type the precision allows) and sets the
// direction's descriptor to that entry's math type, which together with the
// algorithm selects the kernel. `Perf` is one of cuDNN's *AlgoPerf_t structs.
template <typename Perf>
decltype(Perf::algo) pick(const Perf* perf, int count, ConvPrecision prec, cudnnConvolutionDescriptor_t conv) {
  std::vector<ConvAlgoCandidate> ranking;
  for (int i = 0; i < count; ++i)
    ranking.push_back({static_cast<int>(perf[i].algo), perf[i].status == CUDNN_STATUS_SUCCESS, perf[i].memory,
                       from_cudnn(perf[i].mathType), perf[i].determinism == CUDNN_DETERMINISTIC});
  ConvAlgoChoice c = choose_conv_algo(ranking, prec, kMaxWorkspace, deterministic());
  NEURN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, to_cudnn(c.math)));
  return static_cast<decltype(Perf::algo)>(c.algo);
}

void choose_forward(ConvPlan& p, const void* x, const void* w, void* y) {
  constexpr int kMax = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
  cudnnConvolutionFwdAlgoPerf_t perf[kMax];
  int count = 0;
  if (cudnn_benchmark()) {
    DeviceBuffer ws(kMaxWorkspace / 4);
    NEURN_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(cudnn(), p.x, x, p.w, w, p.conv_fwd, p.y, y, kMax,
                                                             &count, perf, ws.get(), kMaxWorkspace / 4));
  } else {
    NEURN_CUDNN_CHECK(
        cudnnGetConvolutionForwardAlgorithm_v7(cudnn(), p.x, p.w, p.conv_fwd, p.y, kMax, &count, perf));
  }
  p.fwd = pick(perf, count, p.precision, p.conv_fwd);
  // Asked after the math type is set: the workspace depends on it.
  NEURN_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(cudnn(), p.x, p.w, p.conv_fwd, p.y, p.fwd, &p.fwd_ws));
  p.have_fwd = true;
}

void choose_backward_data(ConvPlan& p, const void* w, const void* dy, void* dx) {
  constexpr int kMax = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
  cudnnConvolutionBwdDataAlgoPerf_t perf[kMax];
  int count = 0;
  if (cudnn_benchmark()) {
    DeviceBuffer ws(kMaxWorkspace / 4);
    NEURN_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(cudnn(), p.w, w, p.y, dy, p.conv_bwd_data, p.x, dx,
                                                                  kMax, &count, perf, ws.get(), kMaxWorkspace / 4));
  } else {
    NEURN_CUDNN_CHECK(
        cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnn(), p.w, p.y, p.conv_bwd_data, p.x, kMax, &count, perf));
  }
  p.bwd_data = pick(perf, count, p.precision, p.conv_bwd_data);
  NEURN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(cudnn(), p.w, p.y, p.conv_bwd_data, p.x, p.bwd_data,
                                                                 &p.bwd_data_ws));
  p.have_bwd_data = true;
}

void choose_backward_filter(ConvPlan& p, const void* x, const void* dy, void* dw) {
  constexpr int kMax = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
  cudnnConvolutionBwdFilterAlgoPerf_t perf[kMax];
  int count = 0;
  if (cudnn_benchmark()) {
    DeviceBuffer ws(kMaxWorkspace / 4);
    NEURN_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnn(), p.x, x, p.y, dy, p.conv_bwd_filter, p.w,
                                                                    dw, kMax, &count, perf, ws.get(),
                                                                    kMaxWorkspace / 4));
  } else {
    NEURN_CUDNN_CHECK(
        cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnn(), p.x, p.y, p.conv_bwd_filter, p.w, kMax, &count, perf));
  }
  p.bwd_filter = pick(perf, count, p.precision, p.conv_bwd_filter);
  NEURN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnn(), p.x, p.y, p.conv_bwd_filter, p.w,
                                                                   p.bwd_filter, &p.bwd_filter_ws));
  p.have_bwd_filter = true;
}

void check_conv_tensor(const Tensor& t, const char* what, const Tensor& x) {
  if (!t.defined()) return;
  NEURN_CHECK(t.device() == x.device(), "conv2d: ", what, " is on ", t.device().str(), " but the input is on ",
              x.device().str());
  NEURN_CHECK(t.dtype() == x.dtype(), "conv2d: ", what, " is ", dtype_name(t.dtype()), " but the input is ",
              dtype_name(x.dtype()));
}

Precision precision_of(const Tensor& x) {
  if (x.dtype() == DType::Float64) return Precision::F64;
  require_float32(x.dtype(), "conv2d");
  return autocast_bf16() ? Precision::BF16 : Precision::F32;
}

// A bf16 copy of a float32 tensor's data (autocast), or its own data. A
// weight's copy comes from autocast's cache (converted once per optimizer
// step, cuda_autocast.h) when the weight is an optimizer's parameter.
struct Operand {
  std::unique_ptr<DeviceBuffer> buf;
  const void* ptr = nullptr;
  Operand(const Tensor& t, Precision prec, bool weight = false) {
    if (prec != Precision::BF16) {
      ptr = t.raw_data();
      return;
    }
    if (weight && (ptr = autocast_weight_bf16(t.raw_data(), t.numel()))) return;
    buf = std::make_unique<DeviceBuffer>(static_cast<size_t>(t.numel()) * sizeof(__nv_bfloat16));
    convert(t.raw_data(), DType::Float32, buf->get(), DType::BFloat16, t.numel());
    ptr = buf->get();
  }
};

// Where cuDNN writes an output: the tensor itself, or a bf16 buffer converted
// to it afterwards (autocast).
struct Result {
  const Tensor& t;
  std::unique_ptr<DeviceBuffer> buf;
  void* ptr;
  Result(const Tensor& out, Precision prec) : t(out), ptr(out.raw_data()) {
    if (prec == Precision::BF16) {
      buf = std::make_unique<DeviceBuffer>(static_cast<size_t>(out.numel()) * sizeof(__nv_bfloat16));
      ptr = buf->get();
    }
  }
  void finish() {
    if (buf) convert(buf->get(), DType::BFloat16, t.raw_data(), DType::Float32, t.numel());
  }
};

void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& y,
                    const Conv2dOptions& opt) {
  check_conv_tensor(weight, "weight", x);
  check_conv_tensor(bias, "bias", x);
  check_conv_tensor(y, "output", x);
  NEURN_CHECK(x.device().is_cuda(), "conv2d (CUDA): input is on ", x.device().str());
  DeviceGuard on_input(x.device().index);
  Precision prec = precision_of(x);
  ConvPlan& p = *plan_for(x, weight, opt, prec);
  Operand xs(x, prec), ws(weight, prec, /*weight=*/true);
  Result out(y, prec);
  if (!p.have_fwd) choose_forward(p, xs.ptr, ws.ptr, out.ptr);
  DeviceBuffer workspace(p.fwd_ws);
  if (prec == Precision::F64) {
    double one = 1.0, zero = 0.0;
    NEURN_CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, p.x, xs.ptr, p.w, ws.ptr, p.conv_fwd, p.fwd,
                                              workspace.get(), p.fwd_ws, &zero, p.y, out.ptr));
    out.finish();
    if (bias.defined()) NEURN_CUDNN_CHECK(cudnnAddTensor(cudnn(), &one, p.bias, bias.raw_data(), &one, p.y, y.raw_data()));
    return;
  }
  float one = 1.0f, zero = 0.0f;
  NEURN_CUDNN_CHECK(cudnnConvolutionForward(cudnn(), &one, p.x, xs.ptr, p.w, ws.ptr, p.conv_fwd, p.fwd,
                                            workspace.get(), p.fwd_ws, &zero, p.y, out.ptr));
  out.finish();
  if (bias.defined()) {
    // Under autocast y is float32 again here: describe it as such for the add.
    if (prec == Precision::BF16) {
      FloatTensorDesc yd(y);
      NEURN_CUDNN_CHECK(cudnnAddTensor(cudnn(), &one, p.bias, bias.raw_data(), &one, yd.get(), y.raw_data()));
    } else {
      NEURN_CUDNN_CHECK(cudnnAddTensor(cudnn(), &one, p.bias, bias.raw_data(), &one, p.y, y.raw_data()));
    }
  }
}

void conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, const Tensor& dx, const Tensor& dweight,
                     const Tensor& dbias, const Conv2dOptions& opt) {
  check_conv_tensor(weight, "weight", x);
  check_conv_tensor(dy, "output gradient", x);
  check_conv_tensor(dx, "input gradient", x);
  check_conv_tensor(dweight, "weight gradient", x);
  check_conv_tensor(dbias, "bias gradient", x);
  NEURN_CHECK(x.device().is_cuda(), "conv2d backward (CUDA): input is on ", x.device().str());
  DeviceGuard on_input(x.device().index);
  Precision prec = precision_of(x);
  ConvPlan& p = *plan_for(x, weight, opt, prec);
  Operand dys(dy, prec);
  double one_d = 1.0, zero_d = 0.0;
  float one_f = 1.0f, zero_f = 0.0f;
  const void* one = prec == Precision::F64 ? static_cast<const void*>(&one_d) : &one_f;
  const void* zero = prec == Precision::F64 ? static_cast<const void*>(&zero_d) : &zero_f;
  if (dbias.defined()) {
    if (prec == Precision::BF16) {  // from the float32 gradient itself
      FloatTensorDesc dyd(dy);
      NEURN_CUDNN_CHECK(cudnnConvolutionBackwardBias(cudnn(), one, dyd.get(), dy.raw_data(), zero, p.bias,
                                                     dbias.raw_data()));
    } else {
      NEURN_CUDNN_CHECK(cudnnConvolutionBackwardBias(cudnn(), one, p.y, dys.ptr, zero, p.bias, dbias.raw_data()));
    }
  }
  if (dx.defined()) {
    Operand ws(weight, prec, /*weight=*/true);
    Result out(dx, prec);
    if (!p.have_bwd_data) choose_backward_data(p, ws.ptr, dys.ptr, out.ptr);
    DeviceBuffer workspace(p.bwd_data_ws);
    NEURN_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn(), one, p.w, ws.ptr, p.y, dys.ptr, p.conv_bwd_data, p.bwd_data,
                                                   workspace.get(), p.bwd_data_ws, zero, p.x, out.ptr));
    out.finish();
  }
  if (dweight.defined()) {
    Operand xs(x, prec);
    Result out(dweight, prec);
    if (!p.have_bwd_filter) choose_backward_filter(p, xs.ptr, dys.ptr, out.ptr);
    DeviceBuffer workspace(p.bwd_filter_ws);
    NEURN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn(), one, p.x, xs.ptr, p.y, dys.ptr, p.conv_bwd_filter, p.bwd_filter,
                                                     workspace.get(), p.bwd_filter_ws, zero, p.w, out.ptr));
    out.finish();
  }
}

// The registered kernels (framework/ops/conv_kernels.h).
void conv2d_cuda(const Conv2dOptions& opt, const Tensor& x, const Tensor& weight, const Tensor& bias,
                 const Tensor& y) {
  conv2d_forward(x, weight, bias, y, opt);
}

void conv2d_backward_cuda(const Conv2dOptions& opt, const Tensor& x, const Tensor& weight, const Tensor& dy,
                          const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  conv2d_backward(x, weight, dy, dx, dweight, dbias, opt);
}

}  // namespace

NEURN_REGISTER_KERNEL(::neurn::conv2d_kernel, DeviceType::CUDA, conv2d_cuda);
NEURN_REGISTER_KERNEL(::neurn::conv2d_backward_kernel, DeviceType::CUDA, conv2d_backward_cuda);

}  // namespace neurn::cuda
