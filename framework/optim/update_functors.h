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

// One element, with bc1 = 1 - beta1^step, bc2 = 1 - beta2^step:
// m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2;
// p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).
template <typename T>
NEURN_HD void adam_update_element(T& p, T g, T& m, T& v, const AdamStep& a, double bc1, double sqrt_bc2) {
  if (a.decoupled) {
    p *= static_cast<T>(1.0 - a.lr * a.weight_decay);
  } else {
    g += static_cast<T>(a.weight_decay) * p;
  }
  m = static_cast<T>(a.beta1) * m + static_cast<T>(1.0 - a.beta1) * g;
  v = static_cast<T>(a.beta2) * v + static_cast<T>(1.0 - a.beta2) * g * g;
  T denom = std::sqrt(v) / static_cast<T>(sqrt_bc2) + static_cast<T>(a.eps);
  p -= static_cast<T>(a.lr / bc1) * m / denom;
}

}  // namespace neurn
