// SqueezeNet 1.0 (Iandola et al., "SqueezeNet: AlexNet-level accuracy with
// 50x fewer parameters and <0.5MB model size", 2016), identical to
// torchvision's models.squeezenet1_0: modules, state keys
// (features.3.squeeze.weight, features.3.expand3x3.bias, classifier.1.weight)
// and init. 1,248,424 parameters at 1000 classes.
#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

// A Fire module: a 1x1 "squeeze" convolution, then 1x1 and 3x3 "expand"
// convolutions side by side, concatenated (1x1 first), each with its ReLU.
class Fire : public Module {
 public:
  Fire(int64_t in, int64_t squeeze, int64_t expand1x1, int64_t expand3x3) {
    squeeze_ = register_module("squeeze", std::make_shared<Conv2d>(in, squeeze, 1));
    squeeze_relu_ = register_module("squeeze_activation", std::make_shared<ReLU>());
    expand1x1_ = register_module("expand1x1", std::make_shared<Conv2d>(squeeze, expand1x1, 1));
    expand1x1_relu_ = register_module("expand1x1_activation", std::make_shared<ReLU>());
    expand3x3_ = register_module("expand3x3", std::make_shared<Conv2d>(squeeze, expand3x3, 3, 1, 1));
    expand3x3_relu_ = register_module("expand3x3_activation", std::make_shared<ReLU>());
  }
  Tensor forward(const Tensor& x) override {  // (N, in, H, W) -> (N, expand1x1 + expand3x3, H, W)
    Tensor s = (*squeeze_relu_)((*squeeze_)(x));
    return channel_concat({(*expand1x1_relu_)((*expand1x1_)(s)), (*expand3x3_relu_)((*expand3x3_)(s))});
  }

 private:
  ModulePtr squeeze_, squeeze_relu_, expand1x1_, expand1x1_relu_, expand3x3_, expand3x3_relu_;
};

}  // namespace

ModulePtr build_squeezenet1_0(const ModelOptions& o) {
  DeferInit defer;  // every weight is redrawn below
  auto model = std::make_shared<Sequential>();
  auto f = model->add("features", std::make_shared<Sequential>());
  f->emplace<Conv2d>(o.in_channels, 96, 7, 2);
  f->emplace<ReLU>();
  f->emplace<MaxPool2d>(3, 2, 0, true);  // ceil_mode, as torchvision
  f->push_back(std::make_shared<Fire>(96, 16, 64, 64));
  f->push_back(std::make_shared<Fire>(128, 16, 64, 64));
  f->push_back(std::make_shared<Fire>(128, 32, 128, 128));
  f->emplace<MaxPool2d>(3, 2, 0, true);
  f->push_back(std::make_shared<Fire>(256, 32, 128, 128));
  f->push_back(std::make_shared<Fire>(256, 48, 192, 192));
  f->push_back(std::make_shared<Fire>(384, 48, 192, 192));
  f->push_back(std::make_shared<Fire>(384, 64, 256, 256));
  f->emplace<MaxPool2d>(3, 2, 0, true);
  f->push_back(std::make_shared<Fire>(512, 64, 256, 256));
  // the classifier is a 1x1 convolution to the classes, averaged over the map
  auto c = model->add("classifier", std::make_shared<Sequential>());
  c->emplace<Dropout>(o.dropout.value_or(0.5));
  auto final_conv = c->emplace<Conv2d>(512, o.num_classes, 1);
  c->emplace<ReLU>();
  c->emplace<AdaptiveAvgPool2d>(1);
  model->add("flatten", std::make_shared<Flatten>());
  // torchvision's init: He uniform (fan_in, gain sqrt 2) convolutions, the
  // final one N(0, 0.01); every bias 0
  model->apply([&](const std::string&, Module& m) {
    if (!m.has_param("weight")) return;
    if (&m == final_conv.get())
      normal_(m.param("weight"), 0.0, 0.01);
    else
      kaiming_uniform_(m.param("weight"));
    constant_(m.param("bias"), 0.0);
  });
  return model;
}

NEURN_REGISTER_MODEL(squeezenet, (ModelInfo{.name = "squeezenet",
                                    .family = "SqueezeNet",
                                    .reference = "Iandola et al. 2016, SqueezeNet 1.0; torchvision models.squeezenet1_0",
                                    .description = "Fire modules (1x1 squeeze, 1x1 + 3x3 expand), convolutional classifier",
                                    .aliases = {"squeezenet1_0"}}),
                     build_squeezenet1_0);

}  // namespace neurn
