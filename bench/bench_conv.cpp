// `neurn bench conv`: the CPU convolution's algorithms side by side: im2col +
// gemm (its weight gradient both ways: summed as (Cout, K) and, `im2col-t`,
// as (K, Cout) turned back at the end, cpu::im2col_weight_transposed),
// Winograd F(2x2,3x3) and F(2x2,5x5) (framework/ops/conv_winograd_cpu.h,
// stride 1 only; the weight gradient for 5x5 kernels) and the batch-innermost gemms (framework/ops/conv_hwcn_cpu.h), each
// pass (forward, data gradient, weight gradient) alone, and what the automatic
// choice picks and costs; on one shape (--shape N,C,H,W,K[,k,stride]) or on
// every distinct conv of a registry model's training step (--model, depthwise
// excepted), which is how the rules of cpu::winograd_conv_profitable,
// cpu::winograd_weight_profitable, cpu::hwcn_conv_profitable and
// cpu::im2col_weight_transposed were measured (docs/engine-bench.md).
// Threads: NEURN_NUM_THREADS.
#include <time.h>

#include <algorithm>
#include <array>
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
#include "framework/ops/conv_hwcn_cpu.h"
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

// The pieces of a conv that do not depend on the batch (the key of a
// model's distinct convs).
struct ConvKey {
  int64_t C, H, W, Cout, kh, kw, sh, sw, ph, pw, dh, dw, groups, Ho, Wo;
  static ConvKey of(const cpu::ConvGeom& g) {
    return {g.C, g.H, g.W, g.Cout, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups, g.Ho, g.Wo};
  }
  auto tie() const { return std::tie(C, H, W, Cout, kh, kw, sh, sw, ph, pw, dh, dw, groups, Ho, Wo); }
  bool operator<(const ConvKey& o) const { return tie() < o.tie(); }
  cpu::ConvGeom geom(int64_t N) const {
    cpu::ConvGeom g;
    g.N = N, g.C = C, g.H = H, g.W = W, g.Cout = Cout, g.kh = kh, g.kw = kw, g.sh = sh, g.sw = sw, g.ph = ph,
    g.pw = pw, g.dh = dh, g.dw = dw, g.groups = groups, g.Ho = Ho, g.Wo = Wo;
    return g;
  }
};

enum Algo { kIm2col, kWinograd, kHwcn, kAuto, kAlgos };
enum Pass { kForward, kData, kWeight, kPasses };
const char* const kAlgoNames[kAlgos] = {"im2col", "winograd", "hwcn", "auto"};
const char* const kPassNames[kPasses] = {"fwd", "data", "weight"};

// What the automatic dispatch of conv_cpu.cpp runs for this pass.
const char* auto_pick(const cpu::ConvGeom& g, size_t elem, Pass pass) {
  const int64_t th = cpu::num_threads();
  const bool hw_on = cpu::hwcn_mode() != cpu::HwcnMode::Off, wino_on = cpu::winograd_mode() != cpu::WinogradMode::Off;
  const cpu::HwcnPass hp = pass == kForward ? cpu::HwcnPass::Forward
                           : pass == kData  ? cpu::HwcnPass::Data
                                            : cpu::HwcnPass::Weight;
  if (hw_on && cpu::hwcn_applicable(g) &&
      (cpu::hwcn_mode() == cpu::HwcnMode::Always || cpu::hwcn_conv_profitable(g, elem, hp, th)))
    return "hwcn";
  if (pass != kWeight && wino_on && cpu::winograd_applicable(g) &&
      (cpu::winograd_mode() == cpu::WinogradMode::Always ||
       cpu::winograd_conv_profitable(g, elem, pass == kData, th)))
    return "winograd";
  if (pass == kWeight && wino_on && cpu::winograd_weight_applicable(g) &&
      (cpu::winograd_mode() == cpu::WinogradMode::Always || cpu::winograd_weight_profitable(g, elem, th)))
    return "winograd";
  if (pass == kWeight && cpu::im2col_weight_transposed(g)) return "im2col-t";
  return "im2col";
}

// t[algo][pass], on[algo][pass]: false where not measured (not asked for,
// or Winograd where it does not apply: 3x3 and 5x5 at stride 1, its weight
// gradient 5x5 only). wt: im2col's weight gradient the other way round from
// what the rule picks (`im2col-t` when the rule keeps (Cout, K), and the
// reverse), measured with im2col's weight gradient.
struct Result {
  Timing t[kAlgos][kPasses];
  bool on[kAlgos][kPasses] = {};
  Timing wt;
  bool wt_on = false, wt_transposed = false;  // wt_transposed: wt is the transposed product
};

template <typename T>
Result measure(const cpu::ConvGeom& g, int64_t reps, const bool passes[kPasses], const bool algos[kAlgos]) {
  Generator gen(1);
  auto fill = [&](std::vector<T>& v) {
    for (auto& e : v) e = static_cast<T>(gen.uniform() - 0.5);
  };
  std::vector<T> x(static_cast<size_t>(g.N * g.C * g.H * g.W)), w(static_cast<size_t>(g.Cout * g.K())),
      b(static_cast<size_t>(g.Cout)), y(static_cast<size_t>(g.N * g.Cout * g.Ho * g.Wo)), dx(x.size()), dw(w.size());
  fill(x), fill(w), fill(b), fill(y);
  Result r;
  auto run = [&](Algo a, Pass p, const std::function<void()>& fn) {
    if (!algos[a] || !passes[p]) return;
    r.t[a][p] = time_best(reps, fn);
    r.on[a][p] = true;
  };
  auto fwd = [&] { cpu::conv2d_forward<T>(g, x.data(), w.data(), b.data(), y.data()); };
  auto data = [&] { cpu::conv2d_backward<T>(g, nullptr, w.data(), y.data(), dx.data(), nullptr, nullptr); };
  auto weight = [&] { cpu::conv2d_backward<T>(g, x.data(), nullptr, y.data(), nullptr, dw.data(), nullptr); };
  {
    cpu::ScopedWinogradMode off(cpu::WinogradMode::Off);
    cpu::ScopedHwcnMode hoff(cpu::HwcnMode::Off);
    run(kIm2col, kForward, fwd), run(kIm2col, kData, data), run(kIm2col, kWeight, weight);
    if (algos[kIm2col] && passes[kWeight]) {
      r.wt_transposed = !cpu::im2col_weight_transposed(g);
      cpu::ScopedIm2colWeightMode other(r.wt_transposed ? cpu::Im2colWeightMode::Always
                                                        : cpu::Im2colWeightMode::Never);
      r.wt = time_best(reps, weight);
      r.wt_on = true;
    }
  }
  if (cpu::winograd_applicable(g)) {
    run(kWinograd, kForward, [&] { cpu::winograd_conv2d_forward<T>(g, x.data(), w.data(), b.data(), y.data()); });
    run(kWinograd, kData, [&] { cpu::winograd_conv2d_backward_data<T>(g, w.data(), y.data(), dx.data()); });
  }
  if (cpu::winograd_weight_applicable(g))
    run(kWinograd, kWeight, [&] { cpu::winograd_conv2d_backward_weight<T>(g, x.data(), y.data(), dw.data()); });
  run(kHwcn, kForward, [&] { cpu::hwcn_conv2d_forward<T>(g, x.data(), w.data(), b.data(), y.data()); });
  run(kHwcn, kData, [&] { cpu::hwcn_conv2d_backward<T>(g, nullptr, w.data(), y.data(), dx.data(), nullptr); });
  run(kHwcn, kWeight, [&] { cpu::hwcn_conv2d_backward<T>(g, x.data(), nullptr, y.data(), nullptr, dw.data()); });
  run(kAuto, kForward, fwd), run(kAuto, kData, data), run(kAuto, kWeight, weight);  // the modes as set
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
    NEURN_CHECK(used == item.size() && !item.empty() && n >= 1, "bench conv: --shape must be N,C,H,W,K[,k,stride] "
                "(positive integers), got '", s, "'");
    v.push_back(n);
  }
  NEURN_CHECK(v.size() == 5 || v.size() == 7, "bench conv: --shape must be N,C,H,W,K or N,C,H,W,K,k,stride (5 or 7 "
              "numbers), got '", s, "'");
  return v;
}

// The distinct convs of one training step of `name` (forward and backward of
// a batch of two on the CPU, as the HWCN decision log sees them: every conv
// but the depthwise ones), with how often each runs per pass.
std::map<ConvKey, std::array<int64_t, kPasses>> model_convs(const std::string& name, int64_t image_size) {
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
  std::map<ConvKey, std::array<int64_t, kPasses>> out;
  cpu::HwcnDecisionLog log;
  sum(model->forward(x)).backward();
  for (const auto& d : log.decisions()) {
    auto it = out.try_emplace(ConvKey::of(d.geom), std::array<int64_t, kPasses>{}).first;
    it->second[d.pass == cpu::HwcnPass::Forward ? kForward : d.pass == cpu::HwcnPass::Data ? kData : kWeight] += 1;
  }
  return out;
}

int bench_conv(const Flags& f) {
  const int64_t reps = f.get_int("reps", 5), pad = f.get_int("pad", 1);
  const std::string algo = f.get("algo", "all"), pass = f.get("pass", "all"), dtype = f.get("dtype", "float32");
  NEURN_CHECK(reps >= 1, "bench conv: --reps must be at least 1, got ", reps);
  NEURN_CHECK(algo == "im2col" || algo == "winograd" || algo == "hwcn" || algo == "both" || algo == "all",
              "bench conv: --algo must be im2col, winograd, hwcn, both (im2col and winograd) or all, got '", algo,
              "'");
  NEURN_CHECK(pass == "forward" || pass == "data" || pass == "weight" || pass == "both" || pass == "all",
              "bench conv: --pass must be forward, data, weight, both (forward and data) or all, got '", pass, "'");
  NEURN_CHECK(dtype == "float32" || dtype == "float64", "bench conv: --dtype must be float32 or float64, got '", dtype,
              "'");
  NEURN_CHECK(f.has("shape") != f.has("model"), "bench conv: give exactly one of --shape N,C,H,W,K and --model NAME");
  bool algos[kAlgos] = {algo == "im2col" || algo == "both" || algo == "all",
                        algo == "winograd" || algo == "both" || algo == "all", algo == "hwcn" || algo == "all",
                        algo == "all"};
  const bool passes[kPasses] = {pass == "forward" || pass == "both" || pass == "all",
                                pass == "data" || pass == "both" || pass == "all", pass == "weight" || pass == "all"};
  const size_t elem = dtype == "float32" ? 4 : 8;

  std::vector<std::pair<ConvKey, std::array<int64_t, kPasses>>> shapes;  // conv, count per pass
  int64_t batch = f.get_int("batch-size", 64);
  if (f.has("shape")) {
    const auto v = parse_shape(f.get("shape"));
    batch = v[0];
    const int64_t k = v.size() == 7 ? v[5] : 3, stride = v.size() == 7 ? v[6] : 1;
    const int64_t Ho = (v[2] + 2 * pad - k) / stride + 1, Wo = (v[3] + 2 * pad - k) / stride + 1;
    NEURN_CHECK(v[2] + 2 * pad >= k && v[3] + 2 * pad >= k, "bench conv: --shape ", f.get("shape"), " with padding ",
                pad, " gives no output (need H, W >= k - 2 pad)");
    shapes.push_back({ConvKey{v[1], v[2], v[3], v[4], k, k, stride, stride, pad, pad, 1, 1, 1, Ho, Wo}, {1, 1, 1}});
  } else {
    const std::string name = f.get("model");
    const int64_t size = f.get_int("image-size", 32);
    for (const auto& [s, c] : model_convs(name, size)) shapes.push_back({s, c});
    std::printf("model %s at %ldx%ld: %zu distinct convs (depthwise excepted), batch %ld\n", name.c_str(),
                static_cast<long>(size), static_cast<long>(size), shapes.size(), static_cast<long>(batch));
  }
  NEURN_CHECK(batch >= 1, "bench conv: --batch-size must be at least 1, got ", batch);
  std::printf("%s, %d threads, best of %ld after a warm-up; ms wall (CPU); auto = the dispatch as set (its pick in "
              "brackets)\n",
              dtype.c_str(), cpu::num_threads(), static_cast<long>(reps));
  // Totals over the model: each conv's time times how often it runs in a
  // step; Winograd's column falls back to im2col where it does not apply.
  double total[kAlgos + 1] = {};  // + the best of the measured algorithms per conv and pass
  for (const auto& [s, counts] : shapes) {
    const cpu::ConvGeom g = s.geom(batch);
    const Result r = elem == 4 ? measure<float>(g, reps, passes, algos) : measure<double>(g, reps, passes, algos);
    std::printf("C=%-4ld %3ldx%-3ld K=%-4ld k=%ldx%ld s=%ld p=%ld,%ld", static_cast<long>(s.C), static_cast<long>(s.H),
                static_cast<long>(s.W), static_cast<long>(s.Cout), static_cast<long>(s.kh), static_cast<long>(s.kw),
                static_cast<long>(s.sh), static_cast<long>(s.ph), static_cast<long>(s.pw));
    if (s.dh != 1 || s.dw != 1) std::printf(" d=%ld,%ld", static_cast<long>(s.dh), static_cast<long>(s.dw));
    if (s.groups != 1) std::printf(" g=%ld", static_cast<long>(s.groups));
    std::printf(" x%ld/%ld/%ld", static_cast<long>(counts[kForward]), static_cast<long>(counts[kData]),
                static_cast<long>(counts[kWeight]));
    for (int p = 0; p < kPasses; ++p) {
      if (!passes[p] || counts[p] == 0) continue;
      std::printf(" | %s", kPassNames[p]);
      double best = 1e300;
      for (int a = 0; a < kAlgos; ++a) {
        if (!r.on[a][p]) continue;
        std::printf(" %s %.3f (%.3f)", a == kAuto ? "auto" : kAlgoNames[a], r.t[a][p].wall_ms, r.t[a][p].cpu_ms);
        if (a != kAuto) best = std::min(best, r.t[a][p].wall_ms);
        if (a == kIm2col && p == kWeight && r.wt_on) {
          std::printf(" %s %.3f (%.3f)", r.wt_transposed ? "im2col-t" : "im2col-n", r.wt.wall_ms, r.wt.cpu_ms);
          best = std::min(best, r.wt.wall_ms);
        }
      }
      std::printf(" [%s]", auto_pick(g, elem, static_cast<Pass>(p)));
      const double n = static_cast<double>(counts[p]);
      for (int a = 0; a < kAlgos; ++a) {
        const int src = a == kWinograd && !r.on[a][p] ? kIm2col : a;
        if (r.on[src][p]) total[a] += n * r.t[src][p].wall_ms;
      }
      if (best < 1e300) total[kAlgos] += n * best;
    }
    std::printf("\n");
  }
  std::printf("total_ms");
  for (int a = 0; a < kAlgos; ++a)
    if (algos[a]) std::printf(" %s=%.2f", kAlgoNames[a], total[a]);
  std::printf(" best=%.2f (each conv times its count; winograd: im2col where it does not apply)\n", total[kAlgos]);
  return 0;
}

Register reg{{
    .name = "bench conv",
.summary = "CPU convolution: im2col + gemm, Winograd F(2x2,3x3) / F(2x2,5x5) and batch-innermost gemms, per pass",
    .flags = {text("shape", "N,C,H,W,K", "one conv: batch, input channels, height, width, output channels (then ,k,stride: "
                   "a k x k kernel and its stride; 3 and 1 without)"),
              text("model", "NAME", "a registry model: time each of its distinct convs (depthwise excepted)"),
              integer("image-size", "S", "(32)"), integer("batch-size", "N", "(64)"),
              integer("pad", "P", "padding for --shape (1)"),
              text("algo", "im2col|winograd|hwcn|both|all", "(all; both: im2col and winograd)"),
              text("pass", "forward|data|weight|both|all", "(all; both: forward and data)"),
              text("dtype", "float32|float64", "(float32)"), integer("reps", "N", "(5)")},
    .details = "Times the forward (bias added), the data gradient and the weight gradient of each conv by each "
               "algorithm (best of --reps after a warm-up; wall and process CPU time) with NEURN_NUM_THREADS threads, "
               "im2col's weight gradient also the other way round from its rule's pick (im2col-t: summed transposed, "
               "im2col-n: not; the `im2col` column is the rule's), "
               "and `auto`: the dispatch of conv2d as the modes are set (NEURN_CONV_WINOGRAD, NEURN_CONV_HWCN), with "
               "its pick in brackets. With --model each line is one distinct conv of a training step (xF/D/W: how "
               "often it runs forward / as a data gradient / as a weight gradient); the last line sums each column "
               "over the model's convs, and `best` the fastest measured algorithm of each conv and pass.",
    .fn = bench_conv}};

}  // namespace
}  // namespace neurn::cli
