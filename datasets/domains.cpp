// The domain registry, the data root, availability and cached loading.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "datasets/datasets.h"
#include "datasets/generators.h"
#include "datasets/io.h"
#include "datasets/layout.h"
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
std::string syn_cache(const std::string& root, const std::string& split, int64_t count, uint64_t seed) {
  return path_join(path_join(root, "syn"),
                   "syn_" + split + "_" + std::to_string(count) + "_seed" + std::to_string(seed) + ".u8");
}

int64_t official_count(const std::string& domain, const std::string& split) {
  static const std::map<std::string, int64_t> counts = {
      {"mnist/train", 60000}, {"mnist/test", 10000},         {"usps/train", 7291},        {"usps/test", 2007},
      {"svhn/train", 73257},  {"svhn/test", 26032},          {"svhn/extra", 531131},      {"mnistm/train", 59001},
      {"mnistm/test", 9001},  {"syn/train", kSynTrainCount}, {"syn/test", kSynTestCount}, {"svhn_sample50/test", 50}};
  auto it = counts.find(domain + "/" + split);
  return it == counts.end() ? 0 : it->second;
}

}  // namespace layout

// ---- registry ----------------------------------------------------------------------

const std::vector<DomainInfo>& domains() {
  static const std::vector<DomainInfo> d = {
      {"mnist",
       "MNIST handwritten digits (LeCun et al.), official IDX files",
       {"train", "test"},
       28,
       28,
       1,
       10,
       false,
       false},
      {"usps",
       "USPS postal digits (Hastie et al. zip.train/zip.test, or libsvm usps/usps.t)",
       {"train", "test"},
       16,
       16,
       1,
       10,
       false,
       false},
      {"svhn",
       "SVHN cropped house-number digits (Netzer et al.), train_32x32.mat / test_32x32.mat",
       {"train", "test"},
       32,
       32,
       3,
       10,
       false,
       false},
      {"mnistm",
       "MNIST-M (Ganin et al.): MNIST digits blended over BSDS500 photo crops",
       {"train", "test"},
       32,
       32,
       3,
       10,
       false,
       false},
      {"syn",
       "synthetic digits rendered from installed TrueType fonts (SynDigits-style), generated",
       {"train", "test"},
       32,
       32,
       3,
       10,
       true,
       false},
      {"svhn_sample50",
       "50 real SVHN test crops: a SAMPLE for pictures and reader tests, NOT an evaluation set",
       {"test"},
       32,
       32,
       3,
       10,
       false,
       true},
  };
  return d;
}

const DomainInfo& domain_info(const std::string& name) {
  for (const auto& d : domains())
    if (d.name == name) return d;
  std::string known;
  for (const auto& d : domains()) known += (known.empty() ? "" : ", ") + d.name;
  NEURN_FAIL("unknown domain '", name, "' (known: ", known, ")");
}

std::string data_root() {
  const char* env = std::getenv("NEURN_DATA");
  if (env && *env) return env;
  return "./data";
}

namespace {

bool split_present(const std::string& name, const std::string& split, const std::string& root) {
  if (name == "mnist")
    return file_exists(layout::mnist_file(root, split, true)) && file_exists(layout::mnist_file(root, split, false));
  if (name == "usps") return !layout::usps_file(root, split, nullptr).empty();
  if (name == "svhn") return file_exists(layout::svhn_file(root, split));
  if (name == "svhn_sample50") return file_exists(layout::svhn_sample_file(root));
  if (name == "mnistm") {
    if (file_exists(layout::mnistm_cache(root, split))) return true;
    std::error_code ec;
    return file_exists(layout::mnistm_labels(root, split)) && fs::is_directory(layout::mnistm_dir(root, split), ec);
  }
  if (name == "syn") return true;
  return false;
}

}  // namespace

bool domain_available(const std::string& name, const std::string& root) {
  const DomainInfo& info = domain_info(name);
  for (const auto& s : info.splits)
    if (!split_present(name, s, root)) return false;
  return true;
}

std::string domain_unavailable_message(const std::string& name, const std::string& root) {
  if (domain_available(name, root)) return "";
  std::string r = root;
  if (name == "mnist")
    return "domain mnist is not available: expected " + r +
           "/mnist/{train-images-idx3-ubyte,train-labels-idx1-ubyte,t10k-images-idx3-ubyte,t10k-labels-idx1-ubyte}.gz. "
           "Run `neurn data prepare mnist` (copies them from ../shared/data when present, else downloads them), or "
           "download the four files from https://ossci-datasets.s3.amazonaws.com/mnist/ (mirror of "
           "http://yann.lecun.com/exdb/mnist/) into " +
           r + "/mnist/";
  if (name == "usps")
    return "domain usps is not available: expected " + r + "/usps/zip.train.gz and zip.test.gz (or the libsvm " +
           "usps.bz2 and usps.t.bz2). Run `neurn data prepare usps`, or download zip.train.gz and zip.test.gz from " +
           "https://hastie.su.domains/ElemStatLearn/datasets/ into " + r + "/usps/";
  if (name == "svhn")
    return "domain svhn is not available: expected " + r + "/svhn/train_32x32.mat and " + r +
           "/svhn/test_32x32.mat (the full cropped-digit SVHN set). Download train_32x32.mat and test_32x32.mat from " +
           "http://ufldl.stanford.edu/housenumbers/ into " + r +
           "/svhn/, or run `neurn data prepare svhn` on a machine "
           "with internet access. (svhn_sample50, 50 test crops, is only a sample and never stands in for svhn.)";
  if (name == "mnistm")
    return "domain mnistm is not available: expected " + r + "/mnist_m/mnist_m_{train,test}/ and " + r +
           "/mnist_m/mnist_m_{train,test}_labels.txt. Put the official mnist_m.tar.gz (Ganin & Lempitsky, "
           "http://yaroslav.ganin.net/) in " +
           r +
           "/mnist_m/ and run `neurn data prepare mnistm` (it also copies it "
           "from ../shared/data when present).";
  if (name == "svhn_sample50")
    return "svhn_sample50 is not available: expected " + r +
           "/svhn/svhn_sample50_32x32.mat; `neurn data prepare` copies it from ../shared/data/svhn when present";
  return "domain " + name + " is not available under " + r;
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
  if (name == "mnist")
    return read_mnist(layout::mnist_file(root, split, true), layout::mnist_file(root, split, false), split);
  if (name == "usps") {
    bool libsvm = false;
    std::string f = layout::usps_file(root, split, &libsvm);
    return libsvm ? read_usps_libsvm(f, split) : read_usps_text(f, split);
  }
  if (name == "svhn") return read_svhn_mat(layout::svhn_file(root, split), "svhn", split);
  if (name == "svhn_sample50") return read_svhn_mat(layout::svhn_sample_file(root), "svhn_sample50", split);
  if (name == "mnistm") {
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
  if (name == "syn") {
    int64_t count = split == "train" ? layout::kSynTrainCount : layout::kSynTestCount;
    uint64_t seed = split == "train" ? layout::kSynTrainSeed : layout::kSynTestSeed;
    std::string c = layout::syn_cache(root, split, count, seed);
    if (file_exists(c)) return read_u8_cache(c, "syn", split);
    SynOptions opt;
    opt.photo_dir = layout::bsds_train_dir(root);
    return generate_syn(count, seed, split, opt);
  }
  NEURN_FAIL("load_domain: no reader for domain ", name);
}

}  // namespace

Dataset load_domain(const std::string& name, const std::string& split, const std::string& root,
                    const Protocol& protocol) {
  const DomainInfo& info = domain_info(name);
  bool known_split = false;
  for (const auto& s : info.splits) known_split |= (s == split);
  known_split |= (name == "svhn" && split == "extra");
  std::string splits;
  for (const auto& s : info.splits) splits += " " + s;
  NEURN_CHECK(known_split, "load_domain: domain ", name, " has no split '", split, "' (splits:", splits, ")");
  if (!split_present(name, split, root)) {
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
