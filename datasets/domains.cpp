// The domain registry, the data root, availability and cached loading.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>

#include "datasets/checksum.h"
#include "datasets/datasets.h"
#include "datasets/generators.h"
#include "datasets/io.h"
#include "datasets/layout.h"
#include "datasets/prepare.h"
#include "datasets/readers.h"
#include "framework/error.h"

namespace fs = std::filesystem;

namespace neurn::data {

// ---- layout ------------------------------------------------------------------------

namespace layout {

std::string mnist_file(const std::string& root, const std::string& split, bool images) {
  std::string base =
      std::string(split == "train" ? "train" : "t10k") + (images ? "-images-idx3-ubyte" : "-labels-idx1-ubyte");
  std::string dir = path_join(root, "mnist");
  if (file_exists(path_join(dir, base + ".gz"))) return path_join(dir, base + ".gz");
  if (file_exists(path_join(dir, base))) return path_join(dir, base);
  return path_join(dir, base + ".gz");
}

std::string usps_file(const std::string& root, const std::string& split, bool* libsvm) {
  std::string dir = path_join(root, "usps");
  std::string text = split == "train" ? "zip.train" : "zip.test";
  std::string svm = split == "train" ? "usps" : "usps.t";
  for (const auto& [name, is_svm] : std::vector<std::pair<std::string, bool>>{
           {text + ".gz", false}, {text, false}, {svm + ".bz2", true}, {svm, true}}) {
    if (file_exists(path_join(dir, name))) {
      if (libsvm) *libsvm = is_svm;
      return path_join(dir, name);
    }
  }
  return "";
}

std::string svhn_file(const std::string& root, const std::string& split) {
  return path_join(path_join(root, "svhn"), split + "_32x32.mat");
}
std::string svhn_sample_file(const std::string& root) {
  return path_join(path_join(root, "svhn"), "svhn_sample50_32x32.mat");
}
std::string mnistm_dir(const std::string& root, const std::string& split) {
  return path_join(path_join(root, "mnist_m"), "mnist_m_" + split);
}
std::string mnistm_labels(const std::string& root, const std::string& split) {
  return path_join(path_join(root, "mnist_m"), "mnist_m_" + split + "_labels.txt");
}
std::string mnistm_cache(const std::string& root, const std::string& split) {
  return path_join(path_join(root, "mnist_m"), "mnistm_" + split + ".u8");
}
std::string bsds_train_dir(const std::string& root) { return path_join(root, "bsds500/BSR/BSDS500/data/images/train"); }
std::string check_bsds_photos(const std::string& root) {
  const std::string dir = bsds_train_dir(root);
  const std::string prefix = "bsds500/BSR/BSDS500/data/images/train/";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return dir + ": not found";
  int64_t n = 0;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".jpg") files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  for (const auto& name : files) {
    ChecksumEntry want = checksum_for(prefix + name);
    std::string path = path_join(dir, name);
    if (want.kind.empty()) return path + ": not a BSDS500 training photo (no checksum for it)";
    std::string got = sha256_file(path);
    if (got != want.digest) return path + ": sha256 mismatch: got " + got + ", expected " + want.digest;
    ++n;
  }
  if (n != 200) return dir + ": " + std::to_string(n) + " photos, expected the 200 BSDS500 training photos";
  return "";
}

std::string syn_key(const std::string& root) {
  SynOptions opt;
  opt.photo_dir = bsds_train_dir(root);
  return syn_source_key(opt);
}
std::string syn_cache(const std::string& root, const std::string& split, int64_t count, uint64_t seed) {
  std::string key = syn_key(root);
  std::string tag = sha256_hex(key.data(), key.size()).substr(0, 12);
  return path_join(path_join(root, "syn"), "syn_" + split + "_" + std::to_string(count) + "_seed" +
                                               std::to_string(seed) + "_" + tag + ".u8");
}

}  // namespace layout

// ---- registry ----------------------------------------------------------------------

namespace {

// One description per domain: what it is (DomainInfo: splits, sizes, the
// files `data prepare` checksums), how large its official splits are, how to
// tell it is present, how to read it, what to say when it is absent, and what
// its cache key must record. Adding a domain means one entry here, its
// reader (readers.h or generators.h), its paths (layout.h) and its checksums
// (checksums.inc); nothing else branches on a domain's name.
struct DomainDescription {
  DomainInfo info;
  std::vector<std::string> extra_splits;           // loadable, not needed for availability (svhn extra)
  std::map<std::string, int64_t> official_counts;  // split -> records of the published split
  std::function<bool(const std::string& root, const std::string& split)> present;
  std::function<Dataset(const std::string& root, const std::string& split)> read;
  std::function<std::string(const std::string& root)> missing;  // what to do when it is absent
  // What the images are made from, for generated domains (their cache key
  // and every run record name it); null for published files.
  std::function<std::string(const std::string& root)> source_key;
};

bool is_dir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

Dataset read_mnistm(const std::string& root, const std::string& split) {
  std::string c = layout::mnistm_cache(root, split);
  if (file_exists(c)) {
    Dataset ds = read_u8_cache(c, "mnistm", split);
    // A cache that disagrees with the labels file next to it is stale.
    std::string lf = layout::mnistm_labels(root, split);
    if (!file_exists(lf)) return ds;
    auto entries = read_mnistm_labels(lf);
    NEURN_CHECK(static_cast<int64_t>(entries.size()) == ds.size(), c, ": holds ", ds.size(), " images but ", lf,
                " lists ", entries.size(), "; run `neurn data prepare mnistm` to rebuild it");
    return ds;
  }
  return read_mnistm_folder(layout::mnistm_dir(root, split), layout::mnistm_labels(root, split), split);
}

Dataset read_syn(const std::string& root, const std::string& split) {
  int64_t count = split == "train" ? layout::kSynTrainCount : layout::kSynTestCount;
  uint64_t seed = split == "train" ? layout::kSynTrainSeed : layout::kSynTestSeed;
  std::string c = layout::syn_cache(root, split, count, seed);
  if (file_exists(c)) return read_u8_cache(c, "syn", split);
  SynOptions opt;
  opt.photo_dir = layout::bsds_train_dir(root);
  return generate_syn(count, seed, split, opt);
}

// Each entry names only what it has (no extra splits, no source key for
// published files); the rest keeps its default.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const std::vector<DomainDescription>& descriptions() {
  static const std::vector<DomainDescription> d = {
      {.info = {.name = "mnist",
                .description = "MNIST handwritten digits (LeCun et al.), official IDX files",
                .splits = {"train", "test"},
                .height = 28,
                .width = 28,
                .channels = 1,
                .short_name = "M",
                .display_name = "MNIST",
                .checksummed_files = {"mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz",
                                      "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"}},
       .official_counts = {{"train", 60000}, {"test", 10000}},
       .present =
           [](const std::string& root, const std::string& split) {
             return file_exists(layout::mnist_file(root, split, true)) &&
                    file_exists(layout::mnist_file(root, split, false));
           },
       .read =
           [](const std::string& root, const std::string& split) {
             return read_mnist(layout::mnist_file(root, split, true), layout::mnist_file(root, split, false), split);
           },
       .missing =
           [](const std::string& r) {
             return "domain mnist is not available: expected " + r +
                    "/mnist/{train-images-idx3-ubyte,train-labels-idx1-ubyte,t10k-images-idx3-ubyte,"
                    "t10k-labels-idx1-ubyte}.gz. Run `neurn data prepare mnist` (copies them from ../shared/data "
                    "when present, else downloads them), or download the four files from "
                    "https://ossci-datasets.s3.amazonaws.com/mnist/ (mirror of http://yann.lecun.com/exdb/mnist/) "
                    "into " +
                    r + "/mnist/";
           }},
      {.info = {.name = "usps",
                .description = "USPS postal digits (Hastie et al. zip.train/zip.test, or libsvm usps/usps.t)",
                .splits = {"train", "test"},
                .height = 16,
                .width = 16,
                .channels = 1,
                .short_name = "U",
                .display_name = "USPS",
                .checksummed_files = {"usps/zip.train.gz", "usps/zip.test.gz", "usps/usps.bz2", "usps/usps.t.bz2"}},
       .official_counts = {{"train", 7291}, {"test", 2007}},
       .present = [](const std::string& root,
                     const std::string& split) { return !layout::usps_file(root, split, nullptr).empty(); },
       .read =
           [](const std::string& root, const std::string& split) {
             bool libsvm = false;
             std::string f = layout::usps_file(root, split, &libsvm);
             return libsvm ? read_usps_libsvm(f, split) : read_usps_text(f, split);
           },
       .missing =
           [](const std::string& r) {
             return "domain usps is not available: expected " + r +
                    "/usps/zip.train.gz and zip.test.gz (or the libsvm usps.bz2 and usps.t.bz2). Run `neurn data "
                    "prepare usps`, or download zip.train.gz and zip.test.gz from "
                    "https://hastie.su.domains/ElemStatLearn/datasets/ into " +
                    r + "/usps/";
           }},
      {.info = {.name = "svhn",
                .description = "SVHN cropped house-number digits (Netzer et al.), train_32x32.mat / test_32x32.mat",
                .splits = {"train", "test"},
                .height = 32,
                .width = 32,
                .channels = 3,
                .short_name = "S",
                .display_name = "SVHN",
                .checksummed_files = {"svhn/train_32x32.mat", "svhn/test_32x32.mat", "svhn/extra_32x32.mat"}},
       .extra_splits = {"extra"},
       .official_counts = {{"train", 73257}, {"test", 26032}, {"extra", 531131}},
       .present = [](const std::string& root,
                     const std::string& split) { return file_exists(layout::svhn_file(root, split)); },
       .read = [](const std::string& root,
                  const std::string& split) { return read_svhn_mat(layout::svhn_file(root, split), "svhn", split); },
       .missing =
           [](const std::string& r) {
             return "domain svhn is not available: expected " + r + "/svhn/train_32x32.mat and " + r +
                    "/svhn/test_32x32.mat (the full cropped-digit SVHN set). Download train_32x32.mat and "
                    "test_32x32.mat from http://ufldl.stanford.edu/housenumbers/ into " +
                    r +
                    "/svhn/, or run `neurn data prepare svhn` on a machine with internet access. (svhn_sample50, 50 "
                    "test crops, is only a sample and never stands in for svhn.)";
           }},
      {.info = {.name = "mnistm",
                .description = "MNIST-M (Ganin et al.): MNIST digits blended over BSDS500 photo crops",
                .splits = {"train", "test"},
                .height = 32,
                .width = 32,
                .channels = 3,
                .short_name = "MM",
                .display_name = "MNIST-M",
                .checksummed_files = {"mnist_m/mnist_m.tar.gz"}},
       .official_counts = {{"train", 59001}, {"test", 9001}},
       .present =
           [](const std::string& root, const std::string& split) {
             if (file_exists(layout::mnistm_cache(root, split))) return true;
             return file_exists(layout::mnistm_labels(root, split)) && is_dir(layout::mnistm_dir(root, split));
           },
       .read = read_mnistm,
       .missing =
           [](const std::string& r) {
             return "domain mnistm is not available: expected " + r + "/mnist_m/mnist_m_{train,test}/ and " + r +
                    "/mnist_m/mnist_m_{train,test}_labels.txt. Put the official mnist_m.tar.gz (Ganin & Lempitsky, "
                    "http://yaroslav.ganin.net/) in " +
                    r +
                    "/mnist_m/ and run `neurn data prepare mnistm` (it also copies it from ../shared/data when "
                    "present).";
           }},
      {.info = {.name = "syn",
                .description = "synthetic digits rendered from installed TrueType fonts (SynDigits-style), generated",
                .splits = {"train", "test"},
                .height = 32,
                .width = 32,
                .channels = 3,
                .generated = true,
                .short_name = "SYN",
                .display_name = "SYN",
                .checksummed_files = {"bsds500/BSR_bsds500_train.tgz"}},
       .official_counts = {{"train", layout::kSynTrainCount}, {"test", layout::kSynTestCount}},
       .present = [](const std::string&, const std::string&) { return true; },
       .read = read_syn,
       .missing = [](const std::string& r) { return "domain syn is not available under " + r; },
       .source_key = layout::syn_key},
      {.info = {.name = "svhn_sample50",
                .description = "50 real SVHN test crops: a SAMPLE for pictures and reader tests, NOT an evaluation set",
                .splits = {"test"},
                .height = 32,
                .width = 32,
                .channels = 3,
                .sample = true,
                .short_name = "S50",
                .display_name = "SVHN (50-image sample)",
                .checksummed_files = {"svhn/svhn_sample50_32x32.mat"}},
       .official_counts = {{"test", 50}},
       .present = [](const std::string& root,
                     const std::string&) { return file_exists(layout::svhn_sample_file(root)); },
       .read =
           [](const std::string& root, const std::string& split) {
             return read_svhn_mat(layout::svhn_sample_file(root), "svhn_sample50", split);
           },
       .missing =
           [](const std::string& r) {
             return "svhn_sample50 is not available: expected " + r +
                    "/svhn/svhn_sample50_32x32.mat; `neurn data prepare` copies it from ../shared/data/svhn when "
                    "present";
           }},
  };
  return d;
}
#pragma GCC diagnostic pop

const DomainDescription& description(const std::string& name) {
  for (const auto& d : descriptions())
    if (d.info.name == name) return d;
  std::string known;
  for (const auto& d : descriptions()) known += (known.empty() ? "" : ", ") + d.info.name;
  NEURN_FAIL("unknown domain '", name, "' (known: ", known, ")");
}

}  // namespace

namespace layout {
int64_t official_count(const std::string& domain, const std::string& split) {
  for (const auto& d : descriptions())
    if (d.info.name == domain) {
      auto it = d.official_counts.find(split);
      return it == d.official_counts.end() ? 0 : it->second;
    }
  return 0;
}
}  // namespace layout

const std::vector<DomainInfo>& domains() {
  static const std::vector<DomainInfo> d = [] {
    std::vector<DomainInfo> out;
    for (const auto& x : descriptions()) out.push_back(x.info);
    return out;
  }();
  return d;
}

const DomainInfo& domain_info(const std::string& name) { return description(name).info; }

std::vector<std::string> evaluation_domains() {
  std::vector<std::string> out;
  for (const auto& d : descriptions())
    if (!d.info.sample) out.push_back(d.info.name);
  return out;
}

std::string data_root() {
  const char* env = std::getenv("NEURN_DATA");
  if (env && *env) return env;
  return "./data";
}

bool domain_available(const std::string& name, const std::string& root) {
  const DomainDescription& d = description(name);
  for (const auto& s : d.info.splits)
    if (!d.present(root, s)) return false;
  return true;
}

std::string domain_unavailable_message(const std::string& name, const std::string& root) {
  if (domain_available(name, root)) return "";
  return description(name).missing(root);
}

std::string domain_source_key(const std::string& name, const std::string& root) {
  const DomainDescription& d = description(name);
  return d.source_key ? d.source_key(root) : "";
}

// ---- loading -----------------------------------------------------------------------

namespace {

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, Dataset>& cache() {
  static std::map<std::string, Dataset> c;
  return c;
}

Dataset load_uncached(const std::string& name, const std::string& split, const std::string& root) {
  return description(name).read(root, split);
}

}  // namespace

Dataset load_domain(const std::string& name, const std::string& split, const std::string& root,
                    const Protocol& protocol) {
  const DomainDescription& desc = description(name);
  const DomainInfo& info = desc.info;
  bool known_split = false;
  for (const auto& s : info.splits) known_split |= (s == split);
  for (const auto& s : desc.extra_splits) known_split |= (s == split);
  std::string splits;
  for (const auto& s : info.splits) splits += " " + s;
  NEURN_CHECK(known_split, "load_domain: domain ", name, " has no split '", split, "' (splits:", splits, ")");
  if (!desc.present(root, split)) {
    std::string msg = domain_unavailable_message(name, root);
    if (msg.empty()) msg = "domain " + name + " split " + split + " is not available under " + root;
    NEURN_FAIL(msg);
  }
  std::error_code ec;
  std::string key = name + "|" + split + "|" + fs::weakly_canonical(root, ec).string();
  Dataset ds;
  {
    std::lock_guard<std::mutex> lock(cache_mutex());
    auto it = cache().find(key);
    if (it != cache().end()) ds = it->second;
  }
  if (ds.empty()) {
    ds = load_uncached(name, split, root);
    std::lock_guard<std::mutex> lock(cache_mutex());
    cache()[key] = ds;
  }
  if (protocol.kind == Protocol::Kind::FirstN) {
    NEURN_CHECK(protocol.n > 0, "load_domain: protocol first_n needs n > 0, got ", protocol.n);
    NEURN_CHECK(protocol.n <= ds.size(), "load_domain: protocol ", protocol.str(), " asks for more records than ", name,
                "/", split, " has (", ds.size(), ")");
    return ds.first(protocol.n);
  }
  return ds;
}

void clear_domain_cache() {
  std::lock_guard<std::mutex> lock(cache_mutex());
  cache().clear();
}

}  // namespace neurn::data
