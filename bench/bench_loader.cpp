// `neurn bench loader`: throughput of the data loader on a cached domain:
// decode from the in-memory uint8 cache, transform (resize, channels,
// normalize), batch into float tensors, prefetched on background threads.
#include <chrono>
#include <cstdio>

#include "datasets/datasets.h"
#include "experiments/cli/cli.h"

namespace neurn::cli {
namespace {

int bench_loader(const Args& args) {
  Flags f(args, {"help", "augment", "normalize"});
  if (f.has("help")) {
    std::printf(
        "usage: neurn bench loader [--domain mnistm] [--split train] [--size 32] [--channels 3] [--batch 256]\n"
        "                          [--epochs 3] [--workers 1] [--augment] [--normalize] [--root DIR]\n"
        "Prints the loader's throughput; the last line is images_per_second=<N>.\n");
    return 0;
  }
  f.allow_only(
      {"domain", "split", "size", "channels", "batch", "epochs", "workers", "augment", "normalize", "root", "help"});
  std::string domain = f.get("domain", "mnistm"), split = f.get("split", "train");
  std::string root = f.get("root", data::data_root());
  auto t0 = std::chrono::steady_clock::now();
  data::Dataset ds = data::load_domain(domain, split, root);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  data::LoaderOptions opt;
  opt.batch_size = f.get_int("batch", 256);
  opt.size = f.get_int("size", 32);
  opt.channels = f.get_int("channels", 3);
  opt.workers = f.get_int("workers", 1);
  opt.seed = 1;
  if (f.has("normalize")) opt.normalize = data::Normalization::fixed({0.5f}, {0.5f});
  if (f.has("augment")) {
    opt.augment.crop_padding = 2;
    opt.augment.max_rotate_deg = 10;
    opt.augment.brightness = 0.2f;
  }
  data::DataLoader loader(ds, opt);
  int64_t epochs = f.get_int("epochs", 3);
  std::printf("domain %s/%s: %ld images (%ldx%ldx%ld) loaded in %.2f s; batches of %ld as %ldx%ldx%ld float\n",
              domain.c_str(), split.c_str(), static_cast<long>(ds.size()), static_cast<long>(ds.channels()),
              static_cast<long>(ds.height()), static_cast<long>(ds.width()), load_s, static_cast<long>(opt.batch_size),
              static_cast<long>(loader.out_channels()), static_cast<long>(loader.out_size_h()),
              static_cast<long>(loader.out_size_w()));
  int64_t images = 0;
  double checksum = 0;
  auto t1 = std::chrono::steady_clock::now();
  for (int64_t e = 0; e < epochs; ++e)
    for (const data::Batch& b : loader) {
      images += b.images.size(0);
      checksum += static_cast<double>(b.images.data<float>()[0]);  // touch the batch
    }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("%ld epochs, %ld images in %.3f s (workers %ld; first-pixel sum %.3f)\n", static_cast<long>(epochs),
              static_cast<long>(images), s, static_cast<long>(opt.workers), checksum);
  std::printf("images_per_second=%.0f\n", static_cast<double>(images) / s);
  return 0;
}

Register reg{"bench loader", "data loader throughput (images/s) on a cached domain", bench_loader};

}  // namespace
}  // namespace neurn::cli
