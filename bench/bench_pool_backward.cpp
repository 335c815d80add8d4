// `neurn bench pool-backward`: the CPU backward of pooling and upsampling as
// it runs (a scatter over the outputs, one task per plane: the registered CPU
// kernels of framework/ops/pool_kernels.h) against the gather the
// deterministic CUDA kernels run (one input at a time, the NEURN_HD functions
// of framework/ops/pool_math.h and upsample_math.h), split over the same
// threads. Both give the same bits (tests/framework/test_pool_gather.cpp);
// this measures which is faster on the CPU, the reason the CPU keeps the
// scatter (docs/engine-bench.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "experiments/cli/cli.h"
#include "framework/ops.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/ops/pool_kernels.h"
#include "framework/ops/upsample_math.h"

namespace neurn::cli {
namespace {

using Clock = std::chrono::steady_clock;

double median_ms(int64_t reps, const std::function<void()>& fn) {
  std::vector<double> ms;
  for (int64_t i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// Runs `at(plane, h, w)` for every input element of `dx` (planes, H, W), a
// plane per task as the CPU scatter is split.
template <typename F>
void gather_planes(const Tensor& dx, F at) {
  const int64_t planes = dx.size(0) * dx.size(1), H = dx.size(2), W = dx.size(3);
  float* out = dx.data<float>();
  cpu::parallel_for(planes, 4 * H * W, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) out[(p * H + h) * W + w] = at(p, h, w);
  });
}

int bench_pool_backward(const Flags& f) {
  const int64_t batch = f.get_int("batch-size", 64), channels = f.get_int("channels", 64), size = f.get_int("image-size", 32);
  const int64_t reps = f.get_int("reps", 15);
  NEURN_CHECK(batch >= 1 && channels >= 1 && size >= 4 && reps >= 1,
              "bench pool-backward: --batch-size, --channels, --reps must be >= 1 and --image-size >= 4, got ", batch, ", ",
              channels, ", ", reps, ", ", size);
  Generator gen(1);
  const Tensor x = randn({batch, channels, size, size}, {}, &gen);  // (N, C, H, W) float32
  const Tensor dx = Tensor::empty(x.shape(), x.options());
  std::printf("input %s float32, %d threads, median of %lld\n", shape_str(x.shape()).c_str(), cpu::num_threads(),
              static_cast<long long>(reps));
  std::printf("%-34s %12s %12s %8s\n", "case", "scatter ms", "gather ms", "ratio");
  auto report = [&](const std::string& name, double scatter, double gather) {
    std::printf("%-34s %12.2f %12.2f %8.2f\n", name.c_str(), scatter, gather, gather / scatter);
  };
  for (int64_t k : {2, 3}) {
    // k 2: 2x2 stride 2 (VGG, ResNet's digits stem); k 3: 3x3 stride 2 pad 1 (ResNet's stem).
    PoolGeometry g;
    g.planes = batch * channels, g.H = size, g.W = size, g.kh = g.kw = k, g.sh = g.sw = 2, g.ph = g.pw = k == 3 ? 1 : 0;
    g.Ho = conv_out_size(size, k, 2, g.ph, 1), g.Wo = g.Ho;
    const Tensor dy = randn({batch, channels, g.Ho, g.Wo}, {}, &gen);
    const Tensor y = Tensor::empty(dy.shape(), dy.options());
    const Tensor idx = Tensor::empty(dy.shape(), {DType::Int64});
    max_pool2d_kernel(Device::cpu(), g, x, y, idx);
    const int64_t P = g.Ho * g.Wo;
    const float* pdy = dy.data<float>();
    const int64_t* pidx = idx.data<int64_t>();
    const std::string win = std::to_string(k) + "x" + std::to_string(k) + " stride 2" + (k == 3 ? " pad 1" : "");
    report("max_pool2d " + win,
           median_ms(reps, [&] { max_pool2d_backward_kernel(Device::cpu(), g, dy, idx, dx); }),
           median_ms(reps, [&] {
             gather_planes(dx, [&](int64_t p, int64_t h, int64_t w) {
               return max_pool_grad_at(g, pdy + p * P, pidx + p * P, h, w);
             });
           }));
    report("avg_pool2d " + win,
           median_ms(reps, [&] { avg_pool2d_backward_kernel(Device::cpu(), g, true, dy, dx); }),
           median_ms(reps, [&] {
             gather_planes(dx, [&](int64_t p, int64_t h, int64_t w) { return avg_pool_grad_at(g, true, pdy + p * P, h, w); });
           }));
  }
  {
    const int64_t o = 5;
    const Tensor dy = randn({batch, channels, o, o}, {}, &gen);
    const float* pdy = dy.data<float>();
    report("adaptive_avg_pool2d -> 5x5",
           median_ms(reps, [&] { adaptive_avg_pool2d_backward_kernel(Device::cpu(), dy, dx); }),
           median_ms(reps, [&] {
             gather_planes(dx, [&](int64_t p, int64_t h, int64_t w) {
               return adaptive_grad_at(size, size, o, o, pdy + p * o * o, h, w);
             });
           }));
  }
  for (int mode = 0; mode < 2; ++mode) {
    const bool bilinear = mode == 1;
    const int64_t o = 2 * size;
    const Tensor dy = randn({batch, channels, o, o}, {}, &gen);
    const float* pdy = dy.data<float>();
    std::vector<UpsampleRange> spans(static_cast<size_t>(size));  // the same rows and columns (square)
    for (int64_t i = 0; i < size; ++i) spans[static_cast<size_t>(i)] = upsample_inverse_span(i, size, o, bilinear, false);
    const UpsampleMode m = bilinear ? UpsampleMode::Bilinear : UpsampleMode::Nearest;
    report(std::string("upsample ") + (bilinear ? "bilinear" : "nearest") + " x2",
           median_ms(reps, [&] { upsample_backward_kernel(Device::cpu(), m, false, dy, dx); }),
           median_ms(reps, [&] {
             gather_planes(dx, [&](int64_t p, int64_t h, int64_t w) {
               return upsample_grad_at(size, size, o, o, bilinear, false, pdy + p * o * o, h, w,
                                       spans[static_cast<size_t>(h)], spans[static_cast<size_t>(w)]);
             });
           }));
  }
  return 0;
}

Register reg{{
    .name = "bench pool-backward",
    .summary = "CPU pooling/upsampling backward: the scatter it runs against the gather of the deterministic CUDA path",
    .flags = {integer("batch-size", "N", "(64)"), integer("channels", "C", "(64)"), integer("image-size", "H", "(32, square)"),
              integer("reps", "N", "(15)")},
    .details = "Median time of the CPU backward of max/avg pooling (2x2 stride 2, 3x3 stride 2 pad 1), adaptive "
               "average pooling to 5x5 and x2 upsampling (nearest, bilinear) on a float32 (N, C, H, H) input: the "
               "registered CPU kernel (a scatter over the outputs, a plane per task) and the gather over the inputs "
               "that NEURN_DETERMINISTIC=1 runs on CUDA (framework/ops/pool_math.h, upsample_math.h), on the same "
               "threads; ratio = gather / scatter.",
    .fn = bench_pool_backward}};

}  // namespace
}  // namespace neurn::cli
