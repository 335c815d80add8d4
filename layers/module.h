#pragma once
// Module: named parameters, buffers and children, so every parameter has a
// dotted name ("features.0.weight") that maps one-to-one onto a PyTorch state
// dict. Each module knows its layer type, the token the tracer records.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/ops.h"

namespace neurn {

class Module;
using ModulePtr = std::shared_ptr<Module>;

class Module : public std::enable_shared_from_this<Module> {
 public:
  virtual ~Module() = default;

  // The computation. Call modules through operator(), which records the trace.
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x);

  // The layer type for the trace and the Needleman-Wunsch aligner ("Conv",
  // "BatchNorm", "ReLU", ...). Containers return "" and are not recorded.
  virtual std::string type() const { return ""; }

  // ---- structure ----
  Tensor& register_parameter(const std::string& name, Tensor t);
  Tensor& register_buffer(const std::string& name, Tensor t);
  // An empty name registers an inline child: its tensors keep their own names
  // without a prefix (a wrapper that must not rename the wrapped model's keys).
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.push_back({name, m});
    return m;
  }
  const std::vector<std::pair<std::string, ModulePtr>>& children() const { return children_; }

  // Dotted names, in registration order, recursively.
  std::vector<std::pair<std::string, Tensor>> named_parameters(const std::string& prefix = "") const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(const std::string& prefix = "") const;
  std::vector<Tensor> parameters() const;
  // Parameters and buffers: the state dict (PyTorch naming).
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  int64_t num_parameters(bool trainable_only = true) const;
  // Direct access to this module's own tensors (not the children's).
  Tensor& param(const std::string& name);
  Tensor& buffer(const std::string& name);
  bool has_param(const std::string& name) const;

  // ---- modes ----
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves parameters and buffers (in place: references stay valid).
  void to(Device device);
  void to(DType dtype);
  void zero_grad();
  // Visits this module and its descendants, depth first, with dotted names.
  void apply(const std::function<void(const std::string&, Module&)>& f, const std::string& prefix = "");

  // ---- state saved for another configuration ----
  // load_state (layers/state_io.h) calls this when a file's tensor for one of
  // this module's own parameters or buffers (`name`, without prefix) has
  // another shape than the model's `shape`: return `src` converted to `shape`,
  // or an undefined tensor (the default) and the key is reported mis-shaped.
  // How a ViT's position embedding made for 224x224 loads into a 32x32 model.
  virtual Tensor adapt_state(const std::string& name, const Tensor& src, const Shape& shape) const;
  // `name` is one of this module's own parameters or buffers (not a child's).
  bool owns_state(const std::string& name) const;

 protected:
  virtual void on_train(bool) {}
  bool training_ = true;

 private:
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, ModulePtr>> children_;
};

// Records, while it lives, the layer type of every leaf module called (in
// execution order): the layer sequence of a model for the N-W aligner.
class LayerTrace {
 public:
  LayerTrace();
  ~LayerTrace();
  LayerTrace(const LayerTrace&) = delete;
  LayerTrace& operator=(const LayerTrace&) = delete;
  const std::vector<std::string>& tokens() const { return tokens_; }
  static void record(const std::string& token);

 private:
  std::vector<std::string> tokens_;
  LayerTrace* parent_;
};

}  // namespace neurn
