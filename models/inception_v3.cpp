// Inception v3 (Szegedy et al., "Rethinking the Inception Architecture for
// Computer Vision", 2016), identical to torchvision's models.inception_v3
// with transform_input off: modules, state keys (Conv2d_1a_3x3.conv.weight,
// Mixed_5b.branch5x5_1.bn.running_var, Mixed_7c.branch3x3dbl_3b.conv.weight,
// fc.bias, AuxLogits.fc.weight with the auxiliary head), BN eps 1e-3 and the
// truncated-normal init. 23,834,568 parameters at 1000 classes without the
// auxiliary head, 27,161,264 with it.
//
// The smallest input is 75x75 (torchvision's own limit): the stem, the
// 3x3 stride-2 reductions of Mixed_6a and Mixed_7a leave 7 -> 3 -> 1 pixels
// there, and 74x74 leaves Mixed_7a a 2x2 map for its 3x3 valid convolution.
// The auxiliary head pools Mixed_6e's map with a 5x5 window, stride 3, then
// a 5x5 convolution: it needs that map at 17x17, i.e. 299x299 inputs.
#include "layers/layers.h"
#include "models/backbones.h"

namespace neurn {

namespace {

// torchvision's BasicConv2d: "conv" (no bias), "bn" (eps 1e-3), then ReLU
// (a functional call there; a child without tensors here, so it is traced).
class BasicConv2d : public Module {
 public:
  BasicConv2d(int64_t in, int64_t out, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride = {1, 1},
              std::array<int64_t, 2> padding = {0, 0}) {
    Conv2dSpec s;
    s.in_channels = in;
    s.out_channels = out;
    s.kernel = kernel;
    s.stride = stride;
    s.padding = padding;
    s.bias = false;
    conv_ = register_module("conv", std::make_shared<Conv2d>(s));
    bn_ = register_module("bn", std::make_shared<BatchNorm2d>(out, 1e-3, 0.1));
    relu_ = register_module("relu", std::make_shared<ReLU>());
  }
  Tensor forward(const Tensor& x) override { return (*relu_)((*bn_)((*conv_)(x))); }
  std::shared_ptr<Conv2d> conv() const { return conv_; }

 private:
  std::shared_ptr<Conv2d> conv_;
  ModulePtr bn_, relu_;
};

using Conv = std::shared_ptr<BasicConv2d>;
Conv basic(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = 0) {
  return std::make_shared<BasicConv2d>(in, out, std::array<int64_t, 2>{k, k}, std::array<int64_t, 2>{stride, stride},
                                       std::array<int64_t, 2>{pad, pad});
}
// The factorised 1x7 / 7x1 (and 1x3 / 3x1) convolutions, padded to keep the size.
Conv row(int64_t in, int64_t out, int64_t k) {
  return std::make_shared<BasicConv2d>(in, out, std::array<int64_t, 2>{1, k}, std::array<int64_t, 2>{1, 1},
                                       std::array<int64_t, 2>{0, k / 2});
}
Conv col(int64_t in, int64_t out, int64_t k) {
  return std::make_shared<BasicConv2d>(in, out, std::array<int64_t, 2>{k, 1}, std::array<int64_t, 2>{1, 1},
                                       std::array<int64_t, 2>{k / 2, 0});
}

// An Inception block: named branches, each a chain of modules, concatenated
// along the channels in the order they were added. Pooling branches hold
// their pooling as a child without tensors, so the keys stay torchvision's.
class InceptionBlock : public Module {
 public:
  // A branch: its modules in order, each registered under its name (an
  // empty name: a pooling layer, registered as "pool0", "pool1", ..., which
  // hold no tensors, so the state keys are torchvision's).
  void branch(std::vector<std::pair<std::string, ModulePtr>> chain) {
    std::vector<ModulePtr> mods;
    for (auto& [name, m] : chain) {
      register_module(name.empty() ? "pool" + std::to_string(pools_++) : name, m);
      mods.push_back(m);
    }
    branches_.push_back(std::move(mods));
  }
  // A branch ending in two parallel convolutions whose outputs are
  // concatenated (InceptionE's 1x3 and 3x1 pair).
  void split_branch(std::vector<std::pair<std::string, ModulePtr>> chain, std::pair<std::string, ModulePtr> a,
                    std::pair<std::string, ModulePtr> b) {
    branch(std::move(chain));
    register_module(a.first, a.second);
    register_module(b.first, b.second);
    splits_.resize(branches_.size());
    splits_.back() = {a.second, b.second};
  }
  Tensor forward(const Tensor& x) override {
    std::vector<Tensor> outs;
    for (size_t i = 0; i < branches_.size(); ++i) {
      Tensor y = x;
      for (auto& m : branches_[i]) y = (*m)(y);
      if (i < splits_.size() && !splits_[i].empty()) y = channel_concat({(*splits_[i][0])(y), (*splits_[i][1])(y)});
      outs.push_back(y);
    }
    return channel_concat(outs);
  }

 private:
  std::vector<std::vector<ModulePtr>> branches_;
  std::vector<std::vector<ModulePtr>> splits_;
  int pools_ = 0;
};

ModulePtr avg3() { return std::make_shared<AvgPool2d>(3, 1, 1); }  // count_include_pad, as F.avg_pool2d
ModulePtr max3s2() { return std::make_shared<MaxPool2d>(3, 2); }

ModulePtr inception_a(int64_t in, int64_t pool_features) {  // -> 224 + pool_features channels
  auto b = std::make_shared<InceptionBlock>();
  b->branch({{"branch1x1", basic(in, 64, 1)}});
  b->branch({{"branch5x5_1", basic(in, 48, 1)}, {"branch5x5_2", basic(48, 64, 5, 1, 2)}});
  b->branch({{"branch3x3dbl_1", basic(in, 64, 1)},
             {"branch3x3dbl_2", basic(64, 96, 3, 1, 1)},
             {"branch3x3dbl_3", basic(96, 96, 3, 1, 1)}});
  b->branch({{"", avg3()}, {"branch_pool", basic(in, pool_features, 1)}});
  return b;
}

ModulePtr inception_b(int64_t in) {  // grid reduction: -> 480 + in channels, half the size
  auto b = std::make_shared<InceptionBlock>();
  b->branch({{"branch3x3", basic(in, 384, 3, 2)}});
  b->branch({{"branch3x3dbl_1", basic(in, 64, 1)},
             {"branch3x3dbl_2", basic(64, 96, 3, 1, 1)},
             {"branch3x3dbl_3", basic(96, 96, 3, 2)}});
  b->branch({{"", max3s2()}});
  return b;
}

ModulePtr inception_c(int64_t in, int64_t c7) {  // -> 768 channels
  auto b = std::make_shared<InceptionBlock>();
  b->branch({{"branch1x1", basic(in, 192, 1)}});
  b->branch({{"branch7x7_1", basic(in, c7, 1)}, {"branch7x7_2", row(c7, c7, 7)}, {"branch7x7_3", col(c7, 192, 7)}});
  b->branch({{"branch7x7dbl_1", basic(in, c7, 1)},
             {"branch7x7dbl_2", col(c7, c7, 7)},
             {"branch7x7dbl_3", row(c7, c7, 7)},
             {"branch7x7dbl_4", col(c7, c7, 7)},
             {"branch7x7dbl_5", row(c7, 192, 7)}});
  b->branch({{"", avg3()}, {"branch_pool", basic(in, 192, 1)}});
  return b;
}

ModulePtr inception_d(int64_t in) {  // grid reduction: -> 512 + in channels, half the size
  auto b = std::make_shared<InceptionBlock>();
  b->branch({{"branch3x3_1", basic(in, 192, 1)}, {"branch3x3_2", basic(192, 320, 3, 2)}});
  b->branch({{"branch7x7x3_1", basic(in, 192, 1)},
             {"branch7x7x3_2", row(192, 192, 7)},
             {"branch7x7x3_3", col(192, 192, 7)},
             {"branch7x7x3_4", basic(192, 192, 3, 2)}});
  b->branch({{"", max3s2()}});
  return b;
}

ModulePtr inception_e(int64_t in) {  // -> 2048 channels
  auto b = std::make_shared<InceptionBlock>();
  b->branch({{"branch1x1", basic(in, 320, 1)}});
  b->split_branch({{"branch3x3_1", basic(in, 384, 1)}}, {"branch3x3_2a", row(384, 384, 3)},
                  {"branch3x3_2b", col(384, 384, 3)});
  b->split_branch({{"branch3x3dbl_1", basic(in, 448, 1)}, {"branch3x3dbl_2", basic(448, 384, 3, 1, 1)}},
                  {"branch3x3dbl_3a", row(384, 384, 3)}, {"branch3x3dbl_3b", col(384, 384, 3)});
  b->branch({{"", avg3()}, {"branch_pool", basic(in, 192, 1)}});
  return b;
}

// torchvision's InceptionAux: 5x5/3 average pooling, conv0 1x1 -> 128,
// conv1 5x5 -> 768, global average, fc.
class InceptionAux : public Module {
 public:
  InceptionAux(int64_t in, int64_t classes) {
    pool_ = register_module("pool", std::make_shared<AvgPool2d>(5, 3));
    conv0_ = register_module("conv0", basic(in, 128, 1));
    conv1_ = register_module("conv1", basic(128, 768, 5));
    gap_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
    flatten_ = register_module("flatten", std::make_shared<Flatten>());
    fc_ = register_module("fc", std::make_shared<Linear>(768, classes));
  }
  Tensor forward(const Tensor& x) override {  // (N, 768, 17, 17) -> (N, classes)
    NEURN_CHECK(x.size(2) >= 17 && x.size(3) >= 17, "inception_v3 AuxLogits: needs Mixed_6e's map at 17x17 or more ",
                "(inputs of 299x299), got ", shape_str(x.shape()));
    return (*fc_)((*flatten_)((*gap_)((*conv1_)((*conv0_)((*pool_)(x))))));
  }
  Conv conv1() const { return conv1_; }
  std::shared_ptr<Linear> fc() const { return fc_; }

 private:
  ModulePtr pool_, gap_, flatten_;
  Conv conv0_, conv1_;
  std::shared_ptr<Linear> fc_;
};

// The network in torchvision's order of children. In training with the
// auxiliary head, forward returns the main logits and keeps the auxiliary
// ones in aux_logits() (torchvision returns both as InceptionOutputs; its
// training recipe adds 0.4 x the auxiliary loss).
class InceptionV3 : public Module {
 public:
  InceptionV3(const ModelOptions& o, bool aux) {
    auto add = [&](const std::string& name, ModulePtr m) {
      register_module(name, m);
      seq_.push_back(m);
      return m;
    };
    add("Conv2d_1a_3x3", basic(o.in_channels, 32, 3, 2));
    add("Conv2d_2a_3x3", basic(32, 32, 3));
    add("Conv2d_2b_3x3", basic(32, 64, 3, 1, 1));
    add("maxpool1", max3s2());
    add("Conv2d_3b_1x1", basic(64, 80, 1));
    add("Conv2d_4a_3x3", basic(80, 192, 3));
    add("maxpool2", max3s2());
    add("Mixed_5b", inception_a(192, 32));
    add("Mixed_5c", inception_a(256, 64));
    add("Mixed_5d", inception_a(288, 64));
    add("Mixed_6a", inception_b(288));
    add("Mixed_6b", inception_c(768, 128));
    add("Mixed_6c", inception_c(768, 160));
    add("Mixed_6d", inception_c(768, 160));
    add("Mixed_6e", inception_c(768, 192));
    aux_at_ = seq_.size();
    if (aux) aux_ = register_module("AuxLogits", std::make_shared<InceptionAux>(768, o.num_classes));
    add("Mixed_7a", inception_d(768));
    add("Mixed_7b", inception_e(1280));
    add("Mixed_7c", inception_e(2048));
    add("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
    add("dropout", std::make_shared<Dropout>(o.dropout.value_or(0.5)));
    add("flatten", std::make_shared<Flatten>());
    fc_ = std::static_pointer_cast<Linear>(add("fc", std::make_shared<Linear>(2048, o.num_classes)));
  }
  Tensor forward(const Tensor& x) override {  // (N, C, H, W), H, W >= 75 -> (N, classes)
    NEURN_CHECK(x.dim() == 4 && x.size(2) >= 75 && x.size(3) >= 75,
                "inception_v3: needs inputs (N, C, H, W) of at least 75x75, got ", shape_str(x.shape()));
    Tensor y = x;
    aux_logits_ = Tensor();
    for (size_t i = 0; i < seq_.size(); ++i) {
      if (i == aux_at_ && aux_ && is_training()) aux_logits_ = (*aux_)(y);
      y = (*seq_[i])(y);
    }
    return y;
  }
  // The auxiliary head's logits of the last training-mode forward (undefined
  // in eval or without the head).
  const Tensor& aux_logits() const { return aux_logits_; }
  std::shared_ptr<InceptionAux> aux() const { return aux_; }
  std::shared_ptr<Linear> fc() const { return fc_; }

 private:
  std::vector<ModulePtr> seq_;
  size_t aux_at_ = 0;
  std::shared_ptr<InceptionAux> aux_;
  std::shared_ptr<Linear> fc_;
  Tensor aux_logits_;
};

}  // namespace

ModulePtr build_inception_v3(const ModelOptions& o, bool aux_logits) {
  std::shared_ptr<InceptionV3> model;
  {
    DeferInit defer;  // every weight is re-initialised below
    model = std::make_shared<InceptionV3>(o, aux_logits);
  }
  // torchvision's init: every Conv2d and Linear weight from a normal
  // truncated to [-2, 2] (absolute, as its call passes a=-2, b=2) with std
  // 0.1, except AuxLogits.conv1 (0.01) and AuxLogits.fc (0.001); the Linear
  // biases keep PyTorch's default; BN 1 and 0
  model->apply([](const std::string&, Module& m) {
    if (dynamic_cast<Conv2d*>(&m) || dynamic_cast<Linear*>(&m)) trunc_normal_(m.param("weight"), 0.1);
  });
  auto default_bias = [](Linear& fc) {
    double bound = 1.0 / std::sqrt(static_cast<double>(fc.param("weight").size(1)));
    uniform_(fc.param("bias"), -bound, bound);
  };
  default_bias(*model->fc());
  if (auto aux = model->aux()) {
    trunc_normal_(aux->conv1()->conv()->param("weight"), 0.01);
    trunc_normal_(aux->fc()->param("weight"), 0.001);
    default_bias(*aux->fc());
  }
  return model;
}

Tensor inception_v3_aux_logits(const Module& model) {
  auto* m = dynamic_cast<const InceptionV3*>(&model);
  NEURN_CHECK(m != nullptr, "inception_v3_aux_logits: the model is not an Inception v3");
  return m->aux_logits();
}

namespace {
ModulePtr build_inception_v3_registry(const ModelOptions& o) { return build_inception_v3(o, false); }
}  // namespace

NEURN_REGISTER_MODEL(inception_v3, (ModelInfo{.name = "inception_v3",
                                    .family = "Inception",
                                    .reference = "Szegedy et al. 2016; torchvision models.inception_v3 "
                                                 "(aux_logits=False, transform_input=False)",
                                    .description = "factorised Inception blocks A-E, 299x299 design, min 75x75",
                                    .min_input_size = 75,
                                    .reference_input_size = 299}),
                     build_inception_v3_registry);

}  // namespace neurn
