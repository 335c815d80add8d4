#pragma once
// Models the experiment tests register for themselves: a linear classifier
// (flatten, one Linear layer) that trains in milliseconds on tiny_data.h's
// digits, under a name of the test's own so tests do not depend on each
// other's registrations.
#include <memory>
#include <string>

#include "layers/layers.h"
#include "models/registry.h"

namespace neurn::testing {

// Registers `name` once per process (later calls with the same name do
// nothing). Minimum input 8; `has_width` lets configs give it a width.
inline void register_linear_model(const std::string& name, const std::string& description, bool has_width = false) {
  list_models();  // the built-ins first
  if (has_model(name)) return;
  register_model({name, "Test", description, "", 8, has_width}, [](const ModelOptions& o) -> ModulePtr {
    auto m = std::make_shared<Sequential>();
    m->push_back(std::make_shared<Flatten>());
    m->push_back(std::make_shared<Linear>(o.in_channels * o.input_size * o.input_size, o.num_classes));
    return m;
  });
}

}  // namespace neurn::testing
