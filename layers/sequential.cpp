#include "layers/sequential.h"

namespace neurn {

Sequential::Sequential(std::vector<ModulePtr> modules) {
  for (auto& m : modules) push_back(std::move(m));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& [name, m] : children()) y = (*m)(y);
  return y;
}

ModulePtr Sequential::get(const std::string& name) const {
  for (auto& [n, c] : children())
    if (n == name) return c;
  NEURN_FAIL("Sequential: no child named '", name, "'");
}

}  // namespace neurn
