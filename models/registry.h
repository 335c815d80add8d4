#pragma once
// The registry of architectures: a name maps to a builder and metadata.
// Every model of the project is built from ModelOptions through here, so
// training, evaluation, the meta trace (N-W alignment, FLOPs) and NAS share
// one definition.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "layers/module.h"

namespace neurn {

struct ModelOptions {
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  int64_t input_size = 32;  // square inputs, pixels; must be >= the model's min_input_size
  double width = 1.0;       // width multiplier; only families that have one accept != 1
  // Dropout before the classifier; absent: the reference's rate.
  std::optional<double> dropout;
  // The architecture of a searched model (spos, autoformer): the choices
  // their search exported, as the model's builder documents (a path to the
  // exported JSON, or an inline encoding); empty: the model's documented
  // default architecture. Other models reject a non-empty arch.
  std::string arch;
  // A module put in front of the backbone (the NeuRN layer): it must keep the
  // shape (N, in_channels, H, W). The model's own state keys do not change;
  // the front's tensors, if any, are named "front.*".
  std::function<ModulePtr()> front;
};

struct ModelInfo {
  std::string name;         // "resnet50"; the canonical name
  std::string family;       // "ResNet"
  std::string reference;    // the paper and the implementation it is identical to
  std::string description;  // one line
  int64_t min_input_size = 32;
  bool has_width = false;  // accepts ModelOptions::width != 1
  bool has_arch = false;   // accepts ModelOptions::arch (searched architectures)
  std::vector<std::string> aliases = {};  // other spellings that resolve to `name` ("resnet50_v2")
  // What the model outputs: "classification" logits (N, classes); "segmentation"
  // per-pixel logits (N, classes, H, W); "depth" a map (N, 1, H, W). Only
  // classifiers go through the experiment runner.
  std::string task = "classification";
  // The input side the reference reports its cost at (224 for most ImageNet
  // models, 299 Inception/Xception, 331 NASNetLarge, 32 for the digits models):
  // `neurn models` gives FLOPs there.
  int64_t reference_input_size = 224;
  // The classes the reference counts its parameters at (1000 ImageNet, 21 VOC).
  int64_t reference_classes = 1000;
  // The input channels of the reference (3 RGB; 1 for U-Net's gray microscopy).
  int64_t reference_in_channels = 3;
};

using ModelBuilder = std::function<ModulePtr(const ModelOptions&)>;

// Adds (or replaces) an entry. A model registers itself in the file that
// defines it, with NEURN_REGISTER_MODEL below, so adding an architecture
// touches that file and nothing else.
void register_model(const ModelInfo& info, ModelBuilder builder);
// All entries, sorted by name (aliases are not listed separately).
std::vector<ModelInfo> list_models();
bool has_model(const std::string& name);               // a name or an alias
const ModelInfo& model_info(const std::string& name);  // throws, naming the known models
// The canonical name of a name or alias ("resnet50_v2" -> "resnet50v2").
std::string canonical_model_name(const std::string& name);

// Registration at static-initialisation time:
//   NEURN_REGISTER_MODEL(vgg19, (ModelInfo{.name = "vgg19", ...}), build_vgg19);
// `id` only makes the registrar's name unique. models/ and nas/ are linked as
// whole archives (CMakeLists.txt) so that no registering file is dropped.
struct ModelRegistrar {
  ModelRegistrar(const ModelInfo& info, ModelBuilder builder) { register_model(info, std::move(builder)); }
};
#define NEURN_REGISTER_MODEL(id, info, builder) \
  static const ::neurn::ModelRegistrar neurn_model_registrar_##id(info, builder)

// Validates the options against the model's metadata (input size, width),
// builds it (parameters where the current ParamScope says: see
// layers/init.h) and puts options.front in front when set.
ModulePtr build_model(const std::string& name, const ModelOptions& options = {});

// Layer sequence, size and cost of a model, from one forward pass in eval
// mode on the meta device (no memory, no arithmetic).
struct ModelTrace {
  std::vector<std::string> tokens;  // leaf layer types, in execution order
  int64_t params = 0;               // trainable parameters
  int64_t total_params = 0;         // plus floating buffers (Keras's count incl. BN moving statistics)
  int64_t flops = 0;                // one image; a multiply-add counts 2
  Shape output_shape;               // for one image
};
// `model` must live on the meta device; input (1, C, H, W) is built there.
ModelTrace trace_model(Module& model, const Shape& input_shape);
// Builds `name` on the meta device and traces it at (1, in_channels,
// input_size, input_size).
ModelTrace trace_model(const std::string& name, const ModelOptions& options = {});

}  // namespace neurn
