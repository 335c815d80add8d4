// Xception (Chollet, "Xception: Deep Learning with Depthwise Separable
// Convolutions", CVPR 2017) as Keras Applications builds it
// (keras.applications.Xception):
//   entry flow:  block1 (two valid 3x3 convs, the first of stride 2), then
//                blocks 2-4: two separable convs and a "same" 3x3 stride-2
//                max pool, added to a strided 1x1 conv + BN shortcut
//                (128, 256, 728 filters; block2 starts without a ReLU);
//   middle flow: blocks 5-12: three ReLU + separable conv 728 + BN, identity
//                shortcut;
//   exit flow:   block13 (separable 728 and 1024, max pool, 1x1 conv shortcut),
//                block14 (separable 1536 and 2048, each followed by BN and
//                ReLU), global average pooling and the classifier.
// Separable convs are Keras's (depthwise then pointwise, no bias anywhere),
// "same" padding; BN eps 1e-3, momentum 0.99; Glorot-uniform kernels.
// 22,910,480 parameters at 1000 classes as Keras counts them (22,855,952
// trainable plus the BN moving statistics). State keys are the Keras layer
// names (block2_sepconv1.depthwise.weight for block2_sepconv1's
// depthwise_kernel, block2_sepconv1_bn.running_mean); the four shortcut
// convs, unnamed in Keras, carry the names a fresh Keras session gives them:
// conv2d, conv2d_1, conv2d_2, conv2d_3 and batch_normalization(_1, _2, _3).
// No dropout in the reference: ModelOptions::dropout is not used.
#include <cmath>

#include "layers/layers.h"
#include "layers/same_pool.h"
#include "models/backbones.h"
#include "models/keras_init.h"

namespace neurn {

namespace {

std::shared_ptr<BatchNorm2d> keras_bn(int64_t c) { return keras_batch_norm(c); }

std::shared_ptr<SeparableConv2d> sepconv(int64_t in, int64_t out) {
  return std::make_shared<SeparableConv2d>(in, out, 3, 1, 0, 1, false, true);
}

std::string indexed(const std::string& base, int i) { return i == 0 ? base : base + "_" + std::to_string(i); }

// Blocks 2-13: [ReLU] sepconv BN, (ReLU sepconv BN)..., then either a max
// pool added to a strided 1x1 conv shortcut, or the identity shortcut. An
// inline child: its tensors keep their flat Keras names.
class XceptionBlock : public Module {
 public:
  // shortcut: the index of the Keras auto-name (conv2d_<i>), or -1 for identity.
  XceptionBlock(int block, int64_t in, const std::vector<int64_t>& filters, bool first_relu, int shortcut) {
    std::string b = "block" + std::to_string(block);
    if (shortcut >= 0) {
      shortcut_conv_ = register_module(indexed("conv2d", shortcut),
                                       std::make_shared<Conv2d>(Conv2dSpec{.in_channels = in,
                                                                           .out_channels = filters.back(),
                                                                           .kernel = {1, 1},
                                                                           .stride = {2, 2},
                                                                           .bias = false,
                                                                           .same = true}));
      shortcut_bn_ = register_module(indexed("batch_normalization", shortcut), keras_bn(filters.back()));
    }
    int64_t c = in;
    for (size_t j = 0; j < filters.size(); ++j) {
      std::string s = b + "_sepconv" + std::to_string(j + 1);
      Step step;
      if (j > 0 || first_relu) step.relu = register_module(s + "_act", std::make_shared<ReLU>());
      step.conv = register_module(s, sepconv(c, filters[j]));
      step.bn = register_module(s + "_bn", keras_bn(filters[j]));
      steps_.push_back(step);
      c = filters[j];
    }
    if (shortcut >= 0) pool_ = register_module(b + "_pool", std::make_shared<SamePool2d>(PoolKind::Max, 3, 2));
  }

  Tensor forward(const Tensor& x) override {
    Tensor y = x;
    for (auto& s : steps_) {
      if (s.relu) y = (*s.relu)(y);
      y = (*s.bn)((*s.conv)(y));
    }
    if (!pool_) return residual_add(y, x);
    y = (*pool_)(y);
    return residual_add(y, (*shortcut_bn_)((*shortcut_conv_)(x)));
  }

 private:
  struct Step {
    ModulePtr relu, conv, bn;
  };
  std::vector<Step> steps_;
  ModulePtr shortcut_conv_, shortcut_bn_, pool_;
};

ModulePtr build_xception(const ModelOptions& o) {
  DeferInit defer;  // every kernel is re-initialised below
  auto model = std::make_shared<Sequential>();
  auto conv = [](int64_t in, int64_t out, int64_t stride) {
    return std::make_shared<Conv2d>(in, out, 3, stride, 0, 1, 1, false);  // valid padding
  };
  // entry flow
  model->add("block1_conv1", conv(o.in_channels, 32, 2));
  model->add("block1_conv1_bn", keras_bn(32));
  model->add("block1_conv1_act", std::make_shared<ReLU>());
  model->add("block1_conv2", conv(32, 64, 1));
  model->add("block1_conv2_bn", keras_bn(64));
  model->add("block1_conv2_act", std::make_shared<ReLU>());
  // the blocks are inline children: their own children carry the flat Keras names
  auto block = [&](std::shared_ptr<XceptionBlock> m) { model->register_module("", std::move(m)); };
  block(std::make_shared<XceptionBlock>(2, 64, std::vector<int64_t>{128, 128}, false, 0));
  block(std::make_shared<XceptionBlock>(3, 128, std::vector<int64_t>{256, 256}, true, 1));
  block(std::make_shared<XceptionBlock>(4, 256, std::vector<int64_t>{728, 728}, true, 2));
  // middle flow
  for (int b = 5; b <= 12; ++b)
    block(std::make_shared<XceptionBlock>(b, 728, std::vector<int64_t>{728, 728, 728}, true, -1));
  // exit flow
  block(std::make_shared<XceptionBlock>(13, 728, std::vector<int64_t>{728, 1024}, true, 3));
  model->add("block14_sepconv1", sepconv(1024, 1536));
  model->add("block14_sepconv1_bn", keras_bn(1536));
  model->add("block14_sepconv1_act", std::make_shared<ReLU>());
  model->add("block14_sepconv2", sepconv(1536, 2048));
  model->add("block14_sepconv2_bn", keras_bn(2048));
  model->add("block14_sepconv2_act", std::make_shared<ReLU>());
  model->add("avg_pool", std::make_shared<GlobalAvgPool>());  // (N, 2048)
  model->add("predictions", std::make_shared<Linear>(2048, o.num_classes));
  keras_glorot_init(*model);
  return model;
}

}  // namespace

NEURN_REGISTER_MODEL(xception,
                     (ModelInfo{.name = "xception",
                                .family = "Xception",
                                .reference = "Chollet 2017; Keras applications Xception",
                                .description = "entry, middle (8 blocks) and exit flows of separable convolutions",
                                // Keras's own minimum (imagenet_utils.obtain_input_shape(min_size=71))
                                .min_input_size = 71,
                                .reference_input_size = 299}),
                     build_xception);

}  // namespace neurn
