#pragma once
// Activation layers: parameter-free wrappers of framework/ops/activation.h.
// Tokens are the PyTorch class names ("ReLU", "ReLU6", "SiLU", ...).
#include "framework/ops/activation.h"
#include "layers/module.h"

namespace neurn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string type() const override { return "ReLU"; }
};

class ReLU6 : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu6(x); }
  std::string type() const override { return "ReLU6"; }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override { return leaky_relu(x, slope_); }
  std::string type() const override { return "LeakyReLU"; }

 private:
  double slope_;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
  std::string type() const override { return "Sigmoid"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return neurn::tanh(x); }
  std::string type() const override { return "Tanh"; }
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return silu(x); }
  std::string type() const override { return "SiLU"; }
};

class GELU : public Module {
 public:
  explicit GELU(GeluApprox approx = GeluApprox::None) : approx_(approx) {}
  Tensor forward(const Tensor& x) override { return gelu(x, approx_); }
  std::string type() const override { return "GELU"; }

 private:
  GeluApprox approx_;
};

class Hardswish : public Module {
 public:
  Tensor forward(const Tensor& x) override { return hardswish(x); }
  std::string type() const override { return "Hardswish"; }
};

class Hardsigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return hardsigmoid(x); }
  std::string type() const override { return "Hardsigmoid"; }
};

}  // namespace neurn
