#include "framework/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape_ops.h"

namespace neurn {

namespace {
thread_local bool g_grad_mode = true;
}

bool grad_mode_enabled() { return g_grad_mode; }

NoGradGuard::NoGradGuard() : prev_(g_grad_mode) { g_grad_mode = false; }
NoGradGuard::~NoGradGuard() { g_grad_mode = prev_; }

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_mode) return false;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor attach_grad(Tensor output, const char* op, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!any_requires_grad(inputs) || output.device().is_meta()) return output;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  output.impl().grad_fn = std::move(node);
  output.impl().requires_grad = true;
  return output;
}

Tensor sum_to_shape(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  NEURN_CHECK(lead >= 0, "sum_to_shape: cannot reduce ", shape_str(grad.shape()), " to ", shape_str(shape));
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < grad.dim(); ++i) {
    if (i < lead) {
      axes.push_back(i);
    } else if (shape[i - lead] == 1 && grad.shape()[i] != 1) {
      axes.push_back(i);
    } else {
      NEURN_CHECK(shape[i - lead] == grad.shape()[i], "sum_to_shape: cannot reduce ", shape_str(grad.shape()), " to ",
                  shape_str(shape));
    }
  }
  Tensor r = axes.empty() ? grad : sum(grad, axes, /*keepdim=*/true);
  return reshape(r, shape);
}

namespace {

void accumulate(std::unordered_map<TensorImpl*, Tensor>& grads, const Tensor& t, const Tensor& g) {
  auto it = grads.find(t.impl_ptr().get());
  if (it == grads.end()) {
    grads.emplace(t.impl_ptr().get(), g);
  } else {
    it->second = add(it->second, g);
  }
}

}  // namespace

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  NEURN_CHECK(requires_grad(), "backward: the tensor does not require a gradient (no input of the graph has "
                               "requires_grad, or it was computed under NoGradGuard)");
  Tensor seed = grad;
  if (!seed.defined()) {
    NEURN_CHECK(numel() == 1, "backward: a gradient can be created implicitly only for a scalar output; this one has "
                              "shape ",
                shape_str(shape()), ", so pass dL/doutput to backward()");
    seed = ones(shape(), options());
  }
  NEURN_CHECK(seed.shape() == shape(), "backward: gradient of shape ", shape_str(seed.shape()), " for an output of shape ",
              shape_str(shape()));
  NoGradGuard no_grad;

  // Reverse topological order by an iterative DFS over grad_fn edges.
  std::vector<Tensor> order;
  std::unordered_set<TensorImpl*> seen;
  std::vector<std::pair<Tensor, size_t>> stack{{*this, 0}};
  seen.insert(impl_ptr().get());
  while (!stack.empty()) {
    auto& [t, next] = stack.back();
    const auto& fn = t.impl().grad_fn;
    if (fn && next < fn->inputs.size()) {
      const Tensor& in = fn->inputs[next++];
      if (in.defined() && in.requires_grad() && seen.insert(in.impl_ptr().get()).second) stack.push_back({in, 0});
      continue;
    }
    order.push_back(t);
    stack.pop_back();
  }

  std::unordered_map<TensorImpl*, Tensor> grads;
  std::unordered_set<Storage*> leaf_storages;
  grads.emplace(impl_ptr().get(), seed);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const Tensor& t = *it;
    auto git = grads.find(t.impl_ptr().get());
    if (git == grads.end()) continue;
    Tensor g = git->second;
    grads.erase(git);
    auto fn = t.impl().grad_fn;
    if (!fn) {  // a leaf: accumulate into .grad
      if (t.impl().grad) {
        t.impl().grad = add(Tensor(t.impl().grad), g).impl_ptr();
      } else {
        // A gradient can reach several leaves as the same storage (add passes
        // it through unchanged) or be the caller's seed: give each leaf its
        // own copy then, so in-place updates of one .grad never touch another.
        bool shared = g.storage() == seed.storage() || !leaf_storages.insert(g.storage().get()).second;
        t.impl().grad = (shared ? g.clone() : g).impl_ptr();
      }
      continue;
    }
    NEURN_CHECK(fn->backward, "backward: the graph through '", fn->op,
                "' was already released by an earlier backward(); pass retain_graph=true to the first call");
    std::vector<Tensor> in_grads = fn->backward(g);
    NEURN_CHECK(in_grads.size() == fn->inputs.size(), "backward of '", fn->op, "' returned ", in_grads.size(),
                " gradients for ", fn->inputs.size(), " inputs");
    for (size_t i = 0; i < in_grads.size(); ++i) {
      const Tensor& in = fn->inputs[i];
      if (!in.defined() || !in.requires_grad() || !in_grads[i].defined()) continue;
      NEURN_CHECK(in_grads[i].shape() == in.shape(), "backward of '", fn->op, "': gradient ", i, " has shape ",
                  shape_str(in_grads[i].shape()), ", input has ", shape_str(in.shape()));
      accumulate(grads, in, in_grads[i]);
    }
  }
  if (!retain_graph) {
    for (const Tensor& t : order) {
      if (auto& fn = t.impl().grad_fn) {
        fn->backward = nullptr;
        fn->inputs.clear();
      }
    }
  }
}

}  // namespace neurn
