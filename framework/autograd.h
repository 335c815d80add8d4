#pragma once
// Define-by-run autograd. An op computes its result, then attach_grad()
// records a Node holding the inputs and a closure that captures only what the
// backward needs. Tensor::backward() walks the nodes in reverse topological
// order, sums the gradients that reach each tensor, and accumulates into the
// .grad of leaves that require it.
#include <functional>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace neurn {

// Given dL/d(output), returns dL/d(input_i) for every input, in order; an
// undefined Tensor means "no gradient" (for inputs that do not need one).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string op;              // for messages: "conv2d"
  std::vector<Tensor> inputs;  // edges of the graph
  BackwardFn backward;         // released after backward()
};

// Whether ops record the graph now (thread-local; on by default).
bool grad_mode_enabled();

// Switches recording off for its lifetime: evaluation, optimizer steps.
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True if grad mode is on and any input requires a gradient.
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Records `output` as the result of `op` on `inputs` when any_requires_grad.
// `backward` must return one entry per input. Returns output for chaining.
Tensor attach_grad(Tensor output, const char* op, std::vector<Tensor> inputs, BackwardFn backward);

// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
Tensor sum_to_shape(const Tensor& grad, const Shape& shape);

}  // namespace neurn
