#include "layers/neurn_layer.h"

namespace neurn {

NeuRN::NeuRN(NeuRNOptions opt) : opt_(opt) { validate_neurn_options(opt_); }

Tensor NeuRN::forward(const Tensor& x) { return neurn_norm(x, opt_); }

ModulePtr make_neurn_layer(const NeuRNOptions& opt) { return std::make_shared<NeuRN>(opt); }
ModulePtr make_neurn_layer(const std::string& spec) { return make_neurn_layer(parse_neurn_options(spec)); }
ModulePtr make_neurn_layer(const std::map<std::string, std::string>& kv) {
  return make_neurn_layer(neurn_options_from_map(kv));
}

}  // namespace neurn
