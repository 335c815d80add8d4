#pragma once
#include "framework/random.h"
#include "layers/module.h"

namespace neurn {

// Inverted dropout in training, identity in eval. Draws from `gen` (the
// default generator when null; the generator must outlive the layer).
// Token "Dropout".
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Dropout"; }
  double p() const { return p_; }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace neurn
