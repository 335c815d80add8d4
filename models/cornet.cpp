// CORnet-S (Kubilius, Schrimpf, Kar, Rajalingham, Hong, Majaj, Issa, Bashivan,
// Prescott-Roy, Schmidt, Nayebi, Bear, Yamins & DiCarlo, "Brain-Like Object
// Recognition with High-Performing Shallow Recurrent ANNs", NeurIPS 2019), as
// the authors' dicarlolab/CORnet (cornet/cornet_s.py) defines it: areas V1 (a
// conv-pool-conv stem), V2, V4 and IT (recurrent bottleneck blocks run for 2,
// 4 and 2 time steps) and a decoder (global pool, linear).
//
// A recurrent block shares its convolutions across time steps but has its own
// batch norms per step (norm1_t, norm2_t, norm3_t), as the authors do. Step 0
// downsamples (stride 2 on conv2, a strided 1x1 "skip" convolution with its
// norm on the shortcut); later steps run at stride 1 with the identity as
// shortcut. The recurrence is unrolled in forward(), so the trace records the
// layers of every step. Keys as the authors' (V1.conv1.weight,
// V2.norm1_0.running_mean, V4.conv2.weight, decoder.linear.bias, ...); their
// Identity "output" modules hold nothing and are left out.
//
// Parameters at 1000 classes, from that definition: V1 9,408 + 128 + 36,864 +
// 128; a block from c_in to c (4 c bottleneck, T steps) has c_in c + c^2 + 2 c
// + 4 c^2 + 144 c^2 + 4 c^2 + T (8 c + 8 c + 2 c): V2 (64 -> 128, T 2)
// 2,527,488; V4 (128 -> 256, T 4) 10,012,160; IT (256 -> 512, T 2)
// 39,818,240; decoder 513,000. Total 53,416,616.
#include <cmath>
#include <optional>

#include "layers/layers.h"
#include "models/registry.h"

namespace neurn {

namespace {

class CORblockS : public Module {
 public:
  static constexpr int64_t kScale = 4;  // bottleneck width factor

  CORblockS(int64_t in, int64_t out, int64_t times) : times_(times) {
    NEURN_CHECK(times >= 1, "CORblock_S: times must be >= 1, got ", times);
    const int64_t mid = out * kScale;
    conv_input_ = register_module("conv_input", std::make_shared<Conv2d>(in, out, 1, 1, 0, 1, 1, false));
    skip_ = register_module("skip", std::make_shared<Conv2d>(out, out, 1, 2, 0, 1, 1, false));
    norm_skip_ = register_module("norm_skip", std::make_shared<BatchNorm2d>(out));
    conv1_ = register_module("conv1", std::make_shared<Conv2d>(out, mid, 1, 1, 0, 1, 1, false));
    nonlin1_ = register_module("nonlin1", std::make_shared<ReLU>());
    // The same weight at stride 2 (step 0) and stride 1 (later steps): the
    // authors change conv2's stride between steps. Two Conv2d modules would
    // be two weights, so step 0 and the others share one "conv2" weight and
    // call the op directly at the step's stride (see conv2_at).
    conv2_ = register_module("conv2", std::make_shared<Conv2d>(mid, mid, 3, 1, 1, 1, 1, false));
    nonlin2_ = register_module("nonlin2", std::make_shared<ReLU>());
    conv3_ = register_module("conv3", std::make_shared<Conv2d>(mid, out, 1, 1, 0, 1, 1, false));
    nonlin3_ = register_module("nonlin3", std::make_shared<ReLU>());
    for (int64_t t = 0; t < times; ++t) {
      const std::string s = std::to_string(t);
      norm1_.push_back(register_module("norm1_" + s, std::make_shared<BatchNorm2d>(mid)));
      norm2_.push_back(register_module("norm2_" + s, std::make_shared<BatchNorm2d>(mid)));
      norm3_.push_back(register_module("norm3_" + s, std::make_shared<BatchNorm2d>(out)));
    }
  }

  Tensor forward(const Tensor& inp) override {  // (N, in, H, W) -> (N, out, ceil(H / 2), ceil(W / 2))
    Tensor x = (*conv_input_)(inp);
    for (int64_t t = 0; t < times_; ++t) {
      Tensor skip = t == 0 ? (*norm_skip_)((*skip_)(x)) : x;
      Tensor y = (*nonlin1_)((*norm1_[t])((*conv1_)(x)));
      y = (*nonlin2_)((*norm2_[t])(conv2_at(y, t == 0 ? 2 : 1)));
      y = (*norm3_[t])((*conv3_)(y));
      x = (*nonlin3_)(residual_add(y, skip));
    }
    return x;
  }

 private:
  // conv2 at the given stride, recorded as the layer it is ("Conv").
  Tensor conv2_at(const Tensor& y, int64_t stride) {
    LayerTrace::record(conv2_->type());
    Conv2dOptions opt;
    opt.stride = {stride, stride};
    opt.padding = {1, 1};
    return conv2d(y, conv2_->param("weight"), {}, opt);
  }

  int64_t times_;
  ModulePtr conv_input_, skip_, norm_skip_, conv1_, nonlin1_, nonlin2_, conv3_, nonlin3_;
  std::shared_ptr<Conv2d> conv2_;
  std::vector<ModulePtr> norm1_, norm2_, norm3_;
};

class CORnetS : public Module {
 public:
  explicit CORnetS(const ModelOptions& o) {
    std::optional<DeferInit> defer(std::in_place);  // convolutions redrawn below
    auto v1 = register_module("V1", std::make_shared<Sequential>());
    v1->add("conv1", std::make_shared<Conv2d>(o.in_channels, 64, 7, 2, 3, 1, 1, false));
    v1->add("norm1", std::make_shared<BatchNorm2d>(64));
    v1->add("nonlin1", std::make_shared<ReLU>());
    v1->add("pool", std::make_shared<MaxPool2d>(3, 2, 1));
    v1->add("conv2", std::make_shared<Conv2d>(64, 64, 3, 1, 1, 1, 1, false));
    v1->add("norm2", std::make_shared<BatchNorm2d>(64));
    v1->add("nonlin2", std::make_shared<ReLU>());
    areas_.push_back(v1);
    areas_.push_back(register_module("V2", std::make_shared<CORblockS>(64, 128, 2)));
    areas_.push_back(register_module("V4", std::make_shared<CORblockS>(128, 256, 4)));
    areas_.push_back(register_module("IT", std::make_shared<CORblockS>(256, 512, 2)));
    defer.reset();
    decoder_ = register_module("decoder", std::make_shared<Sequential>());
    decoder_->add("avgpool", std::make_shared<AdaptiveAvgPool2d>(1));
    decoder_->add("flatten", std::make_shared<Flatten>());
    if (o.dropout && *o.dropout > 0) decoder_->add("dropout", std::make_shared<Dropout>(*o.dropout));
    decoder_->add("linear", std::make_shared<Linear>(512, o.num_classes));  // torch's default init, as the authors
    // The authors' init: N(0, sqrt(2 / (k k C_out))) convolutions, BN at 1 and 0.
    apply([](const std::string&, Module& m) {
      if (m.type() == "Conv") kaiming_normal_(m.param("weight"), FanMode::FanOut);
    });
  }

  Tensor forward(const Tensor& x) override {
    Tensor y = x;
    for (auto& a : areas_) y = (*a)(y);
    return (*decoder_)(y);
  }

 private:
  std::vector<ModulePtr> areas_;
  std::shared_ptr<Sequential> decoder_;
};

ModulePtr build_cornet_s(const ModelOptions& o) { return std::make_shared<CORnetS>(o); }

}  // namespace

NEURN_REGISTER_MODEL(cornet_s, (ModelInfo{.name = "cornet_s",
                                   .family = "CORnet",
                                   .reference = "Kubilius et al. 2019 (NeurIPS); dicarlolab/CORnet cornet_s",
                                   .description = "brain-like shallow recurrent network: V1 stem, V2/V4/IT recurrent "
                                                  "bottlenecks unrolled 2/4/2 steps, per-step batch norm"}),
                     build_cornet_s);

}  // namespace neurn
