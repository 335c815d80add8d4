// Hardening of the readers (issue 16): a truncated or oversized file of any
// domain is named with what is wrong, a crafted header cannot overflow a
// size, and syn's cache key names the fonts and photos its images came from.
#include <doctest/doctest.h>
#include <matio.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "datasets/checksum.h"
#include "datasets/generators.h"
#include "datasets/layout.h"
#include "datasets/readers.h"
#include "datasets/writers.h"
#include "fixtures.h"
#include "gradcheck.h"
#include "skip.h"

using namespace neurn::data;
using namespace neurn::data::testing;

TEST_CASE("mnist reader: trailing bytes after the images or the labels are an error naming the file") {
  TempDir dir;
  write_bytes(dir / "img", idx_images(3, 28, 28));
  write_bytes(dir / "lab", idx_labels({1, 2, 3}));
  CHECK(read_mnist(dir / "img", dir / "lab", "train").size() == 3);
  auto longer = idx_images(3, 28, 28);
  longer.push_back(0);
  write_bytes(dir / "img_long", longer);
  CHECK_THROWS_CONTAINING(read_mnist(dir / "img_long", dir / "lab", "train"),
                          "img_long: oversized: the header says 3 images of 28x28 (2368 bytes) but the file has 1 bytes "
                          "more");
  auto lab_long = idx_labels({1, 2, 3});
  lab_long.insert(lab_long.end(), {9, 9});
  write_bytes(dir / "lab_long", lab_long);
  CHECK_THROWS_CONTAINING(read_mnist(dir / "img", dir / "lab_long", "train"),
                          "lab_long: oversized: the header says 3 labels but the file has 2 bytes more");
  // The same through gzip (the check is on the decompressed bytes).
  write_bytes(dir / "img_long.gz", gzip_bytes(longer));
  CHECK_THROWS_CONTAINING(read_mnist(dir / "img_long.gz", dir / "lab", "train"), "img_long.gz: oversized");
  // A truncated label file.
  auto lab_cut = idx_labels({1, 2, 3});
  lab_cut.pop_back();
  write_bytes(dir / "lab_cut", lab_cut);
  CHECK_THROWS_CONTAINING(read_mnist(dir / "img", dir / "lab_cut", "train"), "lab_cut: truncated");
}

TEST_CASE("decoded cache: oversized and crafted headers are named, without overflow") {
  TempDir dir;
  std::vector<uint8_t> px(2 * 3 * 4 * 5, 7);
  write_u8_cache(dir / "c.u8", Dataset("x", "train", 3, 4, 5, px, {4, 9}));
  auto bytes = read_file(dir / "c.u8");
  auto longer = bytes;
  longer.insert(longer.end(), 5, 'x');
  write_bytes(dir / "long.u8", longer);
  CHECK_THROWS_CONTAINING(read_u8_cache(dir / "long.u8", "x", "train"), "long.u8: oversized");
  // n = 2^62 images of 4x4096x4096: n * c * h * w overflows int64.
  auto crafted = bytes;
  for (int i = 0; i < 8; ++i) crafted[8 + i] = i == 7 ? 0x40 : 0;
  for (int k : {16, 24, 32}) {
    int64_t v = k == 16 ? 4 : 4096;
    for (int i = 0; i < 8; ++i) crafted[k + i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
  }
  write_bytes(dir / "huge.u8", crafted);
  CHECK_THROWS_CONTAINING(read_u8_cache(dir / "huge.u8", "x", "train"), "huge.u8: truncated (the header says");
}

TEST_CASE("usps, svhn and mnist-m: truncated files are named with what is wrong") {
  TempDir dir;
  // USPS text: the last record cut mid-line.
  std::string line = "3.0000";
  for (int k = 0; k < 256; ++k) line += " 0.5";
  std::string two = line + "\n" + line.substr(0, line.size() / 2) + "\n";
  write_text(dir / "zip.train", two);
  CHECK_THROWS_CONTAINING(read_usps_text(dir / "zip.train", "train"),
                          "zip.train: line 2 (record 1) has 128 values (expected a label and 256 pixels");
  // A truncated gzip stream of it.
  auto gz = gzip_bytes(std::vector<uint8_t>(line.begin(), line.end()));
  gz.resize(gz.size() / 2);
  write_bytes(dir / "zip.test.gz", gz);
  CHECK_THROWS_CONTAINING(read_usps_text(dir / "zip.test.gz", "test"), "zip.test.gz");

  // SVHN: a valid uncompressed .mat cut short.
  {
    mat_t* mat = Mat_CreateVer((dir / "full.mat").c_str(), nullptr, MAT_FT_MAT5);
    REQUIRE(mat);
    size_t xd[4] = {32, 32, 3, 4}, yd[2] = {4, 1};
    std::vector<uint8_t> x(32 * 32 * 3 * 4, 9);
    std::vector<double> y = {1, 2, 3, 4};
    matvar_t* vx = Mat_VarCreate("X", MAT_C_UINT8, MAT_T_UINT8, 4, xd, x.data(), 0);
    Mat_VarWrite(mat, vx, MAT_COMPRESSION_NONE);
    Mat_VarFree(vx);
    matvar_t* vy = Mat_VarCreate("y", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, yd, y.data(), 0);
    Mat_VarWrite(mat, vy, MAT_COMPRESSION_NONE);
    Mat_VarFree(vy);
    Mat_Close(mat);
  }
  CHECK(read_svhn_mat(dir / "full.mat", "svhn", "test").size() == 4);
  auto mat_bytes = read_file(dir / "full.mat");
  for (size_t keep : {size_t{100}, size_t{128 + 60}, mat_bytes.size() / 2, mat_bytes.size() - 20}) {
    CAPTURE(keep);
    std::vector<uint8_t> cut(mat_bytes.begin(), mat_bytes.begin() + static_cast<long>(keep));
    write_bytes(dir / "cut.mat", cut);
    CHECK_THROWS_CONTAINING(read_svhn_mat(dir / "cut.mat", "svhn", "test"), "cut.mat");
  }

  // MNIST-M: a PNG cut short.
  write_text(dir / "labels.txt", "a.png 1\n");
  write_text(dir / "imgs/a.png", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
  CHECK_THROWS_CONTAINING(read_mnistm_folder(dir / "imgs", dir / "labels.txt", "train", 1),
                          "a.png (record 0): cannot decode image");
}

TEST_CASE("syn: the cache key names the fonts and whether photo backgrounds were used" *
          neurn::testing::skip_unless(!find_fonts().empty(), "no TrueType fonts installed (scripts/setup-deps.sh)")) {
  TempDir dir;
  std::vector<std::string> fonts = find_fonts();
  SynOptions one;
  one.fonts = {fonts[0]};
  std::string k1 = syn_source_key(one);
  CHECK(k1.rfind("fonts 1 sha256:", 0) == 0);
  CHECK(k1.find("+ photos none") != std::string::npos);
  CHECK(syn_source_key(one) == k1);  // stable
  if (fonts.size() > 1) {
    SynOptions other;
    other.fonts = {fonts[1]};
    CHECK(syn_source_key(other) != k1);
  }
  // Photos: an absent folder is "none"; present ones are counted and digested.
  SynOptions with_photos = one;
  with_photos.photo_dir = dir / "photos";
  CHECK(syn_source_key(with_photos) == k1);
  write_text(dir / "photos/a.jpg", "jpeg bytes");
  write_text(dir / "photos/b.png", "png bytes");
  write_text(dir / "photos/notes.txt", "ignored");
  std::string kp = syn_source_key(with_photos);
  CHECK(kp.find("+ photos 2 sha256:") != std::string::npos);
  write_text(dir / "photos/b.png", "other png bytes");
  CHECK(syn_source_key(with_photos) != kp);

  // The on-disk cache of a data root follows its photos; domain_source_key names it.
  std::string root = dir / "root";
  std::string without = layout::syn_cache(root, "test", 100, 5);
  CHECK(domain_source_key("syn", root).find("+ photos none") != std::string::npos);
  write_text(layout::bsds_train_dir(root) + "/p.jpg", "photo");
  std::string with = layout::syn_cache(root, "test", 100, 5);
  CHECK(with != without);
  CHECK(domain_source_key("syn", root).find("+ photos 1 sha256:") != std::string::npos);
  CHECK(domain_source_key("mnist", root).empty());
  std::string key = layout::syn_key(root);
  CHECK(with.find(sha256_hex(key.data(), key.size()).substr(0, 12)) != std::string::npos);
}

#include "datasets/prepare.h"

TEST_CASE("domain descriptions: one entry per domain gives the list, labels, counts and checksummed files") {
  CHECK(evaluation_domains() == std::vector<std::string>{"mnist", "usps", "svhn", "mnistm", "syn"});
  for (const auto& d : domains()) {
    CAPTURE(d.name);
    CHECK(!d.short_name.empty());
    CHECK(!d.splits.empty());
    for (const auto& s : d.splits) CHECK(layout::official_count(d.name, s) > 0);
    // Every file a domain says `data prepare` checks has a checksum in checksums.inc.
    CHECK(!d.checksummed_files.empty());
    for (const auto& f : d.checksummed_files) {
      CAPTURE(f);
      CHECK(!checksum_for(f).kind.empty());
    }
  }
  CHECK(layout::official_count("svhn", "extra") == 531131);
  CHECK(layout::official_count("mnist", "extra") == 0);
  CHECK(domain_info("mnistm").short_name == "MM");
  CHECK_THROWS_CONTAINING(domain_info("emnist"), "unknown domain 'emnist' (known: mnist, usps, svhn");
  TempDir dir;
  CHECK_THROWS_CONTAINING(load_domain("mnist", "extra", dir.path), "has no split 'extra'");
  CHECK_THROWS_CONTAINING(load_domain("svhn", "extra", dir.path), "domain svhn is not available");
}

TEST_CASE("bsds500: the extracted training photos are checked against their SHA-256s" *
          neurn::testing::skip_unless(!shared_data().empty(), neurn::testing::kNoSharedData)) {
  TempDir root;
  CHECK(layout::check_bsds_photos(root.path).find("not found") != std::string::npos);
  extract_tar(path_join(shared_data(), "bsds500/BSR_bsds500_train.tgz"), root / "bsds500");
  CHECK(layout::check_bsds_photos(root.path) == "");
  std::string dir = layout::bsds_train_dir(root.path);
  std::string first = path_join(dir, "100075.jpg");
  auto bytes = read_file(first);
  bytes[bytes.size() / 2] ^= 1;
  write_bytes(first, bytes);
  CHECK(layout::check_bsds_photos(root.path).find("100075.jpg: sha256 mismatch") != std::string::npos);
  bytes[bytes.size() / 2] ^= 1;
  write_bytes(first, bytes);
  write_text(path_join(dir, "999999.jpg"), "not a photo");
  CHECK(layout::check_bsds_photos(root.path).find("999999.jpg: not a BSDS500 training photo") != std::string::npos);
  std::filesystem::remove(path_join(dir, "999999.jpg"));
  std::filesystem::remove(first);
  CHECK(layout::check_bsds_photos(root.path).find("199 photos, expected the 200") != std::string::npos);
}

TEST_CASE("svhn reader: a crafted field size is refused before libmatio allocates it (found by fuzz_svhn_mat)") {
  // The input libFuzzer found: a 4.6 KB file whose first variable claims
  // 6208 bytes and whose variable name claims 976 MB; libmatio allocated and
  // cleared the name (a 15 s timeout at 1 GB RSS).
  std::string crash = std::string(NEURN_SOURCE_DIR) + "/fuzz/corpus/svhn_mat/crash-name-size-976mb";
  REQUIRE(file_exists(crash));
  CHECK_THROWS_CONTAINING(read_svhn_mat(crash, "svhn", "test"),
                          "crash-name-size-976mb: truncated or corrupt MAT file: the variable at byte 128 claims 6208 "
                          "bytes but the file has 4456 after it");
  // The same with the variable's size fixed: the name's size is what is wrong.
  auto bytes = read_file(crash);
  REQUIRE(bytes.size() == 4592);
  uint32_t fits = 4456;
  std::memcpy(bytes.data() + 132, &fits, 4);
  TempDir dir;
  write_bytes(dir / "name.mat", bytes);
  CHECK_THROWS_CONTAINING(read_svhn_mat(dir / "name.mat", "svhn", "test"),
                          "name.mat: corrupt MAT file: a field of the variable at byte 128 claims 976814081 bytes");
}

TEST_CASE("svhn reader: a file that is not MATLAB v5 or v7.3 is refused, not read as v4 (found by fuzz_svhn_mat)") {
  // 138 bytes without a v5 header: libmatio read it as MATLAB v4 and
  // allocated what its first bytes claimed (2 GB, out of memory).
  std::string crash = std::string(NEURN_SOURCE_DIR) + "/fuzz/corpus/svhn_mat/crash-v4-fallback-2gb";
  REQUIRE(file_exists(crash));
  CHECK_THROWS_CONTAINING(read_svhn_mat(crash, "svhn", "test"), "crash-v4-fallback-2gb: not a MATLAB v5 or v7.3 file");
}

TEST_CASE("svhn reader: dimensions a variable cannot hold are refused before libmatio allocates for them "
          "(found by fuzz_svhn_mat)") {
  // The input libFuzzer found: a 6.4 KB file whose variable X, of class 16
  // (a function handle), claims 32x32x3x0x80000002 elements; libmatio
  // allocated a pointer per element before reading any (0x30000000c000
  // bytes, AddressSanitizer's allocation-size-too-big).
  std::string crash = std::string(NEURN_SOURCE_DIR) + "/fuzz/corpus/svhn_mat/crash-function-dims-48tib";
  REQUIRE(file_exists(crash));
  CHECK_THROWS_CONTAINING(read_svhn_mat(crash, "svhn", "test"),
                          "crash-function-dims-48tib: corrupt MAT file: the variable at byte 128 has a negative "
                          "dimension (32x32x3x-2147483646)");
  auto bytes = read_file(crash);
  REQUIRE(bytes.size() == 6424);
  TempDir dir;
  auto with = [&](uint32_t mclass, uint32_t last_dim) {
    auto b = bytes;
    std::memcpy(b.data() + 144, &mclass, 4);     // the array flags' class byte (and flags)
    std::memcpy(b.data() + 172, &last_dim, 4);  // the fourth dimension
    write_bytes(dir / "dims.mat", b);
    return dir / "dims.mat";
  };
  // The same dimensions read as positive, and a plain uint8 X of 3 images
  // where the file holds the 6208 bytes of 2: more elements than bytes.
  CHECK_THROWS_CONTAINING(read_svhn_mat(with(16, 0x7fffffff), "svhn", "test"),
                          "dims.mat: corrupt MAT file: the variable at byte 128 claims dimensions 32x32x3x2147483647 "
                          "but holds only 6208 bytes");
  CHECK_THROWS_CONTAINING(read_svhn_mat(with(9, 3), "svhn", "test"),
                          "dims.mat: corrupt MAT file: the variable at byte 128 claims dimensions 32x32x3x3 but holds "
                          "only 6208 bytes");
}

namespace {
// A PNG chunk with its CRC (over the type and the data).
std::vector<uint8_t> png_chunk(const char* type, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> c;
  put_be32(c, static_cast<uint32_t>(data.size()));
  c.insert(c.end(), type, type + 4);
  c.insert(c.end(), data.begin(), data.end());
  put_be32(c, static_cast<uint32_t>(crc32(0, c.data() + 4, static_cast<unsigned>(c.size() - 4))));
  return c;
}
}  // namespace

TEST_CASE("mnist-m reader: an empty IDAT chunk is decoded without handing stb_image a null buffer "
          "(found by fuzz_mnistm)") {
  // The input libFuzzer found (its first byte picks the harness's PNG
  // branch): a PNG whose first IDAT chunk is empty, then garbage. stb_image
  // copied the empty chunk into its still null buffer (memcpy(NULL, p, 0),
  // a UBSan report); now the chunks are walked first and the garbage named.
  std::string crash = std::string(NEURN_SOURCE_DIR) + "/fuzz/corpus/mnistm/crash-empty-idat-null-memcpy";
  REQUIRE(file_exists(crash));
  auto found = read_file(crash);
  TempDir dir;
  write_bytes(dir / "imgs/a.png", std::vector<uint8_t>(found.begin() + 1, found.end()));
  write_text(dir / "labels.txt", "a.png 3\n");
  CHECK_THROWS_CONTAINING(read_mnistm_folder(dir / "imgs", dir / "labels.txt", "train", 1),
                          "a.png (record 0): cannot decode image (corrupt or truncated PNG: the chunk at byte 45 "
                          "claims 1617191526 bytes of data but only 442 fit before the end of the file)");

  // Empty IDAT chunks are valid PNG: one before the data and one after it
  // decode to the same pixels as the file without them.
  std::vector<uint8_t> px(3 * 32 * 32);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 7 + 1);
  write_png_folder(Dataset("mnistm", "train", 3, 32, 32, px, {4}), dir / "ok", "mnistm");
  const std::string png = dir / "ok/mnistm_train/00000000.png";
  auto plain = read_file(png);
  std::vector<uint8_t> padded(plain.begin(), plain.begin() + 33);  // the signature and IHDR
  auto empty = png_chunk("IDAT", {});
  padded.insert(padded.end(), empty.begin(), empty.end());
  padded.insert(padded.end(), plain.begin() + 33, plain.end() - 12);  // the data chunks
  padded.insert(padded.end(), empty.begin(), empty.end());
  padded.insert(padded.end(), plain.end() - 12, plain.end());  // IEND
  REQUIRE(std::memcmp(plain.data() + 37, "IDAT", 4) == 0);
  write_bytes(png, padded);
  Dataset ds = read_mnistm_folder(dir / "ok/mnistm_train", dir / "ok/mnistm_train_labels.txt", "train", 1);
  REQUIRE(ds.size() == 1);
  CHECK(ds.label(0) == 4);
  CHECK(std::equal(px.begin(), px.end(), ds.image(0)));
  // A PNG cut inside its chunks, or before IEND, is named with that.
  write_bytes(png, std::vector<uint8_t>(plain.begin(), plain.end() - 12));
  CHECK_THROWS_CONTAINING(read_mnistm_folder(dir / "ok/mnistm_train", dir / "ok/mnistm_train_labels.txt", "train", 1),
                          "00000000.png (record 0): cannot decode image (truncated PNG: it ends at byte ");
  write_bytes(png, std::vector<uint8_t>(plain.begin(), plain.begin() + 50));
  CHECK_THROWS_CONTAINING(read_mnistm_folder(dir / "ok/mnistm_train", dir / "ok/mnistm_train_labels.txt", "train", 1),
                          "00000000.png (record 0): cannot decode image (corrupt or truncated PNG: the chunk at byte 33");
}
