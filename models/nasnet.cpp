// NASNet-A Mobile and Large (Zoph et al., "Learning Transferable Architectures
// for Scalable Image Recognition", CVPR 2018) as Keras Applications builds
// them, one builder (NasnetSpec): keras.applications.NASNetMobile (penultimate
// filters 1056, 4 normal cells per stack, stem filters 32, filter multiplier
// 2, skip_reduction false) and NASNetLarge (4032, 6 cells per stack, stem
// filters 96, multiplier 2, skip_reduction true; 88,949,818 parameters as
// Keras counts them, reference input 331x331). The description below is
// NASNetMobile's; Large has block ids 0-5, reduce_6, 7-12, reduce_12, 13-18.
//
// The network is a chain of cells, each reading the two previous outputs
// (ip, the last, and p, the one before):
//   stem conv 3x3/2 valid + BN; reduction cells stem_1 (11 filters) and
//   stem_2 (22); normal cells 0-3 (44); reduction reduce_4 (88); normal 5-8
//   (88); reduction reduce_8 (176); normal 9-12 (176); ReLU, global average
//   pooling, the classifier.
// Every cell first adjusts p to its own filters and ip's map size (Keras's
// _adjust_block): when p's map is larger, the two-path factorised reduction
// (ReLU; path 1: 1x1 stride-2 average pool and a 1x1 conv of filters / 2;
// path 2: the map shifted by one pixel (pad bottom/right, crop top/left),
// pooled and convolved the same way; concatenated, BN); when only the
// channels differ, ReLU, 1x1 conv and BN; else p as it is. The cells'
// branches are Keras's _normal_a_cell and _reduction_a_cell; a separable
// block is ReLU, separable conv, BN, ReLU, separable conv, BN, the first
// conv of stride 2 in reduction cells after Keras's correct_pad padding.
// BN eps 1e-3, momentum 0.9997. 5,326,716 parameters at 1000 classes as
// Keras counts them (5,289,978 trainable plus the BN moving statistics).
// State keys are the Keras layer names, flat
// (separable_conv_1_normal_left1_0.depthwise.weight, adjust_bn_stem_2.bias).
// No dropout in the reference: ModelOptions::dropout is not used.
#include <cmath>

#include "layers/layers.h"
#include "layers/same_pool.h"
#include "models/backbones.h"
#include "models/keras_init.h"

namespace neurn {

namespace {

std::shared_ptr<BatchNorm2d> nasnet_bn(int64_t c) {
  return std::make_shared<BatchNorm2d>(c, 1e-3, 3e-4);  // Keras momentum 0.9997
}

std::shared_ptr<Conv2d> conv1x1(int64_t in, int64_t out) {
  return std::make_shared<Conv2d>(in, out, 1, 1, 0, 1, 1, false);
}

// Keras's imagenet_utils.correct_pad: pad for a stride-2 valid convolution or
// pooling of size k so that the output is ceil(H / 2): k/2 after, and k/2
// before (one less where the size is even). Token "ZeroPad".
class CorrectPad : public Module {
 public:
  explicit CorrectPad(int64_t kernel) : half_(kernel / 2) {}
  Tensor forward(const Tensor& x) override {
    int64_t top = half_ - (x.size(2) % 2 == 0 ? 1 : 0), left = half_ - (x.size(3) % 2 == 0 ? 1 : 0);
    return pad(x, {left, half_, top, half_});
  }
  std::string type() const override { return "ZeroPad"; }

 private:
  int64_t half_;
};

// Keras Cropping2D(((top, 0), (left, 0))): drops the first rows and columns. Token "Cropping".
class CropTopLeft : public Module {
 public:
  explicit CropTopLeft(int64_t n) : n_(n) {}
  Tensor forward(const Tensor& x) override {  // (N, C, H, W) -> (N, C, H - n, W - n)
    return slice(slice(x, 2, n_, x.size(2)), 3, n_, x.size(3));
  }
  std::string type() const override { return "Cropping"; }

 private:
  int64_t n_;
};

// Keras's _separable_conv_block: ReLU, [correct_pad], sepconv k (stride), BN,
// ReLU, sepconv k, BN. Inline child: the layers keep their Keras names.
class SepBlock : public Module {
 public:
  SepBlock(const std::string& id, int64_t in, int64_t filters, int64_t kernel, int64_t stride) {
    relu1_ = register_module("", std::make_shared<ReLU>());
    if (stride == 2) pad_ = register_module("", std::make_shared<CorrectPad>(kernel));
    // stride 1: "same"; stride 2: valid after the explicit padding
    conv1_ = register_module("separable_conv_1_" + id,
                             std::make_shared<SeparableConv2d>(in, filters, kernel, stride, 0, 1, false, stride == 1));
    bn1_ = register_module("separable_conv_1_bn_" + id, nasnet_bn(filters));
    relu2_ = register_module("", std::make_shared<ReLU>());
    conv2_ = register_module("separable_conv_2_" + id,
                             std::make_shared<SeparableConv2d>(filters, filters, kernel, 1, 0, 1, false, true));
    bn2_ = register_module("separable_conv_2_bn_" + id, nasnet_bn(filters));
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = (*relu1_)(x);
    if (pad_) y = (*pad_)(y);
    y = (*bn1_)((*conv1_)(y));
    return (*bn2_)((*conv2_)((*relu2_)(y)));
  }

 private:
  ModulePtr relu1_, pad_, conv1_, bn1_, relu2_, conv2_, bn2_;
};

// Keras's _adjust_block: p brought to `filters` channels and ip's map size.
enum class AdjustKind { None, Reduce, Project };

class Adjust : public Module {
 public:
  Adjust(AdjustKind kind, const std::string& id, int64_t in, int64_t filters) : kind_(kind) {
    if (kind == AdjustKind::None) return;
    relu_ = register_module("", std::make_shared<ReLU>());
    if (kind == AdjustKind::Project) {
      conv1_ = register_module("adjust_conv_projection_" + id, conv1x1(in, filters));
    } else {
      pool1_ = register_module("adjust_avg_pool_1_" + id, std::make_shared<AvgPool2d>(1, 2));
      conv1_ = register_module("adjust_conv_1_" + id, conv1x1(in, filters / 2));
      pad_ = register_module("", std::make_shared<ZeroPad2d>(0, 1, 0, 1));
      crop_ = register_module("", std::make_shared<CropTopLeft>(1));
      pool2_ = register_module("adjust_avg_pool_2_" + id, std::make_shared<AvgPool2d>(1, 2));
      conv2_ = register_module("adjust_conv_2_" + id, conv1x1(in, filters / 2));
    }
    bn_ = register_module("adjust_bn_" + id, nasnet_bn(kind == AdjustKind::Project ? filters : filters / 2 * 2));
  }
  Tensor forward(const Tensor& p) override {
    if (kind_ == AdjustKind::None) return p;
    Tensor r = (*relu_)(p);
    if (kind_ == AdjustKind::Project) return (*bn_)((*conv1_)(r));
    Tensor p1 = (*conv1_)((*pool1_)(r));
    Tensor p2 = (*conv2_)((*pool2_)((*crop_)((*pad_)(r))));  // the map shifted by one pixel
    return (*bn_)(channel_concat({p1, p2}));
  }

 private:
  AdjustKind kind_;
  ModulePtr relu_, pool1_, conv1_, pad_, crop_, pool2_, conv2_, bn_;
};

// What a cell is built from: its id, the channels and map level (number of
// reductions so far) of ip and p, and its filters.
struct CellInput {
  int64_t ip_channels, p_channels;
  int ip_level, p_level;
  bool has_p;  // false for the first cell: p = ip
};

AdjustKind adjust_kind(const CellInput& in, int64_t filters) {
  if (!in.has_p) return AdjustKind::None;
  if (in.p_level != in.ip_level) return AdjustKind::Reduce;
  return in.p_channels != filters ? AdjustKind::Project : AdjustKind::None;
}

// A cell reads (ip, p) and gives its output; the next cell's p is this ip.
class Cell : public Module {
 public:
  Tensor forward(const Tensor&) override { NEURN_FAIL("nasnet: a cell takes two inputs (ip, p); call run()"); }
  virtual Tensor run(const Tensor& ip, const Tensor& p) = 0;
};

// Keras's _normal_a_cell: concat(p, x1..x5), 6 x filters channels.
class NormalCell : public Cell {
 public:
  NormalCell(const std::string& id, const CellInput& in, int64_t f) {
    int64_t pc = in.has_p ? in.p_channels : in.ip_channels;
    adjust_ = register_module("", std::make_shared<Adjust>(adjust_kind(in, f), id, pc, f));
    if (adjust_kind(in, f) != AdjustKind::None) pc = f;
    relu_ = register_module("", std::make_shared<ReLU>());
    conv_ = register_module("normal_conv_1_" + id, conv1x1(in.ip_channels, f));
    bn_ = register_module("normal_bn_1_" + id, nasnet_bn(f));
    left1_ = register_module("", std::make_shared<SepBlock>("normal_left1_" + id, f, f, 5, 1));
    right1_ = register_module("", std::make_shared<SepBlock>("normal_right1_" + id, pc, f, 3, 1));
    left2_ = register_module("", std::make_shared<SepBlock>("normal_left2_" + id, pc, f, 5, 1));
    right2_ = register_module("", std::make_shared<SepBlock>("normal_right2_" + id, pc, f, 3, 1));
    left3_ = register_module("normal_left3_" + id, std::make_shared<SamePool2d>(PoolKind::Avg, 3, 1));
    left4_ = register_module("normal_left4_" + id, std::make_shared<SamePool2d>(PoolKind::Avg, 3, 1));
    right4_ = register_module("normal_right4_" + id, std::make_shared<SamePool2d>(PoolKind::Avg, 3, 1));
    left5_ = register_module("", std::make_shared<SepBlock>("normal_left5_" + id, f, f, 3, 1));
  }
  Tensor run(const Tensor& ip, const Tensor& p_in) override {
    Tensor p = (*adjust_)(p_in);
    Tensor h = (*bn_)((*conv_)((*relu_)(ip)));
    Tensor x1 = residual_add((*left1_)(h), (*right1_)(p));
    Tensor x2 = residual_add((*left2_)(p), (*right2_)(p));
    Tensor x3 = residual_add((*left3_)(h), p);
    Tensor x4 = residual_add((*left4_)(p), (*right4_)(p));
    Tensor x5 = residual_add((*left5_)(h), h);
    return channel_concat({p, x1, x2, x3, x4, x5});
  }

 private:
  ModulePtr adjust_, relu_, conv_, bn_, left1_, right1_, left2_, right2_, left3_, left4_, right4_, left5_;
};

// Keras's _reduction_a_cell: concat(x2, x3, x4, x5), 4 x filters channels, half the map.
class ReductionCell : public Cell {
 public:
  ReductionCell(const std::string& id, const CellInput& in, int64_t f) {
    int64_t pc = in.has_p ? in.p_channels : in.ip_channels;
    adjust_ = register_module("", std::make_shared<Adjust>(adjust_kind(in, f), id, pc, f));
    if (adjust_kind(in, f) != AdjustKind::None) pc = f;
    relu_ = register_module("", std::make_shared<ReLU>());
    conv_ = register_module("reduction_conv_1_" + id, conv1x1(in.ip_channels, f));
    bn_ = register_module("reduction_bn_1_" + id, nasnet_bn(f));
    pad_ = register_module("reduction_pad_1_" + id, std::make_shared<CorrectPad>(3));
    left1_ = register_module("", std::make_shared<SepBlock>("reduction_left1_" + id, f, f, 5, 2));
    right1_ = register_module("", std::make_shared<SepBlock>("reduction_right1_" + id, pc, f, 7, 2));
    left2_ = register_module("reduction_left2_" + id, std::make_shared<MaxPool2d>(3, 2));
    right2_ = register_module("", std::make_shared<SepBlock>("reduction_right2_" + id, pc, f, 7, 2));
    left3_ = register_module("reduction_left3_" + id, std::make_shared<AvgPool2d>(3, 2));
    right3_ = register_module("", std::make_shared<SepBlock>("reduction_right3_" + id, pc, f, 5, 2));
    left4_ = register_module("reduction_left4_" + id, std::make_shared<SamePool2d>(PoolKind::Avg, 3, 1));
    // Keras names this separable block "reduction_left4" too (the pool above is a layer, this a name scope)
    left5_ = register_module("", std::make_shared<SepBlock>("reduction_left4_" + id, f, f, 3, 1));
    right5_ = register_module("reduction_right5_" + id, std::make_shared<MaxPool2d>(3, 2));
  }
  Tensor run(const Tensor& ip, const Tensor& p_in) override {
    Tensor p = (*adjust_)(p_in);
    Tensor h = (*bn_)((*conv_)((*relu_)(ip)));
    Tensor h3 = (*pad_)(h);  // (N, f, H + 1 or 2, ...): the valid 3x3 stride-2 pools give ceil(H / 2)
    Tensor x1 = residual_add((*left1_)(h), (*right1_)(p));
    Tensor x2 = residual_add((*left2_)(h3), (*right2_)(p));
    Tensor x3 = residual_add((*left3_)(h3), (*right3_)(p));
    Tensor x4 = residual_add(x2, (*left4_)(x1));
    Tensor x5 = residual_add((*left5_)(x1), (*right5_)(h3));
    return channel_concat({x2, x3, x4, x5});
  }

 private:
  ModulePtr adjust_, relu_, conv_, bn_, pad_, left1_, right1_, left2_, right2_, left3_, right3_, left4_, left5_,
      right5_;
};

struct NasnetSpec {
  int64_t penultimate_filters = 1056;
  int num_blocks = 4;  // normal cells per stack
  int64_t stem_filters = 32;
  int64_t multiplier = 2;
  // Keras's skip_reduction: the cell after reduce_N (N > 0) reads as p the
  // p of that reduction cell (the output of the second-to-last normal cell)
  // instead of the reduction cell's input. Parameter-neutral; NASNetLarge.
  bool skip_reduction = false;
};

class Nasnet : public Module {
 public:
  Nasnet(const NasnetSpec& s, const ModelOptions& o) {
    NEURN_CHECK(s.penultimate_filters % (24 * s.multiplier * s.multiplier) == 0, "nasnet: penultimate filters (",
                s.penultimate_filters, ") must be a multiple of 24 x multiplier^2");
    int64_t f = s.penultimate_filters / 24, m = s.multiplier;
    stem_conv_ = register_module("stem_conv1", std::make_shared<Conv2d>(o.in_channels, s.stem_filters, 3, 2, 0, 1, 1,
                                                                        false));  // valid
    stem_bn_ = register_module("stem_bn1", nasnet_bn(s.stem_filters));
    // ip and p as the chain goes: channels and map level (reductions so far)
    CellInput in{.ip_channels = s.stem_filters, .p_channels = 0, .ip_level = 0, .p_level = 0, .has_p = false};
    auto add_cell = [&](std::shared_ptr<Cell> cell, int64_t out_channels, bool reduces, bool keep_p) {
      cells_.push_back(register_module("", cell));
      keep_p_.push_back(keep_p);
      in = CellInput{.ip_channels = out_channels,
                     .p_channels = keep_p ? in.p_channels : in.ip_channels,
                     .ip_level = in.ip_level + (reduces ? 1 : 0),
                     .p_level = keep_p ? in.p_level : in.ip_level,
                     .has_p = true};
    };
    auto reduction = [&](const std::string& id, int64_t filters, bool keep_p) {
      add_cell(std::make_shared<ReductionCell>(id, in, filters), 4 * filters, true, keep_p);
    };
    auto normal = [&](int id, int64_t filters) {
      add_cell(std::make_shared<NormalCell>(std::to_string(id), in, filters), 6 * filters, false, false);
    };
    reduction("stem_1", f / (m * m), false);
    reduction("stem_2", f / m, false);
    // Keras's block ids: normal 0..3, reduce_4, normal 5..8, reduce_8, normal 9..12
    int nb = s.num_blocks;
    for (int stack = 0; stack < 3; ++stack) {
      int64_t filters = f * (stack == 0 ? 1 : stack == 1 ? m : m * m);
      if (stack > 0) reduction("reduce_" + std::to_string(stack * nb), filters, s.skip_reduction);
      for (int i = 0; i < nb; ++i) normal(stack == 0 ? i : stack * nb + i + 1, filters);
    }
    relu_ = register_module("", std::make_shared<ReLU>());
    pool_ = register_module("", std::make_shared<GlobalAvgPool>());
    head_ = register_module("predictions", std::make_shared<Linear>(in.ip_channels, o.num_classes));
  }

  Tensor forward(const Tensor& x) override {  // (N, C, H, W) -> (N, classes)
    Tensor ip = (*stem_bn_)((*stem_conv_)(x));
    Tensor p = ip;  // the first cell has no p: Keras uses ip
    for (size_t i = 0; i < cells_.size(); ++i) {
      Tensor out = cells_[i]->run(ip, p);
      if (!keep_p_[i]) p = ip;
      ip = out;
    }
    return (*head_)((*pool_)((*relu_)(ip)));
  }

 private:
  ModulePtr stem_conv_, stem_bn_, relu_, pool_, head_;
  std::vector<std::shared_ptr<Cell>> cells_;
  std::vector<bool> keep_p_;  // per cell: the next cell's p stays this cell's p (skip_reduction)
};

// Keras's he_normal (NASNet's kernel_initializer for its convolutions): a
// normal truncated at 2 std, std sqrt(2 / fan_in) / 0.8796 (the truncation's
// correction); the classifier Glorot-uniform with zero bias.
void nasnet_init(Module& model) {
  keras_glorot_init(model);  // the separable convs keep Keras's Glorot defaults, the classifier too
  model.apply([](const std::string& name, Module& m) {
    bool in_separable = name.size() >= 9 && name.compare(name.size() - 9, 9, "pointwise") == 0;
    if (m.type() != "Conv" || in_separable) return;
    Tensor& w = m.param("weight");
    double std = std::sqrt(2.0 / static_cast<double>(fan_in(w.shape()))) / 0.87962566103423978;
    trunc_normal_(w, std, 0.0, -2 * std, 2 * std);
  });
}

ModulePtr build_nasnetmobile(const ModelOptions& o) {
  DeferInit defer;  // re-initialised by nasnet_init
  auto model = std::make_shared<Nasnet>(NasnetSpec{}, o);
  nasnet_init(*model);
  return model;
}

// Keras's NASNetLarge: NASNet-A 6 @ 4032, stem filters 96, skip_reduction.
ModulePtr build_nasnetlarge(const ModelOptions& o) {
  DeferInit defer;  // re-initialised by nasnet_init
  auto model = std::make_shared<Nasnet>(
      NasnetSpec{.penultimate_filters = 4032, .num_blocks = 6, .stem_filters = 96, .multiplier = 2,
                 .skip_reduction = true},
      o);
  nasnet_init(*model);
  return model;
}

}  // namespace

NEURN_REGISTER_MODEL(nasnetmobile,
                     (ModelInfo{.name = "nasnetmobile",
                                .family = "NASNet",
                                .reference = "Zoph et al. 2018, NASNet-A (4 @ 1056); Keras applications "
                                             "NASNetMobile",
                                .description = "searched normal and reduction cells, 4 per stack",
                                // Keras's minimum (obtain_input_shape(min_size=32)); the same layers
                                // hold from 19 (docs/models.md)
                                .min_input_size = 32,
                                .aliases = {"nasnet_mobile"}}),
                     build_nasnetmobile);
NEURN_REGISTER_MODEL(nasnetlarge,
                     (ModelInfo{.name = "nasnetlarge",
                                .family = "NASNet",
                                .reference = "Zoph et al. 2018, NASNet-A (6 @ 4032); Keras applications "
                                             "NASNetLarge",
                                .description = "searched normal and reduction cells, 6 per stack, skip_reduction",
                                .min_input_size = 32,
                                .aliases = {"nasnet_large"},
                                .reference_input_size = 331}),
                    build_nasnetlarge);

}  // namespace neurn
