// Dataset views, protocols, validation splits, the registry and data root,
// transforms, and the loader (order, shuffling, drop_last, normalization,
// resize, channels, augmentation, threads).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <set>

#include "datasets/datasets.h"
#include "datasets/layout.h"
#include "datasets/readers.h"
#include "datasets/transforms.h"
#include "fixtures.h"
#include "gradcheck.h"

using namespace neurn;
using namespace neurn::data;
using namespace neurn::data::testing;

namespace {
// n images of (c, h, w); pixel p of image i = (i * 13 + p) % 256; label i % 10.
Dataset toy(int64_t n, int64_t c, int64_t h, int64_t w) {
  std::vector<uint8_t> px(static_cast<size_t>(n * c * h * w));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < c * h * w; ++p)
      px[static_cast<size_t>(i * c * h * w + p)] = static_cast<uint8_t>((i * 13 + p) % 256);
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = i % 10;
  return Dataset("toy", "train", c, h, w, std::move(px), std::move(labels));
}
}  // namespace

TEST_CASE("Dataset: views share pixels; subset, first, histogram; bad shapes rejected") {
  Dataset ds = toy(25, 1, 4, 4);
  CHECK(ds.class_histogram() == std::vector<int64_t>{3, 3, 3, 3, 3, 2, 2, 2, 2, 2});
  Dataset sub = ds.subset({24, 3}, "pick");
  CHECK(sub.size() == 2);
  CHECK(sub.split() == "pick");
  CHECK(sub.label(0) == 4);
  CHECK(sub.image(1) == ds.image(3));  // same memory
  CHECK(ds.first(5).labels() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(ds.first(100).size() == 25);
  CHECK_THROWS_CONTAINING(ds.image(25), "index 25 out of range");
  CHECK_THROWS_CONTAINING(ds.subset({30}), "index 30 out of range");
  CHECK_THROWS_CONTAINING(Dataset("bad", "train", 1, 2, 2, std::vector<uint8_t>(7), {1, 2}),
                          "7 pixel bytes for 2 images");
}

TEST_CASE("Protocol: parse and print") {
  CHECK(Protocol::parse("full").kind == Protocol::Kind::Full);
  CHECK(Protocol::parse("first_n:10000").n == 10000);
  CHECK(Protocol::parse("first_n=5").n == 5);
  CHECK(Protocol::parse("first10000").n == 10000);
  CHECK(Protocol::first_n(7).str() == "first_n:7");
  CHECK_THROWS_CONTAINING(Protocol::parse("first_n:abc"), "expected 'full' or 'first_n:N'");
  CHECK_THROWS_CONTAINING(Protocol::parse("half"), "protocol 'half'");
}

TEST_CASE("split_validation: disjoint, complete, seeded, sized by the fraction") {
  Dataset ds = toy(1000, 1, 2, 2);
  auto [fit, val] = split_validation(ds, 0.1, 42);
  CHECK(val.size() == 100);
  CHECK(fit.size() == 900);
  CHECK(val.split() == "val");
  std::set<const uint8_t*> seen;
  for (int64_t i = 0; i < fit.size(); ++i) seen.insert(fit.image(i));
  for (int64_t i = 0; i < val.size(); ++i) seen.insert(val.image(i));
  CHECK(seen.size() == 1000);
  auto [fit2, val2] = split_validation(ds, 0.1, 42);
  CHECK(val2.labels() == val.labels());
  CHECK(val2.image(0) == val.image(0));
  auto [fit3, val3] = split_validation(ds, 0.1, 43);
  bool differs = false;
  for (int64_t i = 0; i < val.size(); ++i) differs |= (val3.image(i) != val.image(i));
  CHECK(differs);
  CHECK_THROWS_CONTAINING(split_validation(ds, 1.5, 1), "fraction 1.5");
  CHECK_THROWS_CONTAINING(split_validation(toy(3, 1, 2, 2), 0.01, 1), "leaves 0 for validation");
}

TEST_CASE("channel_stats: known values") {
  std::vector<uint8_t> px = {0, 255, 0, 255, 51, 51, 51, 51};  // one image (2, 2, 2)
  Dataset ds("s", "train", 2, 2, 2, px, {0});
  auto st = channel_stats(ds);
  CHECK(st.mean[0] == doctest::Approx(0.5));
  CHECK(st.std[0] == doctest::Approx(0.5));
  CHECK(st.mean[1] == doctest::Approx(0.2));
  CHECK(st.std[1] == doctest::Approx(0.0).epsilon(1e-6));
}

TEST_CASE("registry and data root: domains, unknown names, NEURN_DATA, availability messages") {
  std::vector<std::string> names;
  for (const auto& d : domains()) names.push_back(d.name);
  for (const char* want : {"mnist", "usps", "svhn", "mnistm", "syn"})
    CHECK(std::find(names.begin(), names.end(), want) != names.end());
  CHECK(domain_info("usps").height == 16);
  CHECK(domain_info("svhn_sample50").sample);
  CHECK_FALSE(domain_info("svhn").sample);
  CHECK_THROWS_CONTAINING(domain_info("cifar"), "unknown domain 'cifar'");

  const char* old = std::getenv("NEURN_DATA");
  std::string saved = old ? old : "";
  setenv("NEURN_DATA", "/some/where", 1);
  CHECK(data_root() == "/some/where");
  unsetenv("NEURN_DATA");
  CHECK(data_root() == "./data");
  if (old) setenv("NEURN_DATA", saved.c_str(), 1);

  TempDir empty;
  CHECK_FALSE(domain_available("mnist", empty.path));
  CHECK(domain_unavailable_message("mnist", empty.path).find("neurn data prepare mnist") != std::string::npos);
  std::string svhn = domain_unavailable_message("svhn", empty.path);
  CHECK(svhn.find("http://ufldl.stanford.edu/housenumbers/") != std::string::npos);
  CHECK(svhn.find(empty.path + "/svhn/") != std::string::npos);
  CHECK_THROWS_CONTAINING(load_domain("svhn", "train", empty.path), "domain svhn is not available");
  CHECK_THROWS_CONTAINING(load_domain("mnist", "valid", empty.path), "has no split 'valid'");
  CHECK(domain_available("syn", empty.path));
}

TEST_CASE("load_domain: fixture root, in-memory cache, first_n; the SVHN sample never stands in for svhn") {
  TempDir root;
  write_bytes(root / "mnist/train-images-idx3-ubyte.gz", gzip_bytes(idx_images(30, 28, 28)));
  std::vector<uint8_t> labels(30);
  for (int i = 0; i < 30; ++i) labels[static_cast<size_t>(i)] = static_cast<uint8_t>(i % 10);
  write_bytes(root / "mnist/train-labels-idx1-ubyte.gz", gzip_bytes(idx_labels(labels)));
  write_bytes(root / "mnist/t10k-images-idx3-ubyte", idx_images(5, 28, 28));
  write_bytes(root / "mnist/t10k-labels-idx1-ubyte", idx_labels({1, 2, 3, 4, 5}));
  CHECK(domain_available("mnist", root.path));
  Dataset a = load_domain("mnist", "train", root.path);
  Dataset b = load_domain("mnist", "train", root.path);
  CHECK(a.size() == 30);
  CHECK(a.image(0) == b.image(0));  // served from the cache
  CHECK(load_domain("mnist", "test", root.path).labels() == std::vector<int64_t>{1, 2, 3, 4, 5});
  Dataset f = load_domain("mnist", "train", root.path, Protocol::first_n(12));
  CHECK(f.size() == 12);
  CHECK(f.labels()[11] == 1);
  CHECK_THROWS_CONTAINING(load_domain("mnist", "train", root.path, Protocol::first_n(31)), "asks for more records");

  write_text(root / "svhn/svhn_sample50_32x32.mat", "placeholder bytes");
  CHECK_FALSE(domain_available("svhn", root.path));
  CHECK(domain_available("svhn_sample50", root.path));
  clear_domain_cache();
}

TEST_CASE("ImageConverter: resize matches the float reference; gray <-> RGB; normalization") {
  Dataset ds = toy(1, 1, 7, 5);
  const uint8_t* src = ds.image(0);
  std::vector<float> as_float(src, src + 35);
  std::vector<float> ref(11 * 9), out(3 * 11 * 9);
  resize_bilinear(as_float.data(), 1, 7, 5, ref.data(), 11, 9);
  float mean[3] = {0.5f, 0.f, 0.25f}, inv[3] = {2.f, 1.f, 4.f};
  ImageConverter(1, 7, 5, 3, 11, 9)(src, out.data(), mean, inv);
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 99; ++p)
      CHECK(out[static_cast<size_t>(c * 99 + p)] ==
            doctest::Approx((ref[static_cast<size_t>(p)] / 255.f - mean[c]) * inv[c]).epsilon(1e-5));
  // Upsampling a constant image stays constant; downsampling by 2 averages pairs.
  std::vector<float> two = {0, 10, 20, 30}, half(2);
  resize_bilinear(two.data(), 1, 1, 4, half.data(), 1, 2);
  CHECK(half[0] == doctest::Approx(5));
  CHECK(half[1] == doctest::Approx(25));
  // RGB -> gray by BT.601 luma.
  Dataset c3("rgb", "t", 3, 1, 1, {100, 50, 200}, {0});
  float g = 0, m0 = 0, one = 1;
  ImageConverter(3, 1, 1, 1, 1, 1)(c3.image(0), &g, &m0, &one);
  CHECK(g == doctest::Approx((0.299 * 100 + 0.587 * 50 + 0.114 * 200) / 255.0).epsilon(1e-5));
}

TEST_CASE("DataLoader: order, shapes, labels, drop_last, shuffling by seed and epoch") {
  Dataset ds = toy(103, 1, 4, 4);
  LoaderOptions opt;
  opt.batch_size = 10;
  opt.shuffle = false;
  DataLoader plain(ds, opt);
  CHECK(plain.num_batches() == 11);
  std::vector<int64_t> labels;
  int64_t batches = 0;
  for (const Batch& b : plain) {
    CHECK(b.images.dim() == 4);
    CHECK(b.images.size(1) == 1);
    CHECK(b.labels.dtype() == DType::Int64);
    auto l = b.labels.to_vector<int64_t>();
    labels.insert(labels.end(), l.begin(), l.end());
    if (batches == 0) CHECK(b.images.data<float>()[5] == doctest::Approx(ds.image(0)[5] / 255.f));
    ++batches;
  }
  CHECK(batches == 11);
  CHECK(labels == ds.labels());

  opt.drop_last = true;
  opt.shuffle = true;
  opt.seed = 5;
  DataLoader sh(ds, opt);
  CHECK(sh.num_batches() == 10);
  auto epoch_order = [&](DataLoader& L) {
    std::vector<float> firsts;  // pixel 0 identifies the image: (i * 13) % 256
    for (const Batch& b : L)
      for (int64_t k = 0; k < b.images.size(0); ++k) firsts.push_back(b.images.data<float>()[k * 16]);
    return firsts;
  };
  auto e0 = epoch_order(sh), e1 = epoch_order(sh);
  CHECK(e0.size() == 100);
  CHECK(e0 != e1);  // a new shuffle each epoch
  DataLoader again(ds, opt);
  CHECK(epoch_order(again) == e0);  // same seed, same epoch -> same order
  again.set_epoch(1);
  CHECK(epoch_order(again) == e1);
  std::set<float> distinct(e0.begin(), e0.end());
  CHECK(distinct.size() > 90);  // a permutation, not repeats
}

TEST_CASE("DataLoader: resize, gray->RGB, fixed and dataset normalization, workers agree, early break") {
  Dataset ds = toy(64, 1, 16, 16);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.shuffle = false;
  opt.size = 32;
  opt.channels = 3;
  opt.normalize = Normalization::fixed({0.5f}, {0.25f});
  DataLoader L(ds, opt);
  auto it = L.begin();
  const Batch& b = *it;
  CHECK(b.images.shape() == Shape{16, 3, 32, 32});
  const float* p = b.images.data<float>();
  for (int k = 0; k < 1024; ++k) CHECK(p[k] == p[1024 + k]);
  std::vector<float> ref(1024), src(ds.image(0), ds.image(0) + 256);
  resize_bilinear(src.data(), 1, 16, 16, ref.data(), 32, 32);
  CHECK(p[100] == doctest::Approx((ref[100] / 255.f - 0.5f) / 0.25f).epsilon(1e-5));

  opt.normalize = Normalization::from_dataset();
  opt.workers = 3;
  opt.prefetch = 2;
  DataLoader N(ds, opt);
  double s = 0, s2 = 0, n = 0;
  for (const Batch& bb : N) {
    const float* q = bb.images.data<float>();
    for (int64_t k = 0; k < bb.images.numel(); ++k) {
      s += q[k];
      s2 += q[k] * q[k];
      n += 1;
    }
  }
  CHECK(s / n == doctest::Approx(0.0).epsilon(1e-3));
  CHECK(std::sqrt(s2 / n) == doctest::Approx(1.0).epsilon(1e-3));

  opt.normalize = Normalization::fixed({0.1f, 0.2f}, {1.f});
  CHECK_THROWS_CONTAINING(DataLoader(ds, opt), "normalization mean has 2 values (expected 1 or 3)");
  opt.normalize = {};
  opt.channels = 2;
  CHECK_THROWS_CONTAINING(DataLoader(ds, opt), "channels 2");

  // Several workers produce the same batches as one, in order; leaving an
  // epoch early and starting another is clean.
  LoaderOptions o1;
  o1.batch_size = 7;
  o1.seed = 3;
  o1.augment.crop_padding = 2;
  o1.augment.max_rotate_deg = 10;
  o1.augment.brightness = 0.3f;
  LoaderOptions o4 = o1;
  o4.workers = 4;
  DataLoader A(ds, o1), B(ds, o4);
  std::vector<float> va, vb;
  for (const Batch& x : A) va.insert(va.end(), x.images.data<float>(), x.images.data<float>() + x.images.numel());
  for (const Batch& x : B) vb.insert(vb.end(), x.images.data<float>(), x.images.data<float>() + x.images.numel());
  CHECK(va == vb);
  int seen = 0;
  for (const Batch& x : A) {
    (void)x;
    if (++seen == 2) break;
  }
  int full = 0;
  for (const Batch& x : A) full += static_cast<int>(x.images.size(0));
  CHECK(full == 64);
  // An iterator of an abandoned epoch fails loudly instead of waiting forever.
  auto old_it = A.begin();
  auto new_it = A.begin();
  CHECK((*new_it).images.size(0) == 7);
  CHECK_THROWS_CONTAINING(++old_it, "this epoch was abandoned");
}

TEST_CASE("augmentation: stays in [0, 1], changes images, deterministic per generator; off leaves them alone") {
  Dataset ds = toy(1, 3, 16, 16);
  std::vector<float> img(3 * 256);
  float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
  ImageConverter(3, 16, 16, 3, 16, 16)(ds.image(0), img.data(), zero, one);
  Augmentation aug;
  CHECK_FALSE(aug.enabled());
  aug.crop_padding = 3;
  aug.max_rotate_deg = 15;
  aug.max_scale = 0.1f;
  aug.max_translate = 0.1f;
  aug.brightness = 0.4f;
  aug.contrast = 0.4f;
  aug.saturation = 0.4f;
  CHECK(aug.enabled());
  std::vector<float> a = img, b = img;
  Generator g1(9), g2(9);
  augment_image(a.data(), 3, 16, 16, aug, g1);
  augment_image(b.data(), 3, 16, 16, aug, g2);
  CHECK(a == b);
  CHECK(a != img);
  for (float v : a) CHECK((v >= 0.f && v <= 1.f));
  // A pure shift: crop padding alone moves content by at most the padding.
  Augmentation crop;
  crop.crop_padding = 2;
  std::vector<float> c = img;
  Generator g3(1);
  augment_image(c.data(), 3, 16, 16, crop, g3);
  int matches = 0;
  for (int dy = -2; dy <= 2; ++dy)
    for (int dx = -2; dx <= 2; ++dx) {
      bool same = true;
      for (int y = 2; y < 14; ++y)
        for (int x = 2; x < 14; ++x)
          same &= (c[static_cast<size_t>(y * 16 + x)] == img[static_cast<size_t>((y + dy) * 16 + x + dx)]);
      matches += same;
    }
  CHECK(matches >= 1);
}

TEST_CASE("resize_bilinear agrees with PyTorch's F.interpolate(mode='bilinear', align_corners=False)") {
  // Reference values printed once by torch 2.x:
  //   F.interpolate(torch.arange(35.).reshape(1, 1, 7, 5), size=(11, 9), mode='bilinear', align_corners=False)
  //   F.interpolate(torch.arange(36.).reshape(1, 1, 6, 6), size=(4, 4), mode='bilinear', align_corners=False)
  std::vector<float> up_in(35), up(99);
  std::iota(up_in.begin(), up_in.end(), 0.f);
  resize_bilinear(up_in.data(), 1, 7, 5, up.data(), 11, 9);
  const float up_ref[2][5] = {{0.0f, 0.3333f, 0.8889f, 1.4444f, 2.0f}, {2.2727f, 2.6061f, 3.1616f, 3.7172f, 4.2727f}};
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 5; ++c) CHECK(up[static_cast<size_t>(r * 9 + c)] == doctest::Approx(up_ref[r][c]).epsilon(1e-3));
  std::vector<float> down_in(36), down(16);
  std::iota(down_in.begin(), down_in.end(), 0.f);
  resize_bilinear(down_in.data(), 1, 6, 6, down.data(), 4, 4);
  const float down_ref[16] = {1.75f,  3.25f,  4.75f,  6.25f,  10.75f, 12.25f, 13.75f, 15.25f,
                              19.75f, 21.25f, 22.75f, 24.25f, 28.75f, 30.25f, 31.75f, 33.25f};
  for (int k = 0; k < 16; ++k) CHECK(down[static_cast<size_t>(k)] == doctest::Approx(down_ref[k]).epsilon(1e-5));
}

TEST_CASE("load_domain: decoded caches for mnistm and syn are used; a stale mnistm cache is refused") {
  TempDir root;
  Dataset two("mnistm", "test", 3, 32, 32, std::vector<uint8_t>(2 * 3072, 7), {1, 2});
  write_u8_cache(layout::mnistm_cache(root.path, "test"), two);
  Dataset two_train("mnistm", "train", 3, 32, 32, std::vector<uint8_t>(2 * 3072, 9), {3, 4});
  write_u8_cache(layout::mnistm_cache(root.path, "train"), two_train);
  CHECK(domain_available("mnistm", root.path));
  CHECK(load_domain("mnistm", "test", root.path).labels() == std::vector<int64_t>{1, 2});
  clear_domain_cache();
  write_text(layout::mnistm_labels(root.path, "test"), "00000000.png 1\n00000001.png 2\n00000002.png 3\n");
  CHECK_THROWS_CONTAINING(load_domain("mnistm", "test", root.path), "run `neurn data prepare mnistm`");

  Dataset syn_small("syn", "test", 3, 32, 32, std::vector<uint8_t>(3 * 3072, 5), {0, 1, 2});
  write_u8_cache(layout::syn_cache(root.path, "test", layout::kSynTestCount, layout::kSynTestSeed), syn_small);
  CHECK(load_domain("syn", "test", root.path).size() == 3);
  clear_domain_cache();
}
