#pragma once
// Where new parameters live and how their first values are drawn.
//
// A ParamScope sets, for the layers constructed on this thread while it lives,
// the device and dtype of their parameters and buffers and the generator their
// initial values come from. It plays the part of PyTorch's
// `with torch.device("meta")`: a model built under ParamScope({.device =
// Device::meta()}) has every shape and no memory, which is how the registry
// counts VGG19's 143M parameters for free. Ops still take their device from
// their inputs; the scope only decides where constructors put new tensors.
#include <cstdint>

#include "framework/random.h"
#include "framework/tensor.h"

namespace neurn {

class ParamScope {
 public:
  explicit ParamScope(TensorOptions opt, Generator* gen = nullptr);
  ~ParamScope();
  ParamScope(const ParamScope&) = delete;
  ParamScope& operator=(const ParamScope&) = delete;

 private:
  TensorOptions prev_opt_;
  Generator* prev_gen_;
};

// While it lives (on this thread), new_uniform, new_normal and
// new_kaiming_uniform give zeros instead of drawing: for model builders that
// re-initialise every weight they create with the reference's own scheme
// (drawing VGG19's 140M values twice costs seconds). Layers keep a
// reset_parameters() for the ones a builder wants at the default.
class DeferInit {
 public:
  DeferInit();
  ~DeferInit();
  DeferInit(const DeferInit&) = delete;
  DeferInit& operator=(const DeferInit&) = delete;

 private:
  bool prev_;
};

// The scope's dtype and device (float32 on the CPU outside any scope).
TensorOptions param_options();
// The scope's generator (the default generator outside any scope).
Generator& param_generator();

// fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field,
// for weights laid out (out, in, ...) as PyTorch does.
int64_t fan_in(const Shape& weight_shape);
int64_t fan_out(const Shape& weight_shape);

// New tensors in the current scope (no data is drawn on the meta device).
Tensor new_uniform(const Shape& shape, double lo, double hi);
Tensor new_normal(const Shape& shape, double mean, double std);
Tensor new_full(const Shape& shape, double value);
// PyTorch's default for Conv and Linear weights: kaiming_uniform_(a = sqrt(5)),
// i.e. U(-b, b) with b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)),
// which is b = 1 / sqrt(fan_in).
Tensor new_kaiming_uniform(const Shape& shape, double a);

// In-place re-initialisation (models use these to reproduce their reference's
// init). They draw from the scope's generator; on meta tensors they do nothing.
enum class FanMode { FanIn, FanOut };
void uniform_(const Tensor& t, double lo, double hi);
void normal_(const Tensor& t, double mean, double std);
void constant_(const Tensor& t, double value);
// N(0, std) with std = gain / sqrt(fan), gain = sqrt(2 / (1 + a^2)) (a = 0: ReLU).
void kaiming_normal_(const Tensor& t, FanMode mode = FanMode::FanIn, double a = 0.0);
void kaiming_uniform_(const Tensor& t, FanMode mode = FanMode::FanIn, double a = 0.0);
void xavier_uniform_(const Tensor& t, double gain = 1.0);
// N(mean, std) redrawn until inside [lo, hi] (timm's ViT init).
void trunc_normal_(const Tensor& t, double std = 0.02, double mean = 0.0, double lo = -2.0, double hi = 2.0);

}  // namespace neurn
