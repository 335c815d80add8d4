// THE gradient check of the engine: one table with a row for every
// differentiable op (and the variants that take different code paths:
// broadcasting, batching, axes, reductions). Each row is checked in float64 on
// the CPU against central differences through a random projection of the
// output (tests/gradcheck.h), and for accumulation into existing gradients.
// Inputs stay away from kinks; the subgradients at the kinks are checked
// separately against their documented values.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "framework/ops.h"
#include "framework/ops/conv_transpose.h"
#include "framework/ops/instance_norm.h"
#include "framework/ops/neurn.h"
#include "framework/ops/quantize.h"
#include "gradcheck.h"
#include "skip.h"

using namespace neurn;
using namespace neurn::testing;

namespace {

using Inputs = std::function<std::vector<Tensor>()>;

// Where the constants that rows make for themselves (targets, masks, running
// statistics) live: the CPU, or cuda while the CUDA comparison runs.
Device g_constants_device = Device::cpu();

struct GradCase {
  std::string name;
  OpFn f;
  Inputs inputs;
  double atol = 1e-6;
  double rtol = 1e-4;
  bool cuda_f64 = true;  // the op runs in float64 on CUDA (compared with the CPU there)
};

// A float64 tensor that needs no gradient (targets of where, masks).
Tensor constant(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Generator g(seed);
  return rand(s, {DType::Float64}, &g, lo, hi).to(g_constants_device);
}

Tensor labels(std::vector<int64_t> v) {
  Shape s{static_cast<int64_t>(v.size())};
  return from_vector(v, s).to(g_constants_device);
}

// Distinct values (a shuffled ramp plus noise): no ties for max/maximum.
Tensor distinct_leaf(const Shape& s, uint64_t seed) {
  int64_t n = shape_numel(s);
  Generator g(seed);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<double>((i * 7919) % n) * 0.1 + 0.02 * g.uniform();
  Tensor t = from_vector(v, s);
  t.requires_grad_();
  return t;
}

Inputs one(Shape s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return [=] { return std::vector<Tensor>{leaf(s, seed, lo, hi)}; };
}
Inputs two(Shape a, Shape b, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return [=] { return std::vector<Tensor>{leaf(a, seed, lo, hi), leaf(b, seed + 1, lo, hi)}; };
}
Inputs away(Shape s, uint64_t seed, std::vector<double> kinks) {
  return [=] { return std::vector<Tensor>{leaf_away_from(s, seed, kinks, 0.05)}; };
}

std::vector<GradCase> table() {
  std::vector<GradCase> t;
  auto row = [&](std::string name, OpFn f, Inputs in, double atol = 1e-6, double rtol = 1e-4, bool cuda_f64 = true) {
    t.push_back({std::move(name), std::move(f), std::move(in), atol, rtol, cuda_f64});
  };
  using V = const std::vector<Tensor>&;

  // ---- element-wise, with and without broadcasting ----
  row("add", [](V x) { return add(x[0], x[1]); }, two({2, 3}, {2, 3}, 1));
  row("add broadcast (2,3)+(3)", [](V x) { return add(x[0], x[1]); }, two({2, 3}, {3}, 2));
  row("sub broadcast (2,1,3)-(4,1)", [](V x) { return sub(x[0], x[1]); }, two({2, 1, 3}, {4, 1}, 3));
  row("mul broadcast (3,1)*(1,4)", [](V x) { return mul(x[0], x[1]); }, two({3, 1}, {1, 4}, 4));
  row("div", [](V x) { return div(x[0], x[1]); }, two({2, 3}, {2, 3}, 5, 0.5, 2.0));
  row("div broadcast (2,3)/(3)", [](V x) { return div(x[0], x[1]); }, two({2, 3}, {3}, 6, 0.5, 2.0));
  row("maximum", [](V x) { return maximum(x[0], x[1]); },
      [] { return std::vector<Tensor>{distinct_leaf({2, 3}, 1), leaf({2, 3}, 9, 0.0, 0.6)}; });
  row("minimum broadcast", [](V x) { return minimum(x[0], x[1]); },
      [] { return std::vector<Tensor>{distinct_leaf({2, 3}, 2), leaf({3}, 10, 0.03, 0.58)}; });
  row("pow tensor", [](V x) { return pow(x[0], x[1]); }, two({2, 3}, {2, 3}, 7, 0.5, 2.0));
  row("add scalar", [](V x) { return add(x[0], 1.5); }, one({2, 3}, 11));
  row("sub scalar", [](V x) { return sub(x[0], 0.5); }, one({2, 3}, 12));
  row("mul scalar", [](V x) { return mul(x[0], -2.5); }, one({2, 3}, 13));
  row("div scalar", [](V x) { return div(x[0], 4.0); }, one({2, 3}, 14));
  row("rsub", [](V x) { return rsub(3.0, x[0]); }, one({2, 3}, 15));
  row("rdiv", [](V x) { return rdiv(2.0, x[0]); }, one({2, 3}, 16, 0.5, 2.0));
  row("pow scalar 2.5", [](V x) { return pow(x[0], 2.5); }, one({2, 3}, 17, 0.2, 2.0));
  row("pow scalar -1", [](V x) { return pow(x[0], -1.0); }, one({2, 3}, 18, 0.5, 2.0));
  row("neg", [](V x) { return neg(x[0]); }, one({2, 3}, 19));
  row("exp", [](V x) { return exp(x[0]); }, one({2, 3}, 20));
  row("log", [](V x) { return log(x[0]); }, one({2, 3}, 21, 0.2, 3.0));
  row("sqrt", [](V x) { return sqrt(x[0]); }, one({2, 3}, 22, 0.2, 3.0));
  row("abs", [](V x) { return abs(x[0]); }, away({2, 3}, 23, {0.0}));
  row("square", [](V x) { return square(x[0]); }, one({2, 3}, 24));
  row("clamp both", [](V x) { return clamp(x[0], -1.0, 1.5); }, away({3, 4}, 25, {-1.0, 1.5}));
  row("clamp lower only", [](V x) { return clamp(x[0], 0.5, std::nullopt); }, away({3, 4}, 26, {0.5}));
  // fake quantization's straight-through gradient (quantize.h): on a 1e-12 grid the forward is
  // clamp(x, -0.8, 0.8) to 1e-12, so central differences check the STE's pass/block mask.
  row("fake_quantize (STE)", [](V x) { return fake_quantize(x[0], 1e-12, -800'000'000'000, 800'000'000'000); },
      away({3, 4}, 27, {-0.8, 0.8}));
  row("where broadcast", [](V x) { return where(gt(constant({2, 3}, 3), constant({2, 3}, 4)), x[0], x[1]); },
      two({2, 3}, {3}, 27));

  // ---- activations (away from their kinks) ----
  row("relu", [](V x) { return relu(x[0]); }, away({3, 4}, 30, {0.0}));
  row("relu6", [](V x) { return relu6(x[0]); },
      [] { return std::vector<Tensor>{mul(leaf_away_from({3, 4}, 31, {0.0, 2.4}), 2.5).detach().requires_grad_()}; });
  row("leaky_relu", [](V x) { return leaky_relu(x[0], 0.1); }, away({3, 4}, 32, {0.0}));
  row("sigmoid", [](V x) { return sigmoid(x[0]); }, one({3, 4}, 33, -4.0, 4.0));
  row("tanh", [](V x) { return tanh(x[0]); }, one({3, 4}, 34, -3.0, 3.0));
  row("silu", [](V x) { return silu(x[0]); }, one({3, 4}, 35, -4.0, 4.0));
  row("gelu erf", [](V x) { return gelu(x[0]); }, one({3, 4}, 36, -3.0, 3.0));
  row("gelu tanh", [](V x) { return gelu(x[0], GeluApprox::Tanh); }, one({3, 4}, 37, -3.0, 3.0));
  row("hardswish", [](V x) { return hardswish(x[0]); },
      [] { return std::vector<Tensor>{mul(leaf_away_from({3, 4}, 38, {-2.0, 2.0}), 1.5).detach().requires_grad_()}; });
  row("hardsigmoid", [](V x) { return hardsigmoid(x[0]); },
      [] { return std::vector<Tensor>{mul(leaf_away_from({3, 4}, 39, {-2.0, 2.0}), 1.5).detach().requires_grad_()}; });

  // ---- reductions ----
  row("sum all", [](V x) { return sum(x[0]); }, one({2, 3, 4}, 40));
  row("sum axes {0,2}", [](V x) { return sum(x[0], {0, 2}); }, one({2, 3, 4}, 41));
  row("sum axis -1 keepdim", [](V x) { return sum(x[0], {-1}, true); }, one({2, 3, 4}, 42));
  row("mean all", [](V x) { return mean(x[0]); }, one({2, 3, 4}, 43));
  row("mean axis 1 keepdim", [](V x) { return mean(x[0], {1}, true); }, one({2, 3, 4}, 44));
  row("max all (distinct)", [](V x) { return max(x[0]); }, [] { return std::vector<Tensor>{distinct_leaf({3, 4}, 3)}; });
  row("max axis 0 (distinct)", [](V x) { return max(x[0], {0}); },
      [] { return std::vector<Tensor>{distinct_leaf({3, 4}, 4)}; });
  row("max axes {1,2} keepdim", [](V x) { return max(x[0], {1, 2}, true); },
      [] { return std::vector<Tensor>{distinct_leaf({2, 3, 2}, 5)}; });

  // ---- shape ops ----
  row("reshape", [](V x) { return reshape(x[0], {3, -1}); }, one({2, 3, 2}, 50));
  row("flatten", [](V x) { return flatten(x[0]); }, one({2, 3, 2}, 51));
  row("squeeze", [](V x) { return squeeze(x[0], 1); }, one({3, 1, 2}, 52));
  row("unsqueeze", [](V x) { return unsqueeze(x[0], -1); }, one({3, 2}, 53));
  row("expand", [](V x) { return expand(x[0], {2, 3, 4}); }, one({3, 1}, 54));
  row("permute", [](V x) { return permute(x[0], {2, 0, 1}); }, one({2, 3, 4}, 55));
  row("transpose", [](V x) { return transpose(x[0], 0, 2); }, one({2, 3, 4}, 56));
  row("slice step 2", [](V x) { return slice(x[0], 1, 1, 5, 2); }, one({2, 5, 2}, 57));
  row("slice negative", [](V x) { return slice(x[0], -1, -3, -1); }, one({3, 4}, 58));
  row("concat axis 1", [](V x) { return concat({x[0], x[1], x[2]}, 1); },
      [] { return std::vector<Tensor>{leaf({2, 1, 3}, 60), leaf({2, 2, 3}, 61), leaf({2, 3, 3}, 62)}; });
  row("concat axis 0", [](V x) { return concat({x[0], x[1]}, 0); }, two({1, 4}, {2, 4}, 63));
  row("split", [](V x) {
        auto p = split(x[0], {1, 3}, 1);
        return concat({mul(p[1], 2.0), p[0]}, 1);
      },
      one({2, 4}, 64));
  row("chunk", [](V x) {
        auto p = chunk(x[0], 3, 0);
        return add(mul(p[0], p[1]), p[2]);
      },
      one({6, 2}, 65));
  row("pad zero 1-D", [](V x) { return pad(x[0], {2, 1}); }, one({2, 3}, 66));
  row("pad constant 2-D", [](V x) { return pad(x[0], {1, 0, 2, 1}, PadMode::Zero, 0.5); }, one({1, 2, 3, 3}, 67));
  row("pad reflect 1-D", [](V x) { return pad(x[0], {2, 1}, PadMode::Reflect); }, one({2, 4}, 68));
  row("pad reflect 2-D", [](V x) { return pad(x[0], {2, 1, 1, 2}, PadMode::Reflect); }, one({2, 1, 3, 4}, 69));

  // ---- matrix products ----
  row("matmul 2-D", [](V x) { return matmul(x[0], x[1]); }, two({3, 4}, {4, 2}, 70));
  row("matmul batched", [](V x) { return matmul(x[0], x[1]); }, two({2, 3, 4}, {2, 4, 2}, 71));
  row("matmul batch broadcast", [](V x) { return matmul(x[0], x[1]); }, two({2, 1, 3, 4}, {3, 4, 2}, 72));
  row("matmul batched @ 2-D", [](V x) { return matmul(x[0], x[1]); }, two({2, 3, 4}, {4, 5}, 73));
  row("matmul 2-D @ batched", [](V x) { return matmul(x[0], x[1]); }, two({3, 4}, {2, 4, 2}, 74));
  row("matmul vector @ matrix", [](V x) { return matmul(x[0], x[1]); }, two({4}, {2, 4, 3}, 75));
  row("matmul matrix @ vector", [](V x) { return matmul(x[0], x[1]); }, two({3, 4}, {4}, 76));
  row("matmul vector @ vector", [](V x) { return matmul(x[0], x[1]); }, two({4}, {4}, 77));
  row("linear with bias", [](V x) { return linear(x[0], x[1], x[2]); },
      [] { return std::vector<Tensor>{leaf({3, 4}, 78), leaf({5, 4}, 79), leaf({5}, 80)}; });
  row("linear no bias, 3-D input", [](V x) { return linear(x[0], x[1]); }, two({2, 3, 4}, {2, 4}, 81));
  row("linear 1-D input", [](V x) { return linear(x[0], x[1], x[2]); },
      [] { return std::vector<Tensor>{leaf({4}, 82), leaf({3, 4}, 83), leaf({3}, 84)}; });

  // ---- softmax and losses ----
  row("softmax last axis", [](V x) { return softmax(x[0]); }, one({3, 5}, 90, -3.0, 3.0));
  row("softmax middle axis", [](V x) { return softmax(x[0], 1); }, one({2, 3, 4}, 91, -3.0, 3.0));
  row("log_softmax last axis", [](V x) { return log_softmax(x[0], -1); }, one({3, 5}, 92, -3.0, 3.0));
  row("log_softmax axis 0", [](V x) { return log_softmax(x[0], 0); }, one({4, 3}, 93, -3.0, 3.0));
  row("nll_loss mean", [](V x) { return nll_loss(x[0], labels({1, 0, 3})); }, one({3, 4}, 94));
  row("nll_loss sum", [](V x) { return nll_loss(x[0], labels({2, 2, 0}), Reduction::Sum); }, one({3, 4}, 95));
  row("nll_loss none", [](V x) { return nll_loss(x[0], labels({3, 1, 0}), Reduction::None); }, one({3, 4}, 96));
  row("nll_loss of log_softmax", [](V x) { return nll_loss(log_softmax(x[0]), labels({0, 2, 1})); },
      one({3, 4}, 97, -2.0, 2.0));
  row("cross_entropy mean", [](V x) { return cross_entropy(x[0], labels({1, 0, 3, 2})); }, one({4, 5}, 98, -3.0, 3.0));
  row("cross_entropy sum, smoothing 0.1",
      [](V x) { return cross_entropy(x[0], labels({4, 0, 3, 2}), 0.1, Reduction::Sum); }, one({4, 5}, 99, -3.0, 3.0));
  row("cross_entropy none, smoothing 0.2",
      [](V x) { return cross_entropy(x[0], labels({1, 1, 3, 0}), 0.2, Reduction::None); }, one({4, 5}, 100, -3.0, 3.0));
  row("cross_entropy mean, smoothing 0.1",
      [](V x) { return cross_entropy(x[0], labels({2, 4, 0, 1}), 0.1); }, one({4, 5}, 101, -3.0, 3.0));
  // Rows longer than softmax_math.h's 8 lanes, so the lane loops and their tails run.
  row("softmax last axis, 19 wide (lanes and tail)", [](V x) { return softmax(x[0]); },
      one({3, 19}, 1040, -3.0, 3.0));
  row("log_softmax middle axis, 11 wide (strided lanes)", [](V x) { return log_softmax(x[0], 1); },
      one({2, 11, 3}, 1041, -3.0, 3.0));
  row("cross_entropy 13 classes, smoothing 0.1",
      [](V x) { return cross_entropy(x[0], labels({12, 0, 5}), 0.1); }, one({3, 13}, 1042, -3.0, 3.0));
  // The same generator state on every call, so each evaluation draws the same mask.
  row("dropout p=0.3 (fixed generator)", [](V x) {
        Generator g(2024);
        return dropout(x[0], 0.3, true, &g);
      },
      one({4, 5}, 102));
  row("dropout eval is identity", [](V x) { return mul(dropout(x[0], 0.5, false), 1.0); }, one({2, 3}, 103));

  row("conv2d plain", [](V x) { return conv2d(x[0], x[1], x[2]); },
      [] { return std::vector<Tensor>{leaf({2, 2, 5, 5}, 110), leaf({3, 2, 3, 3}, 111), leaf({3}, 112)}; });
  row("conv2d stride 2, padding 1, no bias",
      [](V x) { return conv2d(x[0], x[1], {}, Conv2dOptions{{2, 2}, {1, 1}, {1, 1}, 1}); },
      two({1, 2, 5, 4}, {2, 2, 3, 3}, 113));
  row("conv2d dilation 2, padding (2,1)",
      [](V x) { return conv2d(x[0], x[1], x[2], Conv2dOptions{{1, 1}, {2, 1}, {2, 2}, 1}); },
      [] { return std::vector<Tensor>{leaf({1, 2, 5, 5}, 114), leaf({2, 2, 3, 2}, 115), leaf({2}, 116)}; });
  row("conv2d groups 2", [](V x) { return conv2d(x[0], x[1], x[2], Conv2dOptions{{1, 1}, {1, 1}, {1, 1}, 2}); },
      [] { return std::vector<Tensor>{leaf({1, 4, 4, 4}, 117), leaf({6, 2, 3, 3}, 118), leaf({6}, 119)}; });
  row("conv2d depthwise", [](V x) { return conv2d(x[0], x[1], {}, Conv2dOptions{{1, 1}, {1, 1}, {1, 1}, 3}); },
      two({2, 3, 4, 4}, {3, 1, 3, 3}, 120));
  // Transposed convolution: its forward, input and weight gradients run on conv2d's kernels with the
  // roles swapped (the depthwise path where each group has one output channel).
  row("conv_transpose2d plain", [](V x) { return conv_transpose2d(x[0], x[1], x[2]); },
      [] { return std::vector<Tensor>{leaf({2, 3, 3, 4}, 170), leaf({3, 2, 3, 3}, 171), leaf({2}, 172)}; });
  row("conv_transpose2d stride 2, padding 1, output_padding 1, no bias",
      [](V x) { return conv_transpose2d(x[0], x[1], {}, ConvTranspose2dOptions{{2, 2}, {1, 1}, {1, 1}, {1, 1}, 1}); },
      two({1, 2, 3, 3}, {2, 3, 3, 3}, 173));
  row("conv_transpose2d 2x2 stride 2 (U-Net up-convolution)",
      [](V x) { return conv_transpose2d(x[0], x[1], x[2], ConvTranspose2dOptions{{2, 2}}); },
      [] { return std::vector<Tensor>{leaf({2, 4, 3, 3}, 174), leaf({4, 2, 2, 2}, 175), leaf({2}, 176)}; });
  row("conv_transpose2d groups 2, dilation 2, stride (2,1), padding (1,0)",
      [](V x) {
        return conv_transpose2d(x[0], x[1], x[2], ConvTranspose2dOptions{{2, 1}, {1, 0}, {1, 0}, {2, 2}, 2});
      },
      [] { return std::vector<Tensor>{leaf({1, 4, 3, 3}, 177), leaf({4, 3, 2, 3}, 178), leaf({6}, 179)}; });
  row("conv_transpose2d depthwise stride 2",
      [](V x) { return conv_transpose2d(x[0], x[1], {}, ConvTranspose2dOptions{{2, 2}, {1, 1}, {0, 0}, {1, 1}, 3}); },
      two({2, 3, 3, 2}, {3, 1, 3, 3}, 180));
  // Instance norm (composed of layer_norm, broadcast affine and eval batch_norm).
  row("instance_norm affine", [](V x) { return instance_norm(x[0], x[1], x[2], {}, {}); },
      [] { return std::vector<Tensor>{leaf({2, 3, 3, 4}, 181), leaf({3}, 182, 0.5, 1.5), leaf({3}, 183)}; }, 1e-5,
      1e-4);
  row("instance_norm (N, C, L), no affine, updating running statistics", [](V x) {
        Tensor rm = zeros({3}, {DType::Float64}).to(g_constants_device);
        Tensor rv = full({3}, 1.0, {DType::Float64}).to(g_constants_device);
        return instance_norm(x[0], {}, {}, rm, rv, true, 0.1);
      },
      one({2, 3, 5}, 184), 1e-5, 1e-4);
  row("instance_norm eval with running statistics", [](V x) {
        Tensor rm = from_vector(std::vector<double>{0.1, -0.2, 0.3}, {3}).to(g_constants_device);
        Tensor rv = from_vector(std::vector<double>{0.5, 1.5, 2.0}, {3}).to(g_constants_device);
        return instance_norm(x[0], x[1], x[2], rm, rv, false);
      },
      [] { return std::vector<Tensor>{leaf({2, 3, 2, 2}, 185), leaf({3}, 186), leaf({3}, 187)}; });
  row("max_pool2d 2x2 (distinct)", [](V x) { return max_pool2d(x[0], Pool2dOptions{}); },
      [] { return std::vector<Tensor>{distinct_leaf({1, 2, 4, 4}, 6)}; });
  row("max_pool2d 3x3 stride 2 pad 1 ceil",
      [](V x) { return max_pool2d(x[0], Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true, true}); },
      [] { return std::vector<Tensor>{distinct_leaf({1, 2, 6, 5}, 7)}; });
  row("avg_pool2d 2x2", [](V x) { return avg_pool2d(x[0], Pool2dOptions{}); }, one({2, 2, 4, 4}, 130));
  row("avg_pool2d pad 1 count_include_pad",
      [](V x) { return avg_pool2d(x[0], Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, false, true}); },
      one({1, 2, 5, 5}, 131));
  row("avg_pool2d pad 1 exclude pad, ceil",
      [](V x) { return avg_pool2d(x[0], Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true, false}); },
      one({1, 2, 6, 5}, 132));
  row("adaptive_avg_pool2d 5x7 -> 3x2", [](V x) { return adaptive_avg_pool2d(x[0], 3, 2); }, one({1, 2, 5, 7}, 133));
  row("global_avg_pool2d", [](V x) { return global_avg_pool2d(x[0]); }, one({2, 3, 3, 4}, 134));
  row("upsample nearest x2", [](V x) { return upsample(x[0], 6, 4, UpsampleMode::Nearest); }, one({1, 2, 3, 2}, 135));
  row("upsample nearest 3x3 -> 5x4", [](V x) { return upsample(x[0], 5, 4, UpsampleMode::Nearest); },
      one({1, 1, 3, 3}, 136));
  row("upsample bilinear 3x4 -> 5x7", [](V x) { return upsample(x[0], 5, 7, UpsampleMode::Bilinear); },
      one({2, 1, 3, 4}, 137));
  row("upsample bilinear align_corners 3x4 -> 5x7",
      [](V x) { return upsample(x[0], 5, 7, UpsampleMode::Bilinear, true); }, one({2, 1, 3, 4}, 138));
  row("upsample bilinear align_corners down 6x5 -> 4x1",
      [](V x) { return upsample(x[0], 4, 1, UpsampleMode::Bilinear, true); }, one({1, 2, 6, 5}, 139));
  row("batch_norm training", [](V x) { return batch_norm(x[0], x[1], x[2], {}, {}, true); },
      [] { return std::vector<Tensor>{leaf({4, 3, 2, 2}, 140), leaf({3}, 141, 0.5, 1.5), leaf({3}, 142)}; }, 1e-5,
      1e-4);
  row("batch_norm training, no affine, (N, C)", [](V x) { return batch_norm(x[0], {}, {}, {}, {}, true); },
      one({5, 3}, 143), 1e-5, 1e-4);
  row("batch_norm eval", [](V x) {
        Tensor rm = from_vector(std::vector<double>{0.1, -0.2, 0.3}, {3}).to(g_constants_device);
        Tensor rv = from_vector(std::vector<double>{0.5, 1.5, 2.0}, {3}).to(g_constants_device);
        return batch_norm(x[0], x[1], x[2], rm, rv, false);
      },
      [] { return std::vector<Tensor>{leaf({2, 3, 2, 2}, 144), leaf({3}, 145), leaf({3}, 146)}; });
  row("layer_norm last axis", [](V x) { return layer_norm(x[0], 1, x[1], x[2]); },
      [] { return std::vector<Tensor>{leaf({3, 5}, 147), leaf({5}, 148, 0.5, 1.5), leaf({5}, 149)}; }, 1e-5, 1e-4);
  row("layer_norm last two axes, no affine", [](V x) { return layer_norm(x[0], 2, {}, {}); }, one({2, 3, 4}, 150),
      1e-5, 1e-4);
  // NeuRN on random images: every patch has a spread and the maximum is unique.
  // Its CUDA path is float32 only (tests/framework/test_neurn.cpp compares it).
  row("neurn k=3 valid, image scope", [](V x) { return neurn_norm(x[0]); }, one({2, 2, 5, 4}, 160), 1e-6, 1e-4, false);
  row("neurn k=3 reflect, channel scope",
      [](V x) { return neurn_norm(x[0], NeuRNOptions{3, NeuRNPadding::Reflect, NeuRNScope::Channel, 1e-6}); },
      one({1, 3, 4, 5}, 161), 1e-6, 1e-4, false);
  row("neurn k=5 zero, batch scope",
      [](V x) { return neurn_norm(x[0], NeuRNOptions{5, NeuRNPadding::Zero, NeuRNScope::Batch, 1e-6}); },
      one({2, 1, 5, 5}, 162), 1e-6, 1e-4, false);
  return t;
}

}  // namespace

TEST_CASE("gradcheck table: every differentiable op, float64, central differences") {
  auto cases = table();
  CHECK(cases.size() >= 100);
  for (auto& c : cases) {
    INFO("op: " << c.name);
    CHECK_GRADCHECK(gradcheck(c.f, c.inputs(), 1e-6, c.atol, c.rtol));
  }
}

TEST_CASE("gradcheck table: backward accumulates into existing gradients") {
  for (auto& c : table()) {
    INFO("op: " << c.name);
    CHECK(accumulates(c.f, c.inputs()));
  }
}

TEST_CASE("gradcheck table on CUDA: forward and backward match the CPU (float64)" *
          skip_unless(have_cuda(), no_cuda_reason())) {
  struct Restore {
    ~Restore() { g_constants_device = Device::cpu(); }
  } restore;
  for (auto& c : table()) {
    if (!c.cuda_f64) continue;
    INFO("op: " << c.name);
    // CPU reference: output and gradients of L = sum(f(x) * R).
    g_constants_device = Device::cpu();
    std::vector<Tensor> xs = c.inputs();
    Tensor out = c.f(xs);
    Generator gen(99);
    Tensor R = randn(out.shape(), {DType::Float64}, &gen);
    sum(mul(out, R)).backward();
    // The same on the device, from copies of the same values.
    g_constants_device = Device::cuda();
    std::vector<Tensor> ds;
    for (const Tensor& x : xs) {
      Tensor d = x.detach().to(Device::cuda());
      if (x.requires_grad()) d.requires_grad_();
      ds.push_back(d);
    }
    Tensor dout = c.f(ds);
    REQUIRE(dout.device().is_cuda());
    sum(mul(dout, R.to(Device::cuda()))).backward();
    auto close = [](const std::vector<double>& a, const std::vector<double>& b) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (!(std::abs(a[i] - b[i]) <= 1e-9 + 1e-7 * std::abs(a[i]))) return false;
      return true;
    };
    CHECK_MESSAGE(close(out.to_vector<double>(), dout.cpu().to_vector<double>()), "forward differs");
    for (size_t k = 0; k < xs.size(); ++k) {
      if (!xs[k].requires_grad()) continue;
      REQUIRE(ds[k].grad().defined());
      CHECK_MESSAGE(close(xs[k].grad().to_vector<double>(), ds[k].grad().cpu().to_vector<double>()),
                    "gradient of input " << k << " differs");
    }
  }
}

namespace {

// dL/dx of sum(f(x)) at the given values.
std::vector<double> grad_at(const std::function<Tensor(const Tensor&)>& f, std::vector<double> values) {
  Tensor x = from_vector(values, {static_cast<int64_t>(values.size())});
  x.requires_grad_();
  sum(f(x)).backward();
  return x.grad().to_vector<double>();
}

}  // namespace

TEST_CASE("subgradients at kinks and ties are the documented ones") {
  // activation.h: the gradient of the left side at relu's kink, and 0 at both
  // ends of relu6 (as PyTorch's hardtanh does).
  CHECK(grad_at([](const Tensor& x) { return relu(x); }, {0.0, 1.0, -1.0}) == std::vector<double>{0, 1, 0});
  CHECK(grad_at([](const Tensor& x) { return relu6(x); }, {0.0, 6.0, 3.0}) == std::vector<double>{0, 0, 1});
  CHECK(grad_at([](const Tensor& x) { return leaky_relu(x, 0.1); }, {0.0})[0] == doctest::Approx(0.1));
  // elementwise.h: abs has gradient 0 at 0; clamp passes the gradient at its bounds.
  CHECK(grad_at([](const Tensor& x) { return abs(x); }, {0.0, 2.0, -2.0}) == std::vector<double>{0, 1, -1});
  CHECK(grad_at([](const Tensor& x) { return clamp(x, -1.0, 1.0); }, {-1.0, 1.0, 2.0}) == std::vector<double>{1, 1, 0});
  CHECK(grad_at([](const Tensor& x) { return sqrt(x); }, {0.0, 4.0}) == std::vector<double>{0, 0.25});
  // hardswish and hardsigmoid at +-3, PyTorch's values: hardswish' = x / 3 + 0.5 on [-3, 3].
  auto hs = grad_at([](const Tensor& x) { return hardswish(x); }, {-3.0, 3.0});
  CHECK(hs[0] == doctest::Approx(-0.5));
  CHECK(hs[1] == doctest::Approx(1.5));
  CHECK(grad_at([](const Tensor& x) { return hardsigmoid(x); }, {-3.0, 3.0}) == std::vector<double>{0, 0});
  // maximum/minimum split the gradient evenly on ties.
  Tensor a = from_vector(std::vector<double>{1.0, 2.0}, {2}), b = from_vector(std::vector<double>{1.0, 3.0}, {2});
  a.requires_grad_();
  b.requires_grad_();
  sum(maximum(a, b)).backward();
  CHECK(a.grad().to_vector<double>() == std::vector<double>{0.5, 0});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{0.5, 1});
  // max sends the gradient to the first maximal element of each slice.
  CHECK(grad_at([](const Tensor& x) { return max(x); }, {1.0, 3.0, 3.0, 2.0}) == std::vector<double>{0, 1, 0, 0});
  CHECK(grad_at([](const Tensor& x) { return max(reshape(x, {2, 3}), {1}); }, {5, 5, 5, 1, 2, 2}) ==
        std::vector<double>{1, 0, 0, 0, 1, 0});
  // max_pool2d: ties go to the first element of the window in row-major order.
  auto mp = grad_at([](const Tensor& x) { return max_pool2d(reshape(x, {1, 1, 2, 4}), Pool2dOptions{}); },
                    {1, 1, 0, 2, 1, 1, 2, 2});
  CHECK(mp == std::vector<double>{1, 0, 0, 1, 0, 0, 0, 0});
}

TEST_CASE("dropout: the mask is that of the generator, and the gradient uses the same mask") {
  Generator g(77);
  Tensor x = leaf({1000}, 5, 1.0, 2.0);
  Tensor y = dropout(x, 0.25, true, &g);
  CHECK(g.offset() == 1000);  // one counter per element
  auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  sum(y).backward();
  auto gv = x.grad().to_vector<double>();
  int64_t dropped = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    bool keep = counter_uniform(77, i) >= 0.25;
    CHECK(yv[i] == doctest::Approx(keep ? xv[i] / 0.75 : 0.0));
    CHECK(gv[i] == doctest::Approx(keep ? 1.0 / 0.75 : 0.0));
    dropped += keep ? 0 : 1;
  }
  CHECK(dropped > 200);
  CHECK(dropped < 300);
  // p = 1 drops everything, with a zero (not NaN) gradient.
  Tensor z = leaf({4}, 6);
  Tensor yz = dropout(z, 1.0, true, &g);
  sum(yz).backward();
  CHECK(yz.to_vector<double>() == std::vector<double>(4, 0.0));
  CHECK(z.grad().to_vector<double>() == std::vector<double>(4, 0.0));
  CHECK_THROWS_CONTAINING(dropout(z, 1.5, true), "dropout: probability 1.5 is outside [0, 1]");
}
