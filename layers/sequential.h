#pragma once
#include <memory>
#include <string>
#include <utility>

#include "layers/module.h"

namespace neurn {

// Runs its children in order. push_back names a child by its position ("0",
// "1", ... like torch.nn.Sequential); add(name, m) gives it a name (like
// nn.Sequential(OrderedDict(...)), the named container torchvision's DenseNet
// uses). A container: not a token of the trace, its children are.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<ModulePtr> modules);

  template <typename M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    return add(std::to_string(children().size()), std::move(m));
  }
  template <typename M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> m) {
    NEURN_CHECK(m != nullptr, "Sequential::add: null module for '", name, "'");
    for (auto& [n, c] : children()) NEURN_CHECK(n != name, "Sequential::add: '", name, "' is already a child");
    return register_module(name, std::move(m));
  }
  // Constructs an M in place: seq.emplace<Conv2d>(3, 64, 3).
  template <typename M, typename... A>
  std::shared_ptr<M> emplace(A&&... args) {
    return push_back(std::make_shared<M>(std::forward<A>(args)...));
  }

  Tensor forward(const Tensor& x) override;
  size_t size() const { return children().size(); }
  ModulePtr operator[](size_t i) const { return children().at(i).second; }
  ModulePtr get(const std::string& name) const;
};

}  // namespace neurn
