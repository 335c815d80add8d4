// The ConvNet of single-source domain generalization on digits (Volpi et al.,
// "Generalizing to Unseen Domains via Adversarial Data Augmentation", 2018;
// Qiao et al., "Learning to Learn Single Domain Generalization", 2020):
// conv5x5-64, ReLU, maxpool2, conv5x5-128, ReLU, maxpool2, fc 1024, ReLU,
// fc 1024, ReLU, fc classes, on 3x32x32 inputs with unpadded convolutions.
#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

ModulePtr build_digits_convnet(const ModelOptions& o) {
  // spatial size after the two conv(5, valid) + maxpool(2) stages: 32 -> 28 -> 14 -> 10 -> 5
  int64_t s = ((o.input_size - 4) / 2 - 4) / 2;
  NEURN_CHECK(s > 0, "digits_convnet: input_size ", o.input_size, " is too small (needs at least 14)");
  auto model = std::make_shared<Sequential>();
  auto features = model->add("features", std::make_shared<Sequential>());
  features->emplace<Conv2d>(o.in_channels, 64, 5);
  features->emplace<ReLU>();
  features->emplace<MaxPool2d>(2);
  features->emplace<Conv2d>(64, 128, 5);
  features->emplace<ReLU>();
  features->emplace<MaxPool2d>(2);
  model->add("flatten", std::make_shared<Flatten>());
  auto classifier = model->add("classifier", std::make_shared<Sequential>());
  classifier->emplace<Linear>(128 * s * s, 1024);  // 3200 at 32x32
  classifier->emplace<ReLU>();
  if (o.dropout && *o.dropout > 0) classifier->emplace<Dropout>(*o.dropout);
  classifier->emplace<Linear>(1024, 1024);
  classifier->emplace<ReLU>();
  if (o.dropout && *o.dropout > 0) classifier->emplace<Dropout>(*o.dropout);
  classifier->emplace<Linear>(1024, o.num_classes);
  return model;
}

NEURN_REGISTER_MODEL(digits_convnet, (ModelInfo{.name = "digits_convnet",
                                   .family = "ConvNet",
                                   .reference = "single-source digits DG ConvNet (Volpi et al. 2018, Qiao et al. 2020)",
                                   .description = "conv5x5-64, pool, conv5x5-128, pool, fc 1024, fc 1024 on 32x32 digits",
                                   .reference_input_size = 32,
                                .reference_classes = 10}),
                    build_digits_convnet);

}  // namespace neurn
