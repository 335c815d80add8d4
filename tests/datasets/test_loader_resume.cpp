// What a resumed run needs from the loader: the batches of epoch e (order and
// augmentation) are a function of (seed, e) alone, so a fresh loader set to
// epoch e (set_epoch, from the checkpoint's epoch count) gives, byte for byte,
// what a loader that ran epochs 0..e-1 gives, whatever the number of workers
// and even when an earlier epoch was abandoned in the middle (a kill). The
// trainer end of this: tests/experiments/test_determinism.cpp.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "datasets/datasets.h"

using namespace neurn;
using namespace neurn::data;

namespace {

Dataset noisy(int64_t n) {  // (n, 3, 12, 12), pixel values from an LCG
  std::vector<uint8_t> px(static_cast<size_t>(n * 3 * 12 * 12));
  uint32_t s = 7;
  for (auto& p : px) p = static_cast<uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = (i * 7) % 10;
  return Dataset("noisy", "train", 3, 12, 12, std::move(px), std::move(labels));
}

// Every byte of an epoch's images and labels.
std::vector<uint8_t> epoch_bytes(DataLoader& L) {
  std::vector<uint8_t> out;
  for (const Batch& b : L) {
    auto* pi = static_cast<const uint8_t*>(b.images.raw_data());
    auto* pl = static_cast<const uint8_t*>(b.labels.raw_data());
    out.insert(out.end(), pi, pi + b.images.nbytes());
    out.insert(out.end(), pl, pl + b.labels.nbytes());
  }
  return out;
}

}  // namespace

TEST_CASE("DataLoader resume: epoch e of a fresh loader equals epoch e after e-1 epochs (shuffle, augmentation, "
          "workers, an abandoned epoch)") {
  Dataset ds = noisy(70);
  LoaderOptions opt;
  opt.batch_size = 8;
  opt.shuffle = true;
  opt.seed = 9;
  opt.size = 16;
  opt.augment.crop_padding = 2;
  opt.augment.max_rotate_deg = 10.f;
  opt.augment.brightness = 0.2f;
  opt.augment.contrast = 0.2f;
  opt.workers = 3;
  opt.prefetch = 2;

  DataLoader through(ds, opt);
  std::vector<uint8_t> e0 = epoch_bytes(through);
  {
    int taken = 0;  // epoch 1 abandoned after 3 batches, as a killed run leaves it
    for (const Batch& b : through) {
      (void)b;
      if (++taken == 3) break;
    }
  }
  through.set_epoch(1);  // what the trainer does before each epoch
  std::vector<uint8_t> e1 = epoch_bytes(through);
  std::vector<uint8_t> e2 = epoch_bytes(through);

  LoaderOptions one = opt;
  one.workers = 1;
  DataLoader fresh(ds, one);
  fresh.set_epoch(2);
  CHECK(epoch_bytes(fresh) == e2);
  fresh.set_epoch(1);
  CHECK(epoch_bytes(fresh) == e1);
  CHECK(e1 != e2);  // new order and new augmentation each epoch
  CHECK(e0 != e1);

  // The seed matters: another seed, another epoch 1.
  LoaderOptions other = opt;
  other.seed = 10;
  DataLoader o(ds, other);
  o.set_epoch(1);
  CHECK(epoch_bytes(o) != e1);
}
