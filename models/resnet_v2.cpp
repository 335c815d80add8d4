// ResNet50V2 (He et al., "Identity Mappings in Deep Residual Networks",
// 2016: pre-activation blocks) as Keras Applications builds it
// (keras.applications.ResNet50V2): biased convolutions where Keras has them,
// explicit zero padding layers, the stride on the last block of each stack,
// a 1x1 max pooling as the strided identity shortcut, BN eps 1.001e-5, a
// final post_bn/post_relu, global average pooling and the classifier.
// Parameters as Keras counts them (trainable plus the BN moving statistics):
// ResNet50V2 25,613,800 (25,568,360 trainable), ResNet101V2 44,675,560,
// ResNet152V2 60,380,648 (one builder, blocks per stack 3-4-6-3, 3-4-23-3,
// 3-8-36-3). State keys follow the Keras layer names with the
// stack and block as path: conv2.block1.0_conv.weight for conv2_block1_0_conv.
#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

constexpr double kEps = 1.001e-5;
constexpr double kMomentum = 0.01;  // Keras momentum 0.99

std::shared_ptr<BatchNorm2d> keras_bn(int64_t c) { return std::make_shared<BatchNorm2d>(c, kEps, kMomentum); }

class PreactBlock : public Module {
 public:
  PreactBlock(int64_t in, int64_t filters, int64_t stride, bool conv_shortcut) {
    preact_bn_ = register_module("preact_bn", keras_bn(in));
    preact_relu_ = register_module("preact_relu", std::make_shared<ReLU>());
    if (conv_shortcut) {
      shortcut_ = register_module("0_conv", std::make_shared<Conv2d>(in, 4 * filters, 1, stride));
      shortcut_from_preact_ = true;
    } else if (stride > 1) {
      shortcut_ = register_module("0_pool", std::make_shared<MaxPool2d>(1, stride));
    }
    conv1_ = register_module("1_conv", std::make_shared<Conv2d>(in, filters, 1, 1, 0, 1, 1, false));
    bn1_ = register_module("1_bn", keras_bn(filters));
    relu1_ = register_module("1_relu", std::make_shared<ReLU>());
    pad2_ = register_module("2_pad", std::make_shared<ZeroPad2d>(1));
    conv2_ = register_module("2_conv", std::make_shared<Conv2d>(filters, filters, 3, stride, 0, 1, 1, false));
    bn2_ = register_module("2_bn", keras_bn(filters));
    relu2_ = register_module("2_relu", std::make_shared<ReLU>());
    conv3_ = register_module("3_conv", std::make_shared<Conv2d>(filters, 4 * filters, 1));
  }

  Tensor forward(const Tensor& x) override {
    Tensor pre = (*preact_relu_)((*preact_bn_)(x));
    Tensor shortcut = !shortcut_ ? x : (*shortcut_)(shortcut_from_preact_ ? pre : x);
    Tensor y = (*relu1_)((*bn1_)((*conv1_)(pre)));
    y = (*relu2_)((*bn2_)((*conv2_)((*pad2_)(y))));
    y = (*conv3_)(y);
    return residual_add(shortcut, y);
  }

 private:
  ModulePtr preact_bn_, preact_relu_, shortcut_, conv1_, bn1_, relu1_, pad2_, conv2_, bn2_, relu2_, conv3_;
  bool shortcut_from_preact_ = false;
};

}  // namespace

ModulePtr build_resnet_v2(const std::vector<int64_t>& blocks, const ModelOptions& o) {
  NEURN_CHECK(blocks.size() == 4, "build_resnet_v2: expected 4 stacks, got ", blocks.size());
  DeferInit defer;  // every kernel and bias is re-initialised below
  auto model = std::make_shared<Sequential>();
  model->add("conv1_pad", std::make_shared<ZeroPad2d>(3));
  model->add("conv1_conv", std::make_shared<Conv2d>(o.in_channels, 64, 7, 2));
  model->add("pool1_pad", std::make_shared<ZeroPad2d>(1));
  model->add("pool1_pool", std::make_shared<MaxPool2d>(3, 2));
  int64_t in = 64;
  const int64_t filters[4] = {64, 128, 256, 512};
  for (int s = 0; s < 4; ++s) {
    auto stack = model->add("conv" + std::to_string(s + 2), std::make_shared<Sequential>());
    for (int64_t b = 1; b <= blocks[s]; ++b) {
      // Keras stack2: a projection shortcut first, the stride (2, except the last stack) on the last block
      int64_t stride = (b == blocks[s] && s < 3) ? 2 : 1;
      stack->add("block" + std::to_string(b), std::make_shared<PreactBlock>(in, filters[s], stride, b == 1));
      in = 4 * filters[s];
    }
  }
  model->add("post_bn", keras_bn(in));
  model->add("post_relu", std::make_shared<ReLU>());
  model->add("avg_pool", std::make_shared<GlobalAvgPool>());
  if (o.dropout && *o.dropout > 0) model->add("dropout", std::make_shared<Dropout>(*o.dropout));
  model->add("predictions", std::make_shared<Linear>(in, o.num_classes));
  // Keras's init: Glorot-uniform kernels, zero biases
  model->apply([](const std::string&, Module& m) {
    if (m.type() != "Conv" && m.type() != "Linear") return;
    xavier_uniform_(m.param("weight"));
    if (m.has_param("bias")) constant_(m.param("bias"), 0.0);
  });
  return model;
}

ModulePtr build_resnet50v2(const ModelOptions& o) { return build_resnet_v2({3, 4, 6, 3}, o); }

namespace {
ModulePtr build_resnet101v2(const ModelOptions& o) { return build_resnet_v2({3, 4, 23, 3}, o); }
ModulePtr build_resnet152v2(const ModelOptions& o) { return build_resnet_v2({3, 8, 36, 3}, o); }
}  // namespace

NEURN_REGISTER_MODEL(resnet50v2, (ModelInfo{.name = "resnet50v2",
                                   .family = "ResNet",
                                   .reference = "He et al. 2016 (identity mappings); Keras applications ResNet50V2",
                                   .description = "pre-activation bottleneck residual network, 3-4-6-3 blocks",
                                   .aliases = {"resnet50_v2"}}),
                    build_resnet50v2);
NEURN_REGISTER_MODEL(resnet101v2,
                     (ModelInfo{.name = "resnet101v2",
                                .family = "ResNet",
                                .reference = "He et al. 2016 (identity mappings); Keras applications ResNet101V2",
                                .description = "pre-activation bottleneck residual network, 3-4-23-3 blocks",
                                .aliases = {"resnet101_v2"}}),
                     build_resnet101v2);
NEURN_REGISTER_MODEL(resnet152v2,
                     (ModelInfo{.name = "resnet152v2",
                                .family = "ResNet",
                                .reference = "He et al. 2016 (identity mappings); Keras applications ResNet152V2",
                                .description = "pre-activation bottleneck residual network, 3-8-36-3 blocks",
                                .aliases = {"resnet152_v2"}}),
                     build_resnet152v2);

}  // namespace neurn
