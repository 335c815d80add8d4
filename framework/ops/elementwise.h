#pragma once
// Element-wise ops with NumPy broadcasting. Inputs must share dtype and
// device; the result has the broadcast shape. Differentiable unless noted.
#include <optional>

#include "framework/tensor.h"

namespace neurn {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties: gradient split evenly
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);      // a > 0 where b is not an integer

Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor rsub(double s, const Tensor& a);   // s - a
Tensor rdiv(double s, const Tensor& a);   // s / a
Tensor pow(const Tensor& a, double exponent);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);    // gradient 0 at 0
Tensor square(const Tensor& x);
// Clamps to [lo, hi] (either may be absent); gradient passes where lo <= x <= hi.
Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi);
// cond != 0 picks a, else b; cond broadcasts like a and b, gets no gradient.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// Comparisons: 1 where true, 0 elsewhere, in the inputs' dtype; no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);

// In place, never recorded by autograd (optimizers, running statistics):
// a += alpha * b (b broadcast to a), a *= s.
void add_(const Tensor& a, const Tensor& b, double alpha = 1.0);
void mul_(const Tensor& a, double s);

namespace detail {
// dst += src in place, never recorded, bit for bit add(dst, src): dst must be
// contiguous, of src's dtype and device, and share no storage with src; src
// broadcasts to dst's shape. Autograd sums gradients with it.
void accumulate_(const Tensor& dst, const Tensor& src);
}  // namespace detail

}  // namespace neurn
