// `neurn forward`: an eval-mode forward pass of a registered model on a tensor
// read from safetensors, the logits written to safetensors. With torchvision
// weights exported to safetensors this runs a PyTorch model in neurn.
#include <cstdio>

#include "experiments/cli/cli.h"
#include "experiments/cli/neurn_forward.h"
#include "layers/init.h"
#include "layers/neurn_layer.h"
#include "framework/serialize/hdf5.h"
#include "layers/state_io.h"
#include "models/keras_weights.h"
#include "models/registry.h"

namespace neurn::cli {
namespace {

// The flags that shape the network. Options that put something in front of
// the backbone (NeuRN) belong here: they fill options.front.
struct NetworkFlags {
  std::string model;
  ModelOptions options;
};

// The number of classes of the head stored in `weights`: the size of the
// model's last parameter (the classifier's bias in every registered model)
// under the same key in the file.
int64_t classes_in_weights(const std::string& model, const NamedTensors& weights, ModelOptions o) {
  ParamScope meta({.device = Device::meta()});
  ModulePtr m = build_model(model, o);
  auto params = m->named_parameters();
  if (params.empty()) return o.num_classes;
  const std::string& last = params.back().first;
  for (auto& [k, t] : weights)
    if (k == last && t.dim() >= 1) return t.size(0);
  return o.num_classes;
}

int run_forward(const Flags& f) {
  NEURN_CHECK(f.has("model"), "--model NAME is required (see `neurn models`)");
  NEURN_CHECK(f.has("input") && f.has("output"), "--input X.safetensors and --output Y.safetensors are required");
  if (f.get("model") == "none")
    return forward_neurn_only(f.get("neurn-options", "k=3"), f.get("input"), f.get("output"), f.get("device", "cpu"));
  NetworkFlags net{f.get("model"), {}};
  if (f.has("neurn-options")) {
    NeuRNOptions no = parse_neurn_options(f.get("neurn-options"));
    net.options.front = [no] { return make_neurn_layer(no); };
  }
  Device device = Device::parse(f.get("device", "cpu"));

  Tensor x = find_tensor(load_safetensors(f.get("input")), "input", f.get("input"));
  if (x.dim() == 3) x = x.reshape({1, x.size(0), x.size(1), x.size(2)});
  NEURN_CHECK(x.dim() == 4, f.get("input"), ": \"input\" must be (N, C, H, W) or (C, H, W), got ",
              shape_str(x.shape()));
  NEURN_CHECK(is_floating(x.dtype()), f.get("input"), ": \"input\" must hold floating-point values, got ",
              dtype_name(x.dtype()));
  net.options.in_channels = x.size(1);
  net.options.input_size = x.size(2);

  NamedTensors weights;
  const std::string wpath = f.get("weights", "");
  const bool keras = f.has("weights") && is_keras_weights_file(wpath);
  if (keras) {  // in neurn names (converted on a shape-only model), for the class count
    ParamScope meta({.device = Device::meta()});
    weights = keras_to_neurn(*build_model(net.model, net.options), read_hdf5_datasets(wpath), wpath).tensors;
  } else if (f.has("weights")) {
    weights = load_safetensors(wpath);
  }
  net.options.num_classes = f.has("classes")   ? f.get_int("classes", 10)
                            : f.has("weights") ? classes_in_weights(net.model, weights, net.options)
                                               : 10;
  ModulePtr model;
  {
    ParamScope scope({.device = device});
    model = build_model(net.model, net.options);
  }
  if (f.has("weights")) {
    LoadReport rep = keras ? load_keras_weights(*model, wpath, true) : load_state(*model, weights, true, wpath);
    std::fprintf(stderr, "weights: %s\n", rep.str().c_str());
  }
  model->eval();
  Tensor y;
  {
    NoGradGuard no_grad;
    y = (*model)(x.to(DType::Float32).to(device));
  }
  save_safetensors(f.get("output"), {{"output", y.cpu()}}, {{"model", net.model}});
  std::printf("output %s -> %s\n", shape_str(y.shape()).c_str(), f.get("output").c_str());
  return 0;
}

Register reg{{
    .name = "forward",
    .summary = "eval-mode forward of a model on a safetensors tensor (logits to safetensors)",
    .flags = {text("model", "NAME", "registry name (see `neurn models`), or none: NeuRN alone; required"),
              text("weights", "W", "a state dict in safetensors (PyTorch names; strict: every key must match), or "
                                   "a Keras Applications .h5 file (Keras layer names, mapped as docs/models.md says)"),
              text("input", "X.safetensors", "the tensor named \"input\": (N, C, H, W), or one image (C, H, W); required"),
              text("output", "Y.safetensors", "where \"output\" goes; required"),
              integer("classes", "N", "(the head's in W, else 10)"), text("device", "cpu|cuda", "(cpu)"),
              text("neurn-options", "SPEC", "k=3[,padding=valid,max_scope=image,eps=1e-6]: NeuRN in front of the model")},
    .details = "Runs NAME in eval mode and writes the logits (N, classes) as \"output\". With --model none, NeuRN "
               "alone is applied and \"output\" has the input's shape and dtype.",
    .fn = run_forward}};

}  // namespace
}  // namespace neurn::cli
