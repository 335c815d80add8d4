#pragma once
// Define-by-run autograd. An op computes its result, then attach_grad()
// records a Node: one edge per input (to the node that made it, or to the
// leaf that collects its gradient) and a closure that keeps only what the
// backward needs, as SavedTensors. The node holds no input tensor itself, so
// an intermediate result nobody saved is freed as soon as the forward moves
// on. Tensor::backward() runs the nodes in reverse topological order, sums the
// gradients that reach each one, frees each closure once it has run (unless
// retain_graph), and accumulates into the .grad of leaves.
#include <functional>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace neurn {

// Given dL/d(output), returns dL/d(input_i) for every input, in order; an
// undefined Tensor means "no gradient" (for inputs that do not need one).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// Where the gradient of one input goes: the node that computed the input, or
// the leaf itself (a parameter, or an input with requires_grad). Both empty:
// the input needs no gradient.
struct Edge {
  std::shared_ptr<Node> fn;
  std::shared_ptr<TensorImpl> leaf;
  Shape shape;  // the input's, to check the gradient backward returns
  bool defined() const { return fn || leaf; }
};

struct Node {
  std::string op;           // for messages: "conv2d"
  std::vector<Edge> next;   // one per input
  BackwardFn backward;      // released after it runs, unless retain_graph
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

// A tensor a backward closure keeps: its data (detached, so no reference back
// into the graph) and the version of its storage when it was saved. get()
// throws if an in-place op (copy_, fill_, add_, mul_, an optimizer step, ...)
// wrote to the storage since, since backward would then compute with values
// the forward never saw. `op` and `what` name it in that error ("relu",
// "output"); both must be string literals (they are kept as pointers).
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t, const char* op, const char* what);

  const Tensor& get() const;  // undefined if an undefined tensor was saved
  bool defined() const { return t_.defined(); }

 private:
  Tensor t_;
  uint64_t version_ = 0;
  const char* op_ = "";
  const char* what_ = "";
};

namespace detail {
// Whether writing into t in place is invisible to everything else: t's is
// the only handle on its TensorImpl and that impl the only one on its
// storage (no caller's handle, no view, no saved tensor, no other gradient
// that is the same tensor), and its memory is one plain buffer. A backward
// closure's grad_output is such a tensor when autograd made it for this node
// alone; the node may then reuse its buffer for the input's gradient.
bool sole_owner(const Tensor& t);
}  // namespace detail

// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
Tensor sum_to_shape(const Tensor& grad, const Shape& shape);

}  // namespace neurn
