#pragma once
// What the Keras Applications models share: Keras's batch norm defaults and
// its initialisation, Glorot-uniform kernels and zero biases.
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "framework/ops/norm.h"
#include "layers/batch_norm.h"
#include "layers/conv.h"
#include "layers/activation.h"
#include "layers/init.h"
#include "layers/merge.h"

namespace neurn {

// BatchNormalization(epsilon = eps, momentum = 0.99): PyTorch momentum 0.01.
inline std::shared_ptr<BatchNorm2d> keras_batch_norm(int64_t channels, double eps = 1e-3) {
  return std::make_shared<BatchNorm2d>(channels, eps, 0.01);
}

// BatchNormalization(scale = False) (Keras's InceptionV3 and
// InceptionResNetV2): no gamma (a constant 1), a learned beta. State names as
// BatchNorm2d's without "weight": "bias" (beta), "running_mean",
// "running_var", "num_batches_tracked". Token "BatchNorm", as any batch norm.
class BatchNorm2dNoScale : public Module {
 public:
  explicit BatchNorm2dNoScale(int64_t channels, double eps = 1e-3, double momentum = 0.01)
      : channels_(channels), eps_(eps), momentum_(momentum) {
    NEURN_CHECK(channels > 0, "BatchNorm2dNoScale: channels must be positive, got ", channels);
    register_parameter("bias", new_full({channels}, 0.0));
    register_buffer("running_mean", new_full({channels}, 0.0));
    register_buffer("running_var", new_full({channels}, 1.0));
    TensorOptions opt = param_options();
    opt.dtype = DType::Int64;
    register_buffer("num_batches_tracked", zeros({}, opt));
  }
  Tensor forward(const Tensor& x) override {  // (N, C, ...) -> (N, C, ...)
    NEURN_CHECK(x.dim() >= 2 && x.size(1) == channels_, "BatchNorm2dNoScale(", channels_, "): expected input (N, ",
                channels_, ", ...), got ", shape_str(x.shape()));
    if (is_training()) {  // as BatchNorm2d counts its steps
      Tensor& n = buffer("num_batches_tracked");
      if (n.device().is_cpu()) {
        ++n.data<int64_t>()[0];
      } else if (!n.device().is_meta()) {
        Tensor host = n.cpu();
        ++host.data<int64_t>()[0];
        n.copy_(host);
      }
    }
    // an undefined weight: the op scales by 1 and has no gamma gradient
    return batch_norm(x, Tensor(), param("bias"), buffer("running_mean"), buffer("running_var"), is_training(),
                      momentum_, eps_);
  }
  std::string type() const override { return "BatchNorm"; }

 private:
  int64_t channels_;
  double eps_, momentum_;
};

// Keras's auto-name of the i-th unnamed layer of a kind in a fresh session:
// "conv2d", "conv2d_1", "conv2d_2", ... (i from 0).
inline std::string keras_auto_name(const std::string& base, int i) {
  return i == 0 ? base : base + "_" + std::to_string(i);
}

// The Inception models' conv2d_bn: Conv2D (no bias unless `bias`), then,
// when bn_name is not empty, BatchNormalization(scale = False), then ReLU
// when `relu`. "same" padding (stride 1 here) is k / 2 on each side; else
// valid. An inline child: its layers keep their flat Keras names.
class KerasConvBn : public Module {
 public:
  KerasConvBn(const std::string& conv_name, const std::string& bn_name, int64_t in, int64_t out,
              std::array<int64_t, 2> kernel, int64_t stride, bool same, bool relu = true, bool bias = false) {
    NEURN_CHECK(!same || stride == 1, "KerasConvBn ", conv_name, ": 'same' padding is only modelled at stride 1");
    Conv2dSpec s;
    s.in_channels = in;
    s.out_channels = out;
    s.kernel = kernel;
    s.stride = {stride, stride};
    s.padding = same ? std::array<int64_t, 2>{kernel[0] / 2, kernel[1] / 2} : std::array<int64_t, 2>{0, 0};
    s.bias = bias;
    conv_ = register_module(conv_name, std::make_shared<Conv2d>(s));
    if (!bn_name.empty()) bn_ = register_module(bn_name, std::make_shared<BatchNorm2dNoScale>(out));
    if (relu) relu_ = register_module("", std::make_shared<ReLU>());
  }
  Tensor forward(const Tensor& x) override {  // (N, in, H, W) -> (N, out, H', W')
    Tensor y = (*conv_)(x);
    if (bn_) y = (*bn_)(y);
    return relu_ ? (*relu_)(y) : y;
  }

 private:
  ModulePtr conv_, bn_, relu_;
};

// Modules applied one after the other, registered inline (their tensors keep
// their own names): one branch of an Inception block.
class KerasChain : public Module {
 public:
  template <typename M>
  std::shared_ptr<M> add(std::shared_ptr<M> m) {
    steps_.push_back(register_module("", m));
    return m;
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = x;
    for (auto& m : steps_) y = (*m)(y);
    return y;
  }

 private:
  std::vector<ModulePtr> steps_;
};

// Branches of one input concatenated along the channels (an Inception block,
// Keras's concatenate). Registered inline.
class KerasBranches : public Module {
 public:
  std::shared_ptr<KerasChain> branch() {
    auto b = register_module("", std::make_shared<KerasChain>());
    branches_.push_back(b);
    return b;
  }
  Tensor forward(const Tensor& x) override {  // (N, C, H, W) -> (N, sum of the branches' C, H', W')
    std::vector<Tensor> ys;
    for (auto& b : branches_) ys.push_back((*b)(x));
    return channel_concat(ys);
  }

 private:
  std::vector<ModulePtr> branches_;
};

// Glorot-uniform kernels of every Conv, DepthwiseConv and Linear below `m`,
// zero biases. Keras's depthwise kernel is (k, k, C, multiplier), so its
// fans are k^2 C and k^2 multiplier, not those of the (C m, 1, k, k) layout.
inline void keras_glorot_init(Module& root) {
  root.apply([](const std::string&, Module& m) {
    std::string t = m.type();
    if (t != "Conv" && t != "DepthwiseConv" && t != "GroupConv" && t != "Linear") return;
    Tensor& w = m.param("weight");
    if (t == "DepthwiseConv") {
      const Conv2dSpec& s = static_cast<Conv2d&>(m).spec();
      double k2 = static_cast<double>(s.kernel[0] * s.kernel[1]);
      double mult = static_cast<double>(s.out_channels / s.in_channels);
      double limit = std::sqrt(6.0 / (k2 * static_cast<double>(s.in_channels) + k2 * mult));
      uniform_(w, -limit, limit);
    } else {
      xavier_uniform_(w);
    }
    if (m.has_param("bias")) constant_(m.param("bias"), 0.0);
  });
}

}  // namespace neurn
