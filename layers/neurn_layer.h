#pragma once
// The NeuRN layer: neurn_norm (framework/ops/neurn.h) as a Module with no
// parameters. It goes in front of any model (ModelOptions::front, config key
// `neurn: {k: 3, padding: valid, max_scope: image}`) or anywhere inside one,
// and records the token "NeuRN" in the layer trace.
#include <map>
#include <string>

#include "framework/ops/neurn.h"
#include "layers/module.h"

namespace neurn {

class NeuRN : public Module {
 public:
  explicit NeuRN(NeuRNOptions opt = {});
  Tensor forward(const Tensor& x) override;  // (N, C, H, W) -> (N, C, H, W)
  std::string type() const override { return "NeuRN"; }
  const NeuRNOptions& options() const { return opt_; }

 private:
  NeuRNOptions opt_;
};

// For the model registry and the experiments: a NeuRN layer from options, from
// "k=3,padding=valid,max_scope=image" or from a config mapping of those keys.
ModulePtr make_neurn_layer(const NeuRNOptions& opt);
ModulePtr make_neurn_layer(const std::string& spec);
ModulePtr make_neurn_layer(const std::map<std::string, std::string>& kv);

}  // namespace neurn
