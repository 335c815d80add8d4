// NeuRN tools on the command line:
//   neurn bench neurn --size 32 --batch 256 --k 3[,5,...]   forward + backward throughput
//   neurn data show --domains mnist,usps,mnistm,syn --neurn k=3 --out grid.png
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/datasets.h"
#include "datasets/transforms.h"
#include "experiments/cli/cli.h"
#include "experiments/plot.h"
#include "framework/ops.h"
#include "framework/ops/parallel_cpu.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_device.h"
#endif

namespace neurn::cli {
namespace {

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

void device_sync(Device d) {
#ifdef NEURN_WITH_CUDA
  if (d.is_cuda()) cuda::synchronize();
#endif
  (void)d;
}

// ---- bench neurn ---------------------------------------------------------------

int bench_neurn(const Args& args) {
  Flags f(args, {"help"});
  if (f.has("help")) {
    std::printf(
        "usage: neurn bench neurn [--size 32] [--batch 256] [--channels 3] [--k 3 | --k 3,5,7,15,31]\n"
        "                         [--padding valid] [--max-scope image] [--device cpu|cuda] [--dtype float32]\n"
        "                         [--iters N] [--min-seconds 1.0]\n"
        "Times NeuRN forward + backward (dL/dx for a fixed random dL/dout) on a random batch and prints\n"
        "one line per k, then `images_per_second=<N>` last (the slowest k of the list).\n"
        "CPU threads: NEURN_NUM_THREADS (default: all cores).\n");
    return 0;
  }
  f.allow_only({"size", "batch", "channels", "k", "padding", "max-scope", "device", "dtype", "iters", "min-seconds"});
  const int64_t size = f.get_int("size", 32), batch = f.get_int("batch", 256), channels = f.get_int("channels", 3);
  const int64_t fixed_iters = f.get_int("iters", 0);
  const double min_seconds = f.get_double("min-seconds", 1.0);
  NEURN_CHECK(size > 0 && batch > 0 && channels > 0, "bench neurn: --size, --batch and --channels must be positive");
  Device device = Device::parse(f.get("device", "cpu"));
  DType dtype = f.get("dtype", "float32") == "float64" ? DType::Float64 : DType::Float32;
  NEURN_CHECK(f.get("dtype", "float32") == "float32" || f.get("dtype", "float32") == "float64",
              "bench neurn: --dtype expects float32 or float64, got '", f.get("dtype"), "'");
  NeuRNOptions base;
  base.padding = parse_neurn_padding(f.get("padding", "valid"));
  base.max_scope = parse_neurn_scope(f.get("max-scope", "image"));
  std::vector<int64_t> ks;
  for (const std::string& s : split_list(f.get("k", "3"))) {
    try {
      ks.push_back(std::stoll(s));
    } catch (const std::exception&) {
      NEURN_FAIL("bench neurn: --k expects a list of odd integers like 3,5,7, got '", f.get("k"), "'");
    }
  }
  NEURN_CHECK(!ks.empty(), "bench neurn: --k is empty");

  Generator gen(1);
  Tensor x0 = rand({batch, channels, size, size}, {dtype}, &gen).to(device);
  Tensor gout = randn({batch, channels, size, size}, {dtype}, &gen).to(device);
  std::printf("bench neurn: batch=%lld channels=%lld size=%lld padding=%s max_scope=%s device=%s dtype=%s threads=%d\n",
              static_cast<long long>(batch), static_cast<long long>(channels), static_cast<long long>(size),
              neurn_padding_name(base.padding), neurn_scope_name(base.max_scope), device.str().c_str(),
              dtype_name(dtype), device.is_cpu() ? cpu::num_threads() : 0);
  double slowest = 0;
  std::vector<double> ms_per_k;
  for (int64_t k : ks) {
    NeuRNOptions opt = base;
    opt.k = k;
    validate_neurn_options(opt);
    auto step = [&] {
      Tensor x = x0.detach();
      x.requires_grad_();
      Tensor y = neurn_norm(x, opt);
      y.backward(gout);
      return x.grad();
    };
    step();  // warm-up: allocator, page faults
    device_sync(device);
    std::vector<double> times;
    auto start = std::chrono::steady_clock::now();
    for (int64_t it = 0;; ++it) {
      auto t0 = std::chrono::steady_clock::now();
      step();
      device_sync(device);
      auto t1 = std::chrono::steady_clock::now();
      times.push_back(std::chrono::duration<double>(t1 - t0).count());
      double total = std::chrono::duration<double>(t1 - start).count();
      if (fixed_iters > 0 ? it + 1 >= fixed_iters : (total >= min_seconds && it >= 2)) break;
    }
    std::sort(times.begin(), times.end());
    double med = times[times.size() / 2];  // the median: robust on a shared machine
    double ips = static_cast<double>(batch) / med;
    ms_per_k.push_back(med * 1e3);
    // Bytes the fused kernels must move: forward reads x, writes out and the
    // patch means; backward reads x, out, means and dL/dout, writes dL/dx.
    double bytes = 8.0 * static_cast<double>(x0.numel()) * static_cast<double>(dtype_size(dtype));
    std::printf("k=%lld iters=%zu ms_per_iter=%.3f effective_GBps=%.2f images_per_second=%.1f\n",
                static_cast<long long>(k), times.size(), med * 1e3, bytes / med / 1e9, ips);
    slowest = slowest == 0 ? ips : std::min(slowest, ips);
  }
  if (ks.size() > 1) {
    auto [lo, hi] = std::minmax_element(ms_per_k.begin(), ms_per_k.end());
    std::printf("time ratio slowest/fastest k: %.2f\n", *hi / *lo);
  }
  std::printf("images_per_second=%.1f\n", slowest);
  return 0;
}

Register reg_bench{"bench neurn", "NeuRN forward+backward throughput (images/s), flat in k", bench_neurn};

}  // namespace
}  // namespace neurn::cli
