// MobileNet v1 (Howard et al., "MobileNets: Efficient Convolutional Neural
// Networks for Mobile Vision Applications", 2017) as Keras Applications
// builds it (keras.applications.MobileNet, alpha = width, depth multiplier
// 1): a "same" 3x3 stride-2 convolution, 13 depthwise-separable blocks (zero
// padding (0, 1, 0, 1) and a valid depthwise convolution where the stride is
// 2), BN eps 1e-3, ReLU6, then global pooling, dropout (1e-3) and a 1x1
// convolution as classifier. 4,253,864 parameters at alpha 1 and 1000 classes
// as Keras counts them (4,231,976 trainable plus the BN moving statistics).
// State keys are the Keras layer names (conv_dw_1.weight, conv_pw_1_bn.bias).
#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {
std::shared_ptr<BatchNorm2d> keras_bn(int64_t c) { return std::make_shared<BatchNorm2d>(c, 1e-3, 0.01); }
}  // namespace

ModulePtr build_mobilenet(const ModelOptions& o) {
  double alpha = o.width;
  auto filters = [&](int64_t f) {  // Keras truncates: int(filters * alpha)
    int64_t n = static_cast<int64_t>(static_cast<double>(f) * alpha);
    NEURN_CHECK(n > 0, "mobilenet: width ", alpha, " leaves no channels");
    return n;
  };
  DeferInit defer;  // every kernel and bias is re-initialised below
  auto model = std::make_shared<Sequential>();
  int64_t c = filters(32);
  model->add("conv1", std::make_shared<Conv2d>(Conv2dSpec{.in_channels = o.in_channels,
                                                          .out_channels = c,
                                                          .kernel = {3, 3},
                                                          .stride = {2, 2},
                                                          .bias = false,
                                                          .same = true}));
  model->add("conv1_bn", keras_bn(c));
  model->add("conv1_relu", std::make_shared<ReLU6>());
  // (pointwise filters, stride) of blocks 1..13
  const std::pair<int64_t, int64_t> blocks[] = {{64, 1},  {128, 2}, {128, 1}, {256, 2}, {256, 1},  {512, 2}, {512, 1},
                                                {512, 1}, {512, 1}, {512, 1}, {512, 1}, {1024, 2}, {1024, 1}};
  int id = 1;
  for (auto [f, stride] : blocks) {
    std::string b = std::to_string(id++);
    if (stride == 2) model->add("conv_pad_" + b, std::make_shared<ZeroPad2d>(0, 1, 0, 1));
    model->add("conv_dw_" + b, std::make_shared<DepthwiseConv2d>(c, 3, stride, stride == 1 ? 1 : 0, 1, false));
    model->add("conv_dw_" + b + "_bn", keras_bn(c));
    model->add("conv_dw_" + b + "_relu", std::make_shared<ReLU6>());
    int64_t out = filters(f);
    model->add("conv_pw_" + b, std::make_shared<Conv2d>(c, out, 1, 1, 0, 1, 1, false));
    model->add("conv_pw_" + b + "_bn", keras_bn(out));
    model->add("conv_pw_" + b + "_relu", std::make_shared<ReLU6>());
    c = out;
  }
  model->add("global_pool", std::make_shared<GlobalAvgPool>(true));  // (N, C, 1, 1)
  model->add("dropout", std::make_shared<Dropout>(o.dropout.value_or(1e-3)));
  model->add("conv_preds", std::make_shared<Conv2d>(c, o.num_classes, 1));
  model->add("reshape", std::make_shared<Flatten>());
  // Keras's init: Glorot-uniform kernels, zero biases
  model->apply([](const std::string&, Module& m) {
    if (m.type() != "Conv" && m.type() != "DepthwiseConv") return;
    xavier_uniform_(m.param("weight"));
    if (m.has_param("bias")) constant_(m.param("bias"), 0.0);
  });
  return model;
}

NEURN_REGISTER_MODEL(mobilenet, (ModelInfo{.name = "mobilenet",
                                   .family = "MobileNet",
                                   .reference = "Howard et al. 2017; Keras applications MobileNet (alpha = width)",
                                   .description = "depthwise-separable convolutions, 13 blocks",
                                   .has_width = true}),
                    build_mobilenet);

}  // namespace neurn
