#pragma once
#include "framework/optim/optimizer.h"

namespace neurn {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;  // L2: added to the gradient
  bool nesterov = false;
};

// Stochastic gradient descent with momentum and Nesterov momentum, PyTorch's
// formulation (framework/optim/update_functors.h). State: momentum_buffer.
class Sgd : public Optimizer {
 public:
  Sgd(std::vector<Tensor> params, SgdOptions opt = {});
  Sgd(std::vector<ParamGroup> groups, SgdOptions opt = {});
  void step() override;
  const SgdOptions& options() const { return opt_; }

 protected:
  std::vector<std::string> state_names() const override { return {"momentum_buffer"}; }

 private:
  SgdOptions opt_;
};

}  // namespace neurn
