#include "models/registry.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "layers/init.h"
#include "models/backbones.h"

namespace neurn {

namespace {

struct Entry {
  ModelInfo info;
  ModelBuilder builder;
};

// The built-in models. One row per architecture; a new backbone adds a row.
std::vector<Entry> builtin_models() {
  return {
      {{"digits_convnet", "ConvNet", "single-source digits DG ConvNet (Volpi et al. 2018, Qiao et al. 2020)",
        "conv5x5-64, pool, conv5x5-128, pool, fc 1024, fc 1024 on 32x32 digits", 32, false},
       build_digits_convnet},
      {{"vgg19", "VGG", "Simonyan & Zisserman 2015, configuration E; torchvision models.vgg19",
        "19 layers, 3x3 convolutions, three fully connected layers", 32, false},
       build_vgg19},
      {{"resnet50", "ResNet", "He et al. 2016; torchvision models.resnet50 (v1.5)",
        "bottleneck residual network, 3-4-6-3 blocks", 32, false},
       build_resnet50},
      {{"resnet50v2", "ResNet", "He et al. 2016 (identity mappings); Keras applications ResNet50V2",
        "pre-activation bottleneck residual network, 3-4-6-3 blocks", 32, false},
       build_resnet50v2},
      {{"densenet121", "DenseNet", "Huang et al. 2017; torchvision models.densenet121",
        "dense blocks 6-12-24-16, growth rate 32", 32, false},
       build_densenet121},
      {{"mobilenet", "MobileNet", "Howard et al. 2017; Keras applications MobileNet (alpha = width)",
        "depthwise-separable convolutions, 13 blocks", 32, true},
       build_mobilenet},
      {{"mobilenet_v2", "MobileNet", "Sandler et al. 2018; torchvision models.mobilenet_v2 (width_mult = width)",
        "inverted residuals with linear bottlenecks", 32, true},
       build_mobilenet_v2},
  };
}

std::map<std::string, Entry>& table() {
  static std::map<std::string, Entry> t;
  static std::once_flag once;
  std::call_once(once, [] {
    for (auto& e : builtin_models()) t[e.info.name] = e;
  });
  return t;
}

std::mutex& table_mutex() {
  static std::mutex m;
  return m;
}

std::string known_names() {
  std::string s;
  for (auto& [n, e] : table()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// The backbone behind a front module. The backbone is an inline child so its
// state keys stay those of the reference (conv1.weight, not backbone.conv1...).
class FrontedModel : public Module {
 public:
  FrontedModel(ModulePtr front, ModulePtr backbone) {
    front_ = register_module("front", std::move(front));
    backbone_ = register_module("", std::move(backbone));
  }
  Tensor forward(const Tensor& x) override { return (*backbone_)((*front_)(x)); }

 private:
  ModulePtr front_, backbone_;
};

}  // namespace

void register_model(const ModelInfo& info, ModelBuilder builder) {
  NEURN_CHECK(!info.name.empty() && builder, "register_model: a model needs a name and a builder");
  std::lock_guard<std::mutex> lock(table_mutex());
  table()[info.name] = Entry{info, std::move(builder)};
}

std::vector<ModelInfo> list_models() {
  std::lock_guard<std::mutex> lock(table_mutex());
  std::vector<ModelInfo> out;
  for (auto& [n, e] : table()) out.push_back(e.info);
  return out;
}

bool has_model(const std::string& name) {
  std::lock_guard<std::mutex> lock(table_mutex());
  return table().count(name) > 0;
}

const ModelInfo& model_info(const std::string& name) {
  std::lock_guard<std::mutex> lock(table_mutex());
  auto it = table().find(name);
  NEURN_CHECK(it != table().end(), "unknown model '", name, "'; known models: ", known_names());
  return it->second.info;
}

ModulePtr build_model(const std::string& name, const ModelOptions& options) {
  ModelBuilder builder;
  ModelInfo info;
  {
    std::lock_guard<std::mutex> lock(table_mutex());
    auto it = table().find(name);
    NEURN_CHECK(it != table().end(), "unknown model '", name, "'; known models: ", known_names());
    builder = it->second.builder;
    info = it->second.info;
  }
  NEURN_CHECK(options.num_classes > 0, name, ": num_classes must be positive, got ", options.num_classes);
  NEURN_CHECK(options.in_channels > 0, name, ": in_channels must be positive, got ", options.in_channels);
  NEURN_CHECK(options.input_size >= info.min_input_size, name, " needs inputs of at least ", info.min_input_size, "x",
              info.min_input_size, " pixels, got input_size ", options.input_size,
              " (resize the images up to the model's min_input_size)");
  NEURN_CHECK(options.width > 0, name, ": width must be positive, got ", options.width);
  NEURN_CHECK(info.has_width || options.width == 1.0, name, " has no width multiplier (got width ", options.width,
              "); the families with one: MobileNet, MobileNetV2");
  NEURN_CHECK(!options.dropout || (*options.dropout >= 0 && *options.dropout < 1), name,
              ": dropout must be in [0, 1), got ", options.dropout.value_or(0));
  ModulePtr model = builder(options);
  if (!options.front) return model;
  ModulePtr front = options.front();
  NEURN_CHECK(front != nullptr, name, ": ModelOptions::front returned no module");
  return std::make_shared<FrontedModel>(std::move(front), std::move(model));
}

ModelTrace trace_model(Module& model, const Shape& input_shape) {
  auto params = model.named_parameters();
  Device dev = params.empty() ? Device::meta() : params.front().second.device();
  DType dt = params.empty() ? DType::Float32 : params.front().second.dtype();
  NEURN_CHECK(dev.is_meta(), "trace_model: the model must live on the meta device, its parameters are on ", dev.str(),
              " (build it under ParamScope({.device = Device::meta()}))");
  ModelTrace out;
  out.params = model.num_parameters(true);
  out.total_params = model.num_parameters(false);
  bool was_training = model.is_training();
  model.eval();
  Tensor x = Tensor::empty(input_shape, {dt, Device::meta(), false});
  {
    NoGradGuard no_grad;
    FlopCounter flops;
    LayerTrace trace;
    Tensor y = model(x);
    out.tokens = trace.tokens();
    out.flops = flops.flops();
    out.output_shape = y.shape();
  }
  model.train(was_training);
  return out;
}

ModelTrace trace_model(const std::string& name, const ModelOptions& options) {
  ParamScope scope({.device = Device::meta()});
  ModulePtr model = build_model(name, options);
  return trace_model(*model, {1, options.in_channels, options.input_size, options.input_size});
}

}  // namespace neurn
