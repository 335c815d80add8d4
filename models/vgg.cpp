// VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for
// Large-Scale Image Recognition", 2015), identical to torchvision's
// models.vgg19: the same modules, state keys (features.0.weight, ...,
// classifier.6.bias) and init. 143,667,240 parameters at 1000 classes.
#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

ModulePtr build_vgg(const std::vector<int64_t>& cfg, const ModelOptions& o) {
  DeferInit defer;  // every weight is re-initialised below
  auto model = std::make_shared<Sequential>();
  auto features = model->add("features", std::make_shared<Sequential>());
  int64_t in = o.in_channels;
  for (int64_t v : cfg) {
    if (v == 0) {  // 0 marks a max pooling
      features->emplace<MaxPool2d>(2, 2);
      continue;
    }
    auto conv = features->emplace<Conv2d>(in, v, 3, 1, 1);
    kaiming_normal_(conv->param("weight"), FanMode::FanOut);
    constant_(conv->param("bias"), 0.0);
    features->emplace<ReLU>();
    in = v;
  }
  // torchvision pools to 7x7 whatever the input: at 32x32 the 1x1 map is
  // replicated 49 times, so the classifier (and pretrained weights) stay the same
  model->add("avgpool", std::make_shared<AdaptiveAvgPool2d>(7));
  model->add("flatten", std::make_shared<Flatten>());
  double p = o.dropout.value_or(0.5);
  auto classifier = model->add("classifier", std::make_shared<Sequential>());
  classifier->emplace<Linear>(in * 7 * 7, 4096);
  classifier->emplace<ReLU>();
  classifier->emplace<Dropout>(p);
  classifier->emplace<Linear>(4096, 4096);
  classifier->emplace<ReLU>();
  classifier->emplace<Dropout>(p);
  classifier->emplace<Linear>(4096, o.num_classes);
  for (auto& [name, m] : classifier->children()) {
    if (!m->has_param("weight")) continue;
    normal_(m->param("weight"), 0.0, 0.01);
    constant_(m->param("bias"), 0.0);
  }
  return model;
}

ModulePtr build_vgg19(const ModelOptions& o) {
  // configuration "E" of the paper
  return build_vgg({64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0}, o);
}

NEURN_REGISTER_MODEL(vgg19, (ModelInfo{.name = "vgg19",
                                   .family = "VGG",
                                   .reference = "Simonyan & Zisserman 2015, configuration E; torchvision models.vgg19",
                                   .description = "19 layers, 3x3 convolutions, three fully connected layers"}),
                    build_vgg19);

}  // namespace neurn
