#pragma once
// The element-wise math of the engine, written once: each functor runs in
// the CPU loops (elementwise.cpp) and in the CUDA grids (cuda/elementwise.cu).
// Forward functors map x -> y; backward functors map (x, y, dy) -> dx.
#include <cmath>
#include <cstdint>

#include "framework/hd.h"

namespace neurn {

enum class UnaryKind : uint8_t {
  Neg, Exp, Log, Sqrt, Abs, Square,
  Relu, Relu6, LeakyRelu, Sigmoid, Tanh, Silu, Gelu, GeluTanh, Hardswish, Hardsigmoid,
  PowScalar, AddScalar, MulScalar, RSubScalar, RDivScalar, Clamp,
};

enum class BinaryKind : uint8_t { Add, Sub, Mul, Div, Maximum, Minimum, Pow, Eq, Gt, Lt, Ge, Le };

// p0, p1: the scalar parameters of the kind (slope, exponent, bounds, ...).
struct UnaryParams {
  double p0 = 0.0;
  double p1 = 0.0;
};

namespace fn {

// The float and double overloads of std (usable in device code too); the
// using-declarations also keep neurn's Tensor ops out of the lookup.
using std::erf;
using std::exp;
using std::log;
using std::pow;
using std::sqrt;
using std::tanh;

constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2Pi = 0.3989422804014327;

template <UnaryKind K> struct Unary;

#define NEURN_UNARY(KIND, FWD, BWD)                                          \
  template <> struct Unary<UnaryKind::KIND> {                                \
    double p0, p1;                                                           \
    template <typename T> NEURN_HD T forward(T x) const { FWD; }             \
    template <typename T> NEURN_HD T backward(T x, T y, T g) const { BWD; }  \
  };

template <typename T> NEURN_HD T sigmoid(T x) { return T(1) / (T(1) + exp(-x)); }

NEURN_UNARY(Neg, return -x, return -g)
NEURN_UNARY(Exp, return exp(x), return g * y)
NEURN_UNARY(Log, return log(x), return g / x)
// d sqrt = 1 / (2 sqrt x); taken as 0 where x = 0 (no infinite gradients).
NEURN_UNARY(Sqrt, return sqrt(x), return y > T(0) ? g / (T(2) * y) : T(0))
NEURN_UNARY(Abs, return x < T(0) ? -x : x, return x > T(0) ? g : (x < T(0) ? -g : T(0)))
NEURN_UNARY(Square, return x * x, return T(2) * x * g)
NEURN_UNARY(Relu, return x > T(0) ? x : T(0), return x > T(0) ? g : T(0))
NEURN_UNARY(Relu6, return x > T(0) ? (x < T(6) ? x : T(6)) : T(0), return (x > T(0) && x < T(6)) ? g : T(0))
NEURN_UNARY(LeakyRelu, return x > T(0) ? x : T(p0) * x, return x > T(0) ? g : T(p0) * g)
NEURN_UNARY(Sigmoid, return sigmoid(x), return g * y * (T(1) - y))
NEURN_UNARY(Tanh, return tanh(x), return g * (T(1) - y * y))
NEURN_UNARY(Silu, return x * sigmoid(x), T s = sigmoid(x); return g * s * (T(1) + x * (T(1) - s)))
NEURN_UNARY(Gelu, return T(0.5) * x * (T(1) + erf(x / T(kSqrt2))),
            return g * (T(0.5) * (T(1) + erf(x / T(kSqrt2))) + x * T(kInvSqrt2Pi) * exp(T(-0.5) * x * x)))
NEURN_UNARY(GeluTanh, T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x); return T(0.5) * x * (T(1) + tanh(u)),
            T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
            T t = tanh(u); T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x * x);
            return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du))
NEURN_UNARY(Hardswish, return x <= T(-3) ? T(0) : (x >= T(3) ? x : x * (x + T(3)) / T(6)),
            return x < T(-3) ? T(0) : (x > T(3) ? g : g * (T(2) * x + T(3)) / T(6)))
NEURN_UNARY(Hardsigmoid, return x <= T(-3) ? T(0) : (x >= T(3) ? T(1) : x / T(6) + T(0.5)),
            return (x > T(-3) && x < T(3)) ? g / T(6) : T(0))
NEURN_UNARY(PowScalar, return pow(x, T(p0)), return p0 == 0.0 ? T(0) : g * T(p0) * pow(x, T(p0 - 1.0)))
NEURN_UNARY(AddScalar, return x + T(p0), return g)
NEURN_UNARY(MulScalar, return x * T(p0), return g * T(p0))
NEURN_UNARY(RSubScalar, return T(p0) - x, return -g)
NEURN_UNARY(RDivScalar, return T(p0) / x, return -g * y / x)
// p0, p1: lower and upper bound (+-infinity when absent)
NEURN_UNARY(Clamp, return x < T(p0) ? T(p0) : (x > T(p1) ? T(p1) : x), return (x >= T(p0) && x <= T(p1)) ? g : T(0))

#undef NEURN_UNARY

template <BinaryKind K> struct Binary;
#define NEURN_BINARY(KIND, EXPR) \
  template <> struct Binary<BinaryKind::KIND> { template <typename T> NEURN_HD T operator()(T a, T b) const { EXPR; } };
NEURN_BINARY(Add, return a + b)
NEURN_BINARY(Sub, return a - b)
NEURN_BINARY(Mul, return a * b)
NEURN_BINARY(Div, return a / b)
NEURN_BINARY(Maximum, return a > b ? a : b)
NEURN_BINARY(Minimum, return a < b ? a : b)
NEURN_BINARY(Pow, return pow(a, b))
NEURN_BINARY(Eq, return a == b ? T(1) : T(0))
NEURN_BINARY(Gt, return a > b ? T(1) : T(0))
NEURN_BINARY(Lt, return a < b ? T(1) : T(0))
NEURN_BINARY(Ge, return a >= b ? T(1) : T(0))
NEURN_BINARY(Le, return a <= b ? T(1) : T(0))
#undef NEURN_BINARY

}  // namespace fn

// Calls f(functor) with the functor of `kind`; the switch runs once per op,
// never inside a loop.
template <typename F>
decltype(auto) visit_unary(UnaryKind kind, UnaryParams p, F&& f) {
  switch (kind) {
#define NEURN_CASE(K) case UnaryKind::K: return f(fn::Unary<UnaryKind::K>{p.p0, p.p1});
    NEURN_CASE(Neg) NEURN_CASE(Exp) NEURN_CASE(Log) NEURN_CASE(Sqrt) NEURN_CASE(Abs) NEURN_CASE(Square)
    NEURN_CASE(Relu) NEURN_CASE(Relu6) NEURN_CASE(LeakyRelu) NEURN_CASE(Sigmoid) NEURN_CASE(Tanh) NEURN_CASE(Silu)
    NEURN_CASE(Gelu) NEURN_CASE(GeluTanh) NEURN_CASE(Hardswish) NEURN_CASE(Hardsigmoid) NEURN_CASE(PowScalar)
    NEURN_CASE(AddScalar) NEURN_CASE(MulScalar) NEURN_CASE(RSubScalar) NEURN_CASE(RDivScalar) NEURN_CASE(Clamp)
#undef NEURN_CASE
  }
  return f(fn::Unary<UnaryKind::Neg>{p.p0, p.p1});
}

template <typename F>
decltype(auto) visit_binary(BinaryKind kind, F&& f) {
  switch (kind) {
#define NEURN_CASE(K) case BinaryKind::K: return f(fn::Binary<BinaryKind::K>{});
    NEURN_CASE(Add) NEURN_CASE(Sub) NEURN_CASE(Mul) NEURN_CASE(Div) NEURN_CASE(Maximum) NEURN_CASE(Minimum)
    NEURN_CASE(Pow) NEURN_CASE(Eq) NEURN_CASE(Gt) NEURN_CASE(Lt) NEURN_CASE(Ge) NEURN_CASE(Le)
#undef NEURN_CASE
  }
  return f(fn::Binary<BinaryKind::Add>{});
}

// Index arithmetic of a broadcast over up to three operands: the output shape
// and each operand's strides in it (0 along broadcast axes).
struct BroadcastIndex {
  static constexpr int kMaxDims = 8;
  int ndim = 0;
  int64_t numel = 1;
  int64_t shape[kMaxDims] = {};
  int64_t strides[3][kMaxDims] = {};
};

}  // namespace neurn
