// `neurn bench conv`: a 3x3 stride-1 convolution on the CPU by im2col + gemm
// against Winograd F(2x2,3x3) (framework/ops/conv_winograd_cpu.h), forward
// and data gradient, on one shape (--shape N,C,H,W,K) or on every distinct
// 3x3 stride-1 conv of a registry model (--model), which is how the rule of
// cpu::winograd_conv_profitable was measured (docs/engine-bench.md,
// "Winograd F(2x2,3x3) on the CPU"). Threads: NEURN_NUM_THREADS.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "experiments/cli/cli.h"
#include "framework/ops.h"
#include "framework/ops/conv_cpu.h"
#include "framework/ops/conv_winograd_cpu.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/random.h"
#include "layers/init.h"
#include "models/registry.h"

namespace neurn::cli {
namespace {

using Clock = std::chrono::steady_clock;

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double wall_ms = 0, cpu_ms = 0;  // the best of the repetitions, each
};

// One warm-up call, then the best wall and the best CPU time of `reps` calls.
Timing time_best(int64_t reps, const std::function<void()>& fn) {
  fn();
  Timing t{1e300, 1e300};
  for (int64_t i = 0; i < reps; ++i) {
    const double c0 = process_cpu_seconds();
    const auto t0 = Clock::now();
    fn();
    t.wall_ms = std::min(t.wall_ms, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    t.cpu_ms = std::min(t.cpu_ms, 1e3 * (process_cpu_seconds() - c0));
  }
  return t;
}

cpu::ConvGeom geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pad) {
  cpu::ConvGeom g;
  g.N = N, g.C = C, g.H = H, g.W = W, g.Cout = K, g.kh = 3, g.kw = 3, g.ph = pad, g.pw = pad;
  g.Ho = H + 2 * pad - 2, g.Wo = W + 2 * pad - 2;
  NEURN_CHECK(N >= 1 && C >= 1 && K >= 1 && g.Ho >= 1 && g.Wo >= 1, "bench conv: shape N=", N, " C=", C, " H=", H,
              " W=", W, " K=", K, " with padding ", pad, " gives no output (need N, C, K >= 1 and H, W >= 3 - 2 pad)");
  return g;
}

struct Result {
  Timing fwd_im2col, fwd_wino, data_im2col, data_wino;
};

template <typename T>
Result measure(const cpu::ConvGeom& g, int64_t reps, bool forward, bool data, bool im2col, bool wino) {
  Generator gen(1);
  auto fill = [&](std::vector<T>& v) {
    for (auto& e : v) e = static_cast<T>(gen.uniform() - 0.5);
  };
  std::vector<T> x(static_cast<size_t>(g.N * g.C * g.H * g.W)), w(static_cast<size_t>(g.Cout * g.C * 9)),
      b(static_cast<size_t>(g.Cout)), y(static_cast<size_t>(g.N * g.Cout * g.Ho * g.Wo)), dx(x.size());
  fill(x), fill(w), fill(b), fill(y);
  Result r;
  cpu::ScopedWinogradMode off(cpu::WinogradMode::Off);  // conv2d_forward/backward: im2col
  if (forward && im2col)
    r.fwd_im2col = time_best(reps, [&] { cpu::conv2d_forward<T>(g, x.data(), w.data(), b.data(), y.data()); });
  if (forward && wino)
    r.fwd_wino = time_best(reps, [&] { cpu::winograd_conv2d_forward<T>(g, x.data(), w.data(), b.data(), y.data()); });
  if (data && im2col)
    r.data_im2col =
        time_best(reps, [&] { cpu::conv2d_backward<T>(g, nullptr, w.data(), y.data(), dx.data(), nullptr, nullptr); });
  if (data && wino)
    r.data_wino = time_best(reps, [&] { cpu::winograd_conv2d_backward_data<T>(g, w.data(), y.data(), dx.data()); });
  return r;
}

std::vector<int64_t> parse_shape(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int64_t n = -1;
    try {
      n = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    NEURN_CHECK(used == item.size() && !item.empty() && n >= 1, "bench conv: --shape must be N,C,H,W,K (positive "
                "integers), got '", s, "'");
    v.push_back(n);
  }
  NEURN_CHECK(v.size() == 5, "bench conv: --shape must be N,C,H,W,K (5 numbers), got '", s, "'");
  return v;
}

struct Shape5 {
  int64_t C, H, W, K, pad;
  bool operator<(const Shape5& o) const {
    return std::tie(C, H, W, K, pad) < std::tie(o.C, o.H, o.W, o.K, o.pad);
  }
};

// The distinct 3x3 stride-1 convs of one training step of `name` (forward
// and backward of a batch of one on the CPU, as the decision log sees them),
// with how many times each runs forward and as a data gradient.
std::map<Shape5, std::pair<int64_t, int64_t>> model_convs(const std::string& name, int64_t image_size) {
  ModelOptions mo;
  mo.input_size = image_size;
  Generator gen(1);
  ModulePtr model;
  {
    ParamScope scope({DType::Float32, Device::cpu()}, &gen);
    model = build_model(name, mo);
  }
  model->train();
  Tensor x = randn({2, mo.in_channels, image_size, image_size}, {DType::Float32}, &gen);
  std::map<Shape5, std::pair<int64_t, int64_t>> out;
  cpu::WinogradDecisionLog log;
  sum(model->forward(x)).backward();
  for (const auto& d : log.decisions()) {
    const Shape5 s{d.geom.C, d.geom.H, d.geom.W, d.geom.Cout, d.geom.ph};
    auto& c = out[s];
    (d.backward_data ? c.second : c.first) += 1;
  }
  return out;
}

int bench_conv(const Flags& f) {
  const int64_t reps = f.get_int("reps", 5), pad = f.get_int("pad", 1);
  const std::string algo = f.get("algo", "both"), pass = f.get("pass", "both"), dtype = f.get("dtype", "float32");
  NEURN_CHECK(reps >= 1, "bench conv: --reps must be at least 1, got ", reps);
  NEURN_CHECK(algo == "im2col" || algo == "winograd" || algo == "both", "bench conv: --algo must be im2col, winograd "
              "or both, got '", algo, "'");
  NEURN_CHECK(pass == "forward" || pass == "data" || pass == "both", "bench conv: --pass must be forward, data or "
              "both, got '", pass, "'");
  NEURN_CHECK(dtype == "float32" || dtype == "float64", "bench conv: --dtype must be float32 or float64, got '", dtype,
              "'");
  NEURN_CHECK(f.has("shape") != f.has("model"), "bench conv: give exactly one of --shape N,C,H,W,K and --model NAME");
  const bool im2col = algo != "winograd", wino = algo != "im2col", fwd = pass != "data", data = pass != "forward";
  const size_t elem = dtype == "float32" ? 4 : 8;

  std::vector<std::tuple<Shape5, int64_t, int64_t>> shapes;  // shape, forward count, data-gradient count
  int64_t batch = f.get_int("batch-size", 64);
  if (f.has("shape")) {
    const auto v = parse_shape(f.get("shape"));
    batch = v[0];
    shapes.push_back({Shape5{v[1], v[2], v[3], v[4], pad}, 1, 1});
  } else {
    const std::string name = f.get("model");
    const int64_t size = f.get_int("image-size", 32);
    for (const auto& [s, c] : model_convs(name, size)) shapes.push_back({s, c.first, c.second});
    std::printf("model %s at %ldx%ld: %zu distinct 3x3 stride-1 convs, batch %ld\n", name.c_str(),
                static_cast<long>(size), static_cast<long>(size), shapes.size(), static_cast<long>(batch));
  }
  NEURN_CHECK(batch >= 1, "bench conv: --batch-size must be at least 1, got ", batch);
  std::printf("%s, %d threads, best of %ld after a warm-up; ms wall (CPU), speed-up = im2col / winograd wall\n",
              dtype.c_str(), cpu::num_threads(), static_cast<long>(reps));
  double tot_im2col = 0, tot_wino = 0, tot_auto = 0;
  for (const auto& [s, nf, nd] : shapes) {
    const cpu::ConvGeom g = geom(batch, s.C, s.H, s.W, s.K, s.pad);
    const Result r = elem == 4 ? measure<float>(g, reps, fwd && nf > 0, data && nd > 0, im2col, wino)
                               : measure<double>(g, reps, fwd && nf > 0, data && nd > 0, im2col, wino);
    std::printf("C=%-4ld %3ldx%-3ld K=%-4ld pad=%ld x%ld/%ld", static_cast<long>(s.C), static_cast<long>(s.H),
                static_cast<long>(s.W), static_cast<long>(s.K), static_cast<long>(s.pad), static_cast<long>(nf),
                static_cast<long>(nd));
    auto column = [&](const char* what, const Timing& a, const Timing& b, bool on, int64_t count, bool backward_data) {
      if (!on || count == 0) return;
      std::printf(" | %s", what);
      if (im2col) std::printf(" im2col %.3f (%.3f)", a.wall_ms, a.cpu_ms);
      if (wino) std::printf(" winograd %.3f (%.3f)", b.wall_ms, b.cpu_ms);
      const bool pick = cpu::winograd_conv_profitable(g, elem, backward_data, cpu::num_threads());
      if (im2col && wino) {
        std::printf(" speedup %.2f", a.wall_ms / b.wall_ms);
        tot_im2col += static_cast<double>(count) * a.wall_ms;
        tot_wino += static_cast<double>(count) * b.wall_ms;
        tot_auto += static_cast<double>(count) * (pick ? b.wall_ms : a.wall_ms);
      }
      std::printf(" auto %s", pick ? "winograd" : "im2col");
    };
    column("fwd", r.fwd_im2col, r.fwd_wino, fwd, nf, false);
    column("data", r.data_im2col, r.data_wino, data, nd, true);
    std::printf("\n");
  }
  if (im2col && wino)
    std::printf("total_ms im2col=%.2f winograd=%.2f auto=%.2f (each shape times its count)\n", tot_im2col, tot_wino,
                tot_auto);
  return 0;
}

Register reg{{
    .name = "bench conv",
    .summary = "3x3 stride-1 convolution on the CPU: im2col + gemm against Winograd F(2x2,3x3)",
    .flags = {text("shape", "N,C,H,W,K", "one conv: batch, input channels, height, width, output channels"),
              text("model", "NAME", "a registry model: time each of its distinct 3x3 stride-1 convs"),
              integer("image-size", "S", "(32)"), integer("batch-size", "N", "(64)"),
              integer("pad", "P", "padding for --shape (1)"),
              text("algo", "im2col|winograd|both", "(both)"), text("pass", "forward|data|both", "(both)"),
              text("dtype", "float32|float64", "(float32)"), integer("reps", "N", "(5)")},
    .details = "Times the forward (bias added) and the data gradient of each conv by both algorithms (best of --reps "
               "after a warm-up; wall and process CPU time) with NEURN_NUM_THREADS threads. With --model each line "
               "is one distinct conv of a training step (xF/D: how often it runs forward / as a data gradient), "
               "and `auto` is what cpu::winograd_conv_profitable picks; the last line sums both algorithms and the "
               "automatic choice over the model's convs.",
    .fn = bench_conv}};

}  // namespace
}  // namespace neurn::cli
