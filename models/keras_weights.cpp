#include "models/keras_weights.h"

#include <algorithm>
#include <map>
#include <set>

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

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t d = s.find('.'); d != std::string::npos; d = s.find('.', start)) {
    out.push_back(s.substr(start, d - start));
    start = d + 1;
  }
  out.push_back(s.substr(start));
  return out;
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// torchvision's EfficientNet, recognised by its keys: the stem
// features.0.0 and the blocks features.S.J.block.K (with an SE's fc1).
bool is_torchvision_efficientnet(const std::vector<std::pair<std::string, Tensor>>& state) {
  bool stem = false, se = false, head = false;
  for (const auto& [name, t] : state) {
    if (name == "features.0.0.weight") stem = true;
    if (name == "classifier.1.weight") head = true;
    if (name.rfind("features.1.0.block.", 0) == 0 && name.find(".fc1.") != std::string::npos) se = true;
  }
  return stem && se && head;
}

// Keras 2.0-2.2 counted auto-names from 1: where the model has a layer
// BASE and the file only BASE_1, BASE_2, ..., read the file's BASE_k as
// BASE_(k-1) (the fresh-session numbering the models use).
void renumber_auto_names(std::map<std::pair<std::string, std::string>, Tensor>& by_name,
                         const std::vector<std::string>& model_layers) {
  std::set<std::string> file_layers;
  for (const auto& [key, t] : by_name) file_layers.insert(key.first);
  for (const auto& base : model_layers) {
    if (file_layers.count(base) || !file_layers.count(base + "_1")) continue;
    std::map<std::pair<std::string, std::string>, Tensor> renamed;
    for (auto& [key, t] : by_name) {
      const std::string& l = key.first;
      std::string suffix = l.size() > base.size() + 1 ? l.substr(base.size() + 1) : "";
      if (l.compare(0, base.size() + 1, base + "_") == 0 && all_digits(suffix)) {
        int k = std::stoi(suffix);
        renamed[{k == 1 ? base : base + "_" + std::to_string(k - 1), key.second}] = t;
      } else {
        renamed[key] = t;
      }
    }
    by_name = std::move(renamed);
    file_layers.clear();
    for (const auto& [key, t] : by_name) file_layers.insert(key.first);
  }
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

std::string keras_layer_for_efficientnet(const std::string& module, bool expands) {
  // torchvision: features.0 stem (0 conv, 1 BN); features.1-7 stages of
  // blocks, each block.K: [expand (0 conv, 1 BN)], depthwise (0 conv, 1 BN),
  // SE (fc1, fc2), project (0 conv, 1 BN); features.8 top (0 conv, 1 BN);
  // classifier.1 the head. Keras: stem_conv/stem_bn, block<S><letter>_
  // {expand_conv, expand_bn, dwconv, bn, se_reduce, se_expand, project_conv,
  // project_bn}, top_conv/top_bn, predictions.
  std::vector<std::string> p = split_dots(module);
  if (p.size() == 2 && p[0] == "classifier" && p[1] == "1") return "predictions";
  if (p.size() < 3 || p[0] != "features" || !all_digits(p[1])) return "";
  int stage = std::stoi(p[1]);
  auto conv_or_bn = [](const std::string& i, const std::string& conv, const std::string& bn) {
    return i == "0" ? conv : i == "1" ? bn : "";
  };
  if (p.size() == 3 && stage == 0) return conv_or_bn(p[2], "stem_conv", "stem_bn");
  if (p.size() == 3 && stage == 8) return conv_or_bn(p[2], "top_conv", "top_bn");
  if (p.size() != 6 || stage < 1 || stage > 7 || !all_digits(p[2]) || p[3] != "block" || !all_digits(p[4])) return "";
  int j = std::stoi(p[2]);
  if (j >= 26) return "";  // Keras letters a..z
  std::string prefix = "block" + std::to_string(stage) + std::string(1, static_cast<char>('a' + j)) + "_";
  int k = std::stoi(p[4]) - (expands ? 1 : 0);  // 0 depthwise, 1 SE, 2 project; -1 expand
  const std::string& leaf = p[5];
  std::string layer;
  if (k == -1) layer = conv_or_bn(leaf, "expand_conv", "expand_bn");
  if (k == 0) layer = conv_or_bn(leaf, "dwconv", "bn");
  if (k == 1) layer = leaf == "fc1" ? "se_reduce" : leaf == "fc2" ? "se_expand" : "";
  if (k == 2) layer = conv_or_bn(leaf, "project_conv", "project_bn");
  return layer.empty() ? "" : prefix + layer;
}

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
  const auto state = model.state_dict();
  const bool efficientnet = is_torchvision_efficientnet(state);
  std::set<std::string> expanding;  // EfficientNet blocks "features.S.J" with an expansion conv (block.3 exists)
  std::vector<std::string> model_layers;
  for (const auto& [name, t] : state) {
    std::string module = name.substr(0, name.rfind('.'));
    model_layers.push_back(underscores(module));
    if (size_t b = name.find(".block.3."); efficientnet && b != std::string::npos) expanding.insert(name.substr(0, b));
  }
  renumber_auto_names(by_name, model_layers);
  if (efficientnet) {  // the input normalization is the trainer's, not a weight
    for (auto it = by_name.begin(); it != by_name.end();) {
      if (it->first.first == "normalization") {
        out.skipped.push_back(it->first.first + "/" + it->first.second);
        it = by_name.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::map<std::pair<std::string, std::string>, bool> used;
  for (const auto& [name, t] : state) {
    size_t dot = name.rfind('.');
    std::string module = dot == std::string::npos ? "" : name.substr(0, dot);
    std::string param = dot == std::string::npos ? name : name.substr(dot + 1);
    if (param == "num_batches_tracked") continue;  // Keras keeps no such count
    std::string child;
    if (size_t d = module.rfind('.'); d != std::string::npos) child = module.substr(d + 1);
    std::vector<std::string> candidates;
    std::string layer = underscores(module);
    if (efficientnet) {
      size_t b = module.find(".block.");
      layer = keras_layer_for_efficientnet(module, b != std::string::npos && expanding.count(module.substr(0, b)));
      if (layer.empty()) layer = underscores(module);  // reported missing under its generic name
    }
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
