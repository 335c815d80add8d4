#pragma once
// Optimizers: parameter groups with their own learning rate and weight decay,
// per-parameter state (momentum, Adam moments) saved and restored as named
// tensors so a checkpoint can carry it, and gradient clipping by global norm.
// Updates run in place on the parameters' data, outside autograd.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace neurn {

// A group of parameters given to an optimizer; unset fields take the
// optimizer's defaults.
struct ParamGroup {
  std::vector<Tensor> params;
  std::optional<double> lr = std::nullopt;
  std::optional<double> weight_decay = std::nullopt;
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  struct Group {
    std::vector<Tensor> params;
    double lr = 0.0;
    double weight_decay = 0.0;
    // The lr that schedules start from (lr at construction; ReduceLrOnPlateau
    // scales it so that it composes with a warm-up schedule).
    double initial_lr = 0.0;
  };

  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient.
  virtual void step() = 0;
  // Drops the gradients of all parameters.
  void zero_grad();

  std::vector<Group>& groups() { return groups_; }
  const std::vector<Group>& groups() const { return groups_; }
  // The lr of group 0, and a setter for every group.
  double lr() const { return groups_.at(0).lr; }
  void set_lr(double lr);
  // All parameters, group by group (the order of the "state.<k>" names).
  std::vector<Tensor> parameters() const;

  // The state as named tensors:
  //   param_groups.<g>.lr, .initial_lr, .weight_decay  float64 scalars
  //   param_groups.<g>.params                          int64 scalar (count)
  //   state.<k>.<name>                                 per parameter k (flat over groups)
  // where <name> is momentum_buffer (SGD) or step, exp_avg, exp_avg_sq (Adam).
  NamedTensors state_dict() const;
  // Restores a state_dict of an optimizer of the same kind over parameters of
  // the same shapes; buffers are copied to each parameter's device and dtype.
  // Errors name the offending key.
  void load_state_dict(const NamedTensors& state);

 protected:
  Optimizer(std::vector<ParamGroup> groups, double default_lr, double default_weight_decay, const char* name);
  // The state names this optimizer keeps per parameter.
  virtual std::vector<std::string> state_names() const = 0;

  // Per parameter, flat over groups: state name -> tensor.
  std::vector<std::map<std::string, Tensor>> state_;
  std::vector<Group> groups_;
  const char* name_;
};

// Scales all gradients by max_norm / (total_norm + 1e-6) when their global L2
// norm exceeds max_norm (PyTorch's clip_grad_norm_). Parameters without a
// gradient are skipped. Returns the norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace neurn
