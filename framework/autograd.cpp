#include "framework/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "framework/cuda/cuda_autocast.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/reduce.h"
#include "framework/ops/shape_ops.h"
#include "framework/profiler.h"

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
  node->next.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.defined() || !in.requires_grad()) continue;
    Edge& e = node->next[i];
    if (in.impl().grad_fn)
      e.fn = in.impl().grad_fn;
    else
      e.leaf = in.impl_ptr();
    e.shape = in.shape();
  }
  // Backward in the precision of forward: a node made under bf16 autocast
  // runs its backward under it (backward() switches it off for the others).
  if (cuda::autocast_bf16())
    node->backward = [inner = std::move(backward)](const Tensor& g) {
      cuda::AutocastGuard on(true);
      return inner(g);
    };
  else
    node->backward = std::move(backward);
  output.impl().grad_fn = std::move(node);
  output.impl().requires_grad = true;
  return output;
}

SavedTensor::SavedTensor(const Tensor& t, const char* op, const char* what) : op_(op), what_(what) {
  if (!t.defined()) return;
  t_ = t.detach();
  version_ = t.version();
}

const Tensor& SavedTensor::get() const {
  NEURN_CHECK(!t_.defined() || t_.version() == version_, op_, "'s saved ", what_, " ", shape_str(t_.shape()),
              " was modified in place (version ", t_.version(), ", saved at ", version_, "): an in-place op (copy_, "
              "fill_, add_, mul_, an optimizer step) wrote to it after ", op_, " used it and before backward; change a "
              "clone() instead, or run the in-place op after backward");
  return t_;
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

bool detail::sole_owner(const Tensor& t) {
  const std::shared_ptr<TensorImpl>& impl = t.impl_ptr();
  return impl && impl.use_count() == 1 && impl->storage && impl->storage.use_count() == 1 && impl->contiguous &&
         !impl->device.is_meta();
}

namespace {

using detail::sole_owner;

// sum + g. A sum of gradients used to allocate a fresh tensor at every
// addition (a gradient that reaches a node along k paths: k - 1 of them);
// it is now added in place into whichever operand nobody else sees, and
// the element values are the same (IEEE addition is commutative, and
// accumulate_ is add's functor).
void add_gradient(Tensor& sum, Tensor g) {
  const bool same = sum.shape() == g.shape() && sum.dtype() == g.dtype() && sum.device() == g.device();
  if (same && sole_owner(sum)) {
    detail::accumulate_(sum, g);
  } else if (same && sole_owner(g)) {
    detail::accumulate_(g, sum);
    sum = std::move(g);
  } else {
    sum = add(sum, g);
  }
}

template <typename K>
void accumulate(std::unordered_map<K*, Tensor>& grads, K* key, Tensor g) {
  auto it = grads.find(key);
  if (it == grads.end()) {
    grads.emplace(key, std::move(g));
  } else {
    add_gradient(it->second, std::move(g));
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
  cuda::AutocastGuard forward_precision(false);  // nodes made under autocast turn it on (attach_grad)

  // The gradients that reach each leaf, summed over the walk and added to
  // .grad at the end; leaf_order keeps the leaves alive and ordered.
  std::unordered_map<TensorImpl*, Tensor> leaf_grads;
  std::vector<std::shared_ptr<TensorImpl>> leaf_order;
  auto to_leaf = [&](const std::shared_ptr<TensorImpl>& leaf, Tensor g) {
    if (!leaf_grads.count(leaf.get())) leaf_order.push_back(leaf);
    accumulate(leaf_grads, leaf.get(), std::move(g));
  };

  const std::shared_ptr<Node> root = impl().grad_fn;
  std::vector<std::shared_ptr<Node>> order;  // post-order: every node after all the nodes it feeds on
  if (!root) {
    to_leaf(impl_ptr(), seed);
  } else {
    // Reverse topological order by an iterative DFS over the edges. The
    // shared_ptrs in `order` keep each node alive until it has run, even
    // once the nodes after it have dropped their edges.
    std::unordered_set<Node*> seen{root.get()};
    std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      if (next < n->next.size()) {
        std::shared_ptr<Node> c = n->next[next++].fn;
        if (c && seen.insert(c.get()).second) stack.push_back({std::move(c), 0});
        continue;
      }
      order.push_back(std::move(n));
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> grads;
  if (root) grads.emplace(root.get(), seed);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* fn = it->get();
    auto git = grads.find(fn);
    if (git == grads.end()) continue;
    Tensor g = std::move(git->second);
    grads.erase(git);
    NEURN_CHECK(fn->backward, "backward: the graph through '", fn->op,
                "' was already released by an earlier backward(); pass retain_graph=true to the first call");
    // Backward closures read their gradient as a plain buffer: one that
    // arrives as a view (sum's expand, permute's inverse) is copied once here.
    g = detail::contiguous_copy(g);
    std::vector<Tensor> in_grads;
    {
      ProfileScope timed("backward", fn->op.c_str());  // the node (and its op string) outlives the scope
      in_grads = fn->backward(g);
    }
    g = Tensor();
    // Free what the node saved as soon as it has run, not at the end of the
    // walk: the activations of a deep network are released one by one while
    // the gradients are being made, as in PyTorch.
    if (!retain_graph) fn->backward = nullptr;
    NEURN_CHECK(in_grads.size() == fn->next.size(), "backward of '", fn->op, "' returned ", in_grads.size(),
                " gradients for ", fn->next.size(), " inputs");
    for (size_t i = 0; i < in_grads.size(); ++i) {
      const Edge& e = fn->next[i];
      if (!e.defined() || !in_grads[i].defined()) continue;
      NEURN_CHECK(in_grads[i].shape() == e.shape, "backward of '", fn->op, "': gradient ", i, " has shape ",
                  shape_str(in_grads[i].shape()), ", input has ", shape_str(e.shape));
      if (e.fn)
        accumulate(grads, e.fn.get(), std::move(in_grads[i]));
      else
        to_leaf(e.leaf, std::move(in_grads[i]));
    }
    if (!retain_graph) fn->next.clear();
  }

  std::unordered_set<Storage*> leaf_storages;
  for (const auto& leaf : leaf_order) {
    Tensor g = std::move(leaf_grads.at(leaf.get()));  // the map's handle goes: g may be the sole owner
    if (leaf->grad) {
      // In place into .grad when nothing else holds it (a caller's x.grad()
      // handle keeps the old tensor unchanged: it then gets a new one).
      Tensor sum(std::move(leaf->grad));
      add_gradient(sum, std::move(g));
      leaf->grad = sum.impl_ptr();
    } else {
      // A gradient can reach several leaves as the same storage (add passes
      // it through unchanged) or be the caller's seed: give each leaf its
      // own copy then, so in-place updates of one .grad never touch another.
      bool shared = g.storage() == seed.storage() || !leaf_storages.insert(g.storage().get()).second;
      // A view (the backward of permute, expand, concat) is made
      // contiguous: .grad is read and updated in place as a plain buffer.
      leaf->grad = (shared ? g.clone() : detail::contiguous_copy(g)).impl_ptr();
    }
  }
  if (!retain_graph) {
    for (const auto& n : order) {
      n->backward = nullptr;
      n->next.clear();
    }
  }
}

}  // namespace neurn
