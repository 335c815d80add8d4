#pragma once
// The builders of the built-in architectures (each defined in its own file,
// registered in registry.cpp). Use build_model(name, options) rather than
// these directly: it validates the options and adds the front module.
#include "models/registry.h"

namespace neurn {

ModulePtr build_digits_convnet(const ModelOptions& options);

}  // namespace neurn
