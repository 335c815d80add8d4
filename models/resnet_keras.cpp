// ResNet v1 (He et al., "Deep Residual Learning for Image Recognition", 2016)
// as Keras Applications builds it (keras.applications.ResNet50/101/152,
// resnet.py's block1/stack1), which is not torchvision's layout:
// - every convolution has a bias (Keras's Conv2D default), BN eps 1.001e-5,
//   Keras momentum 0.99;
// - the stride of a stack's first block sits on its first 1x1 convolution
//   (the "v1" placement; torchvision's "v1.5" puts it on the 3x3);
// - explicit zero padding layers before the 7x7 stem and the max pooling.
// Counts as Keras's model.count_params() (trainable plus BN moving
// statistics): 25,636,712 (50), 44,707,176 (101), 60,419,944 (152).
//
// Names: torchvision's resnet50/101/152 (models/resnet.cpp) keep the plain
// names; these are resnet50_keras, resnet101_keras and resnet152_keras. State
// keys follow the Keras layer names with the stack and block as path, as
// resnet50v2 does: conv2.block1.0_conv.weight for conv2_block1_0_conv/kernel,
// so the generic Keras .h5 mapping (models/keras_weights.h) loads them.
#include "layers/layers.h"
#include "models/keras_init.h"
#include "models/registry.h"

namespace neurn {

namespace {

constexpr double kEps = 1.001e-5;

// Keras's block1: [0_conv 1x1/stride + 0_bn shortcut], 1_conv 1x1/stride,
// 2_conv 3x3 same, 3_conv 1x1 (4 x filters), each with BN; ReLU after the
// first two and after the sum.
class KerasBottleneck : public Module {
 public:
  KerasBottleneck(int64_t in, int64_t filters, int64_t stride, bool conv_shortcut) {
    if (conv_shortcut) {
      shortcut_conv_ = register_module("0_conv", std::make_shared<Conv2d>(in, 4 * filters, 1, stride));
      shortcut_bn_ = register_module("0_bn", keras_batch_norm(4 * filters, kEps));
    }
    conv1_ = register_module("1_conv", std::make_shared<Conv2d>(in, filters, 1, stride));
    bn1_ = register_module("1_bn", keras_batch_norm(filters, kEps));
    relu1_ = register_module("1_relu", std::make_shared<ReLU>());
    conv2_ = register_module("2_conv", std::make_shared<Conv2d>(filters, filters, 3, 1, 1));  // "same" at stride 1
    bn2_ = register_module("2_bn", keras_batch_norm(filters, kEps));
    relu2_ = register_module("2_relu", std::make_shared<ReLU>());
    conv3_ = register_module("3_conv", std::make_shared<Conv2d>(filters, 4 * filters, 1));
    bn3_ = register_module("3_bn", keras_batch_norm(4 * filters, kEps));
    out_ = register_module("out", std::make_shared<ReLU>());
  }

  Tensor forward(const Tensor& x) override {  // (N, in, H, W) -> (N, 4 filters, H / stride, W / stride)
    Tensor shortcut = shortcut_conv_ ? (*shortcut_bn_)((*shortcut_conv_)(x)) : x;
    Tensor y = (*relu1_)((*bn1_)((*conv1_)(x)));
    y = (*relu2_)((*bn2_)((*conv2_)(y)));
    y = (*bn3_)((*conv3_)(y));
    return (*out_)(residual_add(shortcut, y));
  }

 private:
  ModulePtr shortcut_conv_, shortcut_bn_, conv1_, bn1_, relu1_, conv2_, bn2_, relu2_, conv3_, bn3_, out_;
};

ModulePtr build_resnet_keras(const std::vector<int64_t>& blocks, const ModelOptions& o) {
  NEURN_CHECK(blocks.size() == 4, "build_resnet_keras: expected 4 stacks, got ", blocks.size());
  DeferInit defer;  // every kernel and bias is re-initialised below
  auto model = std::make_shared<Sequential>();
  model->add("conv1_pad", std::make_shared<ZeroPad2d>(3));
  model->add("conv1_conv", std::make_shared<Conv2d>(o.in_channels, 64, 7, 2));
  model->add("conv1_bn", keras_batch_norm(64, kEps));
  model->add("conv1_relu", std::make_shared<ReLU>());
  model->add("pool1_pad", std::make_shared<ZeroPad2d>(1));
  model->add("pool1_pool", std::make_shared<MaxPool2d>(3, 2));
  int64_t in = 64;
  const int64_t filters[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    auto stack = model->add("conv" + std::to_string(s + 2), std::make_shared<Sequential>());
    for (int64_t b = 1; b <= blocks[s]; ++b) {
      // Keras stack1: stride 1 for conv2, 2 for the others, on the first block (with the projection)
      int64_t stride = (b == 1 && s > 0) ? 2 : 1;
      stack->add("block" + std::to_string(b), std::make_shared<KerasBottleneck>(in, filters[s], stride, b == 1));
      in = 4 * filters[s];
    }
  }
  model->add("avg_pool", std::make_shared<GlobalAvgPool>());
  if (o.dropout && *o.dropout > 0) model->add("dropout", std::make_shared<Dropout>(*o.dropout));
  model->add("predictions", std::make_shared<Linear>(in, o.num_classes));
  keras_glorot_init(*model);  // Keras's defaults: Glorot-uniform kernels, zero biases
  return model;
}

ModulePtr build_resnet50_keras(const ModelOptions& o) { return build_resnet_keras({3, 4, 6, 3}, o); }
ModulePtr build_resnet101_keras(const ModelOptions& o) { return build_resnet_keras({3, 4, 23, 3}, o); }
ModulePtr build_resnet152_keras(const ModelOptions& o) { return build_resnet_keras({3, 8, 36, 3}, o); }

}  // namespace

NEURN_REGISTER_MODEL(resnet50_keras,
                     (ModelInfo{.name = "resnet50_keras",
                                .family = "ResNet",
                                .reference = "He et al. 2016; Keras applications ResNet50 (v1: biased convolutions, "
                                             "stride on the first 1x1)",
                                .description = "Keras's bottleneck residual network, 3-4-6-3 blocks",
                                .aliases = {"resnet50_v1_keras"}}),
                     build_resnet50_keras);
NEURN_REGISTER_MODEL(resnet101_keras,
                     (ModelInfo{.name = "resnet101_keras",
                                .family = "ResNet",
                                .reference = "He et al. 2016; Keras applications ResNet101 (v1: biased convolutions, "
                                             "stride on the first 1x1)",
                                .description = "Keras's bottleneck residual network, 3-4-23-3 blocks",
                                .aliases = {"resnet101_v1_keras"}}),
                     build_resnet101_keras);
NEURN_REGISTER_MODEL(resnet152_keras,
                     (ModelInfo{.name = "resnet152_keras",
                                .family = "ResNet",
                                .reference = "He et al. 2016; Keras applications ResNet152 (v1: biased convolutions, "
                                             "stride on the first 1x1)",
                                .description = "Keras's bottleneck residual network, 3-8-36-3 blocks",
                                .aliases = {"resnet152_v1_keras"}}),
                     build_resnet152_keras);

}  // namespace neurn
