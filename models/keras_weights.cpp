#include "models/keras_weights.h"

#include <algorithm>
#include <map>

#include "framework/error.h"
#include "framework/ops.h"
#include "framework/serialize/hdf5.h"

namespace neurn {

namespace {

// "conv1_conv/conv1_conv/kernel:0" -> ("conv1_conv", "kernel")
std::pair<std::string, std::string> layer_and_weight(const std::string& path) {
  size_t first = path.find('/'), last = path.rfind('/');
  std::string layer = path.substr(0, first);
  std::string weight = first == std::string::npos ? path : path.substr(last + 1);
  if (size_t colon = weight.rfind(':'); colon != std::string::npos) weight = weight.substr(0, colon);
  return {layer, weight};
}

std::string underscores(std::string s) {
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

// The Keras tensor `k` in the layout of the neurn tensor of shape `want`;
// undefined when no layout rule gives that shape (reported as mismatched).
Tensor to_neurn_layout(const Tensor& k, const std::string& weight, const Shape& want) {
  const Shape& s = k.shape();
  if (weight == "depthwise_kernel" && s.size() == 4) {  // (kh, kw, C, M) -> (C * M, 1, kh, kw)
    Tensor t = permute(k, {2, 3, 0, 1}).reshape({s[2] * s[3], 1, s[0], s[1]});
    return t.shape() == want ? t : Tensor();
  }
  if (s.size() == 4 && want.size() == 4) return permute(k, {3, 2, 0, 1});  // (kh, kw, in, out)
  if (s.size() == 4 && want.size() == 2 && s[0] == 1 && s[1] == 1)  // a 1x1 conv read by a Linear
    return transpose(k.reshape({s[2], s[3]}), 0, 1);
  if (s.size() == 2 && want.size() == 2) return transpose(k, 0, 1);  // dense (in, out)
  return k;
}

}  // namespace

bool is_keras_weights_file(const std::string& path) {
  for (const char* ext : {".h5", ".hdf5", ".keras"}) {
    std::string e = ext;
    if (path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

KerasConversion keras_to_neurn(const Module& model, const std::vector<std::pair<std::string, Tensor>>& datasets,
                               const std::string& file) {
  std::map<std::pair<std::string, std::string>, Tensor> by_name;  // (layer, weight) -> tensor
  for (const auto& [path, t] : datasets) {
    auto key = layer_and_weight(path);
    NEURN_CHECK(by_name.count(key) == 0, file, ": two datasets for weight '", key.second, "' of layer '", key.first,
                "'");
    by_name[key] = t;
  }
  KerasConversion out;
  std::map<std::pair<std::string, std::string>, bool> used;
  for (const auto& [name, t] : model.state_dict()) {
    size_t dot = name.rfind('.');
    std::string module = dot == std::string::npos ? "" : name.substr(0, dot);
    std::string param = dot == std::string::npos ? name : name.substr(dot + 1);
    if (param == "num_batches_tracked") continue;  // Keras keeps no such count
    std::string child;
    if (size_t d = module.rfind('.'); d != std::string::npos) child = module.substr(d + 1);
    std::vector<std::string> candidates;
    std::string layer = underscores(module);
    if (child == "depthwise" || child == "pointwise") {  // a SeparableConv2d's children
      layer = underscores(module.substr(0, module.rfind('.')));
      if (param == "weight") candidates = {child + "_kernel"};
      if (param == "bias") candidates = {"bias"};
    } else if (param == "weight") {
      candidates = {"kernel", "depthwise_kernel", "gamma"};
    } else if (param == "bias") {
      candidates = {"bias", "beta"};
    } else if (param == "running_mean") {
      candidates = {"moving_mean"};
    } else if (param == "running_var") {
      candidates = {"moving_variance"};
    }
    bool found = false;
    for (const auto& w : candidates) {
      auto it = by_name.find({layer, w});
      if (it == by_name.end()) continue;
      Tensor conv = to_neurn_layout(it->second, w, t.shape());
      if (!conv.defined()) conv = it->second;  // offered as is: load_state reports the shapes
      out.tensors.push_back({name, conv});
      used[{layer, w}] = true;
      found = true;
      break;
    }
    if (!found) out.missing.push_back(name + " (Keras layer '" + layer + "')");
  }
  for (const auto& [key, t] : by_name)
    if (!used.count(key)) out.unused.push_back(key.first + "/" + key.second);
  return out;
}

LoadReport load_keras_weights(Module& model, const std::string& path, bool strict) {
  KerasConversion c = keras_to_neurn(model, read_hdf5_datasets(path), path);
  if (strict) {
    std::string problems;
    for (auto& m : c.missing) problems += "\n  not in the file: " + m;
    for (auto& u : c.unused) problems += "\n  no neurn tensor for Keras weight " + u;
    NEURN_CHECK(problems.empty(), path, ": the Keras weights do not fit the model:", problems);
  }
  // The batch norms' step counts (no Keras counterpart) keep their values.
  for (const auto& [name, t] : model.state_dict())
    if (name.size() >= 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0)
      c.tensors.push_back({name, t.cpu()});
  LoadReport rep = load_state(model, c.tensors, strict, path);
  for (auto& u : c.unused) rep.unexpected.push_back(u);
  for (auto& m : c.missing) rep.missing.push_back(m);
  return rep;
}

}  // namespace neurn
