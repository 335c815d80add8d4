#include "nas/spos/supernet.h"

#include <cmath>

#include "framework/ops/quantize.h"
#include "models/registry.h"
#include "models/shufflenet_v2.h"

namespace neurn::spos {

// ---- PathBatchNorm ----------------------------------------------------------

PathBatchNorm::PathBatchNorm(int64_t channels) : channels_(channels) {
  register_buffer("running_mean", new_full({channels}, 0.0));
  register_buffer("running_var", new_full({channels}, 1.0));
}

namespace {
// The first c values of a 1-D buffer, sharing its storage (in-place updates
// of the running statistics land in the full buffer).
Tensor prefix_view(const Tensor& buf, int64_t c) { return Tensor::from_storage(buf.storage(), {c}, buf.dtype()); }
}  // namespace

Tensor PathBatchNorm::running_mean(int64_t c) { return prefix_view(buffer("running_mean"), c); }
Tensor PathBatchNorm::running_var(int64_t c) { return prefix_view(buffer("running_var"), c); }

void PathBatchNorm::reset_running_stats() {
  if (buffer("running_mean").device().is_meta()) return;
  buffer("running_mean").fill_(0.0);
  buffer("running_var").fill_(1.0);
}

Tensor PathBatchNorm::forward(const Tensor& x) {
  NEURN_CHECK(x.dim() == 4 && x.size(1) <= channels_, "PathBatchNorm(", channels_, "): expected (N, C <= ", channels_,
              ", H, W), got ", shape_str(x.shape()));
  const int64_t c = x.size(1);
  return batch_norm(x, {}, {}, running_mean(c), running_var(c), is_training(), momentum_, 1e-5);
}

// ---- SuperUnit --------------------------------------------------------------

namespace {
Tensor quantize_weight(const Tensor& w, int bits) { return bits < 32 ? fake_quantize_symmetric(w, bits) : w; }
Tensor dw_conv(const Tensor& x, const Tensor& w, int64_t stride) {
  Conv2dOptions o;
  o.stride = {stride, stride};
  o.padding = {w.size(2) / 2, w.size(3) / 2};
  o.groups = x.size(1);
  return conv2d(x, w, {}, o);
}
Tensor pw_conv(const Tensor& x, const Tensor& w) { return conv2d(x, w, {}, {}); }
}  // namespace

SuperUnit::SuperUnit(const SposSpace& space, int64_t layer, int op)
    : in_(space.in_channels(layer)),
      out_(space.out_channels(layer)),
      stride_(space.stride(layer)),
      kernel_(op == 3 ? 3 : 3 + 2 * op),
      projecting_(space.projects(layer)),
      xception_(op == 3),
      mids_(space.mid_widths(layer)) {
  proj_ = projecting_ ? in_ : in_ / 2;
  main_in_ = projecting_ ? in_ : in_ / 2;
  main_out_ = out_ - proj_;
  NEURN_CHECK(main_out_ > 0, "SPOS layer ", layer, ": output width ", out_, " leaves no channels for the main branch");
  const int64_t M = mids_.back();
  auto uniform = [](const Shape& s, int64_t fan) {
    double b = 1.0 / std::sqrt(static_cast<double>(fan));  // PyTorch's default conv init, on the full weight's fan-in
    return new_uniform(s, -b, b);
  };
  if (projecting_) {
    register_parameter("proj_dw", uniform({in_, 1, kernel_, kernel_}, kernel_ * kernel_));
    bn("proj_bn1", in_);
    register_parameter("proj_pw", uniform({proj_, in_, 1, 1}, in_));
    bn("proj_bn2", proj_);
  }
  const int64_t k = kernel_;
  if (!xception_) {
    add_chunks("pw1", [&](int64_t c) { return Shape{c, main_in_, 1, 1}; }, main_in_);
    bn("bn1", M);
    add_chunks("dw", [&](int64_t c) { return Shape{c, 1, k, k}; }, k * k);
    bn("bn2", M);
    add_chunks("pw2", [&](int64_t c) { return Shape{main_out_, c, 1, 1}; }, M);
    bn("bn3", main_out_);
  } else {
    register_parameter("dw1", uniform({main_in_, 1, 3, 3}, 9));
    bn("bn1", main_in_);
    add_chunks("pw1", [&](int64_t c) { return Shape{c, main_in_, 1, 1}; }, main_in_);
    bn("bn2", M);
    add_chunks("dw2", [&](int64_t c) { return Shape{c, 1, 3, 3}; }, 9);
    bn("bn3", M);
    add_grid("pw2", M);
    bn("bn4", M);
    add_chunks("dw3", [&](int64_t c) { return Shape{c, 1, 3, 3}; }, 9);
    bn("bn5", M);
    add_chunks("pw3", [&](int64_t c) { return Shape{main_out_, c, 1, 1}; }, M);
    bn("bn6", main_out_);
  }
}

std::shared_ptr<PathBatchNorm> SuperUnit::bn(const std::string& name, int64_t c) {
  auto m = register_module(name, std::make_shared<PathBatchNorm>(c));
  bns_[name] = m;
  return m;
}

void SuperUnit::add_chunks(const std::string& name, const std::function<Shape(int64_t)>& shape_for, int64_t fan) {
  double b = 1.0 / std::sqrt(static_cast<double>(fan));
  for (size_t i = 0; i < mids_.size(); ++i) {
    int64_t c = mids_[i] - (i ? mids_[i - 1] : 0);
    register_parameter(name + "_" + std::to_string(i), new_uniform(shape_for(c), -b, b));
  }
}

void SuperUnit::add_grid(const std::string& name, int64_t fan) {
  double b = 1.0 / std::sqrt(static_cast<double>(fan));
  for (size_t i = 0; i < mids_.size(); ++i)
    for (size_t j = 0; j < mids_.size(); ++j) {
      int64_t ci = mids_[i] - (i ? mids_[i - 1] : 0), cj = mids_[j] - (j ? mids_[j - 1] : 0);
      register_parameter(name + "_" + std::to_string(i) + "_" + std::to_string(j), new_uniform({ci, cj, 1, 1}, -b, b));
    }
}

Tensor SuperUnit::assemble(const std::string& name, int scale, int axis) const {
  std::vector<Tensor> parts;
  auto* self = const_cast<SuperUnit*>(this);
  for (int i = 0; i <= scale; ++i) parts.push_back(self->param(name + "_" + std::to_string(i)));
  return parts.size() == 1 ? parts[0] : concat(parts, axis);
}

Tensor SuperUnit::assemble_grid(const std::string& name, int scale) const {
  auto* self = const_cast<SuperUnit*>(this);
  std::vector<Tensor> rows;
  for (int i = 0; i <= scale; ++i) {
    std::vector<Tensor> cols;
    for (int j = 0; j <= scale; ++j) cols.push_back(self->param(name + "_" + std::to_string(i) + "_" + std::to_string(j)));
    rows.push_back(cols.size() == 1 ? cols[0] : concat(cols, 1));
  }
  return rows.size() == 1 ? rows[0] : concat(rows, 0);
}

Tensor SuperUnit::forward(const Tensor& x) { return forward_path(x, static_cast<int>(mids_.size()) - 1, 32, 32); }

Tensor SuperUnit::forward_path(const Tensor& x, int scale, int wbits, int abits) {
  NEURN_CHECK(x.dim() == 4 && x.size(1) == in_, "SPOS unit: expected (N, ", in_, ", H, W), got ", shape_str(x.shape()));
  NEURN_CHECK(scale >= 0 && scale < static_cast<int>(mids_.size()), "SPOS unit: channel-scale index ", scale,
              " out of range (", mids_.size(), ")");
  auto W = [&](const Tensor& w) { return quantize_weight(w, wbits); };
  Tensor in = abits < 32 ? fake_quantize_unsigned(x, abits) : x;
  Tensor side, h;
  if (projecting_) {
    side = dw_conv(in, W(param("proj_dw")), stride_);
    side = (*bns_.at("proj_bn1"))(side);
    side = relu((*bns_.at("proj_bn2"))(pw_conv(side, W(param("proj_pw")))));
    h = in;
  } else {
    auto [passed, into] = shuffle_split_even_odd(in);
    side = passed;
    h = into;
  }
  if (!xception_) {
    h = relu((*bns_.at("bn1"))(pw_conv(h, W(assemble("pw1", scale, 0)))));
    h = (*bns_.at("bn2"))(dw_conv(h, W(assemble("dw", scale, 0)), stride_));
    h = relu((*bns_.at("bn3"))(pw_conv(h, W(assemble("pw2", scale, 1)))));
  } else {
    h = (*bns_.at("bn1"))(dw_conv(h, W(param("dw1")), stride_));
    h = relu((*bns_.at("bn2"))(pw_conv(h, W(assemble("pw1", scale, 0)))));
    h = (*bns_.at("bn3"))(dw_conv(h, W(assemble("dw2", scale, 0)), 1));
    h = relu((*bns_.at("bn4"))(pw_conv(h, W(assemble_grid("pw2", scale)))));
    h = (*bns_.at("bn5"))(dw_conv(h, W(assemble("dw3", scale, 0)), 1));
    h = relu((*bns_.at("bn6"))(pw_conv(h, W(assemble("pw3", scale, 1)))));
  }
  return channel_concat({side, h});
}

std::vector<std::pair<std::string, Tensor>> SuperUnit::path_state(int scale) const {
  NoGradGuard no_grad;
  std::vector<std::pair<std::string, Tensor>> out;
  const int64_t m = mids_.at(static_cast<size_t>(scale));
  auto* self = const_cast<SuperUnit*>(this);
  auto stats = [&](const std::string& key, const std::string& bn_name, int64_t c) {
    out.push_back({key + ".running_mean", bns_.at(bn_name)->running_mean(c).clone()});
    out.push_back({key + ".running_var", bns_.at(bn_name)->running_var(c).clone()});
  };
  auto weight = [&](const std::string& key, const Tensor& w) { out.push_back({key + ".weight", w.detach().clone()}); };
  if (projecting_) {
    weight("branch1.0", self->param("proj_dw"));
    stats("branch1.1", "proj_bn1", in_);
    weight("branch1.2", self->param("proj_pw"));
    stats("branch1.3", "proj_bn2", proj_);
  }
  if (!xception_) {
    weight("branch2.0", assemble("pw1", scale, 0));
    stats("branch2.1", "bn1", m);
    weight("branch2.3", assemble("dw", scale, 0));
    stats("branch2.4", "bn2", m);
    weight("branch2.5", assemble("pw2", scale, 1));
    stats("branch2.6", "bn3", main_out_);
  } else {
    weight("branch2.0", self->param("dw1"));
    stats("branch2.1", "bn1", main_in_);
    weight("branch2.2", assemble("pw1", scale, 0));
    stats("branch2.3", "bn2", m);
    weight("branch2.5", assemble("dw2", scale, 0));
    stats("branch2.6", "bn3", m);
    weight("branch2.7", assemble_grid("pw2", scale));
    stats("branch2.8", "bn4", m);
    weight("branch2.10", assemble("dw3", scale, 0));
    stats("branch2.11", "bn5", m);
    weight("branch2.12", assemble("pw3", scale, 1));
    stats("branch2.13", "bn6", main_out_);
  }
  return out;
}

// ---- Supernet ---------------------------------------------------------------

Supernet::Supernet(const SposSpace& space, int64_t num_classes, int64_t in_channels)
    : space_(space), num_classes_(num_classes) {
  space_.validate();
  stem_conv_ = register_module("first_conv", std::make_shared<Conv2d>(in_channels, space_.stem(), 3, space_.stem_stride, 1, 1, 1, false));
  stem_bn_ = register_module("first_bn", std::make_shared<PathBatchNorm>(space_.stem()));
  auto features = register_module("features", std::make_shared<Sequential>());
  const int n_ops = space_.search_ops ? 4 : 1;
  for (int64_t l = 0; l < space_.layers(); ++l) {
    auto layer = features->push_back(std::make_shared<Sequential>());
    units_.emplace_back();
    for (int op = 0; op < n_ops; ++op) units_.back().push_back(layer->push_back(std::make_shared<SuperUnit>(space_, l, op)));
  }
  int64_t c = space_.out_channels(space_.layers() - 1);
  last_conv_ = register_module("conv_last", std::make_shared<Conv2d>(c, space_.last(), 1, 1, 0, 1, 1, false));
  last_bn_ = register_module("last_bn", std::make_shared<PathBatchNorm>(space_.last()));
  classifier_ = register_module("classifier", std::make_shared<Linear>(space_.last(), num_classes, false));
  path_.space = space_;
  path_.layers.assign(static_cast<size_t>(space_.layers()), LayerChoice{});
}

void Supernet::set_path(const SposArch& arch) {
  arch.validate();
  NEURN_CHECK(static_cast<int64_t>(arch.layers.size()) == space_.layers() &&
                  gene_choices(arch.space) == gene_choices(space_) && arch.space.width == space_.width &&
                  arch.space.stage_channels == space_.stage_channels && arch.space.stage_strides == space_.stage_strides &&
                  arch.space.channel_scales == space_.channel_scales && arch.space.weight_bits == space_.weight_bits &&
                  arch.space.act_bits == space_.act_bits,
              "Supernet::set_path: the architecture belongs to another search space");
  path_ = arch;
}

SuperUnit& Supernet::unit(int64_t layer, int op) const { return *units_.at(static_cast<size_t>(layer)).at(static_cast<size_t>(op)); }

Tensor Supernet::forward(const Tensor& x) {
  Tensor h = relu((*stem_bn_)((*stem_conv_)(x)));
  for (int64_t l = 0; l < space_.layers(); ++l) {
    const LayerChoice& c = path_.layers[static_cast<size_t>(l)];
    h = unit(l, c.op).forward_path(h, c.scale, path_.weight_bits(l), path_.act_bits(l));
  }
  h = relu((*last_bn_)((*last_conv_)(h)));
  h = mean(h, {2, 3});
  h = dropout(h, space_.dropout, is_training());
  return (*classifier_)(h);
}

std::vector<std::shared_ptr<PathBatchNorm>> Supernet::batch_norms() const {
  std::vector<std::shared_ptr<PathBatchNorm>> out;
  const_cast<Supernet*>(this)->apply([&](const std::string&, Module& m) {
    if (auto* bn = dynamic_cast<PathBatchNorm*>(&m)) out.push_back(std::static_pointer_cast<PathBatchNorm>(bn->shared_from_this()));
  });
  return out;
}

std::vector<std::pair<std::string, Tensor>> Supernet::path_state(const SposArch& arch) const {
  NoGradGuard no_grad;
  std::vector<std::pair<std::string, Tensor>> out;
  auto* self = const_cast<Supernet*>(this);
  out.push_back({"first_conv.0.weight", stem_conv_->param("weight").clone()});
  out.push_back({"first_conv.1.running_mean", stem_bn_->running_mean(space_.stem()).clone()});
  out.push_back({"first_conv.1.running_var", stem_bn_->running_var(space_.stem()).clone()});
  for (int64_t l = 0; l < space_.layers(); ++l) {
    const LayerChoice& c = arch.layers.at(static_cast<size_t>(l));
    for (auto& [k, t] : unit(l, c.op).path_state(c.scale)) out.push_back({"features." + std::to_string(l) + "." + k, t});
  }
  out.push_back({"conv_last.0.weight", last_conv_->param("weight").clone()});
  out.push_back({"conv_last.1.running_mean", last_bn_->running_mean(space_.last()).clone()});
  out.push_back({"conv_last.1.running_var", last_bn_->running_var(space_.last()).clone()});
  out.push_back({"classifier.weight", classifier_->param("weight").clone()});
  (void)self;
  return out;
}

void recalibrate_bn(Supernet& net, const SposArch& arch, const std::vector<Tensor>& batches) {
  NEURN_CHECK(!batches.empty(), "recalibrate_bn: no batches");
  const bool was_training = net.is_training();
  SposArch before = net.path();
  net.set_path(arch);
  auto bns = net.batch_norms();
  // Only the path's statistics are touched by the forward passes; resetting
  // all of them keeps the rule simple (the others are recalibrated when their
  // path is scored).
  for (auto& bn : bns) bn->reset_running_stats();
  net.train();
  {
    NoGradGuard no_grad;
    for (size_t i = 0; i < batches.size(); ++i) {
      for (auto& bn : bns) bn->set_momentum(1.0 / static_cast<double>(i + 1));  // cumulative average
      net(batches[i]);
    }
  }
  for (auto& bn : bns) bn->set_momentum(0.1);
  net.train(was_training);
  net.set_path(before);
}

// ---- the standalone network -------------------------------------------------

ModulePtr build_spos_model(const SposArch& arch, int64_t num_classes, int64_t in_channels) {
  arch.validate();
  const SposSpace& s = arch.space;
  auto model = std::make_shared<Sequential>();
  auto stem = model->add("first_conv", std::make_shared<Sequential>());
  stem->emplace<Conv2d>(in_channels, s.stem(), 3, s.stem_stride, 1, 1, 1, false);
  stem->emplace<BatchNorm2d>(s.stem());
  stem->emplace<ReLU>();
  auto features = model->add("features", std::make_shared<Sequential>());
  for (int64_t l = 0; l < s.layers(); ++l) {
    const LayerChoice& c = arch.layers[static_cast<size_t>(l)];
    ShuffleUnitSpec u;
    u.in = s.in_channels(l);
    u.out = s.out_channels(l);
    u.stride = s.stride(l);
    u.project = s.projects(l);
    u.kernel = c.op == 3 ? 3 : 3 + 2 * c.op;
    u.xception = c.op == 3;
    u.mid = arch.mid(l);
    u.layout = ShuffleLayout::Megvii;
    u.weight_bits = arch.weight_bits(l);
    u.act_bits = arch.act_bits(l);
    features->push_back(std::make_shared<ShuffleV2Unit>(u));
  }
  auto last = model->add("conv_last", std::make_shared<Sequential>());
  last->emplace<Conv2d>(s.out_channels(s.layers() - 1), s.last(), 1, 1, 0, 1, 1, false);
  last->emplace<BatchNorm2d>(s.last());
  last->emplace<ReLU>();
  model->add("pool", std::make_shared<GlobalAvgPool>());
  model->add("dropout", std::make_shared<Dropout>(s.dropout));
  model->add("classifier", std::make_shared<Linear>(s.last(), num_classes, false));
  return model;
}

ArchCost arch_cost(const SposArch& arch, int64_t num_classes, int64_t in_channels, int64_t input_size) {
  ParamScope meta({.device = Device::meta()});
  ModulePtr m = build_spos_model(arch, num_classes, in_channels);
  ModelTrace t = trace_model(*m, {1, in_channels, input_size, input_size});
  return {t.flops, t.params};
}

namespace {
ModulePtr build_registered_spos(const ModelOptions& o) {
  SposArch arch = parse_arch(o.arch);
  if (o.dropout) arch.space.dropout = *o.dropout;
  return build_spos_model(arch, o.num_classes, o.in_channels);
}
}  // namespace

NEURN_REGISTER_MODEL(spos, (ModelInfo{.name = "spos",
                                      .family = "SPOS",
                                      .reference = "Guo et al. 2019 (single path one-shot), megvii-model/SinglePathOneShot layout; the architecture from `neurn nas spos search`",
                                      .description = "searched ShuffleNetV2/Xception choice blocks (arch: exported JSON or 20 op indices)",
                                      .has_arch = true,
                                      .reference_input_size = 32,
                                .reference_classes = 10}),
                     build_registered_spos);

}  // namespace neurn::spos
