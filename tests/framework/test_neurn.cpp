// The NeuRN op: forward against a direct two-pass computation, gradients in
// float64, the tie rule of the max, options, errors, meta, and CUDA against CPU.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "framework/cuda/neurn_sums.h"
#include "framework/ops.h"
#include "gradcheck.h"
#include "skip.h"

using namespace neurn;
using namespace neurn::testing;

namespace {

// The definition, computed the slow way: gather every patch, two-pass variance.
std::vector<double> reference_neurn(const std::vector<double>& x, const Shape& s, const NeuRNOptions& opt) {
  const int64_t N = s[0], C = s[1], H = s[2], W = s[3], r = opt.k / 2;
  std::vector<double> sig(x.size(), 0.0), out(x.size(), 0.0);
  auto refl = [](int64_t i, int64_t n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); };
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j) {
        std::vector<double> patch;
        for (int64_t di = -r; di <= r; ++di)
          for (int64_t dj = -r; dj <= r; ++dj) {
            int64_t a = i + di, b = j + dj;
            bool in = a >= 0 && a < H && b >= 0 && b < W;
            if (opt.padding == NeuRNPadding::Valid) {
              if (in) patch.push_back(x[(nc * H + a) * W + b]);
            } else if (opt.padding == NeuRNPadding::Zero) {
              patch.push_back(in ? x[(nc * H + a) * W + b] : 0.0);
            } else {
              patch.push_back(x[(nc * H + refl(a, H)) * W + refl(b, W)]);
            }
          }
        double m = 0;
        for (double v : patch) m += v;
        m /= patch.size();
        double var = 0;
        for (double v : patch) var += (v - m) * (v - m);
        sig[(nc * H + i) * W + j] = std::sqrt(var / patch.size());
      }
  int64_t per = opt.max_scope == NeuRNScope::Image     ? C * H * W
                : opt.max_scope == NeuRNScope::Channel ? H * W
                                                       : N * C * H * W;
  for (size_t g = 0; g < x.size(); g += per) {
    double c = 0;
    for (int64_t p = 0; p < per; ++p) c = std::max(c, sig[g + p]);
    for (int64_t p = 0; p < per; ++p) out[g + p] = sig[g + p] / (c + opt.eps);
  }
  return out;
}

const NeuRNPadding kPaddings[] = {NeuRNPadding::Valid, NeuRNPadding::Zero, NeuRNPadding::Reflect};
const NeuRNScope kScopes[] = {NeuRNScope::Image, NeuRNScope::Channel, NeuRNScope::Batch};

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// Random values with flat (constant) regions: a block of each plane set to one
// value, so some patches have sigma = 0 exactly.
Tensor with_flat_regions(const Shape& s, uint64_t seed) {
  Tensor t = leaf(s, seed, -1.0, 1.0);
  double* p = t.data<double>();
  const int64_t H = s[2], W = s[3];
  for (int64_t nc = 0; nc < s[0] * s[1]; ++nc)
    for (int64_t i = 0; i < H / 2 + 1; ++i)
      for (int64_t j = 0; j < W / 2 + 1; ++j) p[(nc * H + i) * W + j] = 0.25 * static_cast<double>(nc % 3) - 0.3;
  return t;
}

}  // namespace

TEST_CASE("neurn forward matches the direct two-pass definition") {
  Generator gen(11);
  for (Shape s : {Shape{2, 3, 7, 9}, Shape{1, 2, 5, 4}, Shape{3, 1, 12, 10}}) {
    Tensor x = rand(s, {DType::Float64}, &gen, -2.0, 3.0);
    auto xv = x.to_vector<double>();
    for (int64_t k : {1, 3, 5, 7, 9, 11}) {
      for (NeuRNPadding pad : kPaddings) {
        if (pad == NeuRNPadding::Reflect && (k / 2 >= s[2] || k / 2 >= s[3])) continue;
        for (NeuRNScope scope : kScopes) {
          NeuRNOptions opt{k, pad, scope, 1e-6};
          INFO("shape " << shape_str(s) << " " << neurn_options_str(opt));
          auto ref = reference_neurn(xv, s, opt);
          CHECK(max_abs_diff(neurn_norm(x, opt).to_vector<double>(), ref) < 1e-12);
          // float32: the same up to float rounding.
          CHECK(max_abs_diff(neurn_norm(x.to(DType::Float32), opt).to_vector<double>(), ref) < 2e-6);
        }
      }
    }
  }
}

TEST_CASE("neurn with a patch larger than the image (valid and zero padding)") {
  Generator gen(5);
  Shape s{2, 2, 4, 6};
  Tensor x = rand(s, {DType::Float64}, &gen);
  for (NeuRNPadding pad : {NeuRNPadding::Valid, NeuRNPadding::Zero}) {
    NeuRNOptions opt{15, pad, NeuRNScope::Image, 1e-6};
    CHECK(max_abs_diff(neurn_norm(x, opt).to_vector<double>(), reference_neurn(x.to_vector<double>(), s, opt)) < 1e-12);
  }
}

TEST_CASE("neurn resists cancellation: 1000 + small noise matches the two-pass result") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    Generator gen(3);
    Shape s{2, 3, 16, 16};
    Tensor noise = randn(s, {DType::Float64}, &gen, 0.0, 1e-2);
    Tensor x = add(noise, 1000.0).to(dt);
    auto xv = x.to_vector<double>();  // the values the op sees (float32-rounded for float32)
    for (NeuRNPadding pad : kPaddings) {
      NeuRNOptions opt{3, pad, NeuRNScope::Image, 1e-6};
      auto ref = reference_neurn(xv, s, opt);
      auto got = neurn_norm(x, opt).to_vector<double>();
      double worst = 0;
      for (size_t i = 0; i < ref.size(); ++i)
        worst = std::max(worst, std::abs(got[i] - ref[i]) / std::max(std::abs(ref[i]), 1e-3));
      INFO("dtype " << dtype_name(dt) << " padding " << neurn_padding_name(pad) << " worst relative error " << worst);
      CHECK(worst < 1e-4);
    }
  }
}

TEST_CASE("neurn: k = 1 and blank images give zeros, never NaN; outputs lie in [0, 1)") {
  Generator gen(2);
  Tensor x = randn({2, 3, 8, 8}, {}, &gen);
  for (float v : neurn_norm(x, {.k = 1}).to_vector<float>()) CHECK(v == 0.0f);
  for (NeuRNPadding pad : {NeuRNPadding::Valid, NeuRNPadding::Reflect})
    for (float v : neurn_norm(full({1, 2, 5, 5}, 7.0), {.k = 3, .padding = pad}).to_vector<float>()) CHECK(v == 0.0f);
  // zero padding sees the image edge against black, so a constant image is not flat there
  auto z = neurn_norm(full({1, 1, 5, 5}, 7.0), {.k = 3, .padding = NeuRNPadding::Zero}).to_vector<float>();
  CHECK(z[12] == 0.0f);
  for (float v : neurn_norm(zeros({1, 1, 4, 4}), {.k = 3, .eps = 0.0}).to_vector<float>()) CHECK(v == 0.0f);
  auto y = neurn_norm(x, {}).to_vector<float>();
  float hi = 0;
  for (float v : y) {
    CHECK(v >= 0.0f);
    CHECK(v < 1.0f);
    hi = std::max(hi, v);
  }
  CHECK(hi > 0.999f);  // the maximum of each image maps to c / (c + eps)
}

TEST_CASE("neurn gradients (float64) for every k in {1, 3, 5}, padding and scope, with flat regions") {
  Shape s{2, 2, 6, 7};
  for (int64_t k : {1, 3, 5}) {
    for (NeuRNPadding pad : kPaddings) {
      for (NeuRNScope scope : kScopes) {
        NeuRNOptions opt{k, pad, scope, 1e-6};
        INFO(neurn_options_str(opt));
        OpFn f = [opt](const std::vector<Tensor>& in) { return neurn_norm(in[0], opt); };
        CHECK_GRADCHECK(gradcheck(f, {leaf(s, 100 + k)}));
        // Step 1e-4, not 1e-6: a flat patch nudged by h has sigma ~ h, and
        // E[y^2] - E[y]^2 carries a rounding error of ~1e-17 E[y^2], so with
        // h = 1e-6 the central difference sees noise of ~1e-5 (the function
        // is piecewise smooth, and symmetric at the kink, so a larger step is exact).
        CHECK_GRADCHECK(gradcheck(f, {with_flat_regions(s, 200 + k)}, 1e-4));
      }
    }
  }
  // k = 9 takes the block scheme (k > 7) instead of direct sums.
  for (NeuRNPadding pad : kPaddings) {
    NeuRNOptions opt{9, pad, NeuRNScope::Image, 1e-6};
    INFO(neurn_options_str(opt));
    OpFn f = [opt](const std::vector<Tensor>& in) { return neurn_norm(in[0], opt); };
    CHECK_GRADCHECK(gradcheck(f, {leaf({1, 2, 10, 11}, 300)}));
  }
  OpFn f = [](const std::vector<Tensor>& in) { return neurn_norm(in[0], {.k = 3}); };
  CHECK(accumulates(f, {leaf(s, 9)}));
  // Composed with other ops: the gradient flows through.
  OpFn g = [](const std::vector<Tensor>& in) { return mul(neurn_norm(mul(in[0], 3.0), {.k = 5}), in[0]); };
  CHECK_GRADCHECK(gradcheck(g, {leaf({1, 3, 6, 6}, 4)}));
}

TEST_CASE("neurn sends the gradient of the max to its first occurrence on ties") {
  // Two channels that are copies of each other: every sigma of channel 0 ties
  // with channel 1, so with scope image the max is found first in channel 0.
  Generator gen(8);
  Tensor base = rand({1, 1, 6, 6}, {DType::Float64}, &gen, 0.0, 0.1);
  base.data<double>()[14] = 1.0;  // the largest sigma is next to this spot
  auto make = [&](double bump0, double bump1) {
    Tensor a = base.clone(), b = base.clone();
    a.data<double>()[14] *= 1 + bump0;
    b.data<double>()[14] *= 1 + bump1;
    Tensor x = concat({a, b}, 1);
    x.requires_grad_();
    return x;
  };
  auto grad_of = [](Tensor x) {
    Generator g(1);
    Tensor R = rand(x.shape(), {DType::Float64}, &g);
    sum(mul(neurn_norm(x, {.k = 3}), R)).backward();
    return x.grad().to_vector<double>();
  };
  auto tied = grad_of(make(0, 0));
  auto first = grad_of(make(1e-9, 0));   // channel 0 strictly larger
  auto second = grad_of(make(0, 1e-9));  // channel 1 strictly larger
  CHECK(max_abs_diff(tied, first) < 1e-6);
  CHECK(max_abs_diff(tied, second) > 1e-3);
}

TEST_CASE("neurn options: parsing, printing, validation") {
  NeuRNOptions d = parse_neurn_options("");
  CHECK(d.k == 3);
  CHECK(d.padding == NeuRNPadding::Valid);
  CHECK(d.max_scope == NeuRNScope::Image);
  CHECK(d.eps == 1e-6);
  NeuRNOptions o = parse_neurn_options("k=5,padding=reflect,max_scope=channel,eps=1e-3");
  CHECK(o.k == 5);
  CHECK(o.padding == NeuRNPadding::Reflect);
  CHECK(o.max_scope == NeuRNScope::Channel);
  CHECK(o.eps == 1e-3);
  NeuRNOptions back = parse_neurn_options(neurn_options_str(o));
  CHECK(back.k == o.k);
  CHECK(back.padding == o.padding);
  CHECK(back.max_scope == o.max_scope);
  CHECK(back.eps == o.eps);
  CHECK(neurn_options_from_map({{"k", "7"}, {"max_scope", "batch"}}).max_scope == NeuRNScope::Batch);
  CHECK_THROWS_CONTAINING(parse_neurn_options("k=4"), "odd");
  CHECK_THROWS_CONTAINING(parse_neurn_options("k=0"), "odd");
  CHECK_THROWS_CONTAINING(parse_neurn_options("k=three"), "integer");
  CHECK_THROWS_CONTAINING(parse_neurn_options("padding=same"), "valid, zero or reflect");
  CHECK_THROWS_CONTAINING(parse_neurn_options("max_scope=pixel"), "image, channel or batch");
  CHECK_THROWS_CONTAINING(parse_neurn_options("size=3"), "unknown option 'size'");
  CHECK_THROWS_CONTAINING(parse_neurn_options("k"), "key=value");
  CHECK_THROWS_CONTAINING(parse_neurn_options("k=3,k=5"), "twice");
  CHECK_THROWS_CONTAINING(parse_neurn_options("eps=-1"), "eps");
}

TEST_CASE("neurn rejects bad inputs with a message naming what it got") {
  CHECK_THROWS_CONTAINING(neurn_norm(zeros({3, 8, 8}), {}), "(N, C, H, W), got (3, 8, 8)");
  CHECK_THROWS_CONTAINING(neurn_norm(zeros({1, 1, 4, 8}), {.k = 9, .padding = NeuRNPadding::Reflect}), "k / 2 < H");
  CHECK_THROWS_CONTAINING(neurn_norm(zeros({1, 1, 4, 8}), {.k = 2}), "odd");
  CHECK_THROWS_CONTAINING(neurn_norm(zeros({1, 1, 4, 4}, {.dtype = DType::Int64}), {}), "floating-point");
}

TEST_CASE("neurn on meta tensors: shape and FLOPs, no data") {
  Tensor x = zeros({4, 3, 32, 32}, {.device = Device::meta()});
  int64_t f31 = 0, f3 = 0;
  {
    FlopCounter fc;
    Tensor y = neurn_norm(x, {.k = 31});
    CHECK(y.shape() == x.shape());
    CHECK(y.device().is_meta());
    f31 = fc.flops();
  }
  {
    FlopCounter fc;
    neurn_norm(x, {.k = 3});
    f3 = fc.flops();
  }
  CHECK(f31 == kNeuRNFlopsPerElement * x.numel());
  CHECK(f3 == f31);  // independent of k
}

TEST_CASE("neurn on CUDA matches the CPU (forward and backward)" *
          neurn::testing::skip_unless(neurn::testing::have_cuda(), neurn::testing::no_cuda_reason())) {
  Generator gen(21);
  for (Shape s : {Shape{3, 3, 32, 32}, Shape{2, 2, 17, 23}, Shape{1, 1, 224, 224}}) {
    Tensor x = add(randn(s, {}, &gen), 100.0);
    Tensor R = randn(s, {}, &gen);
    for (int64_t k : {1, 3, 5, 15})
      for (NeuRNPadding pad : kPaddings)
        for (NeuRNScope scope : kScopes) {
          NeuRNOptions opt{k, pad, scope, 1e-6};
          INFO("shape " << shape_str(s) << " " << neurn_options_str(opt));
          Tensor xc = x.clone().requires_grad_();
          sum(mul(neurn_norm(xc, opt), R)).backward();
          Tensor xg = x.to(Device::cuda()).requires_grad_();
          Tensor yg = neurn_norm(xg, opt);
          sum(mul(yg, R.to(Device::cuda()))).backward();
          auto a = neurn_norm(x, opt).to_vector<double>(), b = yg.cpu().to_vector<double>();
          CHECK(max_abs_diff(a, b) < 1e-5);
          auto ga = xc.grad().to_vector<double>(), gb = xg.grad().cpu().to_vector<double>();
          double scale = 0;
          for (double v : ga) scale = std::max(scale, std::abs(v));
          CHECK(max_abs_diff(ga, gb) <= 1e-4 * (1 + scale));
        }
  }
}

namespace {

// The CUDA kernels' per-thread functions (framework/cuda/neurn_sums.h) run
// over every row and column of every plane, as the kernels' blocks do.
struct EmulatedCuda {
  std::vector<float> out, dx;
};

EmulatedCuda emulate_cuda(const std::vector<float>& x, const std::vector<float>& gout, const Shape& sh,
                          const NeuRNOptions& opt) {
  const int64_t N = sh[0], C = sh[1], H = sh[2], W = sh[3], HW = H * W, r = opt.k / 2;
  const int pad = static_cast<int>(opt.padding);
  const int64_t per = opt.max_scope == NeuRNScope::Image ? C : opt.max_scope == NeuRNScope::Channel ? 1 : N * C;
  const int64_t groups = N * C / per;
  std::vector<float> out(x.size()), mean(x.size()), dx(x.size());
  std::vector<double> shift(N * C), gmax(groups), h1(HW), h2(HW);
  std::vector<int64_t> garg(groups);
  for (int64_t g = 0; g < groups; ++g) {
    float best = -1.f;
    int64_t best_at = INT64_MAX;
    for (int64_t q = 0; q < per; ++q) {
      const int64_t plane = g * per + q, off = plane * HW;
      double s = 0;
      for (int64_t p = 0; p < HW; ++p) s += x[off + p];
      shift[plane] = s /= HW;
      for (int64_t i = 0; i < H; ++i)
        cuda::neurn_row_sums(x.data() + off + i * W, W, r, pad, s, h1.data() + i * W, h2.data() + i * W);
      for (int64_t j = 0; j < W; ++j)
        cuda::neurn_column_stats(h1.data(), h2.data(), H, W, j, r, pad, s, out.data() + off, mean.data() + off, off,
                                 best, best_at);
    }
    gmax[g] = best;
    garg[g] = best_at;
    for (int64_t p = g * per * HW; p < (g + 1) * per * HW; ++p)
      out[p] = static_cast<float>(static_cast<double>(out[p]) / (best + opt.eps));
  }
  for (int64_t g = 0; g < groups; ++g) {
    const double D = gmax[g] + opt.eps;
    double dot = 0;
    for (int64_t p = g * per * HW; p < (g + 1) * per * HW; ++p) dot += static_cast<double>(gout[p]) * out[p];
    const double dc = -dot / D;
    for (int64_t q = 0; q < per; ++q) {
      const int64_t plane = g * per + q, off = plane * HW;
      if (opt.k == 1) continue;  // dx stays 0
      for (int64_t i = 0; i < H; ++i) {
        const int64_t arg = garg[g],
                      arg_in_row = (arg >= off + i * W && arg < off + (i + 1) * W) ? arg - off - i * W : -1;
        cuda::neurn_row_transposed(out.data() + off, mean.data() + off, gout.data() + off, H, W, r, pad, D, dc, i,
                                   arg_in_row, h1.data() + i * W, h2.data() + i * W);
      }
      for (int64_t j = 0; j < W; ++j)
        cuda::neurn_column_transposed(h1.data(), h2.data(), x.data() + off, H, W, r, pad, shift[plane], j,
                                      dx.data() + off);
    }
  }
  return {out, dx};
}

}  // namespace

TEST_CASE("the CUDA kernels' per-thread arithmetic (run on the CPU) matches the CPU op") {
  Generator gen(31);
  for (Shape s : {Shape{2, 3, 9, 11}, Shape{1, 2, 16, 16}}) {
    Tensor x = add(rand(s, {}, &gen), 5.0);
    Tensor R = randn(s, {}, &gen);
    for (int64_t k : {1, 3, 5, 9})
      for (NeuRNPadding pad : kPaddings)
        for (NeuRNScope scope : kScopes) {
          if (pad == NeuRNPadding::Reflect && (k / 2 >= s[2] || k / 2 >= s[3])) continue;
          NeuRNOptions opt{k, pad, scope, 1e-6};
          INFO("shape " << shape_str(s) << " " << neurn_options_str(opt));
          Tensor xc = x.clone();
          xc.requires_grad_();
          Tensor y = neurn_norm(xc, opt);
          sum(mul(y, R)).backward();
          EmulatedCuda e = emulate_cuda(x.to_vector<float>(), R.to_vector<float>(), s, opt);
          auto yv = y.to_vector<double>(), gv = xc.grad().to_vector<double>();
          double dy = 0, dg = 0, scale = 0;
          for (size_t i = 0; i < yv.size(); ++i) {
            dy = std::max(dy, std::abs(yv[i] - e.out[i]));
            dg = std::max(dg, std::abs(gv[i] - e.dx[i]));
            scale = std::max(scale, std::abs(gv[i]));
          }
          CHECK(dy < 1e-5);
          CHECK(dg <= 1e-4 * (1 + scale));
        }
  }
}

TEST_CASE("neurn ignores brightness offsets and contrast scale (eps = 0)") {
  Generator gen(12);
  Tensor x = rand({2, 3, 12, 12}, {DType::Float64}, &gen);
  for (NeuRNPadding pad : {NeuRNPadding::Valid, NeuRNPadding::Reflect})
    for (NeuRNScope scope : kScopes) {
      NeuRNOptions opt{3, pad, scope, 0.0};
      auto a = neurn_norm(x, opt).to_vector<double>();
      auto b = neurn_norm(add(mul(x, 37.5), -250.0), opt).to_vector<double>();
      CHECK(max_abs_diff(a, b) < 1e-10);
    }
  // Per-channel offsets too (a colour cast), with channel scope also per-channel gains.
  Tensor cast = from_vector(std::vector<double>{0.3, -0.7, 2.0}, {1, 3, 1, 1});
  Tensor gain = from_vector(std::vector<double>{2.0, 0.5, 9.0}, {1, 3, 1, 1});
  NeuRNOptions ch{3, NeuRNPadding::Valid, NeuRNScope::Channel, 0.0};
  CHECK(max_abs_diff(neurn_norm(x, ch).to_vector<double>(),
                     neurn_norm(add(mul(x, gain), cast), ch).to_vector<double>()) < 1e-10);
}
