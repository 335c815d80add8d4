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

// One element: d = g + wd p; buf = first ? d : momentum buf + (1 - dampening) d;
// d = nesterov ? d + momentum buf : buf; p -= lr d. buf is unused (may be
// null) when momentum == 0.
template <typename T>
NEURN_HD void sgd_update_element(T& p, T g, T* buf, const SgdStep& s) {
  T d = g + static_cast<T>(s.weight_decay) * p;
  if (s.momentum != 0.0) {
    T b = s.first_step ? d : static_cast<T>(s.momentum) * (*buf) + static_cast<T>(1.0 - s.dampening) * d;
    *buf = b;
    d = s.nesterov ? d + static_cast<T>(s.momentum) * b : b;
  }
  p -= static_cast<T>(s.lr) * d;
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
