// Inception-ResNet-v2 (Szegedy et al., "Inception-v4, Inception-ResNet and
// the Impact of Residual Connections on Learning", AAAI 2017) as Keras
// Applications builds it (keras.applications.InceptionResNetV2):
//   stem (five conv2d_bn, two 3x3 stride-2 max pools), mixed_5b
//   (Inception-A), 10 x block35 (scale 0.17), mixed_6a (Reduction-A),
//   20 x block17 (scale 0.1), mixed_7a (Reduction-B), 10 x block8 (scale
//   0.2, the last 1.0 without its ReLU), conv_7b 1x1 1536, global average
//   pooling, the classifier.
// A residual block concatenates its branches, projects them with a biased
// 1x1 convolution back to the input's channels (blockNN_i_conv, no batch
// norm, no activation) and adds scale x that to its input, then ReLU.
// conv2d_bn is Keras's: no conv bias, BatchNormalization(scale=False) (beta
// only), eps 1e-3, momentum 0.99, ReLU. 55,873,736 parameters as Keras counts
// them (55,813,192 trainable plus the BN moving statistics) at 1000 classes.
//
// State keys are the Keras layer names, flat: the named layers
// (block35_1_conv, conv_7b, conv_7b_bn, predictions) and, for the unnamed
// conv2d_bn units, the names a fresh Keras session gives them in creation
// order (conv2d, conv2d_1, ..., batch_normalization, batch_normalization_1,
// ...); models/keras_weights.h also reads files that count them from 1.
// Minimum input 75x75 (Keras's own limit): mixed_7a leaves 1x1 there.
#include "framework/ops.h"
#include "layers/layers.h"
#include "layers/same_pool.h"
#include "models/keras_init.h"
#include "models/registry.h"

namespace neurn {

namespace {

// x + scale * up(concat(branches(x))), then ReLU unless it is the last block.
class InceptionResnetBlock : public Module {
 public:
  InceptionResnetBlock(std::shared_ptr<KerasBranches> branches, std::shared_ptr<KerasConvBn> up, double scale,
                       bool relu)
      : scale_(scale) {
    branches_ = register_module("", std::move(branches));
    up_ = register_module("", std::move(up));
    if (relu) relu_ = register_module("", std::make_shared<ReLU>());
  }
  Tensor forward(const Tensor& x) override {  // (N, C, H, W) -> (N, C, H, W)
    Tensor y = residual_add(x, mul((*up_)((*branches_)(x)), scale_));
    return relu_ ? (*relu_)(y) : y;
  }

 private:
  double scale_;
  ModulePtr branches_, up_, relu_;
};

class InceptionResnetV2 : public Module {
 public:
  explicit InceptionResnetV2(const ModelOptions& o) {
    // conv2d_bn without a name: the next Keras auto-name
    auto conv = [&](std::shared_ptr<KerasChain> chain, int64_t in, int64_t out, int64_t kh, int64_t kw,
                    int64_t stride = 1, bool same = true) {
      chain->add(std::make_shared<KerasConvBn>(keras_auto_name("conv2d", n_), keras_auto_name("batch_normalization", n_),
                                               in, out, std::array<int64_t, 2>{kh, kw}, stride, same));
      ++n_;
      return out;
    };
    auto stem = register_module("", std::make_shared<KerasChain>());
    int64_t c = conv(stem, o.in_channels, 32, 3, 3, 2, false);
    c = conv(stem, c, 32, 3, 3, 1, false);
    c = conv(stem, c, 64, 3, 3);
    stem->add(std::make_shared<MaxPool2d>(3, 2));
    c = conv(stem, c, 80, 1, 1, 1, false);
    c = conv(stem, c, 192, 3, 3, 1, false);
    stem->add(std::make_shared<MaxPool2d>(3, 2));
    blocks_.push_back(stem);

    {  // mixed_5b (Inception-A): 35 x 35 x 320 at 299
      auto b = std::make_shared<KerasBranches>();
      conv(b->branch(), c, 96, 1, 1);
      auto b1 = b->branch();
      conv(b1, conv(b1, c, 48, 1, 1), 64, 5, 5);
      auto b2 = b->branch();
      conv(b2, conv(b2, conv(b2, c, 64, 1, 1), 96, 3, 3), 96, 3, 3);
      auto bp = b->branch();
      bp->add(std::make_shared<SamePool2d>(PoolKind::Avg, 3, 1));
      conv(bp, c, 64, 1, 1);
      c = 96 + 64 + 96 + 64;
      blocks_.push_back(register_module("", b));
    }
    auto residual = [&](const std::string& type, int idx, double scale, bool relu) {
      auto b = std::make_shared<KerasBranches>();
      int64_t mixed = 0;
      if (type == "block35") {
        conv(b->branch(), c, 32, 1, 1);
        auto b1 = b->branch();
        conv(b1, conv(b1, c, 32, 1, 1), 32, 3, 3);
        auto b2 = b->branch();
        conv(b2, conv(b2, conv(b2, c, 32, 1, 1), 48, 3, 3), 64, 3, 3);
        mixed = 32 + 32 + 64;
      } else if (type == "block17") {
        conv(b->branch(), c, 192, 1, 1);
        auto b1 = b->branch();
        conv(b1, conv(b1, conv(b1, c, 128, 1, 1), 160, 1, 7), 192, 7, 1);
        mixed = 192 + 192;
      } else {  // block8
        conv(b->branch(), c, 192, 1, 1);
        auto b1 = b->branch();
        conv(b1, conv(b1, conv(b1, c, 192, 1, 1), 224, 1, 3), 256, 3, 1);
        mixed = 192 + 256;
      }
      std::string name = type + "_" + std::to_string(idx);
      auto up = std::make_shared<KerasConvBn>(name + "_conv", "", mixed, c, std::array<int64_t, 2>{1, 1}, 1, true,
                                              /*relu=*/false, /*bias=*/true);
      blocks_.push_back(register_module("", std::make_shared<InceptionResnetBlock>(b, up, scale, relu)));
    };
    for (int i = 1; i <= 10; ++i) residual("block35", i, 0.17, true);
    {  // mixed_6a (Reduction-A): 17 x 17 x 1088
      auto b = std::make_shared<KerasBranches>();
      conv(b->branch(), c, 384, 3, 3, 2, false);
      auto b1 = b->branch();
      conv(b1, conv(b1, conv(b1, c, 256, 1, 1), 256, 3, 3), 384, 3, 3, 2, false);
      b->branch()->add(std::make_shared<MaxPool2d>(3, 2));
      c = 384 + 384 + c;
      blocks_.push_back(register_module("", b));
    }
    for (int i = 1; i <= 20; ++i) residual("block17", i, 0.1, true);
    {  // mixed_7a (Reduction-B): 8 x 8 x 2080
      auto b = std::make_shared<KerasBranches>();
      auto b0 = b->branch();
      conv(b0, conv(b0, c, 256, 1, 1), 384, 3, 3, 2, false);
      auto b1 = b->branch();
      conv(b1, conv(b1, c, 256, 1, 1), 288, 3, 3, 2, false);
      auto b2 = b->branch();
      conv(b2, conv(b2, conv(b2, c, 256, 1, 1), 288, 3, 3), 320, 3, 3, 2, false);
      b->branch()->add(std::make_shared<MaxPool2d>(3, 2));
      c = 384 + 288 + 320 + c;
      blocks_.push_back(register_module("", b));
    }
    for (int i = 1; i <= 9; ++i) residual("block8", i, 0.2, true);
    residual("block8", 10, 1.0, false);
    auto top = register_module("", std::make_shared<KerasChain>());
    top->add(std::make_shared<KerasConvBn>("conv_7b", "conv_7b_bn", c, 1536, std::array<int64_t, 2>{1, 1}, 1, true));
    blocks_.push_back(top);
    pool_ = register_module("avg_pool", std::make_shared<GlobalAvgPool>());
    if (o.dropout && *o.dropout > 0) dropout_ = register_module("dropout", std::make_shared<Dropout>(*o.dropout));
    head_ = register_module("predictions", std::make_shared<Linear>(1536, o.num_classes));
  }

  Tensor forward(const Tensor& x) override {  // (N, C, H, W) -> (N, classes)
    Tensor y = x;
    for (auto& b : blocks_) y = (*b)(y);
    y = (*pool_)(y);
    if (dropout_) y = (*dropout_)(y);
    return (*head_)(y);
  }

 private:
  int n_ = 0;  // unnamed conv2d_bn units so far: the Keras auto-name index
  std::vector<ModulePtr> blocks_;
  ModulePtr pool_, dropout_, head_;
};

ModulePtr build_inceptionresnetv2(const ModelOptions& o) {
  DeferInit defer;  // re-initialised below
  auto model = std::make_shared<InceptionResnetV2>(o);
  keras_glorot_init(*model);  // Keras's defaults: Glorot-uniform kernels, zero biases
  return model;
}

}  // namespace

NEURN_REGISTER_MODEL(inceptionresnetv2,
                     (ModelInfo{.name = "inceptionresnetv2",
                                .family = "Inception",
                                .reference = "Szegedy et al. 2017 (Inception-ResNet-v2); Keras applications "
                                             "InceptionResNetV2",
                                .description = "Inception blocks with scaled residual sums (35/17/8 grids), min 75x75",
                                .min_input_size = 75,
                                .aliases = {"inception_resnet_v2"},
                                .reference_input_size = 299}),
                     build_inceptionresnetv2);

}  // namespace neurn
