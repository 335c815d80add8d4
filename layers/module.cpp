#include "layers/module.h"

namespace neurn {

namespace {
thread_local LayerTrace* g_trace = nullptr;
}

LayerTrace::LayerTrace() : parent_(g_trace) { g_trace = this; }
LayerTrace::~LayerTrace() { g_trace = parent_; }
void LayerTrace::record(const std::string& token) {
  for (LayerTrace* t = g_trace; t; t = t->parent_) t->tokens_.push_back(token);
}

Tensor Module::operator()(const Tensor& x) {
  std::string t = type();
  if (!t.empty() && g_trace) LayerTrace::record(t);
  return forward(x);
}

Tensor& Module::register_parameter(const std::string& name, Tensor t) {
  for (auto& [n, p] : params_) NEURN_CHECK(n != name, "register_parameter: '", name, "' is already registered");
  if (t.defined() && !t.requires_grad() && is_floating(t.dtype())) t.requires_grad_();
  params_.push_back({name, std::move(t)});
  return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  for (auto& [n, p] : buffers_) NEURN_CHECK(n != name, "register_buffer: '", name, "' is already registered");
  buffers_.push_back({name, std::move(t)});
  return buffers_.back().second;
}

Tensor& Module::param(const std::string& name) {
  for (auto& [n, p] : params_)
    if (n == name) return p;
  NEURN_FAIL("module has no parameter '", name, "'");
}

bool Module::has_param(const std::string& name) const {
  for (auto& [n, p] : params_)
    if (n == name) return p.defined();
  return false;
}

Tensor& Module::buffer(const std::string& name) {
  for (auto& [n, b] : buffers_)
    if (n == name) return b;
  NEURN_FAIL("module has no buffer '", name, "'");
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(const std::string& prefix) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, p] : params_)
    if (p.defined()) out.push_back({prefix + n, p});
  for (auto& [n, c] : children_) {
    auto sub = c->named_parameters(n.empty() ? prefix : prefix + n + ".");
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(const std::string& prefix) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [n, b] : buffers_)
    if (b.defined()) out.push_back({prefix + n, b});
  for (auto& [n, c] : children_) {
    auto sub = c->named_buffers(n.empty() ? prefix : prefix + n + ".");
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, p] : named_parameters()) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  auto out = named_parameters();
  auto b = named_buffers();
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (auto& [name, p] : named_parameters()) n += p.numel();
  if (!trainable_only)
    for (auto& [name, b] : named_buffers())
      if (is_floating(b.dtype())) n += b.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  on_train(on);
  for (auto& [n, c] : children_) c->train(on);
}

void Module::to(Device device) {
  for (auto& [n, p] : params_) {
    if (!p.defined() || p.device() == device) continue;
    Tensor moved = p.detach().to(device);
    if (p.requires_grad()) moved.requires_grad_();
    p = moved;
  }
  for (auto& [n, b] : buffers_)
    if (b.defined()) b = b.to(device);
  for (auto& [n, c] : children_) c->to(device);
}

void Module::to(DType dtype) {
  for (auto& [n, p] : params_) {
    if (!p.defined() || p.dtype() == dtype) continue;
    Tensor moved = p.detach().to(dtype);
    if (p.requires_grad()) moved.requires_grad_();
    p = moved;
  }
  for (auto& [n, b] : buffers_)
    if (b.defined() && is_floating(b.dtype())) b = b.to(dtype);
  for (auto& [n, c] : children_) c->to(dtype);
}

void Module::zero_grad() {
  for (auto& [n, p] : params_)
    if (p.defined()) p.zero_grad();
  for (auto& [n, c] : children_) c->zero_grad();
}

Tensor Module::adapt_state(const std::string&, const Tensor&, const Shape&) const { return {}; }

bool Module::owns_state(const std::string& name) const {
  for (auto& [n, p] : params_)
    if (n == name && p.defined()) return true;
  for (auto& [n, b] : buffers_)
    if (n == name && b.defined()) return true;
  return false;
}

void Module::apply(const std::function<void(const std::string&, Module&)>& f, const std::string& prefix) {
  f(prefix, *this);
  for (auto& [n, c] : children_) c->apply(f, prefix.empty() || n.empty() ? prefix + n : prefix + "." + n);
}

}  // namespace neurn
