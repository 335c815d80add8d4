// conv2d: validation, FLOP count and the kernel tables (conv_kernels.h); the
// CPU kernels registered here are im2col + OpenBLAS gemm
// (framework/ops/conv_cpu.h), with a direct loop when each output channel
// reads a single input channel (depthwise); CUDA's are in cuda/conv.cu.
#include "framework/ops/conv.h"

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/conv_cpu.h"
#include "framework/ops/conv_kernels.h"

namespace neurn {

int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation, bool ceil_mode) {
  int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;  // last valid window start
  if (span < 0 || stride <= 0) return 0;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // Ceil mode may add a window; it must still start inside the input or its
  // left padding (PyTorch's rule), else it is dropped.
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

namespace {

cpu::ConvGeom conv_geometry(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& opt) {
  NEURN_CHECK(x.defined() && w.defined(), "conv2d: undefined input or weight");
  NEURN_CHECK(x.dim() == 4, "conv2d: input must be 4-D (N, C_in, H, W), got ", shape_str(x.shape()));
  NEURN_CHECK(w.dim() == 4, "conv2d: weight must be 4-D (C_out, C_in / groups, kH, kW), got ", shape_str(w.shape()));
  NEURN_CHECK(x.dtype() == w.dtype(), "conv2d: input is ", dtype_name(x.dtype()), " but weight is ",
              dtype_name(w.dtype()));
  NEURN_CHECK(x.device() == w.device(), "conv2d: input is on ", x.device().str(), " but weight is on ",
              w.device().str());
  NEURN_CHECK(opt.groups >= 1, "conv2d: groups must be >= 1, got ", opt.groups);
  for (int i = 0; i < 2; ++i) {
    NEURN_CHECK(opt.stride[i] >= 1 && opt.dilation[i] >= 1 && opt.padding[i] >= 0,
                "conv2d: stride and dilation must be >= 1 and padding >= 0, got stride (", opt.stride[0], ", ",
                opt.stride[1], "), padding (", opt.padding[0], ", ", opt.padding[1], "), dilation (", opt.dilation[0],
                ", ", opt.dilation[1], ")");
  }
  cpu::ConvGeom g;
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.Cout = w.size(0), g.kh = w.size(2), g.kw = w.size(3);
  g.sh = opt.stride[0], g.sw = opt.stride[1], g.ph = opt.padding[0], g.pw = opt.padding[1];
  g.dh = opt.dilation[0], g.dw = opt.dilation[1], g.groups = opt.groups;
  NEURN_CHECK(g.C % g.groups == 0, "conv2d: groups=", g.groups, " does not divide the input channels C_in=", g.C,
              " (input ", shape_str(x.shape()), ")");
  NEURN_CHECK(g.Cout % g.groups == 0, "conv2d: groups=", g.groups, " does not divide the output channels C_out=",
              g.Cout, " (weight ", shape_str(w.shape()), ")");
  NEURN_CHECK(w.size(1) * g.groups == g.C, "conv2d: weight ", shape_str(w.shape()), " expects ", w.size(1),
              " input channels per group (", w.size(1) * g.groups, " with groups=", g.groups, "), but the input ",
              shape_str(x.shape()), " has C_in=", g.C);
  NEURN_CHECK(g.kh >= 1 && g.kw >= 1, "conv2d: empty kernel in weight ", shape_str(w.shape()));
  if (b.defined()) {
    NEURN_CHECK(b.dim() == 1 && b.size(0) == g.Cout, "conv2d: bias must have shape ", shape_str({g.Cout}), " for weight ",
                shape_str(w.shape()), ", got ", shape_str(b.shape()));
    NEURN_CHECK(b.dtype() == x.dtype() && b.device() == x.device(), "conv2d: bias is ", dtype_name(b.dtype()), " on ",
                b.device().str(), ", input is ", dtype_name(x.dtype()), " on ", x.device().str());
  }
  int64_t ekh = g.dh * (g.kh - 1) + 1, ekw = g.dw * (g.kw - 1) + 1;
  NEURN_CHECK(ekh <= g.H + 2 * g.ph && ekw <= g.W + 2 * g.pw, "conv2d: kernel ", g.kh, "x", g.kw, " (dilated ", ekh,
              "x", ekw, ") is larger than the padded input ", g.H + 2 * g.ph, "x", g.W + 2 * g.pw, " (input ",
              shape_str(x.shape()), ", weight ", shape_str(w.shape()), ", padding (", g.ph, ", ", g.pw, "))");
  g.Ho = conv_out_size(g.H, g.kh, g.sh, g.ph, g.dh);
  g.Wo = conv_out_size(g.W, g.kw, g.sw, g.pw, g.dw);
  return g;
}

// The geometry of a conv2d from its tensors: input x, weight, and the
// output (or output gradient) y, whose shape holds H_out, W_out.
cpu::ConvGeom geom_of(const Conv2dOptions& opt, const Tensor& x, const Tensor& w, const Tensor& y) {
  cpu::ConvGeom g;
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.Cout = w.size(0), g.kh = w.size(2), g.kw = w.size(3);
  g.sh = opt.stride[0], g.sw = opt.stride[1], g.ph = opt.padding[0], g.pw = opt.padding[1];
  g.dh = opt.dilation[0], g.dw = opt.dilation[1], g.groups = opt.groups;
  g.Ho = y.size(2), g.Wo = y.size(3);
  return g;
}

template <typename T>
T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

void conv2d_cpu(const Conv2dOptions& opt, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  const cpu::ConvGeom g = geom_of(opt, x, w, y);
  dispatch_float(x.dtype(), "conv2d", [&](auto z) {
    using T = decltype(z);
    cpu::conv2d_forward<T>(g, x.data<T>(), w.data<T>(), data_or_null<T>(b), y.data<T>());
  });
}

void conv2d_backward_cpu(const Conv2dOptions& opt, const Tensor& x, const Tensor& w, const Tensor& dy,
                         const Tensor& dx, const Tensor& dw, const Tensor& db) {
  const cpu::ConvGeom g = geom_of(opt, x, w, dy);
  dispatch_float(w.dtype(), "conv2d backward", [&](auto z) {
    using T = decltype(z);
    // x's data only for dw: with dw undefined x may be a tensor that only
    // gives the shape (conv_transpose2d's forward).
    cpu::conv2d_backward<T>(g, dw.defined() ? x.data<T>() : nullptr, w.data<T>(), dy.data<T>(), data_or_null<T>(dx),
                            data_or_null<T>(dw), data_or_null<T>(db));
  });
}

}  // namespace

NEURN_DEFINE_KERNEL(conv2d_kernel);
NEURN_DEFINE_KERNEL(conv2d_backward_kernel);
NEURN_REGISTER_KERNEL(conv2d_kernel, DeviceType::CPU, conv2d_cpu);
NEURN_REGISTER_KERNEL(conv2d_backward_kernel, DeviceType::CPU, conv2d_backward_cpu);

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt) {
  cpu::ConvGeom g = conv_geometry(x, weight, bias, opt);
  Tensor y = Tensor::empty({g.N, g.Cout, g.Ho, g.Wo}, x.options());  // (N, C_out, H_out, W_out)
  count_flops(2 * g.N * g.Cout * g.P() * g.K() + (bias.defined() ? g.N * g.Cout * g.P() : 0));
  if (y.numel() > 0) conv2d_kernel(x.device(), opt, x, weight, bias, y);
  SavedTensor xs(x, "conv2d", "input"), ws(weight, "conv2d", "weight");
  bool need_x = x.requires_grad(), need_w = weight.requires_grad(), need_b = bias.defined() && bias.requires_grad();
  return attach_grad(y, "conv2d", {x, weight, bias},
                     [xs, ws, g, opt, need_x, need_w, need_b](const Tensor& dy) -> std::vector<Tensor> {
                       const Tensor &xd = xs.get(), &wd = ws.get();
                       Tensor dx = need_x ? Tensor::empty(xd.shape(), xd.options()) : Tensor();
                       Tensor dw = need_w ? Tensor::empty(wd.shape(), wd.options()) : Tensor();
                       Tensor db = need_b ? Tensor::empty({g.Cout}, wd.options()) : Tensor();
                       conv2d_backward_kernel(xd.device(), opt, xd, wd, dy, dx, dw, db);
                       return {dx, dw, db};
                     });
}

}  // namespace neurn
