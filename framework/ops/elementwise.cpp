#include "framework/ops/elementwise.h"

#include <limits>
#include <type_traits>

#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops/activation.h"
#include "framework/ops/elementwise_cpu.h"
#include "framework/ops/elementwise_kernels.h"
#include "framework/ops/reduce.h"

namespace neurn {

namespace cpu {

BroadcastIndex make_broadcast_index(const Shape& out, const Shape* inputs[], int n_inputs) {
  BroadcastIndex idx;
  NEURN_CHECK(out.size() <= static_cast<size_t>(BroadcastIndex::kMaxDims), "element-wise ops support at most ",
              BroadcastIndex::kMaxDims, " dimensions, got ", shape_str(out));
  idx.ndim = static_cast<int>(out.size());
  idx.numel = shape_numel(out);
  for (int d = 0; d < idx.ndim; ++d) idx.shape[d] = out[d];
  for (int k = 0; k < n_inputs; ++k) {
    const Shape& s = *inputs[k];
    int lead = idx.ndim - static_cast<int>(s.size());
    int64_t stride = 1;
    for (int d = idx.ndim - 1; d >= 0; --d) {
      int64_t size = d >= lead ? s[d - lead] : 1;
      idx.strides[k][d] = (size == 1) ? 0 : stride;
      stride *= size;
    }
  }
  return idx;
}

BroadcastIndex make_broadcast_index(const Shape& out, const Tensor* inputs[], int n_inputs) {
  BroadcastIndex idx;
  NEURN_CHECK(out.size() <= static_cast<size_t>(BroadcastIndex::kMaxDims), "element-wise ops support at most ",
              BroadcastIndex::kMaxDims, " dimensions, got ", shape_str(out));
  idx.ndim = static_cast<int>(out.size());
  idx.numel = shape_numel(out);
  for (int d = 0; d < idx.ndim; ++d) idx.shape[d] = out[d];
  for (int k = 0; k < n_inputs; ++k) {
    const Shape& s = inputs[k]->shape();
    const std::vector<int64_t>& st = inputs[k]->strides();
    const int lead = idx.ndim - static_cast<int>(s.size());
    for (int d = 0; d < idx.ndim; ++d) idx.strides[k][d] = d >= lead && s[d - lead] != 1 ? st[d - lead] : 0;
  }
  return idx;
}

BroadcastIndex coalesce(const BroadcastIndex& idx) {
  BroadcastIndex r;
  r.numel = idx.numel;
  for (int d = 0; d < idx.ndim; ++d) {
    if (idx.shape[d] == 1) continue;  // its stride never multiplies a non-zero coordinate
    bool merge = r.ndim > 0;
    for (int k = 0; k < 3 && merge; ++k) merge = r.strides[k][r.ndim - 1] == idx.strides[k][d] * idx.shape[d];
    if (merge) {
      // The kept outer axis absorbs axis d: it now steps by d's stride.
      r.shape[r.ndim - 1] *= idx.shape[d];
      for (int k = 0; k < 3; ++k) r.strides[k][r.ndim - 1] = idx.strides[k][d];
    } else {
      r.shape[r.ndim] = idx.shape[d];
      for (int k = 0; k < 3; ++k) r.strides[k][r.ndim] = idx.strides[k][d];
      ++r.ndim;
    }
  }
  return r;  // ndim 0 only when numel is 1: a size-0 axis is never dropped
}

}  // namespace cpu

namespace {

void check_pair(const Tensor& a, const Tensor& b, const char* op) {
  NEURN_CHECK(a.defined() && b.defined(), op, ": undefined input");
  NEURN_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", dtype_name(a.dtype()), " ", shape_str(a.shape()), " and ",
              dtype_name(b.dtype()), " ", shape_str(b.shape()));
  NEURN_CHECK(a.device() == b.device(), op, ": tensors are on different devices: ", a.device().str(), " and ",
              b.device().str());
}

Tensor unary_forward(const Tensor& x, UnaryKind kind, UnaryParams p, const char* op) {
  NEURN_CHECK(x.defined(), op, ": undefined input");
  Tensor y = Tensor::empty(x.shape(), x.options());
  count_flops(x.numel());
  if (x.numel() > 0) unary_kernel(x.device(), kind, p, x, y);
  return y;
}

Tensor unary_backward(const Tensor& x, const Tensor& y, const Tensor& g, UnaryKind kind, UnaryParams p) {
  // The gradient autograd made for this node alone (a conv's or batch
  // norm's fresh dx) becomes dx in place: no allocation, and one stream of
  // memory fewer (its lines are read and written back; a fresh dx is also
  // read for ownership before it is written). Same functor, same bits.
  // (The kinds that read neither x nor y get g in their place: not reused.)
  const bool reuse = detail::sole_owner(g) && g.dtype() == x.dtype() && g.device() == x.device() &&
                     g.shape() == x.shape() && x.storage() != g.storage() && y.storage() != g.storage();
  Tensor dx = reuse ? g : Tensor::empty(x.shape(), x.options());
  if (x.numel() > 0) unary_backward_kernel(x.device(), kind, p, x, y, g, dx);
  return dx;
}

// ---- CPU kernels ------------------------------------------------------------------

// relu's float32 loops, the most called element-wise loops of a CNN step, in
// one copy per instruction set picked at load time (GCC's function
// multiversioning, as reduce.cpp's sums): the rest of the library is built
// for baseline x86-64 (4-lane SSE2), and on tensors that sit in L1/L2 (the
// deep layers' 32K-131K floats) an AVX2 copy ran 20-30 % faster in a
// standalone loop (no gain at 2 MB and above, where memory bounds it). Each
// element is relu's functor, a select, so every copy gives the same bits.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NEURN_RELU_CLONES __attribute__((target_clones("avx2", "default"), flatten))
#else
#define NEURN_RELU_CLONES
#endif

using ReluFn = fn::Unary<UnaryKind::Relu>;

NEURN_RELU_CLONES void relu_f32(const float* __restrict x, float* __restrict y, int64_t n) {
  const ReluFn f{};
  for (int64_t i = 0; i < n; ++i) y[i] = f.forward(x[i]);
}

// x: relu's input or output (the backward tests only its sign).
NEURN_RELU_CLONES void relu_backward_f32(const float* __restrict x, const float* __restrict g, float* __restrict dx,
                                         int64_t n) {
  const ReluFn f{};
  for (int64_t i = 0; i < n; ++i) dx[i] = f.backward(x[i], x[i], g[i]);
}

NEURN_RELU_CLONES void relu_backward_inplace_f32(const float* __restrict x, float* __restrict g_dx, int64_t n) {
  const ReluFn f{};
  for (int64_t i = 0; i < n; ++i) g_dx[i] = f.backward(x[i], x[i], g_dx[i]);
}

template <typename T, typename F>
constexpr bool is_relu_f32 = std::is_same_v<T, float> && std::is_same_v<F, ReluFn>;

// x may be a view (a strided table); y is contiguous.
void unary_cpu(UnaryKind kind, UnaryParams p, const Tensor& x, const Tensor& y) {
  dispatch_float(x.dtype(), "unary", [&](auto z) {
    using T = decltype(z);
    visit_unary(kind, p, [&](auto f) {
      if (x.is_contiguous()) {
        if constexpr (is_relu_f32<T, decltype(f)>) {
          const float* px = x.data<float>();
          float* py = y.data<float>();
          cpu::parallel_for(x.numel(), 1, [&](int64_t b, int64_t e) { relu_f32(px + b, py + b, e - b); });
          return;
        }
        cpu::unary_loop<T>(f, x.data<T>(), y.data<T>(), x.numel(), cpu::unary_cost(kind));
        return;
      }
      const Tensor* operands[1] = {&x};
      const BroadcastIndex idx = cpu::coalesce(cpu::make_broadcast_index(x.shape(), operands, 1));
      const T* px = x.strided_data<T>();
      T* py = y.data<T>();
      const int64_t sx = idx.ndim ? idx.strides[0][idx.ndim - 1] : 0;
      cpu::parallel_segments(idx, cpu::unary_cost(kind), [&](int64_t o, int64_t i, int64_t, int64_t, int64_t len) {
        for (int64_t e = 0; e < len; ++e) py[o + e] = f.forward(px[i + e * sx]);
      });
    });
  });
}

void unary_backward_cpu(UnaryKind kind, UnaryParams p, const Tensor& x, const Tensor& y, const Tensor& g,
                        const Tensor& dx) {
  dispatch_float(x.dtype(), "unary backward", [&](auto z) {
    using T = decltype(z);
    visit_unary(kind, p, [&](auto f) {
      if constexpr (is_relu_f32<T, decltype(f)>) {
        // relu's backward reads only x's sign (x is its input or output).
        const float* px = x.data<float>();
        const float* pg = g.data<float>();
        float* pd = dx.data<float>();
        if (pd == pg)
          cpu::parallel_for(x.numel(), 1, [&](int64_t b, int64_t e) { relu_backward_inplace_f32(px + b, pd + b, e - b); });
        else
          cpu::parallel_for(x.numel(), 1, [&](int64_t b, int64_t e) { relu_backward_f32(px + b, pg + b, pd + b, e - b); });
        return;
      }
      cpu::unary_backward_loop<T>(f, x.data<T>(), y.data<T>(), g.data<T>(), dx.data<T>(), x.numel(),
                                  cpu::unary_cost(kind));
    });
  });
}

void binary_cpu(BinaryKind kind, const Tensor& a, const Tensor& b, const Tensor& out, const BroadcastIndex& idx) {
  dispatch_float(a.dtype(), "binary", [&](auto z) {
    using T = decltype(z);
    visit_binary(kind, [&](auto f) {
      cpu::binary_loop<T>(f, a.strided_data<T>(), b.strided_data<T>(), out.data<T>(), idx, cpu::binary_cost(kind));
    });
  });
}

// The operands never overlap (the front checks it), so the pointers are
// restrict; the three loops are binary_loop's for Add with out = dst.
void accumulate_cpu(const Tensor& dst, const Tensor& src, const BroadcastIndex& idx) {
  dispatch_float(dst.dtype(), "accumulate", [&](auto z) {
    using T = decltype(z);
    T* pd = dst.data<T>();
    const T* ps = src.strided_data<T>();
    const fn::Binary<BinaryKind::Add> f;
    const int64_t ss = idx.ndim ? idx.strides[0][idx.ndim - 1] : 0;
    cpu::parallel_segments(idx, 1, [&](int64_t o, int64_t i, int64_t, int64_t, int64_t len) {
      T* __restrict d = pd + o;
      const T* __restrict sp = ps + i;
      if (ss == 1) {
        for (int64_t k = 0; k < len; ++k) d[k] = f(d[k], sp[k]);
      } else if (ss == 0) {
        const T v = *sp;
        for (int64_t k = 0; k < len; ++k) d[k] = f(d[k], v);
      } else {
        for (int64_t k = 0; k < len; ++k) d[k] = f(d[k], sp[k * ss]);
      }
    });
  });
}

void where_cpu(const Tensor& c, const Tensor& a, const Tensor& b, const Tensor& out, const BroadcastIndex& idx) {
  dispatch_float(a.dtype(), "where", [&](auto z) {
    using T = decltype(z);
    const T *pc = c.strided_data<T>(), *pa = a.strided_data<T>(), *pb = b.strided_data<T>();
    T* po = out.data<T>();
    const int nd = idx.ndim;
    const int64_t sc = nd ? idx.strides[0][nd - 1] : 0, sa = nd ? idx.strides[1][nd - 1] : 0,
                  sb = nd ? idx.strides[2][nd - 1] : 0;
    cpu::parallel_segments(idx, 1, [&](int64_t o, int64_t i, int64_t j, int64_t k, int64_t len) {
      for (int64_t e = 0; e < len; ++e) po[o + e] = pc[i + e * sc] != T(0) ? pa[j + e * sa] : pb[k + e * sb];
    });
  });
}

}  // namespace

// unary, binary and where read their inputs through the strides (views need
// no copy); the backward of a unary op gets contiguous tensors.
NEURN_DEFINE_STRIDED_KERNEL(unary_kernel);
NEURN_DEFINE_KERNEL(unary_backward_kernel);
NEURN_DEFINE_STRIDED_KERNEL(binary_kernel);
NEURN_DEFINE_STRIDED_KERNEL(where_kernel);
NEURN_DEFINE_STRIDED_KERNEL(accumulate_kernel);
NEURN_REGISTER_KERNEL(unary_kernel, DeviceType::CPU, unary_cpu);
NEURN_REGISTER_KERNEL(unary_backward_kernel, DeviceType::CPU, unary_backward_cpu);
NEURN_REGISTER_KERNEL(binary_kernel, DeviceType::CPU, binary_cpu);
NEURN_REGISTER_KERNEL(where_kernel, DeviceType::CPU, where_cpu);
NEURN_REGISTER_KERNEL(accumulate_kernel, DeviceType::CPU, accumulate_cpu);

// Which operands the backward functor of a kind reads. Relu and Relu6 test
// only the sign or range of x, which their output answers the same way
// (y > 0 iff x > 0; 0 < y < 6 iff 0 < x < 6), so they keep y: the next layer
// usually keeps it anyway, and x can be freed.
enum class Operands { None, X, Y, Both };

Operands backward_operands(UnaryKind k) {
  switch (k) {
    case UnaryKind::Neg:
    case UnaryKind::AddScalar:
    case UnaryKind::MulScalar:
    case UnaryKind::RSubScalar:
      return Operands::None;
    case UnaryKind::Exp:
    case UnaryKind::Sqrt:
    case UnaryKind::Sigmoid:
    case UnaryKind::Tanh:
    case UnaryKind::Relu:
    case UnaryKind::Relu6:
      return Operands::Y;
    case UnaryKind::RDivScalar:
      return Operands::Both;
    default:
      return Operands::X;
  }
}

// Exposed to activation.cpp.
Tensor unary_op(const Tensor& x, UnaryKind kind, UnaryParams p, const char* op) {
  Tensor y = unary_forward(x, kind, p, op);
  if (!any_requires_grad({x})) return y;
  const Operands need = backward_operands(kind);
  const bool keep_x = need == Operands::X || need == Operands::Both;
  const bool keep_y = need == Operands::Y || need == Operands::Both;
  SavedTensor xs(keep_x ? x : Tensor(), op, "input"), ys(keep_y ? y : Tensor(), op, "output");
  return attach_grad(y, op, {x}, [xs, ys, kind, p, op](const Tensor& g) -> std::vector<Tensor> {
    // An operand the functor does not read is filled by one of the same
    // shape that it ignores (the kernels take both pointers).
    const Tensor &xv = xs.get(), &yv = ys.get();
    const Tensor& a = xv.defined() ? xv : (yv.defined() ? yv : g);
    const Tensor& b = yv.defined() ? yv : a;
    return {unary_backward(a, b, g, kind, p)};
  });
}

namespace {

Tensor binary_forward(const Tensor& a, const Tensor& b, BinaryKind kind, const char* op) {
  check_pair(a, b, op);
  Shape out_shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(out_shape, a.options());
  count_flops(out.numel());
  if (out.numel() == 0) return out;
  const Tensor* operands[2] = {&a, &b};
  BroadcastIndex idx = cpu::coalesce(cpu::make_broadcast_index(out_shape, operands, 2));
  binary_kernel(a.device(), kind, a, b, out, idx);
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, BinaryKind::Add, "add");
  Shape sa = a.shape(), sb = b.shape();
  return attach_grad(out, "add", {a, b}, [sa, sb](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to_shape(g, sa), sum_to_shape(g, sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, BinaryKind::Sub, "sub");
  Shape sa = a.shape(), sb = b.shape();
  return attach_grad(out, "sub", {a, b}, [sa, sb](const Tensor& g) -> std::vector<Tensor> {
    return {sum_to_shape(g, sa), sum_to_shape(neg(g), sb)};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, BinaryKind::Mul, "mul");
  bool ga = a.requires_grad(), gb = b.requires_grad();
  // da = g b needs only b, db = g a only a.
  SavedTensor as(gb ? a : Tensor(), "mul", "input"), bs(ga ? b : Tensor(), "mul", "other");
  Shape sa = a.shape(), sb = b.shape();
  return attach_grad(out, "mul", {a, b}, [as, bs, sa, sb, ga, gb](const Tensor& g) -> std::vector<Tensor> {
    return {ga ? sum_to_shape(mul(g, bs.get()), sa) : Tensor(), gb ? sum_to_shape(mul(g, as.get()), sb) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, BinaryKind::Div, "div");
  bool ga = a.requires_grad(), gb = b.requires_grad();
  // da = g / b needs b; db = -g a / b^2 needs both.
  SavedTensor as(gb ? a : Tensor(), "div", "input"), bs(b, "div", "other");
  Shape sa = a.shape();
  return attach_grad(out, "div", {a, b}, [as, bs, sa, ga, gb](const Tensor& g) -> std::vector<Tensor> {
    const Tensor &ad = as.get(), &bd = bs.get();
    Tensor da, db;
    if (ga) da = sum_to_shape(div(g, bd), sa);
    if (gb) db = sum_to_shape(neg(div(mul(g, ad), mul(bd, bd))), bd.shape());
    return {da, db};
  });
}

namespace {
// maximum/minimum: the gradient goes to the selected input; on ties it is
// split evenly between both (the subgradient PyTorch uses).
Tensor select_binary(const Tensor& a, const Tensor& b, BinaryKind kind, const char* op) {
  Tensor out = binary_forward(a, b, kind, op);
  SavedTensor as(a, op, "input"), bs(b, op, "other");
  BinaryKind wins = kind == BinaryKind::Maximum ? BinaryKind::Gt : BinaryKind::Lt;
  return attach_grad(out, op, {a, b}, [as, bs, wins, op](const Tensor& g) -> std::vector<Tensor> {
    const Tensor &ad = as.get(), &bd = bs.get();
    Tensor a_wins = binary_forward(ad, bd, wins, op);
    Tensor tie = mul(binary_forward(ad, bd, BinaryKind::Eq, op), 0.5);
    Tensor wa = add(a_wins, tie);
    Tensor wb = rsub(1.0, wa);
    return {sum_to_shape(mul(g, wa), ad.shape()), sum_to_shape(mul(g, wb), bd.shape())};
  });
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return select_binary(a, b, BinaryKind::Maximum, "maximum"); }
Tensor minimum(const Tensor& a, const Tensor& b) { return select_binary(a, b, BinaryKind::Minimum, "minimum"); }

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(a, b, BinaryKind::Pow, "pow");
  bool ga = a.requires_grad(), gb = b.requires_grad();
  // da = g b a^(b-1) needs a and b; db = g a^b log a needs a and the output.
  SavedTensor as(a, "pow", "input"), bs(ga ? b : Tensor(), "pow", "exponent"), os(gb ? out : Tensor(), "pow", "output");
  Shape sb = b.shape();
  return attach_grad(out, "pow", {a, b}, [as, bs, os, sb, ga, gb](const Tensor& g) -> std::vector<Tensor> {
    const Tensor &ad = as.get(), &bd = bs.get(), &od = os.get();
    Tensor da, db;
    // d/da a^b = b a^(b-1); d/db a^b = a^b log a
    if (ga) da = sum_to_shape(mul(g, mul(bd, binary_forward(ad, sub(bd, 1.0), BinaryKind::Pow, "pow"))), ad.shape());
    if (gb) db = sum_to_shape(mul(g, mul(od, log(ad))), sb);
    return {da, db};
  });
}

Tensor add(const Tensor& a, double s) { return unary_op(a, UnaryKind::AddScalar, {s, 0}, "add"); }
Tensor sub(const Tensor& a, double s) { return unary_op(a, UnaryKind::AddScalar, {-s, 0}, "sub"); }
Tensor mul(const Tensor& a, double s) { return unary_op(a, UnaryKind::MulScalar, {s, 0}, "mul"); }
Tensor div(const Tensor& a, double s) { return unary_op(a, UnaryKind::MulScalar, {1.0 / s, 0}, "div"); }
Tensor rsub(double s, const Tensor& a) { return unary_op(a, UnaryKind::RSubScalar, {s, 0}, "rsub"); }
Tensor rdiv(double s, const Tensor& a) { return unary_op(a, UnaryKind::RDivScalar, {s, 0}, "rdiv"); }
Tensor pow(const Tensor& a, double e) { return unary_op(a, UnaryKind::PowScalar, {e, 0}, "pow"); }

Tensor neg(const Tensor& x) { return unary_op(x, UnaryKind::Neg, {}, "neg"); }
Tensor exp(const Tensor& x) { return unary_op(x, UnaryKind::Exp, {}, "exp"); }
Tensor log(const Tensor& x) { return unary_op(x, UnaryKind::Log, {}, "log"); }
Tensor sqrt(const Tensor& x) { return unary_op(x, UnaryKind::Sqrt, {}, "sqrt"); }
Tensor abs(const Tensor& x) { return unary_op(x, UnaryKind::Abs, {}, "abs"); }
Tensor square(const Tensor& x) { return unary_op(x, UnaryKind::Square, {}, "square"); }

Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi) {
  double inf = std::numeric_limits<double>::infinity();
  double l = lo.value_or(-inf), h = hi.value_or(inf);
  NEURN_CHECK(l <= h, "clamp: lower bound ", l, " is above upper bound ", h);
  return unary_op(x, UnaryKind::Clamp, {l, h}, "clamp");
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_pair(a, b, "where");
  NEURN_CHECK(cond.device() == a.device(), "where: condition is on ", cond.device().str(), ", values on ",
              a.device().str());
  Tensor c = cond.dtype() == a.dtype() ? cond : cond.to(a.dtype());
  Shape out_shape = broadcast_shapes(broadcast_shapes(c.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(out_shape, a.options());
  count_flops(out.numel());
  if (out.numel() > 0) {
    const Tensor* operands[3] = {&c, &a, &b};
    BroadcastIndex idx = cpu::coalesce(cpu::make_broadcast_index(out_shape, operands, 3));
    where_kernel(a.device(), c, a, b, out, idx);
  }
  SavedTensor cs(c, "where", "condition");
  Shape sa = a.shape(), sb = b.shape();
  return attach_grad(out, "where", {a, b}, [cs, sa, sb](const Tensor& g) -> std::vector<Tensor> {
    const Tensor& cd = cs.get();
    Tensor z = zeros_like(g);
    return {sum_to_shape(where(cd, g, z), sa), sum_to_shape(where(cd, z, g), sb)};
  });
}

Tensor eq(const Tensor& a, const Tensor& b) { return binary_forward(a, b, BinaryKind::Eq, "eq"); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_forward(a, b, BinaryKind::Gt, "gt"); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_forward(a, b, BinaryKind::Lt, "lt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_forward(a, b, BinaryKind::Ge, "ge"); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_forward(a, b, BinaryKind::Le, "le"); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double s) { return add(a, s); }
Tensor operator-(const Tensor& a, double s) { return sub(a, s); }
Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
Tensor operator/(const Tensor& a, double s) { return div(a, s); }
Tensor operator+(double s, const Tensor& a) { return add(a, s); }
Tensor operator-(double s, const Tensor& a) { return rsub(s, a); }
Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
Tensor operator/(double s, const Tensor& a) { return rdiv(s, a); }
Tensor Tensor::operator-() const { return neg(*this); }

namespace detail {
void accumulate_(const Tensor& dst, const Tensor& src) {
  check_pair(dst, src, "accumulate_");
  NEURN_CHECK(dst.is_contiguous(), "accumulate_: the destination ", shape_str(dst.shape()), " is not contiguous");
  NEURN_CHECK(dst.storage() != src.storage(), "accumulate_: the destination ", shape_str(dst.shape()),
              " and the source ", shape_str(src.shape()), " share storage");
  NEURN_CHECK(broadcast_shapes(dst.shape(), src.shape(), "accumulate_") == dst.shape(), "accumulate_: ",
              shape_str(src.shape()), " does not broadcast to the destination ", shape_str(dst.shape()));
  count_flops(dst.numel());
  dst.bump_version();
  if (dst.numel() == 0 || dst.device().is_meta()) return;
  const Tensor* operands[1] = {&src};
  const BroadcastIndex idx = cpu::coalesce(cpu::make_broadcast_index(dst.shape(), operands, 1));
  accumulate_kernel(dst.device(), dst, src, idx);
}
}  // namespace detail

void add_(const Tensor& a, const Tensor& b, double alpha) {
  NoGradGuard no_grad;
  // One pass in place where it can be (the same sums as add then copy_).
  if (alpha == 1.0 && a.defined() && b.defined() && a.is_contiguous() && a.dtype() == b.dtype() &&
      a.device() == b.device() && a.storage() != b.storage() && !a.device().is_meta() &&
      broadcast_shapes(a.shape(), b.shape(), "add_") == a.shape()) {
    detail::accumulate_(a, b);
    return;
  }
  Tensor bb = alpha == 1.0 ? b : mul(b, alpha);
  Tensor r = add(a, bb);
  NEURN_CHECK(r.shape() == a.shape(), "add_: ", shape_str(b.shape()), " does not broadcast to the destination ",
              shape_str(a.shape()));
  a.copy_(r);
}

void mul_(const Tensor& a, double s) {
  NoGradGuard no_grad;
  a.copy_(mul(a, s));
}

// ---- activations ------------------------------------------------------------------

Tensor relu(const Tensor& x) { return unary_op(x, UnaryKind::Relu, {}, "relu"); }
Tensor relu6(const Tensor& x) { return unary_op(x, UnaryKind::Relu6, {}, "relu6"); }
Tensor leaky_relu(const Tensor& x, double slope) { return unary_op(x, UnaryKind::LeakyRelu, {slope, 0}, "leaky_relu"); }
Tensor sigmoid(const Tensor& x) { return unary_op(x, UnaryKind::Sigmoid, {}, "sigmoid"); }
Tensor tanh(const Tensor& x) { return unary_op(x, UnaryKind::Tanh, {}, "tanh"); }
Tensor silu(const Tensor& x) { return unary_op(x, UnaryKind::Silu, {}, "silu"); }
Tensor gelu(const Tensor& x, GeluApprox approx) {
  return approx == GeluApprox::Tanh ? unary_op(x, UnaryKind::GeluTanh, {}, "gelu") : unary_op(x, UnaryKind::Gelu, {}, "gelu");
}
Tensor hardswish(const Tensor& x) { return unary_op(x, UnaryKind::Hardswish, {}, "hardswish"); }
Tensor hardsigmoid(const Tensor& x) { return unary_op(x, UnaryKind::Hardsigmoid, {}, "hardsigmoid"); }

}  // namespace neurn
