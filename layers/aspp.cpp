#include "layers/aspp.h"

#include "layers/batch_norm.h"
#include "layers/conv.h"
#include "layers/dropout.h"
#include "layers/activation.h"
#include "layers/merge.h"
#include "layers/pooling.h"

namespace neurn {

Tensor upsample_bilinear(const Tensor& x, int64_t out_h, int64_t out_w) {
  LayerTrace::record("Upsample");
  return upsample(x, out_h, out_w, UpsampleMode::Bilinear);
}

namespace {

// conv (k x k, dilation d, padding d for k = 3), BN, ReLU
std::shared_ptr<Sequential> conv_bn_relu(int64_t in, int64_t out, int64_t k, int64_t dilation) {
  auto s = std::make_shared<Sequential>();
  s->emplace<Conv2d>(in, out, k, 1, k == 1 ? 0 : dilation, dilation, 1, false);
  s->emplace<BatchNorm2d>(out);
  s->emplace<ReLU>();
  return s;
}

// torchvision's ASPPPooling: a Sequential (pool, conv, BN, ReLU) whose
// output is resized back to the input's map.
class ASPPPooling : public Sequential {
 public:
  ASPPPooling(int64_t in, int64_t out) {
    emplace<AdaptiveAvgPool2d>(1);
    emplace<Conv2d>(in, out, 1, 1, 0, 1, 1, false);
    emplace<BatchNorm2d>(out);
    emplace<ReLU>();
  }
  Tensor forward(const Tensor& x) override {  // (N, in, H, W) -> (N, out, H, W)
    return upsample_bilinear(Sequential::forward(x), x.size(2), x.size(3));
  }
};

}  // namespace

ASPP::ASPP(int64_t in, const std::vector<int64_t>& rates, int64_t out, double dropout) {
  NEURN_CHECK(in >= 1 && out >= 1, "ASPP: channels must be >= 1, got in ", in, ", out ", out);
  NEURN_CHECK(!rates.empty(), "ASPP: needs at least one atrous rate");
  for (int64_t r : rates) NEURN_CHECK(r >= 1, "ASPP: atrous rates must be >= 1, got ", r);
  convs_ = register_module("convs", std::make_shared<Sequential>());
  convs_->push_back(conv_bn_relu(in, out, 1, 1));
  for (int64_t r : rates) convs_->push_back(conv_bn_relu(in, out, 3, r));
  convs_->push_back(std::make_shared<ASPPPooling>(in, out));
  const int64_t branches = static_cast<int64_t>(convs_->size());
  project_ = register_module("project", conv_bn_relu(branches * out, out, 1, 1));
  project_->emplace<Dropout>(dropout);
}

Tensor ASPP::forward(const Tensor& x) {
  std::vector<Tensor> ys;  // each (N, out, H, W)
  for (size_t i = 0; i < convs_->size(); ++i) ys.push_back((*(*convs_)[i])(x));
  return (*project_)(channel_concat(ys));  // (N, branches * out, H, W) -> (N, out, H, W)
}

}  // namespace neurn
