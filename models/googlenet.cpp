// GoogLeNet (Szegedy et al., "Going Deeper with Convolutions", 2015) as
// torchvision's models.googlenet(aux_logits=False, transform_input=False)
// builds it: batch norm after every convolution (BasicConv2d, eps 1e-3), and
// torchvision's 3x3 (not the paper's 5x5) convolution in the third branch of
// each Inception block, as its weights were trained. Modules, state keys
// (conv1.conv.weight, inception3a.branch2.1.bn.running_mean, fc.bias) and
// init. 6,624,904 parameters at 1000 classes. The two auxiliary classifiers
// (training only in torchvision) are not built.
#include <optional>

#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

// torchvision's BasicConv2d: "conv" (no bias), "bn" (eps 1e-3), ReLU.
std::shared_ptr<Sequential> basic_conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = 0) {
  auto s = std::make_shared<Sequential>();
  s->add("conv", std::make_shared<Conv2d>(in, out, k, stride, pad, 1, 1, false));
  s->add("bn", std::make_shared<BatchNorm2d>(out, 1e-3, 0.1));
  s->add("relu", std::make_shared<ReLU>());
  return s;
}

// Four branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max pool
// (stride 1) -> 1x1.
class Inception : public Module {
 public:
  Inception(int64_t in, int64_t ch1x1, int64_t ch3x3red, int64_t ch3x3, int64_t ch5x5red, int64_t ch5x5,
            int64_t pool_proj) {
    branch1_ = register_module("branch1", basic_conv(in, ch1x1, 1));
    branch2_ = register_module("branch2", std::make_shared<Sequential>());
    branch2_->push_back(basic_conv(in, ch3x3red, 1));
    branch2_->push_back(basic_conv(ch3x3red, ch3x3, 3, 1, 1));
    branch3_ = register_module("branch3", std::make_shared<Sequential>());
    branch3_->push_back(basic_conv(in, ch5x5red, 1));
    branch3_->push_back(basic_conv(ch5x5red, ch5x5, 3, 1, 1));  // torchvision's 3x3: see the top of the file
    branch4_ = register_module("branch4", std::make_shared<Sequential>());
    branch4_->emplace<MaxPool2d>(3, 1, 1, true);
    branch4_->push_back(basic_conv(in, pool_proj, 1));
  }
  Tensor forward(const Tensor& x) override {  // (N, in, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)
    return channel_concat({(*branch1_)(x), (*branch2_)(x), (*branch3_)(x), (*branch4_)(x)});
  }

 private:
  std::shared_ptr<Sequential> branch1_, branch2_, branch3_, branch4_;
};

}  // namespace

ModulePtr build_googlenet(const ModelOptions& o) {
  std::optional<DeferInit> defer(std::in_place);  // every weight is redrawn below
  auto m = std::make_shared<Sequential>();
  m->add("conv1", basic_conv(o.in_channels, 64, 7, 2, 3));
  m->add("maxpool1", std::make_shared<MaxPool2d>(3, 2, 0, true));
  m->add("conv2", basic_conv(64, 64, 1));
  m->add("conv3", basic_conv(64, 192, 3, 1, 1));
  m->add("maxpool2", std::make_shared<MaxPool2d>(3, 2, 0, true));
  m->add("inception3a", std::make_shared<Inception>(192, 64, 96, 128, 16, 32, 32));
  m->add("inception3b", std::make_shared<Inception>(256, 128, 128, 192, 32, 96, 64));
  m->add("maxpool3", std::make_shared<MaxPool2d>(3, 2, 0, true));
  m->add("inception4a", std::make_shared<Inception>(480, 192, 96, 208, 16, 48, 64));
  m->add("inception4b", std::make_shared<Inception>(512, 160, 112, 224, 24, 64, 64));
  m->add("inception4c", std::make_shared<Inception>(512, 128, 128, 256, 24, 64, 64));
  m->add("inception4d", std::make_shared<Inception>(512, 112, 144, 288, 32, 64, 64));
  m->add("inception4e", std::make_shared<Inception>(528, 256, 160, 320, 32, 128, 128));
  m->add("maxpool4", std::make_shared<MaxPool2d>(2, 2, 0, true));
  m->add("inception5a", std::make_shared<Inception>(832, 256, 160, 320, 32, 128, 128));
  m->add("inception5b", std::make_shared<Inception>(832, 384, 192, 384, 48, 128, 128));
  m->add("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
  m->add("flatten", std::make_shared<Flatten>());
  m->add("dropout", std::make_shared<Dropout>(o.dropout.value_or(0.2)));
  defer.reset();
  m->add("fc", std::make_shared<Linear>(1024, o.num_classes));
  // torchvision's init (init_weights=True): convolution and fc weights
  // N(0, 0.01) truncated to [-2, 2], BN 1 and 0; the fc bias keeps Linear's default
  m->apply([](const std::string&, Module& c) {
    if (c.has_param("weight") && c.param("weight").dim() >= 2) trunc_normal_(c.param("weight"), 0.01);
  });
  return m;
}

NEURN_REGISTER_MODEL(googlenet,
                     (ModelInfo{.name = "googlenet",
                                .family = "GoogLeNet",
                                .reference = "Szegedy et al. 2015, Inception v1; torchvision models.googlenet "
                                             "(aux_logits=False, transform_input=False)",
                                .description = "nine Inception blocks with batch norm, no auxiliary classifiers"}),
                     build_googlenet);

}  // namespace neurn
