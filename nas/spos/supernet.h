#pragma once
// The SPOS supernet (nas/spos/space.h for the space): every choice of every
// layer holds its own weights; one path (SposArch) runs per forward.
//
// Channel search: a choice's weights are preallocated at its largest middle
// width, and a path uses the first `mid` channels (the paper's supplementary
// figure). They are stored as one parameter per width step (chunk c_i covers
// the middle channels [m_{i-1}, m_i)), and a path concatenates the chunks it
// uses: a chunk off the path then gets no gradient at all, so SGD leaves it
// (weight decay and momentum included) exactly as it was. Batch-norm running
// statistics are kept at the largest width and a path uses (and updates) the
// first channels in place.
// Inside the supernet every batch norm is without affine parameters (the
// reference's choice); the standalone network (nas/spos/spos_model.cpp) has
// affine ones.
// Mixed precision: each layer's input is fake-quantized to its activation
// bits (unsigned: it follows a ReLU) and every convolution weight of the
// layer, after the width slice, to its weight bits (signed, symmetric),
// with the straight-through gradient of framework/ops/quantize.h.
#include <functional>
#include <map>
#include <vector>

#include "layers/layers.h"
#include "nas/spos/space.h"

namespace neurn::spos {

// Batch norm without affine parameters over the first C channels of
// statistics kept for `channels` (C = the input's channel count). momentum
// can be changed (recalibration uses a cumulative average). Token "BatchNorm".
class PathBatchNorm : public Module {
 public:
  explicit PathBatchNorm(int64_t channels);
  Tensor forward(const Tensor& x) override;  // (N, C <= channels, H, W)
  std::string type() const override { return "BatchNorm"; }
  void set_momentum(double m) { momentum_ = m; }
  void reset_running_stats();
  // The first c channels of running_mean / running_var (views of the buffers).
  Tensor running_mean(int64_t c);
  Tensor running_var(int64_t c);

 private:
  int64_t channels_;
  double momentum_ = 0.1;
};

// One choice (op) of one layer, all widths.
class SuperUnit : public Module {
 public:
  SuperUnit(const SposSpace& space, int64_t layer, int op);
  Tensor forward(const Tensor& x) override;  // the widest choice at 32 bits
  // (N, in, H, W) -> (N, out, H / stride, W / stride)
  Tensor forward_path(const Tensor& x, int scale, int weight_bits, int act_bits);
  // The standalone unit's tensors for this path (ShuffleV2Unit keys
  // "branch1.0.weight", "branch2.3.running_var", ...), sliced and detached.
  std::vector<std::pair<std::string, Tensor>> path_state(int scale) const;

 private:
  Tensor assemble(const std::string& name, int scale, int axis) const;       // chunks 0..scale along axis
  Tensor assemble_grid(const std::string& name, int scale) const;            // pw mid -> mid (both axes)
  void add_chunks(const std::string& name, const std::function<Shape(int64_t)>& shape_for, int64_t fan_in);
  void add_grid(const std::string& name, int64_t fan_in);
  std::shared_ptr<PathBatchNorm> bn(const std::string& name, int64_t c);

  int64_t in_, out_, stride_, kernel_, proj_, main_in_, main_out_;
  bool projecting_, xception_;
  std::vector<int64_t> mids_;  // increasing
  std::map<std::string, std::shared_ptr<PathBatchNorm>> bns_;
};

class Supernet : public Module {
 public:
  Supernet(const SposSpace& space, int64_t num_classes, int64_t in_channels);
  // The path of the next forward passes (validated against the space).
  void set_path(const SposArch& arch);
  const SposArch& path() const { return path_; }
  const SposSpace& space() const { return space_; }
  Tensor forward(const Tensor& x) override;  // (N, in_channels, H, W) -> (N, classes)
  // The candidate `op` of layer `layer` (the same module, hence the same
  // tensors, whichever path runs).
  SuperUnit& unit(int64_t layer, int op) const;
  // Every batch norm of the supernet.
  std::vector<std::shared_ptr<PathBatchNorm>> batch_norms() const;
  // The standalone `spos` model's state for a path (keys of build_spos_model:
  // first_conv.*, features.<l>.*, conv_last.*, classifier.weight), detached
  // copies. Affine BN weight and bias are not in it (the supernet has none).
  std::vector<std::pair<std::string, Tensor>> path_state(const SposArch& arch) const;

 private:
  SposSpace space_;
  SposArch path_;
  std::shared_ptr<Conv2d> stem_conv_, last_conv_;
  std::shared_ptr<PathBatchNorm> stem_bn_, last_bn_;
  std::shared_ptr<Linear> classifier_;
  std::vector<std::vector<std::shared_ptr<SuperUnit>>> units_;  // [layer][op]
  int64_t num_classes_;
};

// BN recalibration before a candidate is scored (the paper: the statistics
// of the shared weights do not fit any one path): the path's running
// statistics are reset and recomputed as the cumulative average over
// `batches` forward passes in training mode, without gradients. Nothing but
// running statistics changes (parameters, gradients, mode restored).
void recalibrate_bn(Supernet& net, const SposArch& arch, const std::vector<Tensor>& batches);

// The standalone network of an architecture (affine BN; ShuffleV2Unit in
// megvii's layout from models/shufflenet_v2.h). Registered as `spos`.
ModulePtr build_spos_model(const SposArch& arch, int64_t num_classes, int64_t in_channels);

// FLOPs and trainable parameters of an architecture's standalone network at
// an input size, on the meta device (no memory).
struct ArchCost {
  int64_t flops = 0;
  int64_t params = 0;
};
ArchCost arch_cost(const SposArch& arch, int64_t num_classes, int64_t in_channels, int64_t input_size);

}  // namespace neurn::spos
