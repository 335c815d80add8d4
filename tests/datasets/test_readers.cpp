// Readers on fixtures made here, including corrupted copies: each error must
// name the file and, where there is one, the record.
#include <doctest/doctest.h>
#include <matio.h>

#include <cstring>

#include "datasets/readers.h"
#include "fixtures.h"
#include "gradcheck.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

using namespace neurn::data;
using namespace neurn::data::testing;

TEST_CASE("mnist reader: gz and raw fixtures") {
  TempDir dir;
  write_bytes(dir / "img", idx_images(3, 28, 28));
  write_bytes(dir / "lab", idx_labels({7, 0, 9}));
  write_bytes(dir / "img.gz", gzip_bytes(idx_images(3, 28, 28)));
  write_bytes(dir / "lab.gz", gzip_bytes(idx_labels({7, 0, 9})));
  for (auto [i, l] : {std::pair<std::string, std::string>{"img", "lab"}, {"img.gz", "lab.gz"}}) {
    Dataset ds = read_mnist(dir / i, dir / l, "train");
    REQUIRE(ds.size() == 3);
    CHECK(ds.channels() == 1);
    CHECK(ds.height() == 28);
    CHECK(ds.labels() == std::vector<int64_t>{7, 0, 9});
    CHECK(ds.image(2)[5] == (2 * 7 + 5) % 256);
  }
}

TEST_CASE("mnist reader: wrong magic, wrong size, truncated, count mismatch, label out of range") {
  TempDir dir;
  write_bytes(dir / "lab", idx_labels({1, 2, 3}));
  write_bytes(dir / "magic", idx_images(3, 28, 28, 2049));
  CHECK_THROWS_CONTAINING(read_mnist(dir / "magic", dir / "lab", "train"), "magic: wrong magic number 2049");
  write_bytes(dir / "size", idx_images(3, 27, 28));
  CHECK_THROWS_CONTAINING(read_mnist(dir / "size", dir / "lab", "train"), "size: wrong image size 27x28");
  auto cut = idx_images(3, 28, 28);
  cut.resize(cut.size() - 100);
  write_bytes(dir / "cut", cut);
  CHECK_THROWS_CONTAINING(read_mnist(dir / "cut", dir / "lab", "train"), "cut: truncated");
  write_bytes(dir / "img4", idx_images(4, 28, 28));
  CHECK_THROWS_CONTAINING(read_mnist(dir / "img4", dir / "lab", "train"), "3 labels but");
  write_bytes(dir / "img", idx_images(3, 28, 28));
  write_bytes(dir / "badlab", idx_labels({1, 12, 3}));
  CHECK_THROWS_CONTAINING(read_mnist(dir / "img", dir / "badlab", "train"),
                          "badlab: label out of range at record 1: 12");
  write_bytes(dir / "labmagic", idx_labels({1, 2, 3}, 2051));
  CHECK_THROWS_CONTAINING(read_mnist(dir / "img", dir / "labmagic", "train"), "labmagic: wrong magic number 2051");
  auto gz = gzip_bytes(idx_images(3, 28, 28));
  gz.resize(gz.size() - 20);
  write_bytes(dir / "cut.gz", gz);
  CHECK_THROWS_CONTAINING(read_mnist(dir / "cut.gz", dir / "lab", "train"), "cut.gz: truncated gzip stream");
  CHECK_THROWS_CONTAINING(read_mnist(dir / "absent.gz", dir / "lab", "train"), "absent.gz");
}

namespace {
std::string usps_line(int label, double v) {
  std::string s = std::to_string(label) + ".0000";
  for (int k = 0; k < 256; ++k) s += " " + std::to_string(k == 0 ? -1.0 : v);
  return s + "\n";
}
}  // namespace

TEST_CASE("usps text reader: values mapped from [-1, 1] to [0, 255]; errors name file and record") {
  TempDir dir;
  write_bytes(dir / "zip.train.gz", gzip_bytes([] {
                std::string s = usps_line(6, 1.0) + usps_line(0, 0.0);
                return std::vector<uint8_t>(s.begin(), s.end());
              }()));
  Dataset ds = read_usps_text(dir / "zip.train.gz", "train");
  REQUIRE(ds.size() == 2);
  CHECK(ds.height() == 16);
  CHECK(ds.labels() == std::vector<int64_t>{6, 0});
  CHECK(ds.image(0)[0] == 0);
  CHECK(ds.image(0)[1] == 255);
  CHECK(ds.image(1)[1] == 128);  // 0.0 -> 127.5 rounds to 128

  write_text(dir / "badlabel", usps_line(6, 1.0) + usps_line(11, 0.0));
  CHECK_THROWS_CONTAINING(read_usps_text(dir / "badlabel", "train"), "badlabel: label out of range at record 1");
  std::string short_line = "3.0000 0.5 0.5\n";
  write_text(dir / "short", usps_line(1, 0.0) + short_line);
  CHECK_THROWS_CONTAINING(read_usps_text(dir / "short", "train"), "short: line 2 (record 1) has 3 values");
  write_text(dir / "range", usps_line(1, 3.0));
  CHECK_THROWS_CONTAINING(read_usps_text(dir / "range", "train"), "range: record 0: pixel value 3");
}

TEST_CASE("usps libsvm reader: labels 1..10 -> 0..9, sparse indices, bzip2") {
  TempDir dir;
  std::string s = "10 1:-1 2:1 256:0.5\n3 1:1\n";
  write_bytes(dir / "usps.bz2", bzip2_bytes(std::vector<uint8_t>(s.begin(), s.end())));
  Dataset ds = read_usps_libsvm(dir / "usps.bz2", "train");
  REQUIRE(ds.size() == 2);
  CHECK(ds.labels() == std::vector<int64_t>{9, 2});
  CHECK(ds.image(0)[0] == 0);
  CHECK(ds.image(0)[1] == 255);
  CHECK(ds.image(0)[2] == 128);  // absent feature = 0
  CHECK(ds.image(0)[255] == 191);
  write_text(dir / "bad0", "0 1:1\n");
  CHECK_THROWS_CONTAINING(read_usps_libsvm(dir / "bad0", "train"), "bad0: label out of range at record 0");
  write_text(dir / "badidx", "1 1:1\n2 300:1\n");
  CHECK_THROWS_CONTAINING(read_usps_libsvm(dir / "badidx", "train"), "badidx: record 1: feature index 300");
  write_text(dir / "badfeat", "1 x\n");
  CHECK_THROWS_CONTAINING(read_usps_libsvm(dir / "badfeat", "train"), "badfeat: line 1: bad feature 'x'");
}

namespace {
// Writes an SVHN-style .mat (MATLAB v5) with libmatio: X dims x (uint8), y (double).
void write_svhn_mat(const std::string& path, std::vector<size_t> xdims, const std::vector<double>& y,
                    bool with_x = true, bool with_y = true, bool compress = true) {
  mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
  REQUIRE(mat);
  size_t nx = 1;
  for (size_t d : xdims) nx *= d;
  std::vector<uint8_t> x(nx);
  for (size_t i = 0; i < nx; ++i) x[i] = static_cast<uint8_t>(i % 251);
  if (with_x) {
    matvar_t* v =
        Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, static_cast<int>(xdims.size()), xdims.data(), x.data(), 0);
    Mat_VarWrite(mat, v, compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE);
    Mat_VarFree(v);
  }
  if (with_y) {
    size_t ydims[2] = {y.size(), 1};
    matvar_t* v = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, ydims, const_cast<double*>(y.data()), 0);
    Mat_VarWrite(mat, v, compress ? MAT_COMPRESSION_ZLIB : MAT_COMPRESSION_NONE);
    Mat_VarFree(v);
  }
  Mat_Close(mat);
}
}  // namespace

TEST_CASE("svhn reader: MATLAB layout to (N, C, H, W), label 10 -> 0") {
  TempDir dir;
  write_svhn_mat(dir / "s.mat", {32, 32, 3, 3}, {10, 1, 5});
  Dataset ds = read_svhn_mat(dir / "s.mat", "svhn", "test");
  REQUIRE(ds.size() == 3);
  CHECK(ds.channels() == 3);
  CHECK(ds.labels() == std::vector<int64_t>{0, 1, 5});
  // X(h, w, c, n) at h + 32 w + 1024 c + 3072 n (column-major) -> (n, c, h, w).
  size_t h = 3, w = 7, c = 2, n = 1;
  CHECK(ds.image(1)[c * 1024 + h * 32 + w] == (h + 32 * w + 1024 * c + 3072 * n) % 251);
  write_svhn_mat(dir / "plain.mat", {32, 32, 3, 2}, {2, 3}, true, true, false);
  CHECK(read_svhn_mat(dir / "plain.mat", "svhn", "test").labels() == std::vector<int64_t>{2, 3});
}

TEST_CASE("svhn reader: malformed .mat files") {
  TempDir dir;
  write_svhn_mat(dir / "nox.mat", {32, 32, 3, 2}, {1, 2}, false, true);
  CHECK_THROWS_CONTAINING(read_svhn_mat(dir / "nox.mat", "svhn", "train"), "nox.mat: no variable 'X'");
  write_svhn_mat(dir / "noy.mat", {32, 32, 3, 2}, {1, 2}, true, false);
  CHECK_THROWS_CONTAINING(read_svhn_mat(dir / "noy.mat", "svhn", "train"), "noy.mat: no variable 'y'");
  write_svhn_mat(dir / "dims.mat", {28, 28, 3, 2}, {1, 2});
  CHECK_THROWS_CONTAINING(read_svhn_mat(dir / "dims.mat", "svhn", "train"), "dims.mat: X is 28x28x3x2");
  write_svhn_mat(dir / "count.mat", {32, 32, 3, 2}, {1, 2, 3});
  CHECK_THROWS_CONTAINING(read_svhn_mat(dir / "count.mat", "svhn", "train"), "y has 3 labels but X has 2");
  write_svhn_mat(dir / "label.mat", {32, 32, 3, 2}, {1, 11});
  CHECK_THROWS_CONTAINING(read_svhn_mat(dir / "label.mat", "svhn", "train"),
                          "label.mat: label out of range at record 1");
  write_text(dir / "text.mat", "this is not a MATLAB file at all, just text padding padding padding");
  CHECK_THROWS_CONTAINING(read_svhn_mat(dir / "text.mat", "svhn", "train"), "text.mat");
  CHECK_THROWS_CONTAINING(read_svhn_mat(dir / "absent.mat", "svhn", "train"), "absent.mat");
}

namespace {
std::vector<uint8_t> png_bytes(int w, int h, int comp, uint8_t base) {
  std::vector<uint8_t> px(static_cast<size_t>(w * h * comp));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(base + i);
  std::vector<uint8_t> out;
  stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        auto* o = static_cast<std::vector<uint8_t>*>(ctx);
        o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &out, w, h, comp, px.data(), w * comp);
  return out;
}
}  // namespace

TEST_CASE("mnist-m folder reader: PNGs to planar RGB; missing labels, bad PNG, wrong size, missing image") {
  TempDir dir;
  write_bytes(dir / "imgs/00000000.png", png_bytes(32, 32, 3, 0));
  write_bytes(dir / "imgs/00000001.png", png_bytes(32, 32, 3, 50));
  write_text(dir / "labels.txt", "00000000.png 5\n00000001.png 0\n");
  Dataset ds = read_mnistm_folder(dir / "imgs", dir / "labels.txt", "train");
  REQUIRE(ds.size() == 2);
  CHECK(ds.labels() == std::vector<int64_t>{5, 0});
  // interleaved value at (y, x, c) = base + (y*32 + x)*3 + c -> planar (c, y, x)
  CHECK(ds.image(1)[2 * 1024 + 1 * 32 + 4] == static_cast<uint8_t>(50 + (1 * 32 + 4) * 3 + 2));

  CHECK_THROWS_CONTAINING(read_mnistm_folder(dir / "imgs", dir / "nolabels.txt", "train"), "missing labels file");
  write_text(dir / "badlabel.txt", "00000000.png 5\n00000001.png 12\n");
  CHECK_THROWS_CONTAINING(read_mnistm_folder(dir / "imgs", dir / "badlabel.txt", "train"),
                          "badlabel.txt: label out of range at record 1");
  write_text(dir / "imgs/00000002.png", "not a png");
  write_text(dir / "bad.txt", "00000000.png 1\n00000002.png 2\n");
  CHECK_THROWS_CONTAINING(read_mnistm_folder(dir / "imgs", dir / "bad.txt", "train", 1),
                          "00000002.png (record 1): cannot decode image");
  write_bytes(dir / "imgs/00000003.png", png_bytes(28, 28, 3, 0));
  write_text(dir / "size.txt", "00000003.png 1\n");
  CHECK_THROWS_CONTAINING(read_mnistm_folder(dir / "imgs", dir / "size.txt", "train"), "wrong image size 28x28");
  write_text(dir / "gone.txt", "00000000.png 1\n00000009.png 2\n");
  CHECK_THROWS_CONTAINING(read_mnistm_folder(dir / "imgs", dir / "gone.txt", "train"), "missing image");
  write_text(dir / "format.txt", "00000000.png\n");
  CHECK_THROWS_CONTAINING(read_mnistm_labels(dir / "format.txt"), "format.txt: line 1 (record 0)");
}

TEST_CASE("decoded cache: round trip; corruption and truncation detected") {
  TempDir dir;
  std::vector<uint8_t> px(2 * 3 * 4 * 5);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 3);
  Dataset ds("x", "train", 3, 4, 5, px, {4, 9});
  write_u8_cache(dir / "c.u8", ds);
  Dataset back = read_u8_cache(dir / "c.u8", "x", "train");
  CHECK(back.size() == 2);
  CHECK(back.labels() == std::vector<int64_t>{4, 9});
  CHECK(std::memcmp(back.image(1), ds.image(1), 60) == 0);
  auto bytes = read_file(dir / "c.u8");
  bytes[50] ^= 1;
  write_bytes(dir / "flip.u8", bytes);
  CHECK_THROWS_CONTAINING(read_u8_cache(dir / "flip.u8", "x", "train"), "flip.u8: checksum mismatch");
  bytes.resize(bytes.size() - 10);
  write_bytes(dir / "cut.u8", bytes);
  CHECK_THROWS_CONTAINING(read_u8_cache(dir / "cut.u8", "x", "train"), "cut.u8: truncated");
  write_text(dir / "junk.u8", std::string(200, 'j'));
  CHECK_THROWS_CONTAINING(read_u8_cache(dir / "junk.u8", "x", "train"), "junk.u8: not a neurn decoded cache");
}

#include "datasets/writers.h"

TEST_CASE("write_png_folder: the MNIST-M layout round-trips through the MNIST-M reader") {
  TempDir dir;
  std::vector<uint8_t> px(3 * 3072);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 7 + (i >> 10));
  Dataset ds("gen", "train", 3, 32, 32, px, {3, 1, 4});
  write_png_folder(ds, dir.path, "variant");
  Dataset back = read_mnistm_folder(dir / "variant_train", dir / "variant_train_labels.txt", "train");
  CHECK(back.labels() == std::vector<int64_t>{3, 1, 4});
  CHECK(std::memcmp(back.image(2), ds.image(2), 3072) == 0);
}
