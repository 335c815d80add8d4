// On the real copies in ../shared/data (skipped, visibly, when absent):
// counts, class histograms, known labels, checksums, the SVHN sample through
// the real reader, MNIST-M from its official archive, the MNIST-M generator
// against the official statistics, and `prepare`/`verify` into a temp root.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>

#include "datasets/checksum.h"
#include "datasets/datasets.h"
#include "datasets/generators.h"
#include "datasets/layout.h"
#include "datasets/prepare.h"
#include "datasets/readers.h"
#include "fixtures.h"
#include "gradcheck.h"
#include "skip.h"

using namespace neurn;
using namespace neurn::data;
using namespace neurn::data::testing;

namespace {

// The cases below run only where ../shared/data is found (tests/skip.h).
#define REQUIRE_SHARED(dir) const std::string dir = shared_data()
#define SKIP_UNLESS_SHARED neurn::testing::skip_unless(!shared_data().empty(), neurn::testing::kNoSharedData)

std::string hist(const std::vector<int64_t>& h) {
  std::string s;
  for (int64_t v : h) s += std::to_string(v) + " ";
  return s;
}

// The MNIST-M labels files, the first 2000 train and 200 test PNGs, and the
// BSDS500 training photos, extracted once per test run.
struct RealSubset {
  TempDir dir;
  RealSubset(const std::string& shared) {
    extract_tar(path_join(shared, "mnist_m/mnist_m.tar.gz"), dir.path, [](const std::string& m) {
      if (m.size() > 11 && m.substr(m.size() - 11) == "_labels.txt") return true;
      auto slash = m.rfind('/');
      if (slash == std::string::npos || m.size() < 12 || m.substr(m.size() - 4) != ".png") return false;
      int index = std::atoi(m.substr(slash + 1, 8).c_str());
      bool train = m.find("mnist_m_train/") != std::string::npos;
      return index < (train ? 2000 : 200);
    });
    extract_tar(path_join(shared, "bsds500/BSR_bsds500_train.tgz"), dir / "bsds500");
  }
};
RealSubset& real_subset(const std::string& shared) {
  static std::unique_ptr<RealSubset> s;
  if (!s) s = std::make_unique<RealSubset>(shared);
  return *s;
}

}  // namespace

TEST_CASE("real MNIST: counts, histograms, first labels, published MD5s" * SKIP_UNLESS_SHARED) {
  REQUIRE_SHARED(shared);
  Dataset tr =
      read_mnist(shared + "/mnist/train-images-idx3-ubyte.gz", shared + "/mnist/train-labels-idx1-ubyte.gz", "train");
  Dataset te =
      read_mnist(shared + "/mnist/t10k-images-idx3-ubyte.gz", shared + "/mnist/t10k-labels-idx1-ubyte.gz", "test");
  CHECK(tr.size() == 60000);
  CHECK(te.size() == 10000);
  CHECK(hist(tr.class_histogram()) == "5923 6742 5958 6131 5842 5421 5918 6265 5851 5949 ");
  CHECK(hist(te.class_histogram()) == "980 1135 1032 1010 982 892 958 1028 974 1009 ");
  CHECK(tr.first(10).labels() == std::vector<int64_t>{5, 0, 4, 1, 9, 2, 1, 3, 1, 4});
  CHECK(te.first(10).labels() == std::vector<int64_t>{7, 2, 1, 0, 4, 1, 4, 9, 5, 9});
  for (const char* f : {"train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"}) {
    std::string rel = std::string("mnist/") + f;
    CHECK_MESSAGE(check_bytes(rel, read_file(path_join(shared, rel)), rel) == "", rel);
  }
}

TEST_CASE("real USPS: counts and per-class counts equal zip.info.txt" * SKIP_UNLESS_SHARED) {
  REQUIRE_SHARED(shared);
  Dataset tr = read_usps_text(shared + "/usps/zip.train.gz", "train");
  Dataset te = read_usps_text(shared + "/usps/zip.test.gz", "test");
  CHECK(tr.size() == 7291);
  CHECK(te.size() == 2007);
  // zip.info.txt: "Train 1194 1005 ... 7291" and " Test  359 ... 2007"
  auto bytes = read_file(shared + "/usps/zip.info.txt");
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::string line;
  int found = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string tag;
    ls >> tag;
    if (tag != "Train" && tag != "Test") continue;
    std::vector<int64_t> counts(10);
    for (auto& c : counts) ls >> c;
    if (!ls) continue;  // the proportions table has the same tags with decimals... skip non-integers
    CHECK(counts == (tag == "Train" ? tr : te).class_histogram());
    ++found;
  }
  CHECK(found >= 2);
}

TEST_CASE("real SVHN sample through the SVHN reader: 50 crops, every class, sha256" * SKIP_UNLESS_SHARED) {
  REQUIRE_SHARED(shared);
  std::string f = shared + "/svhn/svhn_sample50_32x32.mat";
  Dataset ds = read_svhn_mat(f, "svhn_sample50", "test");
  CHECK(ds.size() == 50);
  CHECK(ds.channels() == 3);
  for (int64_t c : ds.class_histogram()) CHECK(c > 0);
  CHECK(check_bytes("svhn/svhn_sample50_32x32.mat", read_file(f), f) == "");
  auto st = channel_stats(ds);
  for (float m : st.mean) CHECK((m > 0.2f && m < 0.8f));  // real photos, not blank or saturated
}

TEST_CASE("real MNIST-M: label files count 59001/9001 and agree with MNIST; PNG subset decodes; official statistics" * SKIP_UNLESS_SHARED) {
  REQUIRE_SHARED(shared);
  RealSubset& r = real_subset(shared);
  auto tr = read_mnistm_labels(r.dir / "mnist_m/mnist_m_train_labels.txt");
  auto te = read_mnistm_labels(r.dir / "mnist_m/mnist_m_test_labels.txt");
  CHECK(tr.size() == 59001);
  CHECK(te.size() == 9001);
  Dataset mn =
      read_mnist(shared + "/mnist/train-images-idx3-ubyte.gz", shared + "/mnist/train-labels-idx1-ubyte.gz", "train");
  Dataset mt =
      read_mnist(shared + "/mnist/t10k-images-idx3-ubyte.gz", shared + "/mnist/t10k-labels-idx1-ubyte.gz", "test");
  int64_t mismatches = 0;
  for (size_t i = 0; i < tr.size(); ++i) mismatches += tr[i].second != mn.label(static_cast<int64_t>(i));
  for (size_t i = 0; i < te.size(); ++i) mismatches += te[i].second != mt.label(static_cast<int64_t>(i));
  CHECK(mismatches == 0);
  CHECK(tr[0].first == "00000000.png");

  // Decode the extracted subset through the folder reader (a labels file of the first 2000).
  std::string sub;
  for (int i = 0; i < 2000; ++i)
    sub += tr[static_cast<size_t>(i)].first + " " + std::to_string(tr[static_cast<size_t>(i)].second) + "\n";
  write_text(r.dir / "sub_labels.txt", sub);
  Dataset official = read_mnistm_folder(r.dir / "mnist_m/mnist_m_train", r.dir / "sub_labels.txt", "train");
  CHECK(official.size() == 2000);
  auto st = channel_stats(official);
  // The shared README: per-channel mean about (0.458, 0.462, 0.408).
  CHECK(st.mean[0] == doctest::Approx(0.458).epsilon(0.03));
  CHECK(st.mean[2] == doctest::Approx(0.408).epsilon(0.03));

  // The generator from MNIST + the BSDS500 photos matches the official means within 0.03.
  auto photos = load_photos(r.dir / "bsds500/BSR/BSDS500/data/images/train");
  CHECK(photos.size() == 200);
  Dataset gen = generate_mnistm(mn.first(2000), photos, 123);
  CHECK(gen.labels() == official.labels());
  auto gs = channel_stats(gen);
  for (int c = 0; c < 3; ++c) {
    INFO("channel " << c << ": generated " << gs.mean[c] << ", official " << st.mean[c]);
    CHECK(std::abs(gs.mean[c] - st.mean[c]) < 0.03);
    CHECK(std::abs(gs.std[c] - st.std[c]) < 0.05);
  }
  // Seeded: the same seed gives the same images, another seed other crops.
  Dataset again = generate_mnistm(mn.first(50), photos, 123, -1, "train", 1);
  CHECK(std::equal(again.image(49), again.image(49) + 3072, gen.image(49)));
  Dataset other = generate_mnistm(mn.first(50), photos, 124);
  CHECK_FALSE(std::equal(other.image(49), other.image(49) + 3072, gen.image(49)));
}

TEST_CASE("prepare and verify into a temp root: copies, checksums, counts; corrupted source refused" * SKIP_UNLESS_SHARED) {
  REQUIRE_SHARED(shared);
  TempDir root;
  std::vector<std::string> log;
  auto L = [&](const std::string& s) { log.push_back(s); };
  prepare("mnist", root.path, shared, L);
  prepare("usps", root.path, shared, L);
  prepare("svhn_sample50", root.path, shared, L);
  CHECK(domain_available("mnist", root.path));
  CHECK(domain_available("usps", root.path));
  CHECK(domain_available("svhn_sample50", root.path));
  CHECK_FALSE(domain_available("svhn", root.path));  // the sample never makes the domain available
  for (const char* item : {"mnist", "usps", "svhn_sample50"}) {
    bool absent = true;
    auto problems = verify(item, root.path, L, &absent);
    CHECK_MESSAGE(problems.empty(), item);
    CHECK_FALSE(absent);
  }
  bool absent = false;
  CHECK(verify("svhn", root.path, L, &absent).empty());
  CHECK(absent);
  prepare("bsds500", root.path, shared, L);
  CHECK(verify("bsds500", root.path, L, &absent).empty());
  CHECK_FALSE(absent);
  CHECK(load_photos(layout::bsds_train_dir(root.path)).size() == 200);
  // A second prepare finds the files in place.
  log.clear();
  prepare("usps", root.path, shared, L);
  CHECK(log.size() >= 2);
  CHECK(log[1].find("present, checksum ok") != std::string::npos);
  // A verify catches a file changed after preparation.
  auto bytes = read_file(root / "usps/zip.test.gz");
  bytes[bytes.size() / 2] ^= 0x10;
  write_bytes(root / "usps/zip.test.gz", bytes);
  CHECK_FALSE(verify("usps", root.path, L, &absent).empty());

  // A corrupted shared copy is refused and nothing lands under the real name.
  TempDir fake;
  auto lab = read_file(shared + "/mnist/t10k-labels-idx1-ubyte.gz");
  auto raw = gunzip(lab, "t10k labels");
  raw[100] = static_cast<uint8_t>((raw[100] + 1) % 10);
  write_bytes(fake / "mnist/t10k-labels-idx1-ubyte.gz", gzip_bytes(raw));
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"})
    write_bytes(fake / (std::string("mnist/") + f), read_file(shared + "/mnist/" + f));
  TempDir root2;
  CHECK_THROWS_CONTAINING(prepare("mnist", root2.path, fake.path, L), "md5-decompressed mismatch");
  CHECK_FALSE(file_exists(root2 / "mnist/t10k-labels-idx1-ubyte.gz"));
  TempDir nothing;
  CHECK_THROWS_CONTAINING(prepare("svhn_sample50", root2.path, nothing.path, L), "ships only with ../shared/data");
  clear_domain_cache();
}

TEST_CASE("neurn data info / verify on a prepared root (the CLI)" * SKIP_UNLESS_SHARED *
          neurn::testing::skip_unless(neurn::testing::neurn_bin() != nullptr, neurn::testing::kNoNeurnBin)) {
  REQUIRE_SHARED(shared);
  const char* bin = neurn::testing::neurn_bin();
  TempDir root;
  prepare("usps", root.path, shared, [](const std::string&) {});
  auto run = [&](const std::string& args, int* rc) {
    std::string cmd = std::string(bin) + " " + args + " --root " + root.path + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    *rc = WEXITSTATUS(pclose(p));
    return out;
  };
  int rc = -1;
  std::string info = run("data info usps svhn", &rc);
  CHECK(rc == 0);
  CHECK(info.find("train     7291 images") != std::string::npos);
  CHECK(info.find("1194 1005 731 658 652 556 664 645 542 644") != std::string::npos);
  CHECK(info.find("domain svhn is not available") != std::string::npos);
  std::string ver = run("data verify usps", &rc);
  CHECK(rc == 0);
  CHECK(ver.find("verify: ok") != std::string::npos);
  run("data verify svhn", &rc);
  CHECK(rc == 1);  // asked for by name and absent
}
