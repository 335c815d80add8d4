// NeuRN tools on the command line:
//   neurn bench neurn --image-size 32 --batch-size 256 --k 3[,5,...]   forward + backward throughput
//   neurn data show --domains mnist,usps,mnistm,syn --neurn-options k=3 --output grid.png
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "datasets/datasets.h"
#include "datasets/transforms.h"
#include "experiments/cli/cli.h"
#include "experiments/cli/neurn_forward.h"
#include "experiments/plot.h"
#include "framework/ops.h"
#include "framework/ops/parallel_cpu.h"
#include "framework/serialize/safetensors.h"
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
  if (d.is_cuda()) cuda::synchronize(d.index);
#endif
  (void)d;
}

// ---- bench neurn ---------------------------------------------------------------

int bench_neurn(const Flags& f) {
  const int64_t size = f.get_int("image-size", 32), batch = f.get_int("batch-size", 256),
                channels = f.get_int("channels", 3);
  const int64_t fixed_iters = f.get_int("iters", 0);
  const double min_seconds = f.get_double("min-seconds", 1.0);
  NEURN_CHECK(size > 0 && batch > 0 && channels > 0, "bench neurn: --image-size, --batch-size and --channels must be positive");
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

Register reg_bench{{
    .name = "bench neurn",
    .summary = "NeuRN forward+backward throughput (images/s), flat in k",
    .flags = {integer("image-size", "S", "(32)"), integer("batch-size", "N", "(256)"), integer("channels", "C", "(3)"),
              text("k", "K[,K...]", "patch sizes, odd: 3 or 3,5,7,15,31 (3)"), text("padding", "MODE", "(valid)"),
              text("max-scope", "image|channel", "(image)"), text("device", "cpu|cuda", "(cpu)"),
              text("dtype", "float32|float64", "(float32)"), integer("iters", "N", "fixed iterations (0: timed)"),
              real("min-seconds", "X", "time each k at least this long (1.0)")},
    .details = "Times NeuRN forward + backward (dL/dx for a fixed random dL/dout) on a random batch and prints one "
               "line per k, then `images_per_second=<N>` last (the slowest k of the list). CPU threads: "
               "NEURN_NUM_THREADS (default: all cores).",
    .fn = bench_neurn}};

// ---- data show ----------------------------------------------------------------------

int data_show(const Flags& f) {
  const std::vector<std::string> names = split_list(f.get("domains", "mnist,usps,mnistm,syn"));
  const NeuRNOptions opt = parse_neurn_options(f.get("neurn-options", "k=3"));
  const std::string out_path = f.get("output", "grid.png"), split = f.get("split", "test");
  const int64_t samples = f.get_int("samples", 6), size = f.get_int("image-size", 32), scale = f.get_int("scale", 3);
  NEURN_CHECK(samples >= 1 && size >= 1 && scale >= 1, "data show: --samples, --image-size and --scale must be >= 1");

  struct Row {
    std::string name;
    Tensor original, normalized;  // (n, 3, size, size) in [0, 1]
  };
  std::vector<Row> rows;
  for (const std::string& name : names) {
    data::domain_info(name);  // unknown names are an error, not a skip
    if (!data::domain_available(name)) {
      std::printf("data show: skipping %s: %s\n", name.c_str(), data::domain_unavailable_message(name).c_str());
      continue;
    }
    data::Dataset ds = data::load_domain(name, split, data::data_root(), data::Protocol::first_n(samples));
    const int64_t n = std::min<int64_t>(samples, ds.size());
    if (n == 0) {
      std::printf("data show: skipping %s: split '%s' is empty\n", name.c_str(), split.c_str());
      continue;
    }
    data::ImageConverter conv(ds.channels(), ds.height(), ds.width(), 3, size, size);
    std::vector<float> pixels(static_cast<size_t>(n * 3 * size * size));
    const float mean[3] = {0, 0, 0}, inv_std[3] = {1, 1, 1};
    for (int64_t i = 0; i < n; ++i) conv(ds.image(i), pixels.data() + i * 3 * size * size, mean, inv_std);
    Row row{name, from_vector(pixels, {n, 3, size, size}), {}};
    row.normalized = neurn_norm(row.original, opt);
    rows.push_back(row);
  }
  NEURN_CHECK(!rows.empty(), "data show: none of the domains ", f.get("domains", "mnist,usps,mnistm,syn"),
              " is available under ", data::data_root(), " (run `neurn data prepare`)");

  // Layout: a label column, then per sample the original and its NeuRN output.
  const int cell = static_cast<int>(size * scale), gap = 4, pair_gap = 14, label_w = 90, header_h = 28;
  const int width = label_w + static_cast<int>(samples) * (2 * cell + gap + pair_gap);
  const int height = header_h + static_cast<int>(rows.size()) * (cell + pair_gap);
  experiments::Canvas canvas(width, height, {255, 255, 255});
  canvas.text(label_w, 18, "each pair: original | NeuRN(" + neurn_options_str(opt) + ")", 13, {0, 0, 0});
  auto draw = [&](const Tensor& img, int64_t i, int x0, int y0) {
    const float* p = img.data<float>() + i * 3 * size * size;
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x) {
        auto px = [&](int c) {
          float v = std::clamp(p[(c * size + y) * size + x], 0.0f, 1.0f);
          return static_cast<uint8_t>(v * 255.0f + 0.5f);
        };
        canvas.fill_rect(x0 + static_cast<int>(x * scale), y0 + static_cast<int>(y * scale), static_cast<int>(scale),
                         static_cast<int>(scale), {px(0), px(1), px(2)});
      }
  };
  for (size_t r = 0; r < rows.size(); ++r) {
    const int y0 = header_h + static_cast<int>(r) * (cell + pair_gap);
    canvas.text(6, y0 + cell / 2 + 5, rows[r].name, 15, {0, 0, 0});
    for (int64_t i = 0; i < rows[r].original.size(0); ++i) {
      const int x0 = label_w + static_cast<int>(i) * (2 * cell + gap + pair_gap);
      draw(rows[r].original, i, x0, y0);
      draw(rows[r].normalized, i, x0 + cell + gap, y0);
    }
  }
  canvas.save_png(out_path);
  std::printf("data show: wrote %s (%zu domains x %lld samples, %dx%d px)\n", out_path.c_str(), rows.size(),
              static_cast<long long>(samples), width, height);
  return 0;
}

Register reg_show{{
    .name = "data show",
    .summary = "a PNG grid of samples per domain beside their NeuRN output",
    .flags = {text("domains", "A,B", "(mnist,usps,mnistm,syn)"),
              text("neurn-options", "SPEC", "k=3[,padding=..,max_scope=..] (k=3)"),
              text("output", "FILE.png", "(grid.png)"), integer("samples", "N", "images per domain (6)"),
              text("split", "train|test", "(test)"), integer("image-size", "S", "(32)"),
              integer("scale", "N", "pixels per image pixel (3)")},
    .details = "One row per domain, `samples` images each, the original (as the model sees it: RGB, size x size) "
               "beside its NeuRN output. Domains whose files are absent are skipped with a message (see `neurn "
               "data prepare`).",
    .fn = data_show}};

}  // namespace

// ---- forward --model none --neurn ... ---------------------------------------------

int forward_neurn_only(const std::string& neurn_spec, const std::string& input_path, const std::string& output_path,
                       const std::string& device) {
  NEURN_CHECK(!input_path.empty() && !output_path.empty(), "forward --model none: --input and --output are required");
  NeuRNOptions opt = parse_neurn_options(neurn_spec);
  std::map<std::string, std::string> meta;
  NamedTensors in = load_safetensors(input_path, &meta);
  Tensor x = find_tensor(in, "input", input_path);
  NEURN_CHECK(x.dtype() == DType::Float32 || x.dtype() == DType::Float64, "forward: tensor 'input' of ", input_path,
              " is ", dtype_name(x.dtype()), "; expected F32 or F64");
  NEURN_CHECK(x.dim() >= 2 && x.dim() <= 4, "forward: tensor 'input' of ", input_path, " has shape ",
              shape_str(x.shape()), "; expected (N, C, H, W), (C, H, W) or (H, W)");
  Shape orig = x.shape();
  Shape s4 = orig;
  while (s4.size() < 4) s4.insert(s4.begin(), 1);
  Device dev = Device::parse(device.empty() ? "cpu" : device);
  Tensor xd = x.reshape(s4);
  if (dev.is_cuda()) xd = xd.to(DType::Float32).to(dev);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = neurn_norm(xd, opt);
  }
  y = y.cpu().to(x.dtype()).reshape(orig);
  save_safetensors(output_path, {{"output", y}}, {{"neurn", neurn_options_str(opt)}});
  std::printf("forward: NeuRN(%s) on 'input' %s %s of %s -> 'output' in %s\n", neurn_options_str(opt).c_str(),
              shape_str(orig).c_str(), dtype_name(x.dtype()), input_path.c_str(), output_path.c_str());
  return 0;
}

}  // namespace neurn::cli
