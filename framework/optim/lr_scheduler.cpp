#include "framework/optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace neurn {

StepLr::StepLr(int64_t step_size, double gamma) : step_size_(step_size), gamma_(gamma) {
  NEURN_CHECK(step_size > 0, "StepLr: step_size must be positive, got ", step_size);
}

double StepLr::lr_at(double base_lr, int64_t step) const {
  return base_lr * std::pow(gamma_, static_cast<double>(step / step_size_));
}

CosineLr::CosineLr(int64_t t_max, double eta_min) : t_max_(t_max), eta_min_(eta_min) {
  NEURN_CHECK(t_max > 0, "CosineLr: t_max must be positive, got ", t_max);
}

double CosineLr::lr_at(double base_lr, int64_t step) const {
  double t = static_cast<double>(std::min(step, t_max_));
  return eta_min_ + (base_lr - eta_min_) * (1.0 + std::cos(M_PI * t / static_cast<double>(t_max_))) / 2.0;
}

LinearWarmup::LinearWarmup(int64_t warmup_steps, double start_factor, LrSchedulePtr after)
    : warmup_steps_(warmup_steps), start_factor_(start_factor), after_(std::move(after)) {
  NEURN_CHECK(warmup_steps >= 0, "LinearWarmup: warmup_steps must not be negative, got ", warmup_steps);
  NEURN_CHECK(start_factor >= 0.0 && start_factor <= 1.0, "LinearWarmup: start_factor ", start_factor,
              " is outside [0, 1]");
}

double LinearWarmup::lr_at(double base_lr, int64_t step) const {
  if (step < warmup_steps_) {
    double f = start_factor_ + (1.0 - start_factor_) * static_cast<double>(step) / static_cast<double>(warmup_steps_);
    return base_lr * f;
  }
  return after_ ? after_->lr_at(base_lr, step - warmup_steps_) : base_lr;
}

LrScheduler::LrScheduler(Optimizer& opt, LrSchedulePtr schedule) : opt_(opt), schedule_(std::move(schedule)) {
  NEURN_CHECK(schedule_, "LrScheduler: no schedule given");
  apply();
}

void LrScheduler::step() {
  ++step_;
  apply();
}

void LrScheduler::apply() {
  for (auto& g : opt_.groups()) g.lr = schedule_->lr_at(g.initial_lr, step_);
}

NamedTensors LrScheduler::state_dict() const {
  return {{"scheduler.step", full({}, static_cast<double>(step_), {DType::Int64})}};
}

void LrScheduler::load_state_dict(const NamedTensors& state) {
  bool found = false;
  for (const auto& [key, t] : state) {
    NEURN_CHECK(key == "scheduler.step", "LrScheduler.load_state_dict: unknown key ", key);
    NEURN_CHECK(t.defined() && t.numel() == 1, "LrScheduler.load_state_dict: ", key, " must be a scalar");
    step_ = static_cast<int64_t>(t.item());
    found = true;
  }
  NEURN_CHECK(found, "LrScheduler.load_state_dict: no scheduler.step entry");
  apply();
}

ReduceLrOnPlateau::ReduceLrOnPlateau(Optimizer& opt, PlateauOptions o) : opt_(opt), o_(o) {
  NEURN_CHECK(o.factor > 0.0 && o.factor < 1.0, "ReduceLrOnPlateau: factor ", o.factor, " must lie in (0, 1)");
  NEURN_CHECK(o.patience >= 0 && o.cooldown >= 0, "ReduceLrOnPlateau: patience ", o.patience, " and cooldown ",
              o.cooldown, " must not be negative");
  best_ = o.maximize ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
}

bool ReduceLrOnPlateau::step(double metric) {
  ++steps_;
  // Relative threshold, measured on |best| so that it also means "better" for
  // negative metrics.
  double margin = std::isinf(best_) ? 0.0 : std::abs(best_) * o_.threshold;
  bool better = o_.maximize ? metric > best_ + margin : metric < best_ - margin;
  if (better) {
    best_ = metric;
    num_bad_ = 0;
  } else {
    ++num_bad_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_ = 0;
  }
  if (num_bad_ <= o_.patience) return false;
  bool reduced = false;
  for (auto& g : opt_.groups()) {
    double new_lr = std::max(g.lr * o_.factor, o_.min_lr);
    if (g.lr - new_lr > 1e-12) {
      double scale = new_lr / g.lr;
      g.lr = new_lr;
      g.initial_lr *= scale;
      reduced = true;
    }
  }
  cooldown_counter_ = o_.cooldown;
  num_bad_ = 0;
  return reduced;
}

NamedTensors ReduceLrOnPlateau::state_dict() const {
  return {{"plateau.best", full({}, best_, {DType::Float64})},
          {"plateau.num_bad", full({}, static_cast<double>(num_bad_), {DType::Int64})},
          {"plateau.cooldown_counter", full({}, static_cast<double>(cooldown_counter_), {DType::Int64})},
          {"plateau.steps", full({}, static_cast<double>(steps_), {DType::Int64})}};
}

void ReduceLrOnPlateau::load_state_dict(const NamedTensors& state) {
  for (const auto& [key, t] : state) {
    NEURN_CHECK(t.defined() && t.numel() == 1, "ReduceLrOnPlateau.load_state_dict: ", key, " must be a scalar");
    if (key == "plateau.best") best_ = t.item();
    else if (key == "plateau.num_bad") num_bad_ = static_cast<int64_t>(t.item());
    else if (key == "plateau.cooldown_counter") cooldown_counter_ = static_cast<int64_t>(t.item());
    else if (key == "plateau.steps") steps_ = static_cast<int64_t>(t.item());
    else NEURN_FAIL("ReduceLrOnPlateau.load_state_dict: unknown key ", key);
  }
}

}  // namespace neurn
