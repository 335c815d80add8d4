#pragma once
#include "framework/optim/optimizer.h"

namespace neurn {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

// Adam (Kingma and Ba, 2015) with L2 weight decay added to the gradient, and
// AdamW (Loshchilov and Hutter, 2019) with decoupled weight decay; PyTorch's
// formulation (framework/optim/update_functors.h). State per parameter: step,
// exp_avg, exp_avg_sq.
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions opt = {});
  Adam(std::vector<ParamGroup> groups, AdamOptions opt = {});
  void step() override;
  const AdamOptions& options() const { return opt_; }

 protected:
  Adam(std::vector<ParamGroup> groups, AdamOptions opt, bool decoupled, const char* name);
  std::vector<std::string> state_names() const override { return {"step", "exp_avg", "exp_avg_sq"}; }

 private:
  AdamOptions opt_;
  bool decoupled_;
};

// AdamW: PyTorch's default weight decay is 0.01.
struct AdamWOptions : AdamOptions {
  AdamWOptions() { weight_decay = 0.01; }
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions opt = {});
  AdamW(std::vector<ParamGroup> groups, AdamWOptions opt = {});
};

}  // namespace neurn
