// DenseNet (Huang et al., "Densely Connected Convolutional Networks", 2017),
// identical to torchvision's models.densenet121, densenet169 and densenet201
// (growth 32, blocks 6-12-24-16, 6-12-32-32 and 6-12-48-32, bn_size 4, 64
// initial features): modules, state keys
// (features.denseblock1.denselayer1.norm1.weight, ...) and init.
// 7,978,856, 14,149,480 and 20,013,928 parameters at 1000 classes.
#include <optional>

#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

class DenseLayer : public Module {
 public:
  DenseLayer(int64_t in, int64_t growth, int64_t bn_size) {
    norm1_ = register_module("norm1", std::make_shared<BatchNorm2d>(in));
    relu1_ = register_module("relu1", std::make_shared<ReLU>());
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(in, bn_size * growth, 1, 1, 0, 1, 1, false));
    norm2_ = register_module("norm2", std::make_shared<BatchNorm2d>(bn_size * growth));
    relu2_ = register_module("relu2", std::make_shared<ReLU>());
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(bn_size * growth, growth, 3, 1, 1, 1, 1, false));
  }
  Tensor forward(const Tensor& x) override {  // (N, in, H, W) -> (N, growth, H, W)
    Tensor y = (*conv1_)((*relu1_)((*norm1_)(x)));
    return (*conv2_)((*relu2_)((*norm2_)(y)));
  }

 private:
  ModulePtr norm1_, relu1_, conv1_, norm2_, relu2_, conv2_;
};

class DenseBlock : public Module {
 public:
  DenseBlock(int64_t layers, int64_t in, int64_t growth, int64_t bn_size) {
    for (int64_t i = 0; i < layers; ++i)
      layers_.push_back(register_module("denselayer" + std::to_string(i + 1),
                                        std::make_shared<DenseLayer>(in + i * growth, growth, bn_size)));
  }
  Tensor forward(const Tensor& x) override {
    // torchvision concatenates all earlier outputs in front of each layer;
    // growing one running concatenation gives the same tensors and the
    // layer sequence Keras's DenseNet has (each layer, then Concatenate)
    Tensor features = x;
    for (auto& layer : layers_) features = channel_concat({features, (*layer)(features)});
    return features;
  }

 private:
  std::vector<ModulePtr> layers_;
};

std::shared_ptr<Sequential> transition(int64_t in, int64_t out) {
  auto t = std::make_shared<Sequential>();
  t->add("norm", std::make_shared<BatchNorm2d>(in));
  t->add("relu", std::make_shared<ReLU>());
  t->add("conv", std::make_shared<Conv2d>(in, out, 1, 1, 0, 1, 1, false));
  t->add("pool", std::make_shared<AvgPool2d>(2, 2));
  return t;
}

}  // namespace

ModulePtr build_densenet(int64_t growth, const std::vector<int64_t>& blocks, int64_t init_features,
                         const ModelOptions& o) {
  const int64_t bn_size = 4;
  std::optional<DeferInit> defer(std::in_place);  // the convolutions are re-initialised below
  auto model = std::make_shared<Sequential>();
  auto features = model->add("features", std::make_shared<Sequential>());
  features->add("conv0", std::make_shared<Conv2d>(o.in_channels, init_features, 7, 2, 3, 1, 1, false));
  features->add("norm0", std::make_shared<BatchNorm2d>(init_features));
  features->add("relu0", std::make_shared<ReLU>());
  features->add("pool0", std::make_shared<MaxPool2d>(3, 2, 1));
  int64_t c = init_features;
  for (size_t i = 0; i < blocks.size(); ++i) {
    features->add("denseblock" + std::to_string(i + 1), std::make_shared<DenseBlock>(blocks[i], c, growth, bn_size));
    c += blocks[i] * growth;
    if (i + 1 < blocks.size()) {
      features->add("transition" + std::to_string(i + 1), transition(c, c / 2));
      c /= 2;
    }
  }
  features->add("norm5", std::make_shared<BatchNorm2d>(c));
  model->add("relu", std::make_shared<ReLU>());
  model->add("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  model->add("flatten", std::make_shared<Flatten>());
  if (o.dropout && *o.dropout > 0) model->add("dropout", std::make_shared<Dropout>(*o.dropout));
  defer.reset();
  auto classifier = model->add("classifier", std::make_shared<Linear>(c, o.num_classes));
  // torchvision's init: He normal (fan_in) convolutions, BN 1 and 0, zero Linear bias
  model->apply([](const std::string&, Module& m) {
    if (m.type() == "Conv") kaiming_normal_(m.param("weight"));
  });
  constant_(classifier->param("bias"), 0.0);
  return model;
}

ModulePtr build_densenet121(const ModelOptions& o) { return build_densenet(32, {6, 12, 24, 16}, 64, o); }

NEURN_REGISTER_MODEL(densenet121, (ModelInfo{.name = "densenet121",
                                   .family = "DenseNet",
                                   .reference = "Huang et al. 2017; torchvision models.densenet121",
                                   .description = "dense blocks 6-12-24-16, growth rate 32"}),
                    build_densenet121);

NEURN_REGISTER_MODEL(densenet169, (ModelInfo{.name = "densenet169",
                                   .family = "DenseNet",
                                   .reference = "Huang et al. 2017; torchvision models.densenet169",
                                   .description = "dense blocks 6-12-32-32, growth rate 32"}),
                    [](const ModelOptions& o) { return build_densenet(32, {6, 12, 32, 32}, 64, o); });

NEURN_REGISTER_MODEL(densenet201, (ModelInfo{.name = "densenet201",
                                   .family = "DenseNet",
                                   .reference = "Huang et al. 2017; torchvision models.densenet201",
                                   .description = "dense blocks 6-12-48-32, growth rate 32"}),
                    [](const ModelOptions& o) { return build_densenet(32, {6, 12, 48, 32}, 64, o); });

}  // namespace neurn
