#pragma once
#include "framework/tensor.h"

namespace neurn {

class Generator;

Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);

enum class Reduction { Mean, Sum, None };

// log_probs (N, C), target int64 (N) with values in [0, C) -> scalar (or (N)).
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction = Reduction::Mean);
// logits (N, C), target int64 (N). label_smoothing eps mixes the one-hot
// target with the uniform distribution: (1 - eps) onehot + eps / C.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0,
                     Reduction reduction = Reduction::Mean);

// Inverted dropout: in training, zeroes each element with probability p and
// scales the rest by 1 / (1 - p); identity otherwise.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

}  // namespace neurn
