// conv_transpose2d: validation, FLOP count and dispatch. A transposed
// convolution is the input gradient of the conv2d that maps its output shape
// back to its input shape with the same weight, so it runs on conv2d's own
// kernels with the roles swapped (with y the transposed conv's output):
//   forward        y  = conv2d backward-data (weight, dy := x)
//   d/dx           dx = conv2d forward (dy_t, weight)
//   d/dweight      dw = conv2d backward-filter (input := dy_t, dy := x)
// through conv2d's kernel tables (framework/ops/conv_kernels.h): im2col/col2im
// + OpenBLAS on the CPU, cuDNN on CUDA, where backward-data is the forward of
// a transposed convolution.
#include "framework/ops/conv_transpose.h"

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/conv.h"
#include "framework/ops/conv_cpu.h"
#include "framework/ops/conv_kernels.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

int64_t conv_transpose_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation,
                                int64_t output_padding) {
  return (in - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1;
}

namespace {

// The geometry of the equivalent conv2d: its input is the transposed conv's
// output (N, C_out, H_out, W_out), its output the transposed conv's input.
cpu::ConvGeom transpose_geometry(const Tensor& x, const Tensor& w, const Tensor& b, const ConvTranspose2dOptions& opt) {
  NEURN_CHECK(x.defined() && w.defined(), "conv_transpose2d: undefined input or weight");
  NEURN_CHECK(x.dim() == 4, "conv_transpose2d: input must be 4-D (N, C_in, H, W), got ", shape_str(x.shape()));
  NEURN_CHECK(w.dim() == 4, "conv_transpose2d: weight must be 4-D (C_in, C_out / groups, kH, kW), got ",
              shape_str(w.shape()));
  NEURN_CHECK(x.dtype() == w.dtype(), "conv_transpose2d: input is ", dtype_name(x.dtype()), " but weight is ",
              dtype_name(w.dtype()));
  NEURN_CHECK(x.device() == w.device(), "conv_transpose2d: input is on ", x.device().str(), " but weight is on ",
              w.device().str());
  NEURN_CHECK(opt.groups >= 1, "conv_transpose2d: groups must be >= 1, got ", opt.groups);
  for (int i = 0; i < 2; ++i) {
    NEURN_CHECK(opt.stride[i] >= 1 && opt.dilation[i] >= 1 && opt.padding[i] >= 0,
                "conv_transpose2d: stride and dilation must be >= 1 and padding >= 0, got stride (", opt.stride[0],
                ", ", opt.stride[1], "), padding (", opt.padding[0], ", ", opt.padding[1], "), dilation (",
                opt.dilation[0], ", ", opt.dilation[1], ")");
    // PyTorch also allows output_padding < dilation with a smaller stride; the
    // equivalent conv2d would then not map back to the input size, so neurn
    // asks for output_padding < stride (every up-sampling use satisfies it).
    NEURN_CHECK(opt.output_padding[i] >= 0 && opt.output_padding[i] < opt.stride[i],
                "conv_transpose2d: output_padding must be in [0, stride), got output_padding (", opt.output_padding[0],
                ", ", opt.output_padding[1], ") with stride (", opt.stride[0], ", ", opt.stride[1], ")");
  }
  const int64_t cin = x.size(1), groups = opt.groups;
  NEURN_CHECK(w.size(0) == cin, "conv_transpose2d: weight ", shape_str(w.shape()),
              " (C_in, C_out / groups, kH, kW) expects C_in=", w.size(0), ", but the input ", shape_str(x.shape()),
              " has ", cin, " channels");
  NEURN_CHECK(cin % groups == 0, "conv_transpose2d: groups=", groups, " does not divide the input channels C_in=", cin);
  NEURN_CHECK(w.size(2) >= 1 && w.size(3) >= 1 && w.size(1) >= 1, "conv_transpose2d: empty weight ",
              shape_str(w.shape()));
  cpu::ConvGeom g;
  g.N = x.size(0), g.C = w.size(1) * groups, g.Cout = cin;
  g.kh = w.size(2), g.kw = w.size(3);
  g.sh = opt.stride[0], g.sw = opt.stride[1], g.ph = opt.padding[0], g.pw = opt.padding[1];
  g.dh = opt.dilation[0], g.dw = opt.dilation[1], g.groups = groups;
  g.Ho = x.size(2), g.Wo = x.size(3);
  g.H = conv_transpose_out_size(g.Ho, g.kh, g.sh, g.ph, g.dh, opt.output_padding[0]);
  g.W = conv_transpose_out_size(g.Wo, g.kw, g.sw, g.pw, g.dw, opt.output_padding[1]);
  NEURN_CHECK(g.H >= 1 && g.W >= 1, "conv_transpose2d: input ", shape_str(x.shape()), " with weight ",
              shape_str(w.shape()), ", stride (", g.sh, ", ", g.sw, "), padding (", g.ph, ", ", g.pw,
              ") gives an empty output ", g.H, "x", g.W);
  if (b.defined()) {
    NEURN_CHECK(b.dim() == 1 && b.size(0) == g.C, "conv_transpose2d: bias must have shape ", shape_str({g.C}),
                " (C_out) for weight ", shape_str(w.shape()), " and groups=", groups, ", got ", shape_str(b.shape()));
    NEURN_CHECK(b.dtype() == x.dtype() && b.device() == x.device(), "conv_transpose2d: bias is ",
                dtype_name(b.dtype()), " on ", b.device().str(), ", input is ", dtype_name(x.dtype()), " on ",
                x.device().str());
  }
  return g;
}

Conv2dOptions conv_options(const ConvTranspose2dOptions& o) {
  Conv2dOptions c;
  c.stride = o.stride, c.padding = o.padding, c.dilation = o.dilation, c.groups = o.groups;
  return c;
}

}  // namespace

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvTranspose2dOptions& opt) {
  const cpu::ConvGeom g = transpose_geometry(x, weight, bias, opt);
  const Conv2dOptions copt = conv_options(opt);
  Tensor y = Tensor::empty({g.N, g.C, g.H, g.W}, x.options());  // (N, C_out, H_out, W_out)
  // Every input value meets every tap of its group's C_out / groups filters:
  // the same multiply-adds as the equivalent conv2d.
  count_flops(2 * g.N * g.Cout * g.P() * g.K());
  // y's shape describes the equivalent conv2d's input; its data is not read.
  if (y.numel() > 0) conv2d_backward_kernel(x.device(), copt, y, weight, x, y, {}, {});
  if (bias.defined()) {  // counts its N C_out H_out W_out additions, on meta too
    NoGradGuard no_grad;
    y = add(y, reshape(bias.detach(), {1, g.C, 1, 1}));
  }
  SavedTensor xs(x, "conv_transpose2d", "input"), ws(weight, "conv_transpose2d", "weight");
  bool need_x = x.requires_grad(), need_w = weight.requires_grad(), need_b = bias.defined() && bias.requires_grad();
  return attach_grad(y, "conv_transpose2d", {x, weight, bias},
                     [xs, ws, copt, need_x, need_w, need_b](const Tensor& dy) -> std::vector<Tensor> {
                       const Tensor &xd = xs.get(), &wd = ws.get();
                       // dy (N, C_out, H_out, W_out)
                       NoGradGuard no_grad;
                       Tensor dx = need_x ? Tensor::empty(xd.shape(), xd.options()) : Tensor();
                       Tensor dw = need_w ? Tensor::empty(wd.shape(), wd.options()) : Tensor();
                       Tensor db = need_b ? sum(dy, {0, 2, 3}) : Tensor();
                       if (!need_x && !need_w) return {dx, dw, db};
                       if (need_x) conv2d_kernel(xd.device(), copt, dy, wd, {}, dx);
                       if (need_w) conv2d_backward_kernel(xd.device(), copt, dy, wd, xd, {}, dw, {});
                       return {dx, dw, db};
                     });
}

}  // namespace neurn
