#pragma once
// The ShuffleNetV2 unit (Ma et al., "ShuffleNet V2: Practical Guidelines for
// Efficient CNN Architecture Design", 2018), exposed so that nas/spos can
// build its choice blocks and its standalone searched network on it.
//
// stride 1: the input is split in two halves; one passes unchanged, the
//           other goes through branch2 (pw, BN, ReLU, dw k x k, BN, pw, BN, ReLU).
// stride 2: branch1 (dw k x k stride 2, BN, pw, BN, ReLU) on the whole input
//           beside branch2 (also on the whole input, its dw has stride 2).
// The two outputs are concatenated. Two layouts of the same design:
//   Torchvision: both halves of a stride-2 unit are out/2 wide, the channels
//                are shuffled (groups 2) after the concat, the split is the
//                first and second half (torchvision's InvertedResidual;
//                keys branch1.*, branch2.*).
//   Megvii:      the stride-2 projection keeps the input width (in), the
//                channels are shuffled at the input of a stride-1 unit
//                (even channels pass, odd channels enter branch2), no shuffle
//                after the concat (megvii-model/SinglePathOneShot's
//                ShuffleV2Block, which the SPOS supernet follows).
// xception: branch2 is the Xception-like branch of SPOS's fourth choice:
//   (dw 3x3, BN, pw, BN, ReLU) x 3, the first dw with the unit's stride.
#include "layers/layers.h"
#include "models/registry.h"

namespace neurn {

enum class ShuffleLayout { Torchvision, Megvii };

struct ShuffleUnitSpec {
  int64_t in = 0;       // input channels
  int64_t out = 0;      // output channels
  int64_t stride = 1;   // 1 or 2
  int64_t kernel = 3;   // depthwise kernel (3, 5, 7); the Xception branch is always 3
  int64_t mid = 0;      // branch2's middle width; 0: the branch's output width
  bool xception = false;
  bool affine = true;   // batch-norm weight and bias (the SPOS supernet has none)
  ShuffleLayout layout = ShuffleLayout::Torchvision;
  // The projection branch (branch1) at stride 1 too: the first unit of a
  // stage that changes the width but keeps the resolution (SPOS at 32x32).
  bool project = false;
  // Fake quantization (framework/ops/quantize.h), 32 = off: the unit's input
  // (non-negative: it follows a ReLU) as unsigned act_bits, every convolution
  // weight as signed symmetric weight_bits (SPOS's mixed-precision search).
  int weight_bits = 32;
  int act_bits = 32;
};

class ShuffleV2Unit : public Module {
 public:
  explicit ShuffleV2Unit(const ShuffleUnitSpec& spec);
  Tensor forward(const Tensor& x) override;  // (N, in, H, W) -> (N, out, H / stride, W / stride)
  const ShuffleUnitSpec& spec() const { return spec_; }
  // Widths of the two concatenated parts: (passed or branch1, branch2).
  int64_t proj_channels() const { return proj_; }
  int64_t main_channels() const { return spec_.out - proj_; }
  bool projecting() const { return spec_.stride == 2 || spec_.project; }
  int64_t main_in_channels() const { return projecting() ? spec_.in : spec_.in / 2; }

 private:
  ShuffleUnitSpec spec_;
  int64_t proj_;
  std::shared_ptr<Sequential> branch1_, branch2_;
  std::shared_ptr<ChannelShuffle> shuffle_;  // Torchvision layout only
};

// Megvii's split of a stride-1 unit's input: (N, 2k, H, W) -> the even
// channels (passed through) and the odd ones (into branch2), each (N, k, H, W).
std::pair<Tensor, Tensor> shuffle_split_even_odd(const Tensor& x);

// torchvision's shufflenet_v2_x<width>: stage widths {24, s2, s3, s4, conv5},
// 4, 8, 4 units per stage.
ModulePtr build_shufflenet_v2(const ModelOptions& options);

}  // namespace neurn
