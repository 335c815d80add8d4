// The CUDA backend. Two kinds of test:
// - on every machine: the parts of the backend that are plain C++ (the
//   caching allocator's policy, driven by a fake backend; the index arithmetic
//   the kernels use, checked against the CPU loops; device errors);
// - with a CUDA device: one table of op cases, each run on the CPU and on the
//   GPU from the same float32 values, comparing forward outputs and the
//   gradients of L = sum(f(x) * R) at float32 tolerances, plus the
//   allocator, copies, optimizers and bf16 autocast on the device.
// Without a device the device cases are skipped (doctest counts them as
// skipped) and a test lists each of them with the reason, visibly.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "framework/cuda/caching_allocator.h"
#include "framework/cuda/conv_algo.h"
#include "framework/cuda/cuda_autocast.h"
#include "framework/cuda/index_math.h"
#include "framework/cuda/memory_log.h"
#include "framework/ops.h"
#include "framework/ops/conv_transpose.h"
#include "framework/ops/instance_norm.h"
#include "framework/ops/elementwise_cpu.h"
#include "framework/ops/neurn.h"
#include "framework/ops/quantize.h"
#include "framework/optim/optim.h"
#include "gradcheck.h"
#include "skip.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_backend.h"
#include "framework/cuda/cuda_device.h"
#endif

using namespace neurn;
using namespace neurn::testing;

namespace {

using V = std::vector<Tensor>;

bool no_cuda() { return !cuda_available(); }

// ---- the op table ----------------------------------------------------------------------

struct CudaCase {
  std::string name;
  // Builds the op on inputs that live on `dev`; constants it makes (labels,
  // running statistics) go to `dev` too.
  std::function<Tensor(const V&, Device)> f;
  std::function<V()> inputs;  // float32 CPU tensors; those requiring grad get gradients compared
  double atol = 1e-5;
  double rtol = 1e-4;
};

Tensor f32(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0, bool grad = true) {
  Generator g(seed);
  Tensor t = rand(s, {}, &g, lo, hi);
  if (grad) t.requires_grad_();
  return t;
}

// Values away from the kinks of piecewise functions (|x - k| >= 0.05).
Tensor f32_away(const Shape& s, uint64_t seed, std::vector<double> kinks) {
  Tensor t = leaf_away_from(s, seed, kinks, 0.05).detach().to(DType::Float32);
  t.requires_grad_();
  return t;
}

// Distinct values: no ties for max, maximum, max pooling.
Tensor f32_distinct(const Shape& s, uint64_t seed) {
  int64_t n = shape_numel(s);
  Generator g(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[i] = static_cast<float>((i * 7919) % n) / static_cast<float>(n) + 0.1f * static_cast<float>(g.uniform()) / n;
  Tensor t = from_vector(v, s);
  t.requires_grad_();
  return t;
}

// Values in {0, 1, 2}: many ties, where argmax takes the first maximum.
Tensor f32_ties(const Shape& s, uint64_t seed) {
  Generator g(seed);
  std::vector<float> v(static_cast<size_t>(shape_numel(s)));
  for (auto& e : v) e = static_cast<float>(g.below(3));
  return from_vector(v, s);
}

std::function<V()> one(Shape s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return [=] { return V{f32(s, seed, lo, hi)}; };
}
std::function<V()> two(Shape a, Shape b, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  return [=] { return V{f32(a, seed, lo, hi), f32(b, seed + 1, lo, hi)}; };
}

Tensor labels(std::vector<int64_t> v, Device d) {
  Shape s{static_cast<int64_t>(v.size())};
  return from_vector(v, s).to(d);
}

std::vector<int64_t> cyclic_labels(int64_t n, int64_t classes) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = (i * 7 + 3) % classes;
  return v;
}

std::vector<CudaCase> op_table() {
  std::vector<CudaCase> t;
  auto row = [&](std::string name, std::function<Tensor(const V&, Device)> f, std::function<V()> in,
                 double atol = 1e-5, double rtol = 1e-4) { t.push_back({std::move(name), f, in, atol, rtol}); };
  const Shape ew{37, 129};  // not a multiple of the block size

  // Element-wise unary (the shared functors).
  row("relu", [](const V& x, Device) { return relu(x[0]); }, [=] { return V{f32_away(ew, 1, {0})}; });
  row("relu6", [](const V& x, Device) { return relu6(x[0]); }, [=] { return V{f32_away(ew, 2, {0, 6})}; });
  row("leaky_relu", [](const V& x, Device) { return leaky_relu(x[0], 0.1); }, [=] { return V{f32_away(ew, 3, {0})}; });
  row("sigmoid", [](const V& x, Device) { return sigmoid(x[0]); }, one(ew, 4, -4, 4));
  row("tanh", [](const V& x, Device) { return tanh(x[0]); }, one(ew, 5, -3, 3));
  row("silu", [](const V& x, Device) { return silu(x[0]); }, one(ew, 6, -4, 4));
  row("gelu (erf)", [](const V& x, Device) { return gelu(x[0]); }, one(ew, 7, -3, 3));
  row("gelu (tanh)", [](const V& x, Device) { return gelu(x[0], GeluApprox::Tanh); }, one(ew, 8, -3, 3));
  row("hardswish", [](const V& x, Device) { return hardswish(x[0]); }, [=] { return V{f32_away(ew, 9, {-3, 3})}; });
  row("hardsigmoid", [](const V& x, Device) { return hardsigmoid(x[0]); },
      [=] { return V{f32_away(ew, 10, {-3, 3})}; });
  row("exp", [](const V& x, Device) { return exp(x[0]); }, one(ew, 11, -2, 2));
  row("log", [](const V& x, Device) { return log(x[0]); }, one(ew, 12, 0.2, 3));
  row("sqrt", [](const V& x, Device) { return sqrt(x[0]); }, one(ew, 13, 0.2, 3));
  row("abs", [](const V& x, Device) { return abs(x[0]); }, [=] { return V{f32_away(ew, 14, {0})}; });
  row("square, neg", [](const V& x, Device) { return neg(square(x[0])); }, one(ew, 15));
  row("clamp", [](const V& x, Device) { return clamp(x[0], -0.5, 0.5); },
      [=] { return V{f32_away(ew, 16, {-0.5, 0.5})}; });
  row("pow scalar", [](const V& x, Device) { return pow(x[0], 1.7); }, one(ew, 17, 0.2, 2));
  row("scalar add, mul, rsub, rdiv", [](const V& x, Device) { return rdiv(2.0, rsub(3.0, mul(add(x[0], 0.5), 0.7))); },
      one(ew, 18));
  // Element-wise binary: each operand layout of the kernels.
  row("add, same shapes", [](const V& x, Device) { return add(x[0], x[1]); }, two({1000}, {1000}, 20));
  row("sub, broadcast (64,1,7) - (5,7)", [](const V& x, Device) { return sub(x[0], x[1]); },
      two({64, 1, 7}, {5, 7}, 22));
  row("mul by a 0-d tensor", [](const V& x, Device) { return mul(x[0], x[1]); }, two({33, 65}, {}, 24));
  row("div of a 0-d tensor", [](const V& x, Device) { return div(x[1], x[0]); },
      [] { return V{f32({20, 30}, 26, 0.5, 2.0), f32({}, 27)}; });
  row("maximum, minimum (broadcast rows)", [](const V& x, Device) { return add(maximum(x[0], x[1]), minimum(x[0], x[1])); },
      [] { return V{f32_distinct({40, 30}, 28), f32({30}, 29, 2.0, 3.0)}; });
  row("pow tensor", [](const V& x, Device) { return pow(x[0], x[1]); },
      [] { return V{f32({50, 20}, 30, 0.5, 2.0), f32({20}, 31, -1.5, 1.5)}; });
  row("where", [](const V& x, Device d) {
        Generator g(33);
        Tensor cond = gt(rand({17, 19}, {}, &g), scalar_tensor(0.5)).to(d);
        return where(cond, x[0], x[1]);
      },
      two({17, 19}, {19}, 34));
  row("comparisons (no gradient)", [](const V& x, Device) {
        return add(add(gt(x[0], x[1]), lt(x[0], x[1])), add(eq(x[0], x[0]), ge(x[1], x[0])));
      },
      [] { return V{f32({300}, 35, -1, 1, false), f32({300}, 36, -1, 1, false)}; });
  // Reductions: the warp path, the split path, strided and multi-axis reductions.
  row("sum all (300x300: split across blocks)", [](const V& x, Device) { return sum(x[0]); }, one({300, 300}, 40),
      1e-3, 1e-4);
  row("sum axis 0 of (4096, 3) (warp per output, strided)", [](const V& x, Device) { return sum(x[0], {0}); },
      one({4096, 3}, 41), 1e-4, 1e-4);
  row("sum axis 0 of (20000, 3) (split, strided)", [](const V& x, Device) { return sum(x[0], {0}); },
      one({20000, 3}, 42), 1e-3, 1e-4);
  row("sum axes {0,2,3} of (8,16,32,32) (bias-gradient shape)",
      [](const V& x, Device) { return sum(x[0], {0, 2, 3}, true); }, one({8, 16, 32, 32}, 43), 1e-3, 1e-4);
  row("mean last axis", [](const V& x, Device) { return mean(x[0], {-1}); }, one({70, 333}, 44));
  row("max all (split)", [](const V& x, Device) { return max(x[0]); },
      [] { return V{f32_distinct({200, 100}, 45)}; });
  row("max last axis (warp)", [](const V& x, Device) { return max(x[0], {-1}, true); },
      [] { return V{f32_distinct({64, 50}, 46)}; });
  row("max axes {0,2}", [](const V& x, Device) { return max(x[0], {0, 2}); },
      [] { return V{f32_distinct({6, 5, 7}, 47)}; });
  // argmax: the device kernel (framework/cuda/reduce.cu), its indices compared
  // as floats (exact below 2^24).
  row("argmax (no gradient)", [](const V& x, Device) { return argmax(x[0], 1).to(DType::Float32); },
      [] { return V{f32_distinct({30, 11}, 48).detach()}; });
  row("argmax axis 0, keepdim (strided)", [](const V& x, Device) { return argmax(x[0], 0, true).to(DType::Float32); },
      [] { return V{f32_distinct({40, 3, 5}, 49).detach()}; });
  row("argmax with ties: the first maximum", [](const V& x, Device) { return argmax(x[0], -1).to(DType::Float32); },
      [] { return V{f32_ties({64, 37}, 52)}; });
  row("argmax over 20000 (split across blocks), ties", [](const V& x, Device) {
        return argmax(x[0], 1).to(DType::Float32);
      },
      [] { return V{f32_ties({2, 20000}, 53)}; });
  // Shape ops.
  row("permute", [](const V& x, Device) { return permute(x[0], {2, 0, 3, 1}); }, one({3, 4, 5, 6}, 50));
  row("transpose, slice with step", [](const V& x, Device) { return slice(transpose(x[0], 0, 1), 1, 1, 9, 3); },
      one({10, 7}, 51));
  row("concat, split", [](const V& x, Device) {
        Tensor c = concat({x[0], x[1]}, 1);
        auto parts = split(c, {2, 5}, 1);
        return mul(parts[0], sum(parts[1], {1}, true));
      },
      two({4, 3, 5}, {4, 4, 5}, 52));
  row("pad zero", [](const V& x, Device) { return pad(x[0], {1, 2, 0, 3}, PadMode::Zero, 0.5); },
      one({2, 3, 4, 5}, 54));
  row("pad reflect", [](const V& x, Device) { return pad(x[0], {2, 1, 1, 3}, PadMode::Reflect); },
      one({2, 3, 5, 6}, 55));
  row("expand", [](const V& x, Device) { return expand(x[0], {4, 3, 5}); }, one({3, 1}, 56));
  // Matrix products (cuBLAS).
  row("matmul (33,47) @ (47,29)", [](const V& x, Device) { return matmul(x[0], x[1]); }, two({33, 47}, {47, 29}, 60));
  row("matmul batched", [](const V& x, Device) { return matmul(x[0], x[1]); }, two({3, 17, 23}, {3, 23, 11}, 62));
  row("matmul broadcast batch", [](const V& x, Device) { return matmul(x[0], x[1]); },
      two({2, 1, 5, 6}, {3, 6, 4}, 64));
  row("matmul vector @ matrix", [](const V& x, Device) { return matmul(x[0], x[1]); }, two({9}, {9, 4}, 66));
  row("linear", [](const V& x, Device) { return linear(x[0], x[1], x[2]); },
      [] { return V{f32({64, 100}, 68), f32({30, 100}, 69, -0.1, 0.1), f32({30}, 70)}; });
  // Softmax and losses.
  row("softmax last axis", [](const V& x, Device) { return softmax(x[0], -1); }, one({50, 17}, 80, -3, 3));
  row("log_softmax axis 1 of 3-D (strided)", [](const V& x, Device) { return log_softmax(x[0], 1); },
      one({4, 6, 5}, 81, -3, 3));
  row("softmax over 700 classes", [](const V& x, Device) { return softmax(x[0], 1); }, one({5, 700}, 82, -3, 3));
  row("cross_entropy mean, smoothing 0.1", [](const V& x, Device d) {
        return cross_entropy(x[0], labels(cyclic_labels(64, 10), d), 0.1);
      },
      one({64, 10}, 83, -3, 3));
  row("cross_entropy none", [](const V& x, Device d) {
        return cross_entropy(x[0], labels(cyclic_labels(33, 7), d), 0.0, Reduction::None);
      },
      one({33, 7}, 84, -3, 3));
  row("nll_loss sum of log_softmax", [](const V& x, Device d) {
        return nll_loss(log_softmax(x[0], 1), labels(cyclic_labels(20, 5), d), Reduction::Sum);
      },
      one({20, 5}, 85, -3, 3));
  row("dropout p=0.3: the CPU's mask", [](const V& x, Device) {
        Generator g(2024);
        return dropout(x[0], 0.3, true, &g);
      },
      one({70, 90}, 86));
  // Convolutions (cuDNN).
  row("conv2d 3x3 stride 2 pad 1, bias", [](const V& x, Device) {
        return conv2d(x[0], x[1], x[2], Conv2dOptions{{2, 2}, {1, 1}, {1, 1}, 1});
      },
      [] { return V{f32({4, 3, 17, 15}, 90), f32({8, 3, 3, 3}, 91, -0.3, 0.3), f32({8}, 92)}; }, 1e-4, 1e-4);
  row("conv2d groups 2, dilation 2", [](const V& x, Device) {
        return conv2d(x[0], x[1], {}, Conv2dOptions{{1, 1}, {2, 2}, {2, 2}, 2});
      },
      [] { return V{f32({2, 4, 9, 9}, 93), f32({6, 2, 3, 3}, 94, -0.3, 0.3)}; }, 1e-4, 1e-4);
  row("conv2d depthwise 5x5", [](const V& x, Device) {
        return conv2d(x[0], x[1], x[2], Conv2dOptions{{1, 1}, {2, 2}, {1, 1}, 6});
      },
      [] { return V{f32({3, 6, 12, 12}, 95), f32({6, 1, 5, 5}, 96, -0.3, 0.3), f32({6}, 97)}; }, 1e-4, 1e-4);
  row("conv2d 1x1, 64 channels", [](const V& x, Device) { return conv2d(x[0], x[1]); },
      [] { return V{f32({8, 64, 8, 8}, 98), f32({32, 64, 1, 1}, 99, -0.2, 0.2)}; }, 1e-4, 1e-4);
  // Transposed convolutions (cuDNN backward-data as the forward).
  row("conv_transpose2d 2x2 stride 2, bias", [](const V& x, Device) {
        return conv_transpose2d(x[0], x[1], x[2], ConvTranspose2dOptions{{2, 2}});
      },
      [] { return V{f32({3, 8, 7, 9}, 190), f32({8, 4, 2, 2}, 191, -0.3, 0.3), f32({4}, 192)}; }, 1e-4, 1e-4);
  row("conv_transpose2d 3x3 stride 2 pad 1 output_padding 1, groups 2, dilation 2", [](const V& x, Device) {
        return conv_transpose2d(x[0], x[1], {}, ConvTranspose2dOptions{{2, 2}, {1, 1}, {1, 1}, {2, 2}, 2});
      },
      [] { return V{f32({2, 6, 5, 6}, 193), f32({6, 2, 3, 3}, 194, -0.3, 0.3)}; }, 1e-4, 1e-4);
  row("instance_norm affine, running statistics updated", [](const V& x, Device d) {
        Tensor rm = zeros({5}).to(d), rv = ones({5}).to(d);
        return instance_norm(x[0], x[1], x[2], rm, rv, true, 0.1, 1e-5);
      },
      [] { return V{f32({3, 5, 9, 7}, 195), f32({5}, 196, 0.5, 1.5), f32({5}, 197)}; }, 1e-4, 1e-4);
  // Pooling and upsampling.
  row("max_pool2d 2x2", [](const V& x, Device) { return max_pool2d(x[0], Pool2dOptions{}); },
      [] { return V{f32_distinct({2, 3, 8, 10}, 100)}; });
  row("max_pool2d 3x3 stride 2 pad 1 ceil", [](const V& x, Device) {
        return max_pool2d(x[0], Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true, true});
      },
      [] { return V{f32_distinct({2, 2, 11, 9}, 101)}; });
  row("avg_pool2d 3x3 stride 2 pad 1 count_include_pad",
      [](const V& x, Device) { return avg_pool2d(x[0], Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, false, true}); },
      one({2, 3, 9, 9}, 102));
  row("avg_pool2d exclude pad, ceil",
      [](const V& x, Device) { return avg_pool2d(x[0], Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true, false}); },
      one({2, 3, 10, 7}, 103));
  row("adaptive_avg_pool2d 7x9 -> 3x4", [](const V& x, Device) { return adaptive_avg_pool2d(x[0], 3, 4); },
      one({2, 3, 7, 9}, 104));
  row("global_avg_pool2d", [](const V& x, Device) { return global_avg_pool2d(x[0]); }, one({4, 8, 6, 6}, 105));
  row("upsample nearest 5x4 -> 11x9", [](const V& x, Device) { return upsample(x[0], 11, 9, UpsampleMode::Nearest); },
      one({2, 2, 5, 4}, 106));
  row("upsample bilinear 5x4 -> 11x9",
      [](const V& x, Device) { return upsample(x[0], 11, 9, UpsampleMode::Bilinear); }, one({2, 2, 5, 4}, 107));
  row("upsample bilinear align_corners 5x4 -> 11x9",
      [](const V& x, Device) { return upsample(x[0], 11, 9, UpsampleMode::Bilinear, true); },
      one({2, 2, 5, 4}, 108));
  // Normalisation (cuDNN batch norm, own layer norm).
  row("batch_norm training with running statistics", [](const V& x, Device d) {
        Tensor rm = zeros({5}, {.device = d}), rv = ones({5}, {.device = d});
        Tensor y = batch_norm(x[0], x[1], x[2], rm, rv, true, 0.1, 1e-5);
        // The updated statistics are part of the result compared.
        return concat({flatten(y, 0), rm, rv}, 0);
      },
      [] { return V{f32({8, 5, 6, 6}, 110), f32({5}, 111, 0.5, 1.5), f32({5}, 112)}; }, 1e-4, 1e-3);
  row("batch_norm training (N, C), no affine", [](const V& x, Device) {
        return batch_norm(x[0], {}, {}, {}, {}, true);
      },
      one({16, 7}, 113), 1e-4, 1e-3);
  // A large eps, far from cuDNN's 1e-5: the backward must be given the
  // forward's (it was hard-coded to 1e-5).
  row("batch_norm training eps 0.5, backward with the forward's eps", [](const V& x, Device) {
        return batch_norm(x[0], x[1], x[2], {}, {}, true, 0.1, 0.5);
      },
      [] { return V{f32({6, 4, 5, 5}, 121), f32({4}, 122, 0.5, 1.5), f32({4}, 123)}; }, 1e-4, 1e-3);
  row("batch_norm eval", [](const V& x, Device d) {
        Tensor rm = from_vector(std::vector<float>{0.1f, -0.2f, 0.3f}, {3}).to(d);
        Tensor rv = from_vector(std::vector<float>{0.5f, 1.5f, 2.0f}, {3}).to(d);
        return batch_norm(x[0], x[1], x[2], rm, rv, false);
      },
      [] { return V{f32({4, 3, 5, 5}, 114), f32({3}, 115), f32({3}, 116)}; });
  row("layer_norm (300 rows of 200)", [](const V& x, Device) { return layer_norm(x[0], 1, x[1], x[2]); },
      [] { return V{f32({300, 200}, 117), f32({200}, 118, 0.5, 1.5), f32({200}, 119)}; }, 1e-4, 1e-3);
  row("layer_norm last two axes, no affine", [](const V& x, Device) { return layer_norm(x[0], 2, {}, {}); },
      one({6, 4, 9}, 120), 1e-4, 1e-3);
  // NeuRN (its CUDA kernels are the NeuRN op's own).
  row("neurn_norm k=3, reflect", [](const V& x, Device) {
        NeuRNOptions o;
        o.padding = NeuRNPadding::Reflect;
        return neurn_norm(x[0], o);
      },
      one({2, 3, 12, 10}, 130), 1e-4, 1e-3);
  // Fake quantization: a fixed scale, and the data-driven ranges, which stay
  // on the device (the kernels read max|x| or max x there).
  row("fake_quantize scale 0.05 in [-8, 7]", [](const V& x, Device) { return fake_quantize(x[0], 0.05, -8, 7); },
      one({37, 29}, 140));
  row("fake_quantize_symmetric 4 bits", [](const V& x, Device) { return fake_quantize_symmetric(x[0], 4); },
      one({37, 29}, 141));
  row("fake_quantize_unsigned 3 bits", [](const V& x, Device) { return fake_quantize_unsigned(x[0], 3); },
      one({37, 29}, 142));
  return t;
}

bool close(const std::vector<float>& a, const std::vector<float>& b, double atol, double rtol, std::string& why) {
  if (a.size() != b.size()) {
    why = "sizes " + std::to_string(a.size()) + " and " + std::to_string(b.size());
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    bool both_nan = std::isnan(a[i]) && std::isnan(b[i]);
    if (!both_nan && !(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(a[i]))) {
      why = "element " + std::to_string(i) + ": cpu " + std::to_string(a[i]) + ", cuda " + std::to_string(b[i]);
      return false;
    }
  }
  return true;
}

void run_case(const CudaCase& c) {
  INFO("case: " << c.name);
  const Device cuda = Device::cuda();
  V xs = c.inputs();
  Tensor out = c.f(xs, Device::cpu());
  Generator gen(99);
  Tensor R = randn(out.shape(), {}, &gen);
  bool differentiable = out.requires_grad();
  if (differentiable) sum(mul(out, R)).backward();

  V ds;
  for (const Tensor& x : xs) {
    Tensor d = x.detach().to(cuda);
    if (x.requires_grad()) d.requires_grad_();
    ds.push_back(d);
  }
  Tensor dout = c.f(ds, cuda);
  REQUIRE(dout.device().is_cuda());
  if (differentiable) sum(mul(dout, R.to(cuda))).backward();

  std::string why;
  CHECK_MESSAGE(close(out.to_vector<float>(), dout.cpu().to_vector<float>(), c.atol, c.rtol, why),
                "forward differs: " << why);
  for (size_t k = 0; k < xs.size() && differentiable; ++k) {
    if (!xs[k].requires_grad() || !xs[k].grad().defined()) continue;
    REQUIRE_MESSAGE(ds[k].grad().defined(), "input " << k << " got no gradient on cuda");
    CHECK(ds[k].grad().device().is_cuda());
    CHECK_MESSAGE(close(xs[k].grad().to_vector<float>(), ds[k].grad().cpu().to_vector<float>(), c.atol, c.rtol, why),
                  "gradient of input " << k << " differs: " << why);
  }
}

// Names of the device-only test cases of this file, for the skip report.
const char* const kDeviceCases[] = {
    "cuda: op table, float32, CPU vs CUDA",  "cuda: copies, conversions and fill",
    "cuda: caching allocator on the device", "cuda: optimizers match the CPU",
    "cuda: bf16 autocast",                   "cuda: ops reject tensors on two devices",
    "cuda: cuda:N out of range is a clear error; the current device follows allocations",
    "cuda: gradient clipping matches the CPU (one read per device)",
    "cuda: layer norm parameter gradients: reproducible with NEURN_DETERMINISTIC=1",
    "cuda: multi-tensor updates of many parameters in one launch match the CPU",
    "cuda: bf16 autocast converts each weight once per step; float32 outputs and weight gradients; backward in the "
    "precision of forward",
    "cuda: the trainer's memory line names the device and its allocated, reserved and peak bytes",
    "cuda: pooling and upsampling backward: with NEURN_DETERMINISTIC=1 the same bits every run, and the CPU's",
    "cuda: max backward: the CPU's bits, by the atomic scatter or (NEURN_DETERMINISTIC=1) the gather",
};

}  // namespace

// ---- on every machine -------------------------------------------------------------------

TEST_CASE("cuda: device cases without a device are reported as skipped") {
  if (!no_cuda()) {
    MESSAGE("CUDA device present: the CUDA cases run");
    return;
  }
  std::string list;
  for (const char* name : kDeviceCases) list += std::string("\n  skipped for lack of a CUDA device: ") + name;
  for (const auto& c : op_table()) list += "\n  skipped for lack of a CUDA device: op case '" + c.name + "'";
  MESSAGE(no_cuda_reason() << list);
  CHECK(cuda_device_count() == 0);
}

TEST_CASE("devices: cuda:N parses to its index; malformed names are refused") {
  CHECK(Device::parse("cuda") == Device::cuda(0));
  CHECK(Device::parse("cuda:0") == Device::cuda(0));
  CHECK(Device::parse("cuda:3").index == 3);
  CHECK(Device::parse("cuda:3").str() == "cuda:3");
  for (const char* bad : {"cuda:", "cuda:-1", "cuda:1x", "cuda: 1", "cuda:99999", "gpu", "cuda0"})
    CHECK_THROWS_CONTAINING(Device::parse(bad), "unknown device '" + std::string(bad) + "'");
}

TEST_CASE("cuda: allocating on a missing device says why") {
  if (!no_cuda()) return;
#ifdef NEURN_WITH_CUDA
  CHECK_THROWS_CONTAINING(Tensor::empty({4}, {.device = Device::cuda()}), "no CUDA device is available");
#else
  CHECK_THROWS_CONTAINING(Tensor::empty({4}, {.device = Device::cuda()}), "built without CUDA");
#endif
}

namespace {

// A backend handing out fake, never-touched addresses (the allocator only
// does arithmetic on them), recording every segment it holds.
struct FakeDevice {
  size_t budget = size_t{1} << 40;
  size_t used = 0;
  uintptr_t next = uintptr_t{1} << 40;
  std::map<uintptr_t, size_t> segments;  // start -> size
  cuda::AllocatorBackend backend() {
    return {"fake",
            [this](size_t n) -> void* {
              if (used + n > budget) return nullptr;
              uintptr_t p = next;
              next += (n + (size_t{2} << 20)) / (size_t{2} << 20) * (size_t{2} << 20);  // gaps between segments
              segments[p] = n;
              used += n;
              return reinterpret_cast<void*>(p);
            },
            [this](void* p) {
              auto it = segments.find(reinterpret_cast<uintptr_t>(p));
              REQUIRE_MESSAGE(it != segments.end(), "released a pointer that is not a segment start");
              used -= it->second;
              segments.erase(it);
            },
            [this](size_t* f, size_t* t) {
              *f = budget - used;
              *t = budget;
            }};
  }
};

char* at(void* p) { return static_cast<char*>(p); }

}  // namespace

TEST_CASE("caching allocator: sizes, segments and pools") {
  using A = cuda::CachingAllocator;
  CHECK(A::round_size(1) == 512);
  CHECK(A::round_size(512) == 512);
  CHECK(A::round_size(513) == 1024);
  CHECK(A::round_size(1 << 20) == (1 << 20));
  CHECK(A::segment_size(512) == (size_t{2} << 20));
  CHECK(A::segment_size(size_t{1} << 20) == (size_t{2} << 20));
  CHECK(A::segment_size((size_t{1} << 20) + 512) == (size_t{20} << 20));
  CHECK(A::segment_size(size_t{10} << 20) == (size_t{20} << 20));
  CHECK(A::segment_size((size_t{10} << 20) + 512) == (size_t{12} << 20));
  CHECK(A::segment_size(size_t{31} << 20) == (size_t{32} << 20));
}

TEST_CASE("caching allocator: blocks are split, reused across sizes and merged back") {
  FakeDevice dev;
  cuda::CachingAllocator a(dev.backend());
  const size_t seg = size_t{2} << 20;
  // Three small requests share one 2 MiB segment, carved in address order.
  void* p1 = a.allocate(1000);  // 1024
  void* p2 = a.allocate(5000);  // 5120
  void* p3 = a.allocate(300);   // 512
  CHECK(dev.segments.size() == 1);
  CHECK(at(p2) == at(p1) + 1024);
  CHECK(at(p3) == at(p2) + 5120);
  auto s = a.stats();
  CHECK(s.backend_allocs == 1);
  CHECK(s.segments == 1);
  CHECK(s.reserved == seg);
  CHECK(s.allocated == 1024 + 5120 + 512);
  CHECK(s.splits == 3);
  CHECK(s.cache_hits == 2);
  // A freed block serves a smaller request of another size (best fit: the
  // 1024-byte hole, not the big tail), split again.
  a.deallocate(p1);
  void* q = a.allocate(600);  // 1024 -> 1024 (512 left is kept)
  CHECK(q == p1);
  CHECK(a.stats().allocated == 1024 + 5120 + 512);
  void* q2 = a.allocate(400);  // no fitting hole but the tail: best fit is the tail, not a new segment
  CHECK(a.stats().backend_allocs == 1);
  CHECK(at(q2) == at(p3) + 512);
  // Freeing the middle block merges with both free neighbours once they are free.
  a.deallocate(q);
  a.deallocate(p3);
  a.deallocate(q2);
  // p2 is still in use: empty_cache keeps its segment.
  a.empty_cache();
  CHECK(dev.segments.size() == 1);
  // Best fit again: the 1024-byte hole before p2, not the merged tail after it.
  void* big_hole = a.allocate(1024);
  CHECK(big_hole == p1);
  a.deallocate(big_hole);
  a.deallocate(p2);
  // Everything free: the segment is one block again, so a 1 MiB request
  // starts at its base (unmerged, only the tail after p2 would fit it) ...
  void* whole = a.allocate(size_t{1} << 20);
  CHECK(whole == p1);
  CHECK(a.stats().backend_allocs == 1);
  a.deallocate(whole);
  // ... and empty_cache returns it.
  a.empty_cache();
  CHECK(dev.segments.empty());
  CHECK(a.stats().reserved == 0);
  CHECK(a.stats().segments == 0);
  CHECK(a.stats().allocated == 0);
  CHECK(a.stats().peak_reserved == seg);
  a.reset_peak_stats();
  CHECK(a.stats().peak_allocated == 0);
  CHECK(a.allocate(0) == nullptr);
}

TEST_CASE("caching allocator: the large pool (20 MiB segments, own segments above 10 MiB)") {
  FakeDevice dev;
  cuda::CachingAllocator a(dev.backend());
  const size_t MiB = size_t{1} << 20;
  void* l1 = a.allocate(3 * MiB);
  void* l2 = a.allocate(4 * MiB);  // same 20 MiB segment
  CHECK(dev.segments.size() == 1);
  CHECK(dev.segments.begin()->second == 20 * MiB);
  CHECK(at(l2) == at(l1) + 3 * MiB);
  // 13 MiB are left: a 12.5 MiB request takes them whole (a 0.5 MiB rest is
  // not worth a large-pool block).
  void* l3 = a.allocate(12 * MiB + MiB / 2);
  CHECK(a.stats().backend_allocs == 1);
  CHECK(a.stats().allocated == 20 * MiB);
  // Small requests never come from large segments: a new 2 MiB segment.
  void* s1 = a.allocate(4096);
  CHECK(a.stats().backend_allocs == 2);
  CHECK(dev.segments.size() == 2);
  // A large request with no fitting block gets its own segment, rounded to 2 MiB.
  void* l4 = a.allocate(21 * MiB);
  CHECK(dev.segments.size() == 3);
  CHECK(dev.segments.at(reinterpret_cast<uintptr_t>(l4)) == 22 * MiB);
  for (void* p : {l1, l2, l3, s1, l4}) a.deallocate(p);
  // The freed 20 MiB segment serves an 18 MiB request (reuse across sizes).
  void* l5 = a.allocate(18 * MiB);
  CHECK(a.stats().backend_allocs == 3);
  a.deallocate(l5);
  a.empty_cache();
  CHECK(dev.segments.empty());
}

TEST_CASE("caching allocator: a training loop stops calling the backend after its first step") {
  FakeDevice dev;
  cuda::CachingAllocator a(dev.backend());
  const std::vector<size_t> sizes = {70000, 3 << 20, 123, 1 << 20, 40 << 20, 9000, 777777};
  uint64_t after_first = 0;
  for (int step = 0; step < 6; ++step) {
    std::vector<void*> held;
    for (size_t n : sizes) held.push_back(a.allocate(n - static_cast<size_t>(step)));  // sizes vary a little
    for (size_t i = 0; i < held.size(); i += 2) a.deallocate(held[i]);
    for (size_t i = 1; i < held.size(); i += 2) a.deallocate(held[i]);
    if (step == 0) after_first = a.stats().backend_allocs;
  }
  CHECK(a.stats().backend_allocs == after_first);
  CHECK(a.stats().allocated == 0);
  a.empty_cache();
  CHECK(dev.segments.empty());
}

TEST_CASE("caching allocator: random allocations and frees keep blocks disjoint, inside segments, counted") {
  FakeDevice dev;
  cuda::CachingAllocator a(dev.backend());
  Generator g(77);
  std::map<char*, size_t> live;  // start -> requested bytes
  size_t expected_allocated = 0;
  std::map<char*, size_t> rounded;
  for (int i = 0; i < 4000; ++i) {
    bool do_alloc = live.empty() || g.below(100) < 55;
    if (do_alloc) {
      // Mostly small, some mid-size and a few large requests.
      uint64_t kind = g.below(10);
      size_t n = kind < 7 ? 1 + g.below(200000) : kind < 9 ? (1 << 20) + g.below(8 << 20) : (10 << 20) + g.below(30 << 20);
      char* p = at(a.allocate(n));
      REQUIRE(p != nullptr);
      REQUIRE(live.count(p) == 0);
      live[p] = n;
      size_t r = cuda::CachingAllocator::round_size(n);
      rounded[p] = r;
      expected_allocated += r;
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(g.below(live.size())));
      char* p = it->first;
      a.deallocate(p);
      live.erase(it);
      rounded.erase(p);
    }
    if (i % 97 == 0 || i == 3999) {
      // Disjoint, each inside one segment of the backend.
      char* end_prev = nullptr;
      for (auto& [p, n] : live) {
        REQUIRE(p >= end_prev);
        end_prev = p + n;
        auto seg = dev.segments.upper_bound(reinterpret_cast<uintptr_t>(p));
        REQUIRE(seg != dev.segments.begin());
        --seg;
        REQUIRE(reinterpret_cast<uintptr_t>(p) + n <= seg->first + seg->second);
      }
      auto s = a.stats();
      size_t held = 0;
      for (auto& [p, n] : dev.segments) held += n;
      REQUIRE(s.reserved == held);
      REQUIRE(s.segments == dev.segments.size());
      // allocated counts whole blocks: at least the rounded sizes, at most a
      // remainder too small to split (< 512 bytes small, <= 1 MiB large) more each.
      size_t lo = 0;
      for (auto& [p, r] : rounded) lo += r;
      REQUIRE(s.allocated >= lo);
      REQUIRE(s.allocated <= lo + live.size() * (size_t{1} << 20));
    }
  }
  for (auto& [p, n] : live) a.deallocate(p);
  CHECK(a.stats().allocated == 0);
  // Every segment merged back into one free block: all of them are returned.
  a.empty_cache();
  CHECK(dev.segments.empty());
  CHECK(a.stats().reserved == 0);
  CHECK(a.stats().invalid_frees == 0);
  CHECK(a.stats().release_errors == 0);
}

TEST_CASE("caching allocator: deallocate never throws, even from a destructor during unwinding") {
  static_assert(noexcept(std::declval<cuda::CachingAllocator&>().deallocate(nullptr)),
                "deallocate runs in destructors and must be noexcept");
  int released = 0;
  cuda::CachingAllocator a(cuda::AllocatorBackend{"fake", [](size_t n) -> void* { return new char[n]; },
                                                  [&](void* p) {
                                                    ++released;
                                                    delete[] static_cast<char*>(p);
                                                  },
                                                  nullptr});
  // A holder whose destructor frees a pointer twice while an exception is in
  // flight: a throwing deallocate would call std::terminate here.
  struct Holder {
    cuda::CachingAllocator& a;
    void* p;
    ~Holder() {
      a.deallocate(p);
      a.deallocate(p);
    }
  };
  bool caught = false;
  try {
    Holder h{a, a.allocate(100)};
    throw neurn::Error("unwinding");
  } catch (const neurn::Error&) {
    caught = true;
  }
  CHECK(caught);
  CHECK(a.stats().invalid_frees == 1);
  CHECK(a.stats().allocated == 0);
  int stack_value = 0;
  CHECK_NOTHROW(a.deallocate(&stack_value));
  CHECK(a.stats().invalid_frees == 2);
  a.empty_cache();
  CHECK(released == 1);
}

TEST_CASE("caching allocator: on exhaustion it returns its free segments, retries once, then reports sizes") {
  const size_t MiB = size_t{1} << 20;
  FakeDevice dev;
  dev.budget = 24 * MiB;
  cuda::CachingAllocator a(dev.backend());
  a.deallocate(a.allocate(3 * MiB));  // a free 20 MiB segment stays cached
  CHECK(dev.used == 20 * MiB);
  // 22 MiB fit only once the cached segment is given back: one retry.
  void* big = a.allocate(22 * MiB);
  CHECK(big != nullptr);
  CHECK(a.stats().retries == 1);
  CHECK(a.stats().reserved == 22 * MiB);
  CHECK(dev.used == 22 * MiB);
  // Nothing free to return and too little left: the error states the sizes.
  CHECK_THROWS_CONTAINING(a.allocate(3 * MiB), "fake out of memory: tried to allocate 3145728 bytes (3.00 MiB");
  CHECK_THROWS_CONTAINING(a.allocate(3 * MiB), "2097152 bytes (2.00 MiB) free of 25165824");
  CHECK_THROWS_CONTAINING(a.allocate(3 * MiB), "neurn holds 23068672 bytes allocated, 23068672 reserved");
  CHECK(a.stats().retries == 1);
  // What fits still works, and the failures left the statistics as they were.
  void* small = a.allocate(1000);
  CHECK(small != nullptr);
  CHECK(a.stats().allocated == 22 * MiB + 1024);
  a.deallocate(small);
  a.deallocate(big);
  a.empty_cache();
  CHECK(dev.used == 0);
}

TEST_CASE("cuda index arithmetic matches the CPU loops") {
  // broadcast_offsets against cpu::for_each_broadcast.
  std::vector<std::vector<Shape>> cases = {
      {{4, 5}, {4, 5}, {5}}, {{2, 3, 4}, {3, 1}, {2, 1, 4}}, {{7}, {}, {7}}, {{2, 1, 3, 2}, {1, 1, 3, 1}, {2, 1, 1, 2}}};
  for (auto& c : cases) {
    Shape out = broadcast_shapes(broadcast_shapes(c[0], c[1], "t"), c[2], "t");
    const Shape* shapes[3] = {&c[0], &c[1], &c[2]};
    BroadcastIndex idx = cpu::make_broadcast_index(out, shapes, 3);
    bool ok = true;
    cpu::for_each_broadcast(idx, [&](int64_t o, int64_t i, int64_t j, int64_t k) {
      int64_t off[3];
      cuda::broadcast_offsets(idx, o, off);
      ok = ok && off[0] == i && off[1] == j && off[2] == k;
    });
    CHECK_MESSAGE(ok, "broadcast of " << shape_str(c[0]) << ", " << shape_str(c[1]) << ", " << shape_str(c[2]));
  }

  // make_reduce_index against a direct enumeration of each output's inputs.
  struct R {
    Shape in;
    std::vector<int64_t> axes;
  };
  for (const R& r : std::vector<R>{{{5, 6}, {0}},
                                   {{5, 6}, {1}},
                                   {{2, 3, 4, 5}, {0, 2, 3}},
                                   {{2, 3, 4, 5}, {1, 3}},
                                   {{3, 1, 4}, {1}},
                                   {{3, 4}, {0, 1}},
                                   {{6}, {}},
                                   {{2, 1, 3}, {0, 2}}}) {
    Shape keep = r.in;
    for (int64_t a : r.axes) keep[a] = 1;
    auto ri = cuda::make_reduce_index(r.in.data(), keep.data(), static_cast<int>(r.in.size()));
    auto in_strides = contiguous_strides(r.in);
    // Expected: inputs of each output in row-major order of the reduced axes.
    int64_t n_out = shape_numel(keep), count = shape_numel(r.in) / std::max<int64_t>(n_out, 1);
    CHECK(ri.n_out == n_out);
    CHECK(ri.count == count);
    bool ok = true;
    auto out_strides = contiguous_strides(keep);
    std::vector<std::vector<int64_t>> expected(static_cast<size_t>(n_out));
    for (int64_t flat = 0; flat < shape_numel(r.in); ++flat) {
      int64_t o = 0, rest = flat;
      for (size_t d = 0; d < r.in.size(); ++d) {
        int64_t c = rest / in_strides[d];
        rest %= in_strides[d];
        if (keep[d] != 1 || r.in[d] == 1) o += (keep[d] == 1 ? 0 : c) * out_strides[d];
      }
      expected[o].push_back(flat);
    }
    for (int64_t o = 0; o < n_out; ++o) {
      int64_t base = ri.inner_contiguous ? o * ri.count : cuda::reduce_base_offset(ri, o);
      for (int64_t k = 0; k < count; ++k) {
        int64_t off = base + (ri.inner_contiguous ? k : cuda::reduce_inner_offset(ri, k));
        ok = ok && off == expected[o][k];
      }
    }
    CHECK_MESSAGE(ok, "reduce index of " << shape_str(r.in) << " over " << r.axes.size() << " axes");
  }

  // reflect_sources against enumerating every padded position.
  for (int64_t n : {2, 3, 5, 8})
    for (int64_t before = 0; before < n; ++before)
      for (int64_t after = 0; after < n; ++after)
        for (int64_t r = 0; r < n; ++r) {
          std::vector<int64_t> want;
          for (int64_t i = 0; i < n + before + after; ++i)
            if (cuda::reflect_index(i - before, n) == r) want.push_back(i);
          int64_t got[3];
          int k = cuda::reflect_sources(r, n, before, after, got);
          std::vector<int64_t> g(got, got + k);
          std::sort(g.begin(), g.end());
          CHECK(g == want);
        }
}

TEST_CASE("cuDNN convolution: the chosen algorithm's own math type, only what the precision allows") {
  using cuda::ConvAlgoCandidate;
  using cuda::ConvMath;
  using cuda::ConvPrecision;
  const size_t limit = 1000;
  // cuDNN's order: a tensor-op (TF32) entry ranked first, a failed one, one
  // over the workspace limit, then FMA and default-math entries.
  const std::vector<ConvAlgoCandidate> ranking = {{6, true, 10, ConvMath::TensorOp},
                                                  {2, false, 0, ConvMath::Fma},
                                                  {4, true, 5000, ConvMath::Fma},
                                                  {1, true, 100, ConvMath::Fma},
                                                  {7, true, 0, ConvMath::Default}};
  // Exact float32: the tensor-op entry is skipped, the FMA one taken with its math.
  auto c = cuda::choose_conv_algo(ranking, ConvPrecision::F32, limit);
  CHECK(c.ranked);
  CHECK(c.algo == 1);
  CHECK(c.math == ConvMath::Fma);
  // TF32 allowed, float64, bf16: the first usable entry, in its own math type.
  for (ConvPrecision p : {ConvPrecision::F32Tf32, ConvPrecision::F64, ConvPrecision::BF16}) {
    c = cuda::choose_conv_algo(ranking, p, limit);
    CHECK(c.algo == 6);
    CHECK(c.math == ConvMath::TensorOp);
  }
  // Default math lets cuDNN use TF32 on float32: not exact.
  c = cuda::choose_conv_algo({{7, true, 0, ConvMath::Default}}, ConvPrecision::F32, limit);
  CHECK_FALSE(c.ranked);
  CHECK(c.algo == 0);
  CHECK(c.math == ConvMath::Fma);
  // Nothing usable: implicit GEMM (0) in the math the ranking ran under.
  CHECK(cuda::choose_conv_algo({}, ConvPrecision::BF16, limit).math == ConvMath::TensorOp);
  CHECK(cuda::choose_conv_algo({{3, true, 5000, ConvMath::Default}}, ConvPrecision::F64, limit).math ==
        ConvMath::Default);
  CHECK(cuda::ranking_math(ConvPrecision::F32) == ConvMath::Fma);
  CHECK(cuda::ranking_math(ConvPrecision::F32Tf32) == ConvMath::Default);
  // The deterministic mode skips non-deterministic entries (and falls back
  // to implicit GEMM, deterministic in every direction).
  const std::vector<ConvAlgoCandidate> mixed = {{5, true, 0, ConvMath::Fma, false}, {3, true, 0, ConvMath::Fma, true}};
  CHECK(cuda::choose_conv_algo(mixed, ConvPrecision::F32, limit).algo == 5);
  CHECK(cuda::choose_conv_algo(mixed, ConvPrecision::F32, limit, true).algo == 3);
  c = cuda::choose_conv_algo({{5, true, 0, ConvMath::Fma, false}}, ConvPrecision::F32, limit, true);
  CHECK_FALSE(c.ranked);
  CHECK(c.algo == 0);
}

TEST_CASE("autocast guard nests and restores") {
  CHECK_FALSE(cuda::autocast_bf16());
  {
    cuda::AutocastGuard on;
    CHECK(cuda::autocast_bf16());
    {
      cuda::AutocastGuard off(false);
      CHECK_FALSE(cuda::autocast_bf16());
    }
    CHECK(cuda::autocast_bf16());
  }
  CHECK_FALSE(cuda::autocast_bf16());
}

TEST_CASE("device_memory_summary: nothing to say on cpu and meta") {
  CHECK(device_memory_summary(Device::cpu()).empty());
  CHECK(device_memory_summary(Device::meta(), true).empty());
}

TEST_CASE("ops given tensors on two devices name both") {
  Tensor c = zeros({2, 3}), m = zeros({2, 3}, {.device = Device::meta()});
  CHECK_THROWS_CONTAINING(add(c, m), "cpu");
  CHECK_THROWS_CONTAINING(add(c, m), "meta");
  CHECK_THROWS_CONTAINING(matmul(zeros({2, 3}), zeros({3, 2}, {.device = Device::meta()})), "meta");
  CHECK_THROWS_CONTAINING(conv2d(zeros({1, 1, 4, 4}), zeros({1, 1, 3, 3}, {.device = Device::meta()})), "meta");
}

// ---- with a CUDA device --------------------------------------------------------------------

TEST_CASE("cuda: op table, float32, CPU vs CUDA" * skip_unless(have_cuda(), no_cuda_reason())) {
  MESSAGE("running " << op_table().size() << " op cases on cuda");
  for (const auto& c : op_table()) run_case(c);
}

TEST_CASE("cuda: copies, conversions and fill" * skip_unless(have_cuda(), no_cuda_reason())) {
  const Device cuda = Device::cuda();
  Tensor f = arange(-5, 5).to(cuda);
  CHECK(f.device().is_cuda());
  CHECK(f.cpu().to_vector<float>() == arange(-5, 5).to_vector<float>());
  for (DType t : {DType::Float64, DType::Int64, DType::UInt8, DType::BFloat16, DType::Float16}) {
    INFO("dtype " << dtype_name(t));
    Tensor src = arange(0, 100).to(cuda);
    Tensor back = src.to(t).to(DType::Float32).cpu();  // converted on the device
    CHECK(back.to_vector<float>() == arange(0, 100).to_vector<float>());
  }
  Tensor l = from_vector(std::vector<int64_t>{3, -1, 7}, {3}).to(cuda);
  CHECK(l.cpu().to_vector<int64_t>() == std::vector<int64_t>{3, -1, 7});
  Tensor z = full({1000}, 2.5, {.device = cuda});
  CHECK(sum(z).item() == doctest::Approx(2500.0));
  Tensor d = z.clone();
  d.fill_(-1.0);
  CHECK(z.cpu().to_vector<float>()[999] == 2.5f);  // clone copied on the device
  CHECK(d.cpu().to_vector<float>()[0] == -1.0f);
#ifdef NEURN_WITH_CUDA
  // Pinned host buffers round-trip through the device.
  float* pinned = static_cast<float*>(cuda::allocate_pinned(64 * sizeof(float)));
  for (int i = 0; i < 64; ++i) pinned[i] = static_cast<float>(i) * 0.5f;
  Tensor on_dev = Tensor::empty({64}, {.device = cuda});
  cuda::copy_host_to_device(on_dev.raw_data(), 0, pinned, 64 * sizeof(float));
  std::memset(pinned, 0, 64 * sizeof(float));
  cuda::copy_device_to_host(pinned, on_dev.raw_data(), 0, 64 * sizeof(float));
  CHECK(pinned[63] == 31.5f);
  cuda::deallocate_pinned(pinned);
  CHECK(cuda::pinned_memory_stats().backend_allocs >= 1);
#endif
}

TEST_CASE("cuda: caching allocator on the device" * skip_unless(have_cuda(), no_cuda_reason())) {
#ifdef NEURN_WITH_CUDA
  const Device dev = Device::cuda();
  { Tensor warm = Tensor::empty({123457}, {.device = dev}); }
  auto before = cuda::memory_stats();
  for (int i = 0; i < 20; ++i) {
    Tensor t = Tensor::empty({123457}, {.device = dev});  // same bucket every time
    Tensor u = relu(t);
  }
  auto after = cuda::memory_stats();
  // At most the relu output's first block: every later request is a cache hit.
  CHECK(after.backend_allocs - before.backend_allocs <= 1);
  CHECK(after.cache_hits > before.cache_hits);
  CHECK(after.peak_allocated >= after.allocated);
  cuda::empty_cache();
  // Segments with a block in use stay; with nothing in use none does.
  auto emptied = cuda::memory_stats();
  CHECK(emptied.reserved >= emptied.allocated);
  if (emptied.allocated == 0) CHECK(emptied.reserved == 0);
  // An impossible request: cache released, one retry, then the sizes.
  CHECK_THROWS_CONTAINING(Tensor::empty({int64_t{1} << 50}, {.device = dev}), "CUDA (cuda:0) out of memory: tried to allocate");
  CHECK_THROWS_CONTAINING(Tensor::empty({int64_t{1} << 50}, {.device = dev}), "free of");
  // The device still works afterwards.
  CHECK(sum(ones({10}, {.device = dev})).item() == 10.0);
#endif
}

TEST_CASE("cuda: optimizers match the CPU" * skip_unless(have_cuda(), no_cuda_reason())) {
  auto run = [](Device d, int which) {
    Tensor p = f32({1000}, 200).detach().to(d);
    p.requires_grad_();
    std::unique_ptr<Optimizer> opt;
    if (which == 0) opt = std::make_unique<Sgd>(std::vector<Tensor>{p}, SgdOptions{0.1, 0.9, 0.0, 1e-2, true});
    if (which == 1) opt = std::make_unique<Adam>(std::vector<Tensor>{p}, AdamOptions{1e-2, 0.9, 0.999, 1e-8, 1e-3});
    if (which == 2) opt = std::make_unique<AdamW>(std::vector<Tensor>{p});
    for (int step = 0; step < 3; ++step) {
      opt->zero_grad();
      Tensor loss = sum(mul(square(p), f32({1000}, 300 + step, -1, 1, false).to(d)));
      loss.backward();
      opt->step();
    }
    return p.cpu().to_vector<float>();
  };
  for (int which = 0; which < 3; ++which) {
    INFO("optimizer " << (which == 0 ? "SGD (nesterov, weight decay)" : which == 1 ? "Adam" : "AdamW"));
    std::string why;
    CHECK_MESSAGE(close(run(Device::cpu(), which), run(Device::cuda(), which), 1e-5, 1e-4, why), why);
  }
}

TEST_CASE("cuda: gradient clipping matches the CPU (one read per device)" * skip_unless(have_cuda(), no_cuda_reason())) {
  auto run = [](Device d) {
    std::vector<Tensor> ps;
    for (int k = 0; k < 5; ++k) {
      // The last one spans three multi-tensor chunks.
      Tensor p = f32({k == 4 ? 150001 : 100 + 37 * k}, 600 + k).detach().to(d);
      p.requires_grad_();
      ps.push_back(p);
    }
    Tensor loss = zeros({}, {.device = d});
    for (size_t k = 0; k < ps.size(); ++k) loss = add(loss, sum(mul(square(ps[k]), 3.0 + static_cast<double>(k))));
    loss.backward();
    double norm = clip_grad_norm(ps, 1.0);
    std::vector<float> g;
    for (const Tensor& p : ps)
      for (float v : p.grad().cpu().to_vector<float>()) g.push_back(v);
    return std::make_pair(norm, g);
  };
  auto [n_cpu, g_cpu] = run(Device::cpu());
  auto [n_cuda, g_cuda] = run(Device::cuda());
  CHECK(n_cuda == doctest::Approx(n_cpu).epsilon(1e-5));
  CHECK(n_cpu > 1.0);  // the clip did scale
  std::string why;
  CHECK_MESSAGE(close(g_cpu, g_cuda, 1e-6, 1e-4, why), why);
}

TEST_CASE("cuda: layer norm parameter gradients: reproducible with NEURN_DETERMINISTIC=1" *
          skip_unless(have_cuda(), no_cuda_reason())) {
#ifdef NEURN_WITH_CUDA
  // Enough rows for many chunks (the atomic path's order varies run to run).
  auto run = [](Device d) {
    Tensor x = f32({4096, 96}, 700).detach().to(d), w = f32({96}, 701, 0.5, 1.5).detach().to(d);
    Tensor b = f32({96}, 702).detach().to(d);
    w.requires_grad_();
    b.requires_grad_();
    Tensor R = f32({4096, 96}, 703, -1, 1, false).to(d);
    sum(mul(layer_norm(x, 1, w, b), R)).backward();
    return std::make_pair(w.grad().cpu().to_vector<float>(), b.grad().cpu().to_vector<float>());
  };
  auto cpu = run(Device::cpu());
  auto first = run(Device::cuda()), second = run(Device::cuda());
  std::string why;
  CHECK_MESSAGE(close(cpu.first, first.first, 1e-3, 1e-3, why), why);
  CHECK_MESSAGE(close(cpu.second, first.second, 1e-3, 1e-3, why), why);
  if (cuda::deterministic()) {
    MESSAGE("NEURN_DETERMINISTIC=1: the two CUDA runs must agree bit for bit");
    CHECK(first.first == second.first);
    CHECK(first.second == second.second);
  }
#endif
}

TEST_CASE("cuda: max backward: the CPU's bits, by the atomic scatter or (NEURN_DETERMINISTIC=1) the gather" *
          skip_unless(have_cuda(), no_cuda_reason())) {
#ifdef NEURN_WITH_CUDA
  // Each input is the maximum of at most one output, so either path writes
  // every input gradient once: exactly the CPU's values (reduce_math.h's
  // max_backward_at is the gather, tested against the CPU in
  // test_softmax_norm_math.cpp).
  auto run = [](Device d, const std::vector<int64_t>& axes) {
    Tensor x = f32({6, 50, 40}, 810, 0, 3).detach();
    std::vector<float> v = x.to_vector<float>();
    for (auto& e : v) e = std::floor(e);  // ties: the first maximum gets the gradient
    Tensor xd = from_vector(v, x.shape()).to(d);
    xd.requires_grad_();
    Tensor m = max(xd, axes, true);
    Tensor R = f32(m.shape(), 811, -1, 1, false).to(d);
    sum(mul(m, R)).backward();
    return xd.grad().cpu().to_vector<float>();
  };
  for (const auto& axes : std::vector<std::vector<int64_t>>{{0}, {1}, {2}, {0, 2}, {}}) {
    INFO("axes ", axes.size());
    CHECK(run(Device::cpu(), axes) == run(Device::cuda(), axes));
  }
  if (cuda::deterministic()) MESSAGE("NEURN_DETERMINISTIC=1: the gather path ran");
#endif
}

TEST_CASE("cuda: pooling and upsampling backward: with NEURN_DETERMINISTIC=1 the same bits every run, and the CPU's" *
          skip_unless(have_cuda(), no_cuda_reason())) {
#ifdef NEURN_WITH_CUDA
  // Overlapping windows and many planes, so that the atomic scatter's order
  // can vary; the deterministic gather (framework/ops/pool_math.h,
  // upsample_math.h) visits the outputs in the CPU scatter's order, so for
  // the sums of max/avg/adaptive pooling it must give the CPU's bits too.
  // Upsampling's products may be fused (FMA) by nvcc: close to the CPU, and
  // the same bits run to run.
  struct Op {
    const char* name;
    std::function<Tensor(const Tensor&)> f;
    bool exact_vs_cpu;
  };
  const Op ops[] = {
      {"max_pool2d 3x3 stride 2 pad 1 ceil",
       [](const Tensor& x) { return max_pool2d(x, Pool2dOptions{{3, 3}, {2, 2}, {1, 1}, true, true}); }, true},
      {"avg_pool2d 3x3 stride 1 pad 1",
       [](const Tensor& x) { return avg_pool2d(x, Pool2dOptions{{3, 3}, {1, 1}, {1, 1}, false, true}); }, true},
      {"adaptive_avg_pool2d 33x31 -> 7x5", [](const Tensor& x) { return adaptive_avg_pool2d(x, 7, 5); }, true},
      {"upsample bilinear 33x31 -> 70x64",
       [](const Tensor& x) { return upsample(x, 70, 64, UpsampleMode::Bilinear, false); }, false},
      {"upsample nearest 33x31 -> 50x47", [](const Tensor& x) { return upsample(x, 50, 47, UpsampleMode::Nearest); },
       true},
  };
  for (const Op& op : ops) {
    auto run = [&](Device d) {
      Tensor x = f32({8, 16, 33, 31}, 710).detach().to(d);
      x.requires_grad_();
      Tensor y = op.f(x);
      Tensor r = f32(y.shape(), 711, -1, 1, false).to(d);
      sum(mul(y, r)).backward();
      return x.grad().cpu().to_vector<float>();
    };
    const auto cpu = run(Device::cpu());
    const auto first = run(Device::cuda()), second = run(Device::cuda());
    INFO(op.name);
    std::string why;
    CHECK_MESSAGE(close(cpu, first, 1e-5, 1e-4, why), why);
    if (cuda::deterministic()) {
      MESSAGE("NEURN_DETERMINISTIC=1: " << op.name << ": two CUDA runs must agree bit for bit");
      CHECK(first == second);
      if (op.exact_vs_cpu) CHECK(first == cpu);
    }
  }
#endif
}

TEST_CASE("cuda: bf16 autocast" * skip_unless(have_cuda(), no_cuda_reason())) {
  const Device dev = Device::cuda();
  Tensor a = f32({64, 256}, 400, -1, 1, false), b = f32({256, 48}, 401, -1, 1, false);
  Tensor x = f32({4, 16, 12, 12}, 402, -1, 1, false), w = f32({8, 16, 3, 3}, 403, -0.2, 0.2, false);
  Tensor ref_mm = matmul(a, b), ref_conv = conv2d(x, w, {}, Conv2dOptions{{1, 1}, {1, 1}, {1, 1}, 1});
  cuda::AutocastGuard bf16;
  Tensor mm = matmul(a.to(dev), b.to(dev));
  Tensor cv = conv2d(x.to(dev), w.to(dev), {}, Conv2dOptions{{1, 1}, {1, 1}, {1, 1}, 1});
  CHECK(mm.dtype() == DType::Float32);  // float32 results from bf16 operands
  std::string why;
  // bf16 keeps 8 bits of mantissa: sums of 256 products agree to about 1e-2.
  CHECK_MESSAGE(close(ref_mm.to_vector<float>(), mm.cpu().to_vector<float>(), 0.15, 2e-2, why), why);
  CHECK_MESSAGE(close(ref_conv.to_vector<float>(), cv.cpu().to_vector<float>(), 0.05, 2e-2, why), why);
  // and it is not exact float32 (the operands really were rounded)
  bool any_diff = false;
  auto r = ref_mm.to_vector<float>(), m = mm.cpu().to_vector<float>();
  for (size_t i = 0; i < r.size(); ++i) any_diff = any_diff || r[i] != m[i];
  CHECK(any_diff);
}

TEST_CASE("cuda: multi-tensor updates of many parameters in one launch match the CPU" *
          skip_unless(have_cuda(), no_cuda_reason())) {
  // Sizes around and across the chunk (framework/optim/multi_tensor.h), an
  // empty one, float32 and float64 (two launches), two groups.
  const std::vector<int64_t> sizes = {0, 1, 300, 65535, 65537, 200003};
  auto run = [&](Device d, int which) {
    std::vector<Tensor> a, b;
    for (size_t k = 0; k < sizes.size(); ++k) {
      Tensor p = f32({sizes[k]}, 800 + static_cast<uint64_t>(k)).detach();
      if (k % 3 == 2) p = p.to(DType::Float64);
      p = p.to(d);
      p.requires_grad_();
      (k % 2 ? b : a).push_back(p);
    }
    std::vector<ParamGroup> groups = {ParamGroup{a, 0.05, 1e-3}, ParamGroup{b, 0.01, 0.0}};
    std::unique_ptr<Optimizer> opt;
    if (which == 0) opt = std::make_unique<Sgd>(groups, SgdOptions{.momentum = 0.9, .dampening = 0.1});
    if (which == 1) opt = std::make_unique<Sgd>(groups, SgdOptions{.momentum = 0.9, .nesterov = true});
    if (which == 2) opt = std::make_unique<Adam>(groups, AdamOptions{});
    if (which == 3) opt = std::make_unique<AdamW>(groups, AdamWOptions{});
    std::vector<Tensor> all = a;
    all.insert(all.end(), b.begin(), b.end());
    for (int step = 0; step < 3; ++step) {
      for (size_t k = 0; k < all.size(); ++k)
        all[k].set_grad(f32({all[k].numel()}, 900 + 10 * static_cast<uint64_t>(step) + k, -1, 1, false)
                            .to(all[k].dtype())
                            .to(d));
      opt->step();
    }
    std::vector<double> out;
    for (const Tensor& p : all)
      for (double v : p.cpu().to_vector<double>()) out.push_back(v);
    return out;
  };
  for (int which = 0; which < 4; ++which) {
    CAPTURE(which);
    auto c = run(Device::cpu(), which), g = run(Device::cuda(), which);
    REQUIRE(c.size() == g.size());
    bool ok = true;
    for (size_t i = 0; i < c.size(); ++i) ok = ok && std::abs(c[i] - g[i]) <= 1e-5 * (1 + std::abs(c[i]));
    CHECK(ok);
  }
}

TEST_CASE("cuda: bf16 autocast converts each weight once per step; float32 outputs and weight gradients; "
          "backward in the precision of forward" * skip_unless(have_cuda(), no_cuda_reason())) {
  const Device dev = Device::cuda();
  cuda::WeightCache& cache = cuda::autocast_weight_cache();
  Tensor w = f32({8, 16, 3, 3}, 410, -0.2, 0.2, false).to(dev), lw = f32({10, 8 * 12 * 12}, 411, -0.1, 0.1, false).to(dev);
  w.requires_grad_();
  lw.requires_grad_();
  Sgd opt({w, lw}, SgdOptions{.lr = 0.01});
  Tensor x = f32({4, 16, 12, 12}, 412, -1, 1, false).to(dev);
  auto forward = [&] {
    Tensor h = conv2d(x, w, {}, Conv2dOptions{{1, 1}, {1, 1}, {1, 1}, 1});
    return linear(reshape(h, {4, 8 * 12 * 12}), lw);
  };
  const uint64_t c0 = cache.conversions();
  Tensor y1, y2;
  {
    cuda::AutocastGuard bf16;
    y1 = forward();
    y2 = forward();
  }
  CHECK(cache.conversions() == c0 + 2);  // w and lw, once each for two forwards
  CHECK(y1.dtype() == DType::Float32);
  sum(add(y1, y2)).backward();  // outside the guard: the nodes run in bf16 as their forward did
  CHECK(w.grad().dtype() == DType::Float32);
  CHECK(lw.grad().dtype() == DType::Float32);
  CHECK(cache.conversions() == c0 + 2);  // backward (dx = g W) reused the forward's copies
  opt.step();
  {
    cuda::AutocastGuard bf16;
    forward();
  }
  CHECK(cache.conversions() == c0 + 4);  // the step's new values, converted once each
}

TEST_CASE("cuda: the trainer's memory line names the device and its allocated, reserved and peak bytes" *
          skip_unless(have_cuda(), no_cuda_reason())) {
  Tensor t = zeros({1 << 20}, {.device = Device::cuda()});
  std::string line = device_memory_summary(Device::cuda(), true);
  CHECK(line.find("cuda:0 memory: ") == 0);
  CHECK(line.find("allocated (peak") != std::string::npos);
  CHECK(line.find("reserved (peak") != std::string::npos);
}

TEST_CASE("cuda: ops reject tensors on two devices" * skip_unless(have_cuda(), no_cuda_reason())) {
  const Device dev = Device::cuda();
  Tensor c = ones({2, 3}), g = ones({2, 3}, {.device = dev});
  CHECK_THROWS_CONTAINING(add(c, g), "cuda:0");
  CHECK_THROWS_CONTAINING(add(c, g), "cpu");
  CHECK_THROWS_CONTAINING(matmul(ones({2, 3}), ones({3, 2}, {.device = dev})), "cuda:0");
  CHECK_THROWS_CONTAINING(conv2d(ones({1, 1, 4, 4}, {.device = dev}), ones({1, 1, 3, 3})), "cuda:0");
  CHECK_THROWS_CONTAINING(cross_entropy(ones({2, 3}, {.device = dev}), labels({0, 1}, Device::cpu())), "cpu");
  CHECK_THROWS_CONTAINING(where(ones({2}), ones({2}, {.device = dev}), ones({2}, {.device = dev})), "cpu");
}

TEST_CASE("cuda: cuda:N out of range is a clear error; the current device follows allocations" *
          skip_unless(have_cuda(), no_cuda_reason())) {
#ifdef NEURN_WITH_CUDA
  const int n = cuda_device_count();
  const std::string expected = "cuda:" + std::to_string(n) + " does not exist: " + std::to_string(n) + " CUDA device";
  CHECK_THROWS_CONTAINING(Tensor::empty({4}, {.device = Device::cuda(n)}), expected);
  CHECK_THROWS_CONTAINING(ones({4}).to(Device::cuda(n)), expected);
  CHECK_THROWS_CONTAINING(cuda::DeviceGuard(n), expected);
  CHECK_THROWS_CONTAINING(cuda::memory_stats(n), expected);
  // Allocating on cuda:N makes it the thread's current device; a guard
  // restores the previous one.
  const int last = n - 1;
  Tensor t = ones({8}, {.device = Device::cuda(last)});
  CHECK(cuda::current_device() == last);
  {
    cuda::DeviceGuard g(0);
    CHECK(cuda::current_device() == 0);
  }
  CHECK(cuda::current_device() == last);
  CHECK(cuda::device_of(t.raw_data()) == last);
  CHECK(t.device() == Device::cuda(last));
  CHECK(sum(t).item() == 8.0);
  CHECK(cuda::memory_stats(last).allocated > 0);
  CHECK_FALSE(cuda::device_description(last).empty());
#endif
}

TEST_CASE("cuda: two devices: tensors, ops, copies and optimizers stay on cuda:1" *
          skip_unless(cuda_device_count() >= 2, "fewer than two CUDA devices")) {
#ifdef NEURN_WITH_CUDA
  const Device d1 = Device::cuda(1), d0 = Device::cuda(0);
  auto before0 = cuda::memory_stats(0), before1 = cuda::memory_stats(1);
  Tensor x = f32({4, 3, 9, 9}, 500).detach().to(d1);
  Tensor w = f32({5, 3, 3, 3}, 501, -0.3, 0.3).detach().to(d1);
  x.requires_grad_();
  w.requires_grad_();
  // An op of every kind: element-wise, cuDNN, cuBLAS, reductions, loss.
  Tensor y = relu(conv2d(x, w, {}, Conv2dOptions{{1, 1}, {1, 1}, {1, 1}, 1}));
  Tensor logits = matmul(flatten(y, 1), ones({5 * 81, 7}, {.device = d1}));
  Tensor loss = cross_entropy(logits, labels({0, 6, 3, 2}, d1));
  loss.backward();
  CHECK(y.device() == d1);
  CHECK(w.grad().device() == d1);
  Sgd opt(std::vector<Tensor>{w}, SgdOptions{0.1, 0.9});
  opt.step();
  // The same on the CPU.
  Tensor xc = x.detach().cpu(), wc = f32({5, 3, 3, 3}, 501, -0.3, 0.3).detach();
  xc.requires_grad_();
  wc.requires_grad_();
  Tensor yc = relu(conv2d(xc, wc, {}, Conv2dOptions{{1, 1}, {1, 1}, {1, 1}, 1}));
  Tensor lc = cross_entropy(matmul(flatten(yc, 1), ones({5 * 81, 7})), labels({0, 6, 3, 2}, Device::cpu()));
  lc.backward();
  Sgd optc(std::vector<Tensor>{wc}, SgdOptions{0.1, 0.9});
  optc.step();
  std::string why;
  CHECK_MESSAGE(close({static_cast<float>(lc.item())}, {static_cast<float>(loss.item())}, 1e-4, 1e-4, why), why);
  CHECK_MESSAGE(close(wc.detach().to_vector<float>(), w.detach().cpu().to_vector<float>(), 1e-4, 1e-4, why), why);
  // Memory came from cuda:1's allocator, not cuda:0's.
  CHECK(cuda::memory_stats(1).requests > before1.requests);
  CHECK(cuda::memory_stats(0).requests == before0.requests);
  // Copies between devices, both ways, and the values survive.
  Tensor on0 = y.detach().to(d0);
  CHECK(on0.device() == d0);
  CHECK(on0.cpu().to_vector<float>() == y.detach().cpu().to_vector<float>());
  Tensor back = on0.to(d1);
  CHECK(back.cpu().to_vector<float>() == y.detach().cpu().to_vector<float>());
  // Ops refuse a mix of devices, naming both.
  CHECK_THROWS_CONTAINING(add(on0, back), "cuda:1");
#endif
}

TEST_CASE("cuda: cross_entropy and nll_loss check the targets' range, as on the CPU" *
          skip_unless(have_cuda(), no_cuda_reason())) {
#ifdef NEURN_WITH_CUDA
  const Device dev = Device::cuda();
  Tensor logits = zeros({3, 4}, {.device = dev});
  Tensor good = from_vector<int64_t>({0, 3, 2}, {3}).to(dev);
  CHECK(std::isfinite(cross_entropy(logits, good).item()));
  Tensor high = from_vector<int64_t>({0, 4, 2}, {3}).to(dev);
  CHECK_THROWS_CONTAINING(cross_entropy(logits, high), "cross_entropy: target 4 at position 1 is outside [0, 4)");
  Tensor neg = from_vector<int64_t>({0, 1, -1}, {3}).to(dev);
  CHECK_THROWS_CONTAINING(nll_loss(log_softmax(logits, 1), neg), "nll_loss: target -1 at position 2 is outside [0, 4)");
  // The CPU says the same.
  CHECK_THROWS_CONTAINING(cross_entropy(zeros({3, 4}), from_vector<int64_t>({0, 4, 2}, {3})),
                          "cross_entropy: target 4 at position 1 is outside [0, 4)");
#endif
}
