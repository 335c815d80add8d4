#pragma once
#include "layers/module.h"

namespace neurn {

// Passes its input through; a placeholder, not a layer of the trace.
class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
};

}  // namespace neurn
