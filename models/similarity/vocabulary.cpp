#include "models/similarity/vocabulary.h"

#include <map>

#include "framework/error.h"

namespace neurn::similarity {

const std::vector<TokenInfo>& vocabulary() {
  // One row per architectural layer kind. Keras and torchvision write some
  // layers differently (GlobalAveragePooling2D vs AdaptiveAvgPool2d(1)); the
  // layers record one type for both, and this table is where the last
  // spellings meet. Codes are unique and printable.
  static const std::vector<TokenInfo> t{
      {"Conv", 'C', {"Conv"}, "dense 2-D convolution (groups = 1), any kernel, stride, padding"},
      {"DWConv", 'D', {"DepthwiseConv"}, "depthwise convolution (one input channel per group)"},
      {"GConv", 'G', {"GroupConv"}, "grouped convolution with more than one input channel per group"},
      {"SepConv", 'S', {"SeparableConv"}, "Keras SeparableConv2D: depthwise then pointwise, one layer"},
      {"ConvT", 'V', {"ConvTranspose"}, "transposed convolution (U-Net's up-convolution)"},
      {"BN", 'B', {"BatchNorm"}, "batch normalization"},
      {"IN", 'I', {"InstanceNorm"}, "instance normalization (IBN-Net)"},
      {"LayerNorm", 'N', {"LayerNorm"}, "layer normalization"},
      {"ReLU", 'R', {"ReLU"}, "rectified linear unit"},
      {"ReLU6", '6', {"ReLU6"}, "ReLU clipped at 6"},
      {"LeakyReLU", 'L', {"LeakyReLU"}, "leaky ReLU"},
      {"SiLU", 'W', {"SiLU"}, "SiLU / swish, x * sigmoid(x)"},
      {"GELU", 'U', {"GELU"}, "Gaussian error linear unit"},
      {"Sigmoid", 'Y', {"Sigmoid"}, "logistic sigmoid (the SE gate among others)"},
      {"Tanh", 'T', {"Tanh"}, "hyperbolic tangent"},
      {"HSwish", 'H', {"Hardswish"}, "hard swish"},
      {"HSigmoid", 'h', {"Hardsigmoid"}, "hard sigmoid"},
      {"MaxPool", 'M', {"MaxPool"}, "max pooling with a window"},
      {"AvgPool", 'A', {"AvgPool", "AdaptiveAvgPool"}, "average pooling with a window (or to an output size > 1)"},
      {"GAP", 'g', {"GlobalAvgPool"}, "global average pooling (adaptive to 1x1 included)"},
      {"Linear", 'F', {"Linear"}, "fully connected layer"},
      {"Dropout", 'd', {"Dropout", "StochasticDepth"},
       "dropout, and stochastic depth (Keras writes EfficientNet's drop-connect as a Dropout layer)"},
      {"Flatten", 'f', {"Flatten"}, "flatten to (N, features)"},
      {"ZeroPad", 'Z', {"ZeroPad"}, "Keras ZeroPadding2D (explicit padding layer)"},
      {"Crop", 'k', {"Cropping"}, "Keras Cropping2D (NASNet's padding fix-up)"},
      {"Add", '+', {"Add"}, "element-wise sum of branches (residual connection)"},
      {"Concat", '&', {"Concat"}, "channel concatenation of branches"},
      {"Shuffle", 'X', {"ChannelShuffle"}, "channel shuffle (ShuffleNet)"},
      {"SE", '*', {"Multiply"}, "the channel rescale that closes a squeeze-and-excitation block"},
      {"Attention", 'Q', {"MultiheadAttention"}, "multi-head self-attention (projections included)"},
      {"PatchEmbed", 'E', {"PatchEmbed"}, "ViT patch embedding (a strided conv to tokens)"},
      {"ClassToken", 'K', {"ClassToken"}, "ViT class token prepended"},
      {"PosEmbed", 'P', {"PosEmbed"}, "ViT position embedding added"},
      {"NeuRN", 'n', {"NeuRN"}, "neural response normalization"},
      {"LRN", 'r', {"LRN"}, "local response normalization"},
      {"LCN", 'c', {"LCN"}, "local contrast normalization"},
      {"Upsample", 'u', {"Upsample"}, "feature-map resize (the decoders' bilinear upsampling: segmentation, depth)"},
      {"Softmax", 'x', {"Softmax"}, "softmax across branches (the weights of ResNeSt's split attention)"},
  };
  return t;
}

const TokenInfo* find_token(const std::string& s) {
  static const std::map<std::string, const TokenInfo*> index = [] {
    std::map<std::string, const TokenInfo*> m;
    for (auto& t : vocabulary()) {
      m[t.name] = &t;
      m[std::string(1, t.code)] = &t;
      for (auto& l : t.layer_types) m[l] = &t;
    }
    return m;
  }();
  auto it = index.find(s);
  return it == index.end() ? nullptr : it->second;
}

std::vector<std::string> to_vocabulary(const std::vector<std::string>& layer_types) {
  std::vector<std::string> out;
  out.reserve(layer_types.size());
  for (auto& l : layer_types) {
    const TokenInfo* t = find_token(l);
    out.push_back(t ? t->name : l);
  }
  return out;
}

std::string to_codes(const std::vector<std::string>& tokens) {
  std::string s;
  s.reserve(tokens.size());
  for (auto& tok : tokens) {
    const TokenInfo* t = find_token(tok);
    s.push_back(t ? t->code : '?');
  }
  return s;
}

std::vector<std::string> parse_sequence(const std::string& spec) {
  std::string body = spec.rfind("seq:", 0) == 0 ? spec.substr(4) : spec;
  std::vector<std::string> out;
  if (body.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t end = body.find(',', start);
    std::string item = body.substr(start, end == std::string::npos ? std::string::npos : end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    const TokenInfo* t = find_token(item);
    NEURN_CHECK(t != nullptr, "sequence '", spec, "': unknown token '", item,
                "' (a vocabulary name such as Conv, BN, ReLU, MaxPool, Add; see docs/similarity.md)");
    out.push_back(t->name);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace neurn::similarity
