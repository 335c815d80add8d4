#pragma once
// Adam for a weight-entangled supernet: each step updates only the box of
// each parameter that the sampled subnet used (ActiveSlice). Plain Adam
// would treat the rest of a sliced tensor as gradient 0 and still decay its
// moments and move its values by m / sqrt(v) from earlier steps; here an
// element outside the box keeps its value, exp_avg and exp_avg_sq exactly.
//
// Bias correction is per element: "step_count" (a tensor of the parameter's
// shape) counts the updates each element received, so an element behaves as
// if Adam had only seen the steps that used it (the "lazy Adam" of sparse
// embeddings). The arithmetic is Adam's (framework/optim/update_functors.h).
// Parameters without a gradient are skipped, as by Adam; a parameter with a
// gradient and no box given is updated whole.
//
// The state lives on the parameter's device. On the CPU a loop over the
// box's contiguous runs; on CUDA one kernel per parameter over the box's
// elements (framework/cuda/optim.cu, slice_adam_update), the same element
// arithmetic (update_functors.h), nothing copied to the host.
#include <map>
#include <vector>

#include "framework/optim/adam.h"
#include "nas/autoformer/supernet.h"

namespace neurn::autoformer {

class SliceAdam : public Optimizer {
 public:
  SliceAdam(std::vector<Tensor> params, AdamOptions opt = {});
  // The boxes of the next step() (replaces the previous ones).
  void set_active(const std::vector<ActiveSlice>& slices);
  void step() override;
  const AdamOptions& options() const { return opt_; }

 protected:
  // step: calls of step() that updated the parameter; step_count: per element.
  std::vector<std::string> state_names() const override { return {"step", "exp_avg", "exp_avg_sq", "step_count"}; }

 private:
  AdamOptions opt_;
  std::map<const TensorImpl*, Shape> active_;
};

}  // namespace neurn::autoformer
