#pragma once
// Optimizers: parameter groups with their own learning rate and weight decay,
// per-parameter state (momentum, Adam moments) saved and restored as named
// tensors so a checkpoint can carry it, and gradient clipping by global norm.
// Updates run in place on the parameters' data, outside autograd.
#include <algorithm>
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
  // step() updates all parameters of a device and dtype in one loop (one
  // threaded CPU loop, one CUDA launch: framework/optim/multi_tensor.h), the
  // default; off, one loop per parameter. The results are the same bit for
  // bit (the update is element-wise); only the speed differs.
  void set_multi_tensor(bool on) { multi_tensor_ = on; }
  bool multi_tensor() const { return multi_tensor_; }

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
  bool multi_tensor_ = true;
};

// Marks a parameter as written by an update: its version moves (graphs that
// saved it throw) and bf16 autocast drops its converted copy (the next
// forward converts the new values once).
void note_updated(const Tensor& param);

// Runs `kernel` over `slots` (each with a .param), one call per device and
// dtype in multi-tensor mode, else one call per slot.
template <typename Slot, typename Kernel>
void run_update(std::vector<Slot>& slots, const Kernel& kernel, bool multi_tensor) {
  for (Slot& s : slots) note_updated(s.param);
  if (!multi_tensor) {
    for (Slot& s : slots) kernel(s.param.device(), std::vector<Slot>{s});
    return;
  }
  std::vector<std::vector<Slot>> buckets;  // few: one per device and dtype in use
  for (Slot& s : slots) {
    auto same = [&](const std::vector<Slot>& b) {
      return b[0].param.device() == s.param.device() && b[0].param.dtype() == s.param.dtype();
    };
    auto it = std::find_if(buckets.begin(), buckets.end(), same);
    if (it == buckets.end()) buckets.push_back({s});
    else it->push_back(s);
  }
  for (const auto& b : buckets) kernel(b[0].param.device(), b);
}

// Scales all gradients by max_norm / (total_norm + 1e-6) when their global L2
// norm exceeds max_norm (PyTorch's clip_grad_norm_). Parameters without a
// gradient are skipped. Returns the norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace neurn
