// `neurn bench loader`: throughput of the data loader on a cached domain:
// decode from the in-memory uint8 cache, transform (resize, channels,
// normalize), batch into float tensors, prefetched on background threads.
#include <chrono>
#include <cstdio>

#include "datasets/datasets.h"
#include "experiments/cli/cli.h"

namespace neurn::cli {
namespace {

int bench_loader(const Flags& f) {
  std::string domain = f.get("domain", "mnistm"), split = f.get("split", "train");
  std::string root = f.get("data-root", data::data_root());
  auto t0 = std::chrono::steady_clock::now();
  data::Dataset ds = data::load_domain(domain, split, root);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  data::LoaderOptions opt;
  opt.batch_size = f.get_int("batch-size", 256);
  opt.size = f.get_int("image-size", 32);
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

Register reg{{
    .name = "bench loader",
    .summary = "data loader throughput (images/s) on a cached domain",
    .flags = {text("domain", "NAME", "(mnistm)"), text("split", "train|test", "(train)"), integer("image-size", "S", "(32)"),
              integer("channels", "C", "(3)"), integer("batch-size", "N", "(256)"), integer("epochs", "N", "(3)"),
              integer("workers", "N", "(1)"), on_off("augment", "crop, rotation and brightness augmentation"),
              on_off("normalize", "normalize to mean 0.5, std 0.5"),
              text("data-root", "DIR", "($NEURN_DATA, else ./data)")},
    .details = "Prints the loader's throughput; the last line is images_per_second=<N>.",
    .fn = bench_loader}};

}  // namespace
}  // namespace neurn::cli
