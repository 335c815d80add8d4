#include "models/registry.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "layers/init.h"

namespace neurn {

namespace {

struct Entry {
  ModelInfo info;
  ModelBuilder builder;
};

// Registration runs during static initialisation, from many files in an
// unspecified order: the table is a function-local static, made on first use.
struct Table {
  std::map<std::string, Entry> entries;         // by canonical name
  std::map<std::string, std::string> aliases;  // alias -> canonical name
  std::mutex mutex;
};

Table& table() {
  static Table t;
  return t;
}

// The caller holds the mutex.
const Entry* find_entry(const std::string& name) {
  Table& t = table();
  auto it = t.entries.find(name);
  if (it != t.entries.end()) return &it->second;
  auto al = t.aliases.find(name);
  if (al == t.aliases.end()) return nullptr;
  it = t.entries.find(al->second);
  return it == t.entries.end() ? nullptr : &it->second;
}

std::string known_names() {
  std::string s;
  for (auto& [n, e] : table().entries) s += (s.empty() ? "" : ", ") + n;
  return s;
}

const Entry& entry(const std::string& name) {
  const Entry* e = find_entry(name);
  NEURN_CHECK(e != nullptr, "unknown model '", name, "'; known models: ", known_names());
  return *e;
}

std::string width_families() {
  std::string s;
  for (auto& [n, e] : table().entries)
    if (e.info.has_width) s += (s.empty() ? "" : ", ") + n;
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
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  for (auto& alias : info.aliases) {
    NEURN_CHECK(!t.entries.count(alias), "register_model: alias '", alias, "' of ", info.name,
                " is already a model's name");
    t.aliases[alias] = info.name;
  }
  t.entries[info.name] = Entry{info, std::move(builder)};
}

std::vector<ModelInfo> list_models() {
  std::lock_guard<std::mutex> lock(table().mutex);
  std::vector<ModelInfo> out;
  for (auto& [n, e] : table().entries) out.push_back(e.info);
  return out;
}

bool has_model(const std::string& name) {
  std::lock_guard<std::mutex> lock(table().mutex);
  return find_entry(name) != nullptr;
}

const ModelInfo& model_info(const std::string& name) {
  std::lock_guard<std::mutex> lock(table().mutex);
  return entry(name).info;  // entries are never removed, only replaced by name
}

std::string canonical_model_name(const std::string& name) { return model_info(name).name; }

ModulePtr build_model(const std::string& name, const ModelOptions& options) {
  ModelBuilder builder;
  ModelInfo info;
  std::string with_width;
  {
    std::lock_guard<std::mutex> lock(table().mutex);
    const Entry& e = entry(name);
    builder = e.builder;
    info = e.info;
    with_width = width_families();
  }
  NEURN_CHECK(options.num_classes > 0, name, ": num_classes must be positive, got ", options.num_classes);
  NEURN_CHECK(options.in_channels > 0, name, ": in_channels must be positive, got ", options.in_channels);
  NEURN_CHECK(options.input_size >= info.min_input_size, name, " needs inputs of at least ", info.min_input_size, "x",
              info.min_input_size, " pixels, got input_size ", options.input_size,
              " (resize the images up to the model's min_input_size)");
  NEURN_CHECK(options.width > 0, name, ": width must be positive, got ", options.width);
  NEURN_CHECK(info.has_width || options.width == 1.0, name, " has no width multiplier (got width ", options.width,
              "); the models with one: ", with_width);
  NEURN_CHECK(info.has_arch || options.arch.empty(), name, " has no searchable architecture (got arch '",
              options.arch, "'); arch is for the models of a search (spos, autoformer)");
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
