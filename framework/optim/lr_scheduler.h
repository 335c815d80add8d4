#pragma once
// Learning-rate schedules. A schedule is a pure function (base lr, step) ->
// lr, so schedules compose (a linear warm-up in front of any other); an
// LrScheduler applies one to every parameter group of an optimizer, from each
// group's initial_lr. ReduceLrOnPlateau reacts to a metric instead.
#include <cstdint>
#include <memory>

#include "framework/optim/optimizer.h"

namespace neurn {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  // The lr at `step` (0 = before the first step) for a group whose lr
  // started at base_lr.
  virtual double lr_at(double base_lr, int64_t step) const = 0;
};

using LrSchedulePtr = std::shared_ptr<const LrSchedule>;

// base_lr throughout.
class ConstantLr : public LrSchedule {
 public:
  double lr_at(double base_lr, int64_t) const override { return base_lr; }
};

// base_lr * gamma^floor(step / step_size) (PyTorch's StepLR).
class StepLr : public LrSchedule {
 public:
  StepLr(int64_t step_size, double gamma = 0.1);
  double lr_at(double base_lr, int64_t step) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// Cosine annealing from base_lr to eta_min over t_max steps (the closed form
// of PyTorch's CosineAnnealingLR): eta_min + (base - eta_min) (1 + cos(pi t /
// t_max)) / 2; it stays at eta_min after t_max.
class CosineLr : public LrSchedule {
 public:
  CosineLr(int64_t t_max, double eta_min = 0.0);
  double lr_at(double base_lr, int64_t step) const override;

 private:
  int64_t t_max_;
  double eta_min_;
};

// Linear warm-up: the factor grows linearly from start_factor at step 0 to 1
// at step warmup_steps; from there on `after` runs with its steps counted from
// the end of the warm-up (ConstantLr when null).
class LinearWarmup : public LrSchedule {
 public:
  LinearWarmup(int64_t warmup_steps, double start_factor = 0.0, LrSchedulePtr after = nullptr);
  double lr_at(double base_lr, int64_t step) const override;

 private:
  int64_t warmup_steps_;
  double start_factor_;
  LrSchedulePtr after_;
};

// Applies a schedule to every group: lr = schedule(group.initial_lr, step).
// The constructor sets the lr of step 0; step() advances by one (an epoch or
// an iteration, as the caller counts).
class LrScheduler {
 public:
  LrScheduler(Optimizer& opt, LrSchedulePtr schedule);
  void step();
  int64_t last_step() const { return step_; }
  // scheduler.step (int64 scalar); load re-applies the schedule at that step.
  NamedTensors state_dict() const;
  void load_state_dict(const NamedTensors& state);

 private:
  void apply();
  Optimizer& opt_;
  LrSchedulePtr schedule_;
  int64_t step_ = 0;
};

struct PlateauOptions {
  bool maximize = false;    // false: the metric should go down (a loss)
  double factor = 0.1;      // lr *= factor on a plateau
  int64_t patience = 10;    // steps without improvement tolerated
  double threshold = 1e-4;  // relative: better means < best - |best| threshold (> best + ... to maximize)
  int64_t cooldown = 0;     // steps to wait after a reduction before counting again
  double min_lr = 0.0;
};

// PyTorch's ReduceLROnPlateau (relative threshold mode, taken on |best|). A reduction scales
// each group's lr and initial_lr, so it composes with an LrScheduler (e.g. a
// warm-up) driving the same optimizer.
class ReduceLrOnPlateau {
 public:
  ReduceLrOnPlateau(Optimizer& opt, PlateauOptions o = {});
  // Feeds one metric value; returns whether the lr was reduced.
  bool step(double metric);
  double best() const { return best_; }
  int64_t num_bad_steps() const { return num_bad_; }
  // plateau.best, plateau.num_bad, plateau.cooldown_counter, plateau.steps
  NamedTensors state_dict() const;
  void load_state_dict(const NamedTensors& state);

 private:
  Optimizer& opt_;
  PlateauOptions o_;
  double best_;
  int64_t num_bad_ = 0;
  int64_t cooldown_counter_ = 0;
  int64_t steps_ = 0;
};

}  // namespace neurn
