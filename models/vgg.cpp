// VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for
// Large-Scale Image Recognition", 2015), identical to torchvision's
// models.vgg11, vgg16 and vgg19 (configurations A, D and E of the paper's
// Table 1, without batch norm): the same modules, state keys
// (features.0.weight, ..., classifier.6.bias) and init. 132,863,336,
// 138,357,544 and 143,667,240 parameters at 1000 classes.
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

namespace {

// The paper's configurations by letter, A (VGG11), D (VGG16), E (VGG19):
// channels of each 3x3 convolution, 0 a max pooling.
const std::vector<int64_t>& vgg_config(char name) {
  static const std::vector<int64_t> a = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
  static const std::vector<int64_t> d = {64,  64,  0,   128, 128, 0,   256, 256, 256,
                                         0,   512, 512, 512, 0,   512, 512, 512, 0};
  static const std::vector<int64_t> e = {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
                                         512, 512, 512, 512, 0,   512, 512, 512, 512, 0};
  switch (name) {
    case 'A': return a;
    case 'D': return d;
    case 'E': return e;
  }
  NEURN_CHECK(false, "vgg_config: unknown configuration '", name, "' (A, D or E)");
  return e;
}

}  // namespace

ModulePtr build_vgg19(const ModelOptions& o) { return build_vgg(vgg_config('E'), o); }

NEURN_REGISTER_MODEL(vgg19, (ModelInfo{.name = "vgg19",
                                   .family = "VGG",
                                   .reference = "Simonyan & Zisserman 2015, configuration E; torchvision models.vgg19",
                                   .description = "19 layers, 3x3 convolutions, three fully connected layers"}),
                    build_vgg19);

NEURN_REGISTER_MODEL(vgg11, (ModelInfo{.name = "vgg11",
                                   .family = "VGG",
                                   .reference = "Simonyan & Zisserman 2015, configuration A; torchvision models.vgg11",
                                   .description = "11 layers, 3x3 convolutions, three fully connected layers"}),
                    [](const ModelOptions& o) { return build_vgg(vgg_config('A'), o); });

NEURN_REGISTER_MODEL(vgg16, (ModelInfo{.name = "vgg16",
                                   .family = "VGG",
                                   .reference = "Simonyan & Zisserman 2015, configuration D; torchvision models.vgg16",
                                   .description = "16 layers, 3x3 convolutions, three fully connected layers"}),
                    [](const ModelOptions& o) { return build_vgg(vgg_config('D'), o); });

}  // namespace neurn
