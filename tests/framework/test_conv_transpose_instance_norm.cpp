// conv_transpose2d and instance_norm beyond the gradient-check table: the
// output-size rule, the adjoint identity with conv2d (no reference framework
// needed), FLOPs and the meta device, errors, the InstanceNorm2d layer's
// state; and float64 agreement with torch.nn.functional.conv_transpose2d /
// instance_norm (outputs, gradients of sum(y * r), running statistics) where
// /usr/bin/python3 has torch (tests/framework/torch_new_ops.py); skipped,
// visibly, otherwise.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "framework/ops.h"
#include "framework/ops/conv_transpose.h"
#include "framework/ops/instance_norm.h"
#include "gradcheck.h"
#include "layers/conv_transpose.h"
#include "layers/init.h"
#include "layers/instance_norm.h"
#include "skip.h"

using namespace neurn;
using namespace neurn::testing;
namespace fs = std::filesystem;

// Where /usr/bin/python3 lacks torch (apt-get install python3-torch).
#define SKIP_UNLESS_TORCH_OPS neurn::testing::skip_unless(neurn::testing::have_torch(), neurn::testing::kNoTorch)

namespace {

double dot(const Tensor& a, const Tensor& b) { return sum(mul(a, b)).item(); }

// max |a - b| / max(max |b|, 1e-300)
double rel_diff(const Tensor& got, const Tensor& want) {
  auto g = got.to_vector<double>(), w = want.to_vector<double>();
  REQUIRE(g.size() == w.size());
  double d = 0, s = 1e-300;
  for (size_t i = 0; i < g.size(); ++i) {
    d = std::max(d, std::abs(g[i] - w[i]));
    s = std::max(s, std::abs(w[i]));
  }
  return d / s;
}

void write_tensor(const fs::path& dir, const std::string& name, const Tensor& t) {
  std::ofstream f(dir / (name + ".txt"));
  for (int64_t s : t.shape()) f << s << ' ';
  f << '\n';
  f.precision(17);
  for (double v : t.to_vector<double>()) f << v << ' ';
  f << '\n';
}

Tensor read_tensor(const fs::path& dir, const std::string& name) {
  std::ifstream f(dir / (name + ".txt"));
  REQUIRE_MESSAGE(f.good(), "missing " << (dir / (name + ".txt")).string());
  std::string line;
  std::getline(f, line);
  Shape shape;
  std::istringstream ls(line);
  for (int64_t v; ls >> v;) shape.push_back(v);
  std::getline(f, line);
  std::istringstream vs(line);
  std::vector<double> vals;
  for (double v; vs >> v;) vals.push_back(v);
  return from_vector(vals, shape);
}

fs::path fresh_dir(const std::string& tag) {
  fs::path d = fs::temp_directory_path() / ("neurn-new-ops-" + tag + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void run_torch(const fs::path& dir) {
  std::string cmd = "/usr/bin/python3 '" + std::string(NEURN_SOURCE_DIR) + "/tests/framework/torch_new_ops.py' '" +
                    dir.string() + "'";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
}

struct TransposeCase {
  Shape x, w;
  ConvTranspose2dOptions opt;
  bool bias;
};

}  // namespace

TEST_CASE("conv_transpose2d: output size, and the adjoint of conv2d with the same weight") {
  // <conv2d(y, w), x> = <y, conv_transpose2d(x, w)> for every y, x: the
  // transposed convolution is conv2d's adjoint, the defining property.
  const std::vector<TransposeCase> cases = {
      {{2, 3, 4, 5}, {3, 2, 3, 3}, {}, false},
      {{1, 4, 3, 3}, {4, 3, 2, 2}, {{2, 2}}, false},
      {{1, 4, 4, 3}, {4, 3, 3, 2}, {{2, 3}, {1, 0}, {1, 2}, {2, 1}, 2}, false},
      {{2, 6, 3, 4}, {6, 1, 3, 3}, {{2, 2}, {1, 1}, {0, 1}, {1, 1}, 6}, false},
  };
  for (const auto& c : cases) {
    Tensor x = leaf(c.x, 11).detach(), w = leaf(c.w, 12).detach();
    Tensor y = conv_transpose2d(x, w, {}, c.opt);
    const int64_t ho = (c.x[2] - 1) * c.opt.stride[0] - 2 * c.opt.padding[0] +
                       c.opt.dilation[0] * (c.w[2] - 1) + c.opt.output_padding[0] + 1;
    const int64_t wo = (c.x[3] - 1) * c.opt.stride[1] - 2 * c.opt.padding[1] +
                       c.opt.dilation[1] * (c.w[3] - 1) + c.opt.output_padding[1] + 1;
    REQUIRE(y.shape() == Shape{c.x[0], c.w[1] * c.opt.groups, ho, wo});
    Tensor probe = leaf(y.shape(), 13).detach();
    Tensor back = conv2d(probe, w, {}, Conv2dOptions{c.opt.stride, c.opt.padding, c.opt.dilation, c.opt.groups});
    REQUIRE(back.shape() == x.shape());
    double lhs = dot(back, x), rhs = dot(probe, y);
    CHECK(std::abs(lhs - rhs) <= 1e-12 * std::max(1.0, std::abs(rhs)));
  }
}

TEST_CASE("conv_transpose2d: meta shapes and FLOPs, float32 agrees with float64, bias per channel") {
  ParamScope meta({.device = Device::meta()});
  Tensor x = Tensor::empty({2, 8, 5, 7}, {DType::Float32, Device::meta()});
  Tensor w = Tensor::empty({8, 4, 2, 2}, {DType::Float32, Device::meta()});
  Tensor b = Tensor::empty({4}, {DType::Float32, Device::meta()});
  FlopCounter fc;
  Tensor y = conv_transpose2d(x, w, b, ConvTranspose2dOptions{{2, 2}});
  CHECK(y.shape() == Shape{2, 4, 10, 14});
  CHECK(y.device().is_meta());
  // 2 per multiply-add of every input value with its 4 x 2 x 2 taps, plus the bias
  CHECK(fc.flops() == 2 * (2 * 8 * 5 * 7) * (4 * 2 * 2) + 2 * 4 * 10 * 14);
}

TEST_CASE("conv_transpose2d: float32 CPU agrees with float64, and the bias adds per output channel") {
  Tensor x = leaf({2, 4, 5, 6}, 21).detach(), w = leaf({4, 3, 3, 3}, 22).detach(), b = leaf({3}, 23).detach();
  ConvTranspose2dOptions opt{{2, 2}, {1, 1}, {1, 1}};
  Tensor y64 = conv_transpose2d(x, w, b, opt);
  Tensor y32 = conv_transpose2d(x.to(DType::Float32), w.to(DType::Float32), b.to(DType::Float32), opt);
  CHECK(rel_diff(y32.to(DType::Float64), y64) < 1e-5);
  Tensor nob = conv_transpose2d(x, w, {}, opt);
  CHECK(rel_diff(sub(y64, nob), expand(reshape(b, {1, 3, 1, 1}), y64.shape())) < 1e-14);
}

TEST_CASE("conv_transpose2d and instance_norm: bad input names the op and what is wrong") {
  Tensor x = zeros({1, 4, 3, 3}), w = zeros({4, 2, 2, 2});
  CHECK_THROWS_CONTAINING(conv_transpose2d(x, zeros({3, 2, 2, 2})), "conv_transpose2d: weight (3, 2, 2, 2) (C_in, C_out / groups, kH, kW) expects C_in=3, but the input (1, 4, 3, 3) has 4");
  CHECK_THROWS_CONTAINING(conv_transpose2d(x, w, {}, ConvTranspose2dOptions{{2, 2}, {0, 0}, {2, 0}}),
                          "conv_transpose2d: output_padding must be in [0, stride)");
  CHECK_THROWS_CONTAINING(conv_transpose2d(x, w, zeros({3})), "conv_transpose2d: bias must have shape (2,) (C_out)");
  CHECK_THROWS_CONTAINING(conv_transpose2d(x, w, {}, ConvTranspose2dOptions{{1, 1}, {0, 0}, {0, 0}, {1, 1}, 3}),
                          "conv_transpose2d: groups=3 does not divide");
  CHECK_THROWS_CONTAINING(conv_transpose2d(zeros({1, 4, 1, 1}), w, {}, ConvTranspose2dOptions{{1, 1}, {2, 2}}),
                          "gives an empty output");
  CHECK_THROWS_CONTAINING(instance_norm(zeros({2, 3, 1, 1}), {}, {}, {}, {}),
                          "instance_norm: expected more than 1 spatial element");
  CHECK_THROWS_CONTAINING(instance_norm(zeros({2, 3}), {}, {}, {}, {}), "instance_norm: input must be (N, C, *spatial)");
  CHECK_THROWS_CONTAINING(instance_norm(zeros({2, 3, 4}), zeros({4}), {}, {}, {}),
                          "instance_norm: weight must have shape (3)");
  CHECK_THROWS_CONTAINING(instance_norm(zeros({2, 3, 4}), {}, {}, {}, {}, false),
                          "use_input_stats=false needs running_mean");
}

TEST_CASE("instance_norm: every plane normalised on its own; running statistics as the batch mean of the planes'") {
  Generator g(5);
  Tensor x = rand({3, 2, 4, 5}, {DType::Float64}, &g, -2.0, 3.0);
  Tensor rm = zeros({2}, {DType::Float64}), rv = ones({2}, {DType::Float64});
  Tensor y = instance_norm(x, {}, {}, rm, rv, true, 0.25);
  auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  double mean_of_means[2] = {0, 0}, mean_of_vars[2] = {0, 0};
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t c = 0; c < 2; ++c) {
      const int64_t o = (n * 2 + c) * 20;
      double m = 0, v = 0;
      for (int i = 0; i < 20; ++i) m += xv[o + i] / 20;
      for (int i = 0; i < 20; ++i) v += (xv[o + i] - m) * (xv[o + i] - m);
      for (int i = 0; i < 20; ++i) CHECK(yv[o + i] == doctest::Approx((xv[o + i] - m) / std::sqrt(v / 20 + 1e-5)));
      mean_of_means[c] += m / 3;
      mean_of_vars[c] += v / 19 / 3;  // unbiased
    }
  auto rmv = rm.to_vector<double>(), rvv = rv.to_vector<double>();
  for (int c = 0; c < 2; ++c) {
    CHECK(rmv[c] == doctest::Approx(0.25 * mean_of_means[c]).epsilon(1e-12));
    CHECK(rvv[c] == doctest::Approx(0.75 + 0.25 * mean_of_vars[c]).epsilon(1e-12));
  }
}

TEST_CASE("layers: ConvTranspose2d keys and shapes as torch's; InstanceNorm2d state and modes") {
  Generator g(3);
  ParamScope scope({}, &g);
  ConvTranspose2d up(8, 4, 2, 2);
  auto sd = up.state_dict();
  REQUIRE(sd.size() == 2);
  CHECK(sd[0].first == "weight");
  CHECK(sd[0].second.shape() == Shape{8, 4, 2, 2});
  CHECK(sd[1].first == "bias");
  // torch's bound 1 / sqrt(fan_in), fan_in = (out / groups) kH kW = 16 for this weight layout
  double wmax = 0;
  for (double v : sd[0].second.to_vector<double>()) wmax = std::max(wmax, std::abs(v));
  CHECK(wmax <= 0.25);
  CHECK(wmax > 0.15);
  CHECK(up(zeros({1, 8, 3, 5})).shape() == Shape{1, 4, 6, 10});
  CHECK(up.type() == "ConvTranspose");
  CHECK_THROWS_CONTAINING(up(zeros({1, 3, 3, 5})), "ConvTranspose2d(8 -> 4): expected input (N, 8, H, W)");

  InstanceNorm2d plain(3);
  CHECK(plain.state_dict().empty());  // torch's defaults: no affine, no running statistics
  InstanceNorm2d tracked(3, InstanceNormSpec{.affine = true, .track_running_stats = true});
  std::vector<std::string> keys;
  for (auto& [k, t] : tracked.state_dict()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
  Tensor x = rand({2, 3, 4, 4}, {}, &g, 1.0, 3.0);
  tracked.train();
  tracked(x);
  CHECK(tracked.buffer("running_mean").to_vector<double>()[0] > 0.1);  // moved toward the mean 2
  CHECK(tracked.buffer("num_batches_tracked").to_vector<int64_t>()[0] == 0);  // as torch: never advanced
  tracked.eval();
  Tensor before = tracked.buffer("running_mean").clone();
  Tensor ye = tracked(x);
  CHECK(rel_diff(tracked.buffer("running_mean"), before) == 0.0);
  // eval uses the running statistics: the output mean is far from 0
  CHECK(mean(ye).item() > 0.5);
}

TEST_CASE("conv_transpose2d agrees with torch.nn.functional.conv_transpose2d in float64" * SKIP_UNLESS_TORCH_OPS) {
  const std::vector<TransposeCase> cases = {
      {{2, 3, 4, 5}, {3, 2, 3, 3}, {}, true},
      {{2, 8, 5, 4}, {8, 4, 2, 2}, {{2, 2}}, true},  // U-Net's up-convolution
      {{1, 4, 4, 3}, {4, 3, 3, 2}, {{2, 3}, {1, 0}, {1, 2}, {2, 1}, 2}, true},
      {{2, 6, 3, 4}, {6, 1, 3, 3}, {{2, 2}, {1, 1}, {0, 1}, {1, 1}, 6}, false},  // depthwise
  };
  int k = 0;
  for (const auto& c : cases) {
    INFO("case " << k);
    fs::path d = fresh_dir("ct" + std::to_string(k++));
    Tensor x = leaf(c.x, 31), w = leaf(c.w, 32);
    Tensor b = c.bias ? leaf({c.w[1] * c.opt.groups}, 33) : Tensor();
    Tensor y = conv_transpose2d(x, w, b, c.opt);
    Generator g(34);
    Tensor r = randn(y.shape(), {DType::Float64}, &g);
    sum(mul(y, r)).backward();
    write_tensor(d, "x", x), write_tensor(d, "w", w), write_tensor(d, "r", r);
    if (c.bias) write_tensor(d, "b", b);
    const auto& o = c.opt;
    std::ofstream(d / "case.txt") << "conv_transpose2d " << o.stride[0] << ' ' << o.stride[1] << ' ' << o.padding[0]
                                  << ' ' << o.padding[1] << ' ' << o.output_padding[0] << ' ' << o.output_padding[1]
                                  << ' ' << o.dilation[0] << ' ' << o.dilation[1] << ' ' << o.groups << ' '
                                  << (c.bias ? 1 : 0) << '\n';
    run_torch(d);
    Tensor ty = read_tensor(d, "y");
    REQUIRE(ty.shape() == y.shape());
    double ey = rel_diff(y, ty), ex = rel_diff(x.grad(), read_tensor(d, "dx")), ew = rel_diff(w.grad(), read_tensor(d, "dw"));
    MESSAGE("conv_transpose2d case " << k - 1 << ": output " << ey << ", dx " << ex << ", dw " << ew);
    CHECK(ey < 1e-12);
    CHECK(ex < 1e-12);
    CHECK(ew < 1e-12);
    if (c.bias) CHECK(rel_diff(b.grad(), read_tensor(d, "db")) < 1e-12);
    fs::remove_all(d);
  }
}

TEST_CASE("instance_norm agrees with torch.nn.functional.instance_norm in float64" * SKIP_UNLESS_TORCH_OPS) {
  struct Case {
    bool use_input_stats, affine, running;
  };
  const std::vector<Case> cases = {{true, true, false}, {true, true, true}, {false, true, true}, {true, false, false}};
  int k = 0;
  for (const auto& c : cases) {
    INFO("case " << k);
    fs::path d = fresh_dir("in" + std::to_string(k++));
    Tensor x = leaf({3, 4, 5, 6}, 41, -1.0, 2.0);
    Tensor w = c.affine ? leaf({4}, 42, 0.5, 1.5) : Tensor(), b = c.affine ? leaf({4}, 43) : Tensor();
    Tensor rm = c.running ? leaf({4}, 44).detach() : Tensor(), rv = c.running ? leaf({4}, 45, 0.5, 2.0).detach() : Tensor();
    if (c.running) write_tensor(d, "rm", rm), write_tensor(d, "rv", rv);  // before the call updates them
    Tensor y = instance_norm(x, w, b, rm, rv, c.use_input_stats, 0.1, 1e-5);
    Generator g(46);
    Tensor r = randn(y.shape(), {DType::Float64}, &g);
    sum(mul(y, r)).backward();
    write_tensor(d, "x", x), write_tensor(d, "r", r);
    if (c.affine) write_tensor(d, "w", w), write_tensor(d, "b", b);
    std::ofstream(d / "case.txt") << "instance_norm " << (c.use_input_stats ? 1 : 0) << ' ' << (c.affine ? 1 : 0)
                                  << " 0.1 1e-5 " << (c.running ? 1 : 0) << '\n';
    run_torch(d);
    double ey = rel_diff(y, read_tensor(d, "y")), ex = rel_diff(x.grad(), read_tensor(d, "dx"));
    MESSAGE("instance_norm case " << k - 1 << ": output " << ey << ", dx " << ex);
    CHECK(ey < 1e-12);
    CHECK(ex < 1e-10);
    if (c.affine) {
      CHECK(rel_diff(w.grad(), read_tensor(d, "dw")) < 1e-12);
      CHECK(rel_diff(b.grad(), read_tensor(d, "db")) < 1e-12);
    }
    if (c.running) {
      CHECK(rel_diff(rm, read_tensor(d, "rm_after")) < 1e-12);
      CHECK(rel_diff(rv, read_tensor(d, "rv_after")) < 1e-12);
    }
    fs::remove_all(d);
  }
}
