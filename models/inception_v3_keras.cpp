// Inception v3 (Szegedy et al., "Rethinking the Inception Architecture for
// Computer Vision", 2016) as Keras Applications builds it
// (keras.applications.InceptionV3), the paper's "InceptionV3" (its models
// come from Keras Applications). Not torchvision's inception_v3
// (models/inception_v3.cpp): no conv biases either, but Keras's batch norms
// have no scale (BatchNormalization(scale=False): beta only), eps 1e-3,
// momentum 0.99; the "same" average pools do not count the padding; the
// blocks are named mixed0..mixed10.
// 23,851,784 parameters as Keras counts them (23,817,352 trainable plus the
// moving statistics of 94 batch norms) at 1000 classes.
//
// State keys are the Keras layer names, flat, as a fresh Keras session names
// the 94 conv2d_bn units: conv2d, conv2d_1, ..., conv2d_93 and
// batch_normalization ... batch_normalization_93, numbered in the order
// inception_v3.py creates them (branch by branch, block by block); then
// predictions. Keras Applications' own weight file counts them from 1
// (conv2d_1 ... conv2d_94), which models/keras_weights.h reads as the same
// layers.
// Minimum input 75x75 (Keras's own limit): the 3x3 stride-2 reductions
// leave mixed8 a 1x1 map there.
#include "layers/layers.h"
#include "layers/same_pool.h"
#include "models/keras_init.h"
#include "models/registry.h"

namespace neurn {

namespace {

class InceptionV3Keras : public Module {
 public:
  explicit InceptionV3Keras(const ModelOptions& o) {
    auto stem = register_module("", std::make_shared<KerasChain>());
    int64_t c = o.in_channels;
    auto conv = [&](std::shared_ptr<KerasChain> chain, int64_t in, int64_t out, int64_t kh, int64_t kw,
                    int64_t stride = 1, bool same = true) {
      chain->add(std::make_shared<KerasConvBn>(keras_auto_name("conv2d", n_), keras_auto_name("batch_normalization", n_),
                                               in, out, std::array<int64_t, 2>{kh, kw}, stride, same));
      ++n_;
      return out;
    };
    c = conv(stem, c, 32, 3, 3, 2, false);
    c = conv(stem, c, 32, 3, 3, 1, false);
    c = conv(stem, c, 64, 3, 3);
    stem->add(std::make_shared<MaxPool2d>(3, 2));
    c = conv(stem, c, 80, 1, 1, 1, false);
    c = conv(stem, c, 192, 3, 3, 1, false);
    stem->add(std::make_shared<MaxPool2d>(3, 2));
    blocks_.push_back(stem);

    auto avg_same = [] { return std::make_shared<SamePool2d>(PoolKind::Avg, 3, 1); };
    // mixed0-2: 35 x 35 (at 299), 1x1 / 5x5 / double 3x3 / pool branches
    for (int64_t pool_filters : {32, 64, 64}) {
      auto b = std::make_shared<KerasBranches>();
      conv(b->branch(), c, 64, 1, 1);
      auto b5 = b->branch();
      conv(b5, conv(b5, c, 48, 1, 1), 64, 5, 5);
      auto b3 = b->branch();
      conv(b3, conv(b3, conv(b3, c, 64, 1, 1), 96, 3, 3), 96, 3, 3);
      auto bp = b->branch();
      bp->add(avg_same());
      conv(bp, c, pool_filters, 1, 1);
      c = 64 + 64 + 96 + pool_filters;
      blocks_.push_back(register_module("", b));
    }
    // mixed3: 17 x 17, reduction
    {
      auto b = std::make_shared<KerasBranches>();
      conv(b->branch(), c, 384, 3, 3, 2, false);
      auto b3 = b->branch();
      conv(b3, conv(b3, conv(b3, c, 64, 1, 1), 96, 3, 3), 96, 3, 3, 2, false);
      b->branch()->add(std::make_shared<MaxPool2d>(3, 2));
      c = 384 + 96 + c;
      blocks_.push_back(register_module("", b));
    }
    // mixed4-7: factorised 7x7 branches of 128, 160, 160, 192 filters
    for (int64_t f : {128, 160, 160, 192}) {
      auto b = std::make_shared<KerasBranches>();
      conv(b->branch(), c, 192, 1, 1);
      auto b7 = b->branch();
      conv(b7, conv(b7, conv(b7, c, f, 1, 1), f, 1, 7), 192, 7, 1);
      auto b77 = b->branch();
      int64_t t = conv(b77, c, f, 1, 1);
      t = conv(b77, t, f, 7, 1);
      t = conv(b77, t, f, 1, 7);
      t = conv(b77, t, f, 7, 1);
      conv(b77, t, 192, 1, 7);
      auto bp = b->branch();
      bp->add(avg_same());
      conv(bp, c, 192, 1, 1);
      c = 4 * 192;
      blocks_.push_back(register_module("", b));
    }
    // mixed8: 8 x 8, reduction
    {
      auto b = std::make_shared<KerasBranches>();
      auto b3 = b->branch();
      conv(b3, conv(b3, c, 192, 1, 1), 320, 3, 3, 2, false);
      auto b7 = b->branch();
      int64_t t = conv(b7, c, 192, 1, 1);
      t = conv(b7, t, 192, 1, 7);
      t = conv(b7, t, 192, 7, 1);
      conv(b7, t, 192, 3, 3, 2, false);
      b->branch()->add(std::make_shared<MaxPool2d>(3, 2));
      c = 320 + 192 + c;
      blocks_.push_back(register_module("", b));
    }
    // mixed9-10: 8 x 8 x 2048, the 3x3 branches split into 1x3 and 3x1
    for (int i = 0; i < 2; ++i) {
      auto b = std::make_shared<KerasBranches>();
      conv(b->branch(), c, 320, 1, 1);
      auto b3 = b->branch();
      int64_t t = conv(b3, c, 384, 1, 1);
      auto split = std::make_shared<KerasBranches>();  // Keras's mixed9_<i>
      conv(split->branch(), t, 384, 1, 3);
      conv(split->branch(), t, 384, 3, 1);
      b3->add(split);
      auto bd = b->branch();
      t = conv(bd, conv(bd, c, 448, 1, 1), 384, 3, 3);
      auto split2 = std::make_shared<KerasBranches>();
      conv(split2->branch(), t, 384, 1, 3);
      conv(split2->branch(), t, 384, 3, 1);
      bd->add(split2);
      auto bp = b->branch();
      bp->add(avg_same());
      conv(bp, c, 192, 1, 1);
      c = 320 + 768 + 768 + 192;
      blocks_.push_back(register_module("", b));
    }
    pool_ = register_module("avg_pool", std::make_shared<GlobalAvgPool>());
    if (o.dropout && *o.dropout > 0) dropout_ = register_module("dropout", std::make_shared<Dropout>(*o.dropout));
    head_ = register_module("predictions", std::make_shared<Linear>(c, o.num_classes));
  }

  Tensor forward(const Tensor& x) override {  // (N, C, H, W) -> (N, classes)
    Tensor y = x;
    for (auto& b : blocks_) y = (*b)(y);
    y = (*pool_)(y);
    if (dropout_) y = (*dropout_)(y);
    return (*head_)(y);
  }

  int conv_count() const { return n_; }

 private:
  int n_ = 0;  // conv2d_bn units so far: the Keras auto-name index
  std::vector<ModulePtr> blocks_;
  ModulePtr pool_, dropout_, head_;
};

ModulePtr build_inceptionv3_keras(const ModelOptions& o) {
  DeferInit defer;  // re-initialised below
  auto model = std::make_shared<InceptionV3Keras>(o);
  NEURN_CHECK(model->conv_count() == 94, "inceptionv3: built ", model->conv_count(), " conv2d_bn units, Keras has 94");
  keras_glorot_init(*model);  // Keras's defaults: Glorot-uniform kernels, zero biases
  return model;
}

}  // namespace

NEURN_REGISTER_MODEL(inceptionv3,
                     (ModelInfo{.name = "inceptionv3",
                                .family = "Inception",
                                .reference = "Szegedy et al. 2016; Keras applications InceptionV3",
                                .description = "Keras's Inception v3: mixed0-10, batch norms without scale, min 75x75",
                                .min_input_size = 75,
                                .aliases = {"inception_v3_keras"},
                                .reference_input_size = 299}),
                     build_inceptionv3_keras);

}  // namespace neurn
