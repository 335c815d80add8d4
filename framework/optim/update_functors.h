#pragma once
// The per-element arithmetic of the optimizer updates, written once: the CPU
// loops (sgd.cpp, adam.cpp) and the CUDA fused kernels (cuda_optim.h) run the
// same functions, so CPU tests check the arithmetic the GPU runs.
// The formulas are PyTorch's (torch.optim.SGD, Adam, AdamW documentation).
#include <cmath>
#include <cstdint>

#include "framework/hd.h"

namespace neurn {

struct SgdStep {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool first_step = false;  // the momentum buffer starts as the first gradient
};

// The per-step constants of an SGD update in the parameters' type. On the
// first step keep = 0 and damp = 1, so buf = d (the buffer starts at zero).
template <typename T>
struct SgdCoeffs {
  T lr, weight_decay, momentum, keep, damp;
  NEURN_HD explicit SgdCoeffs(const SgdStep& s)
      : lr(static_cast<T>(s.lr)),
        weight_decay(static_cast<T>(s.weight_decay)),
        momentum(static_cast<T>(s.momentum)),
        keep(static_cast<T>(s.first_step ? 0.0 : s.momentum)),
        damp(static_cast<T>(s.first_step ? 1.0 : 1.0 - s.dampening)) {}
};

// One element: d = g + wd p; buf = first ? d : momentum buf + (1 - dampening) d;
// d = nesterov ? d + momentum buf : buf; p -= lr d. The flags are template
// arguments so that the CPU loop has no branch (it vectorises); buf is unused
// (may be null) without momentum, and must start at zero.
template <bool kMomentum, bool kNesterov, typename T>
NEURN_HD void sgd_update_element(T& p, T g, T* buf, const SgdCoeffs<T>& c) {
  T d = g + c.weight_decay * p;
  if constexpr (kMomentum) {
    T b = c.keep * (*buf) + c.damp * d;
    *buf = b;
    d = kNesterov ? d + c.momentum * b : b;
  }
  p -= c.lr * d;
}

template <typename T>
NEURN_HD void sgd_update_element(T& p, T g, T* buf, const SgdStep& s) {
  const SgdCoeffs<T> c(s);
  if (s.momentum == 0.0) {
    sgd_update_element<false, false, T>(p, g, buf, c);
  } else if (s.nesterov) {
    sgd_update_element<true, true, T>(p, g, buf, c);
  } else {
    sgd_update_element<true, false, T>(p, g, buf, c);
  }
}

struct AdamStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled = false;  // AdamW: p *= 1 - lr wd instead of g += wd p
  int64_t step = 1;        // 1 on the first update (bias corrections)
};

// The per-step constants of an Adam update in the parameters' type, so the
// element loop does no double arithmetic and has no branch (it vectorises):
// l2 is the weight decay added to the gradient (Adam), decay the factor that
// shrinks the parameter (AdamW); the other is neutral (0, 1).
template <typename T>
struct AdamCoeffs {
  T beta1, one_minus_beta1, beta2, one_minus_beta2, eps, step_size, inv_sqrt_bc2, l2, decay;
  NEURN_HD AdamCoeffs(const AdamStep& a, double bc1, double sqrt_bc2)
      : beta1(static_cast<T>(a.beta1)),
        one_minus_beta1(static_cast<T>(1.0 - a.beta1)),
        beta2(static_cast<T>(a.beta2)),
        one_minus_beta2(static_cast<T>(1.0 - a.beta2)),
        eps(static_cast<T>(a.eps)),
        step_size(static_cast<T>(a.lr / bc1)),
        inv_sqrt_bc2(static_cast<T>(1.0 / sqrt_bc2)),
        l2(static_cast<T>(a.decoupled ? 0.0 : a.weight_decay)),
        decay(static_cast<T>(a.decoupled ? 1.0 - a.lr * a.weight_decay : 1.0)) {}
};

// One element, with bc1 = 1 - beta1^step, bc2 = 1 - beta2^step:
// g += l2 p (Adam); p *= 1 - lr wd (AdamW);
// m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
// p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).
template <typename T>
NEURN_HD void adam_update_element(T& p, T g, T& m, T& v, const AdamCoeffs<T>& c) {
  g += c.l2 * p;
  p *= c.decay;
  m = c.beta1 * m + c.one_minus_beta1 * g;
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  p -= c.step_size * m / (std::sqrt(v) * c.inv_sqrt_bc2 + c.eps);
}

template <typename T>
NEURN_HD void adam_update_element(T& p, T g, T& m, T& v, const AdamStep& a, double bc1, double sqrt_bc2) {
  adam_update_element<T>(p, g, m, v, AdamCoeffs<T>(a, bc1, sqrt_bc2));
}

}  // namespace neurn
