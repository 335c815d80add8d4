#include "layers/state_io.h"

#include <map>
#include <sstream>

#include "framework/autograd.h"

namespace neurn {

std::string LoadReport::str() const {
  std::ostringstream os;
  if (ok()) {
    os << "all " << loaded.size() << " tensors loaded";
    if (!adapted.empty()) os << " (" << adapted.size() << " adapted to the model's shape)";
    return os.str();
  }
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    os << v.size() << " " << what << ":";
    for (size_t i = 0; i < v.size() && i < 20; ++i) os << "\n  " << v[i];
    if (v.size() > 20) os << "\n  ... (" << v.size() - 20 << " more)";
    os << "\n";
  };
  list("missing (in the model, not in the file)", missing);
  list("unexpected (in the file, not in the model)", unexpected);
  list("mis-shaped", mismatched);
  os << loaded.size() << " loaded";
  return os.str();
}

namespace {

// The module owning state key `key` and the key's name inside it.
std::pair<Module*, std::string> state_owner(Module& model, const std::string& key) {
  std::pair<Module*, std::string> found{nullptr, ""};
  model.apply([&](const std::string& prefix, Module& m) {
    if (found.first) return;
    std::string head = prefix.empty() ? "" : prefix + ".";
    if (key.size() <= head.size() || key.compare(0, head.size(), head) != 0) return;
    std::string local = key.substr(head.size());
    if (m.owns_state(local)) found = {&m, local};
  });
  return found;
}

}  // namespace

LoadReport load_state(Module& model, const NamedTensors& state, bool strict, const std::string& source) {
  std::map<std::string, Tensor> file;
  for (auto& [n, t] : state) file[n] = t;
  LoadReport rep;
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  auto targets = model.state_dict();
  std::map<std::string, bool> in_model;
  for (auto& [name, dst] : targets) {
    in_model[name] = true;
    auto it = file.find(name);
    if (it == file.end()) {
      rep.missing.push_back(name);
      continue;
    }
    Tensor src = it->second;
    if (src.shape() != dst.shape()) {
      auto [owner, local] = state_owner(model, name);
      Tensor adapted = owner ? owner->adapt_state(local, src, dst.shape()) : Tensor();
      if (!adapted.defined() || adapted.shape() != dst.shape()) {
        rep.mismatched.push_back(name + ": file " + shape_str(src.shape()) + ", model " + shape_str(dst.shape()));
        continue;
      }
      rep.adapted.push_back(name + ": file " + shape_str(src.shape()) + " -> model " + shape_str(dst.shape()));
      src = adapted;
    }
    if (is_floating(src.dtype()) != is_floating(dst.dtype())) {
      rep.mismatched.push_back(name + ": file " + dtype_name(src.dtype()) + ", model " + dtype_name(dst.dtype()));
      continue;
    }
    copies.push_back({dst, src});
    rep.loaded.push_back(name);
  }
  for (auto& [n, t] : state)
    if (!in_model.count(n)) rep.unexpected.push_back(n);
  NEURN_CHECK(!strict || rep.ok(), "load_state: ", source, " does not match the model (strict; nothing was loaded):\n",
              rep.str());
  for (auto& [dst, src] : copies)
    NEURN_CHECK(!dst.device().is_meta(), "load_state: the model lives on the meta device; build it on cpu or cuda");
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);
  return rep;
}

LoadReport load_state_file(Module& model, const std::string& path, bool strict) {
  return load_state(model, load_safetensors(path), strict, path);
}

void save_state(const Module& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, model.state_dict(), metadata);
}

}  // namespace neurn
