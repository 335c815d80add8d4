#include "datasets/prepare.h"

#include <filesystem>

#include "datasets/checksum.h"
#include "datasets/datasets.h"
#include "datasets/download.h"
#include "datasets/generators.h"
#include "datasets/io.h"
#include "datasets/layout.h"
#include "datasets/readers.h"
#include "framework/error.h"

namespace fs = std::filesystem;

namespace neurn::data {
namespace {

const std::vector<ChecksumEntry>& table() {
  static const std::vector<ChecksumEntry> t = {
#include "datasets/checksums.inc"
  };
  return t;
}

bool is_dir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// Puts root/rel in place: already there and valid, else copied from the shared
// folder, else downloaded from `urls`. Verified before it gets its real name.
void fetch(const std::string& rel, const std::string& root, const std::string& shared,
           const std::vector<std::string>& urls, const std::string& manual_hint, const Log& log) {
  std::string dest = path_join(root, rel);
  if (file_exists(dest)) {
    std::string bad = check_bytes(rel, read_file(dest), dest);
    if (bad.empty()) {
      log("  " + rel + ": present, checksum ok");
      return;
    }
    log("  " + rel + ": present but " + bad + "; fetching it again");
  }
  if (!shared.empty() && file_exists(path_join(shared, rel))) {
    std::string source = path_join(shared, rel);
    std::vector<uint8_t> bytes = read_file(source);
    std::string bad = check_bytes(rel, bytes, source);
    NEURN_CHECK(bad.empty(), source, ": ", bad, " (file not installed)");
    write_file_atomic(dest, bytes.data(), bytes.size());
    ChecksumEntry e = checksum_for(rel);
    log("  " + rel + ": from " + source + (e.kind.empty() ? "" : ", " + e.kind + " ok"));
    return;
  }
  // Downloaded into dest.part (resumed if a partial one is there), checked,
  // and only then renamed to dest.
  auto check = [&](const std::string& part) { return check_bytes(rel, read_file(part), part); };
  std::string why;
  for (const auto& url : urls) {
    std::string failed = download_file(url, dest, check, log);
    if (failed.empty()) {
      ChecksumEntry e = checksum_for(rel);
      log("  " + rel + ": from " + url + (e.kind.empty() ? "" : ", " + e.kind + " ok"));
      return;
    }
    log("  " + failed);
    why += (why.empty() ? "" : "; ") + failed;
  }
  NEURN_FAIL(rel, " is not available: ", urls.empty() ? std::string("it has no download source") : why, ". ",
             manual_hint);
}

int64_t count_files(const std::string& dir, const std::string& ext) {
  if (!is_dir(dir)) return 0;
  int64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ext) ++n;
  return n;
}

void check_counts(const Dataset& ds, int64_t want, const std::string& what) {
  NEURN_CHECK(ds.size() == want, what, ": ", ds.size(), " records, the official split has ", want);
}

std::string hist_str(const Dataset& ds) {
  std::string s;
  for (int64_t v : ds.class_histogram()) s += (s.empty() ? "" : " ") + std::to_string(v);
  return s;
}

const char* kBsdsUrl = "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz";
const char* kBsdsMember = "BSR/BSDS500/data/images/train/";

}  // namespace

const std::vector<std::string>& preparable() {
  static const std::vector<std::string> p = {"mnist", "usps", "svhn", "svhn_sample50", "mnistm", "bsds500", "syn"};
  return p;
}

ChecksumEntry checksum_for(const std::string& rel_path) {
  for (const auto& e : table())
    if (e.path == rel_path) return e;
  return {};
}

std::string check_bytes(const std::string& rel_path, const std::vector<uint8_t>& bytes, const std::string& where) {
  ChecksumEntry e = checksum_for(rel_path);
  if (e.kind.empty()) return "";
  std::string got;
  if (e.kind == "md5-decompressed") {
    std::vector<uint8_t> raw =
        (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) ? gunzip(bytes, where) : bytes;
    got = md5_hex(raw.data(), raw.size());
  } else if (e.kind == "md5") {
    got = md5_hex(bytes.data(), bytes.size());
  } else {
    got = sha256_hex(bytes.data(), bytes.size());
  }
  if (got == e.digest) return "";
  return e.kind + " mismatch: got " + got + ", expected " + e.digest;
}

std::string find_shared_data() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("NEURN_SHARED_DATA"); env && *env) candidates.push_back(env);
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  for (fs::path p = cwd; !p.empty(); p = p.parent_path()) {
    candidates.push_back((p.parent_path() / "shared" / "data").string());
    if (p == p.parent_path() || candidates.size() > 6) break;
  }
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // <project>/<build>/bin/neurn -> <project>/../shared/data
    fs::path project = exe.parent_path().parent_path().parent_path();
    candidates.push_back((project.parent_path() / "shared" / "data").string());
  }
  for (const auto& c : candidates)
    if (is_dir(c)) return fs::weakly_canonical(c, ec).string();
  return "";
}

void prepare(const std::string& item, const std::string& root, const std::string& shared, const Log& log) {
  log(item + ":");
  if (item == "mnist") {
    for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                          "t10k-labels-idx1-ubyte.gz"})
      fetch(std::string("mnist/") + f, root, shared,
            {std::string("https://ossci-datasets.s3.amazonaws.com/mnist/") + f,
             std::string("http://yann.lecun.com/exdb/mnist/") + f},
            "Download it from http://yann.lecun.com/exdb/mnist/ into " + path_join(root, "mnist") + "/", log);
    for (const char* split : {"train", "test"}) {
      Dataset ds = load_domain("mnist", split, root);
      check_counts(ds, layout::official_count("mnist", split), "mnist/" + std::string(split));
      log(std::string("  ") + split + ": " + std::to_string(ds.size()) + " images, classes " + hist_str(ds));
    }
  } else if (item == "usps") {
    // The text files are the default; a root that already holds only the
    // libsvm files keeps them.
    bool libsvm = false;
    bool have = !layout::usps_file(root, "train", &libsvm).empty();
    if (have && libsvm) {
      for (const char* f : {"usps.bz2", "usps.t.bz2"})
        fetch(std::string("usps/") + f, root, shared,
              {std::string("https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/") + f},
              "Download it from https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass.html", log);
    } else {
      for (const char* f : {"zip.train.gz", "zip.test.gz"})
        fetch(
            std::string("usps/") + f, root, shared,
            {std::string("https://hastie.su.domains/ElemStatLearn/datasets/") + f},
            "Download it from https://hastie.su.domains/ElemStatLearn/datasets/ into " + path_join(root, "usps") + "/",
            log);
    }
    for (const char* split : {"train", "test"}) {
      clear_domain_cache();
      Dataset ds = load_domain("usps", split, root);
      check_counts(ds, layout::official_count("usps", split), "usps/" + std::string(split));
      log(std::string("  ") + split + ": " + std::to_string(ds.size()) + " images, classes " + hist_str(ds));
    }
  } else if (item == "svhn") {
    for (const char* split : {"train", "test"}) {
      std::string f = std::string(split) + "_32x32.mat";
      fetch("svhn/" + f, root, shared, {"http://ufldl.stanford.edu/housenumbers/" + f},
            "Download train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/ into " +
                path_join(root, "svhn") + "/",
            log);
    }
  } else if (item == "svhn_sample50") {
    fetch("svhn/svhn_sample50_32x32.mat", root, shared, {},
          "The 50-image SVHN sample ships only with ../shared/data/svhn (it is not an official file)", log);
    Dataset ds = load_domain("svhn_sample50", "test", root);
    log("  sample (not an evaluation set): " + std::to_string(ds.size()) + " images, classes " + hist_str(ds));
  } else if (item == "mnistm") {
    bool cached = true;
    for (const char* split : {"train", "test"}) {
      std::string c = layout::mnistm_cache(root, split);
      if (!file_exists(c) || !file_exists(layout::mnistm_labels(root, split))) {
        cached = false;
        continue;
      }
      try {
        Dataset ds = read_u8_cache(c, "mnistm", split);
        cached = cached && ds.size() == layout::official_count("mnistm", split);
      } catch (const Error&) {
        cached = false;
      }
    }
    if (cached) {
      log("  already extracted and decoded (caches verified)");
      return;
    }
    std::string rel = "mnist_m/mnist_m.tar.gz";
    std::string archive = path_join(root, rel);
    if (!file_exists(archive) && !shared.empty() && file_exists(path_join(shared, rel)))
      archive = path_join(shared, rel);
    NEURN_CHECK(file_exists(archive), "mnistm is not available: no ", rel, " under ", root,
                " or the shared data folder. MNIST-M has no stable public download URL: get mnist_m.tar.gz "
                "(Ganin & Lempitsky, http://yaroslav.ganin.net/) and put it in ",
                path_join(root, "mnist_m"), "/, then run `neurn data prepare mnistm` again");
    ChecksumEntry e = checksum_for(rel);
    std::string got = sha256_file(archive);
    NEURN_CHECK(got == e.digest, archive, ": sha256 mismatch: got ", got, ", expected ", e.digest);
    log("  " + archive + ": sha256 ok; extracting");
    int64_t n = extract_tar(archive, root, [](const std::string& m) { return m.rfind("mnist_m/", 0) == 0; });
    log("  extracted " + std::to_string(n) + " files into " + path_join(root, "mnist_m"));
    for (const char* split : {"train", "test"}) {
      Dataset ds = read_mnistm_folder(layout::mnistm_dir(root, split), layout::mnistm_labels(root, split), split);
      check_counts(ds, layout::official_count("mnistm", split), "mnistm/" + std::string(split));
      write_u8_cache(layout::mnistm_cache(root, split), ds);
      log(std::string("  ") + split + ": " + std::to_string(ds.size()) + " images decoded, cache " +
          layout::mnistm_cache(root, split));
    }
    clear_domain_cache();
  } else if (item == "bsds500") {
    std::string dir = layout::bsds_train_dir(root);
    if (count_files(dir, ".jpg") == 200) {
      log("  200 training photos present");
      return;
    }
    std::string rel = "bsds500/BSR_bsds500_train.tgz";
    std::string archive = shared.empty() ? "" : path_join(shared, rel);
    if (!archive.empty() && file_exists(archive)) {
      ChecksumEntry e = checksum_for(rel);
      std::string got = sha256_file(archive);
      NEURN_CHECK(got == e.digest, archive, ": sha256 mismatch: got ", got, ", expected ", e.digest);
      log("  " + archive + ": sha256 ok; extracting the training photos");
    } else {
      // The official archive (all of BSDS500, ~70 MB); only the training photos are kept.
      archive = path_join(root, "bsds500/BSR_bsds500.tgz");
      if (!file_exists(archive)) {
        std::string why = download_file(kBsdsUrl, archive, nullptr, log);
        NEURN_CHECK(why.empty(), "bsds500 is not available: ", why, ". Download ", kBsdsUrl, " into ",
                    path_join(root, "bsds500"), "/ and run `neurn data prepare bsds500` again");
      }
      log("  " + archive + ": no published checksum; each extracted photo is checked against its SHA-256");
    }
    int64_t n = extract_tar(archive, path_join(root, "bsds500"), [](const std::string& m) {
      return m.rfind(kBsdsMember, 0) == 0 && m.size() > 4 && m.substr(m.size() - 4) == ".jpg";
    });
    NEURN_CHECK(count_files(dir, ".jpg") == 200, archive, ": expected 200 training photos under ", kBsdsMember,
                ", extracted ", n);
    // The photos themselves against datasets/checksums.inc (the official archive has no checksum).
    std::string bad = layout::check_bsds_photos(root);
    NEURN_CHECK(bad.empty(), archive, ": the extracted photos are not the BSDS500 training photos: ", bad);
    log("  extracted " + std::to_string(n) + " photos into " + dir + ", each sha256 ok");
  } else if (item == "syn") {
    for (const char* split : {"train", "test"}) {
      bool train = std::string(split) == "train";
      int64_t count = train ? layout::kSynTrainCount : layout::kSynTestCount;
      uint64_t seed = train ? layout::kSynTrainSeed : layout::kSynTestSeed;
      std::string c = layout::syn_cache(root, split, count, seed);
      if (file_exists(c)) {
        read_u8_cache(c, "syn", split);  // throws when corrupt
        log(std::string("  ") + split + ": cache present and verified (" + c + ")");
        continue;
      }
      SynOptions opt;
      opt.photo_dir = layout::bsds_train_dir(root);
      Dataset ds = generate_syn(count, seed, split, opt);
      write_u8_cache(c, ds);
      log(std::string("  ") + split + ": generated " + std::to_string(count) + " images (seed " + std::to_string(seed) +
          (is_dir(opt.photo_dir) ? ", photo backgrounds" : ", no photos: flat/gradient backgrounds only") + ") -> " +
          c);
    }
    clear_domain_cache();
  } else {
    std::string known;
    for (const auto& p : preparable()) known += " " + p;
    NEURN_FAIL("data prepare: unknown item '", item, "' (known:", known, ")");
  }
}

std::vector<std::string> verify(const std::string& item, const std::string& root, const Log& log, bool* absent) {
  std::vector<std::string> problems;
  *absent = false;
  auto check_file = [&](const std::string& rel) {
    std::string p = path_join(root, rel);
    if (!file_exists(p)) return false;
    std::string bad = check_bytes(rel, read_file(p), p);
    if (bad.empty()) {
      ChecksumEntry e = checksum_for(rel);
      log("  " + rel + ": " + (e.kind.empty() ? "present (no checksum on record)" : e.kind + " ok"));
    } else {
      problems.push_back(p + ": " + bad);
    }
    return true;
  };
  auto load_check = [&](const std::string& domain, const std::string& split) {
    try {
      clear_domain_cache();
      Dataset ds = load_domain(domain, split, root);
      int64_t want = layout::official_count(domain, split);
      if (want && ds.size() != want)
        problems.push_back(domain + "/" + split + ": " + std::to_string(ds.size()) + " records, expected " +
                           std::to_string(want));
      else
        log("  " + split + ": " + std::to_string(ds.size()) + " records read");
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
  };
  if (item == "mnist") {
    int present = 0;
    for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                          "t10k-labels-idx1-ubyte.gz"})
      present += check_file(std::string("mnist/") + f);
    if (present == 0 && !domain_available("mnist", root)) *absent = true;
    if (!*absent) {
      load_check("mnist", "train");
      load_check("mnist", "test");
    }
  } else if (item == "usps") {
    int present = 0;
    for (const char* f : {"zip.train.gz", "zip.test.gz", "usps.bz2", "usps.t.bz2"})
      present += check_file(std::string("usps/") + f);
    if (present == 0 && !domain_available("usps", root)) *absent = true;
    if (!*absent) {
      load_check("usps", "train");
      load_check("usps", "test");
    }
  } else if (item == "svhn") {
    int present = 0;
    for (const char* f : {"train_32x32.mat", "test_32x32.mat", "extra_32x32.mat"})
      present += check_file(std::string("svhn/") + f);
    *absent = present == 0;
  } else if (item == "svhn_sample50") {
    *absent = !check_file("svhn/svhn_sample50_32x32.mat");
  } else if (item == "mnistm") {
    if (!domain_available("mnistm", root)) {
      *absent = true;
    } else {
      check_file("mnist_m/mnist_m.tar.gz");
      for (const char* split : {"train", "test"}) {
        std::string lf = layout::mnistm_labels(root, split);
        if (file_exists(lf)) {
          int64_t listed = static_cast<int64_t>(read_mnistm_labels(lf).size());
          int64_t pngs = count_files(layout::mnistm_dir(root, split), ".png");
          if (listed != layout::official_count("mnistm", split) || pngs != listed)
            problems.push_back(lf + " lists " + std::to_string(listed) + " images, the folder holds " +
                               std::to_string(pngs) + ", the official split has " +
                               std::to_string(layout::official_count("mnistm", split)));
        }
        load_check("mnistm", split);  // from the checksummed cache when present
      }
    }
  } else if (item == "bsds500") {
    int64_t n = count_files(layout::bsds_train_dir(root), ".jpg");
    if (n == 0) {
      *absent = true;
    } else if (std::string bad = layout::check_bsds_photos(root); !bad.empty()) {
      problems.push_back(bad);
    } else {
      log("  200 training photos, each sha256 ok");
    }
  } else if (item == "syn") {
    int present = 0;
    for (const char* split : {"train", "test"}) {
      bool train = std::string(split) == "train";
      std::string c = layout::syn_cache(root, split, train ? layout::kSynTrainCount : layout::kSynTestCount,
                                        train ? layout::kSynTrainSeed : layout::kSynTestSeed);
      if (!file_exists(c)) continue;
      ++present;
      try {
        read_u8_cache(c, "syn", split);
        log("  " + std::string(split) + ": cache verified");
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    }
    if (present == 0) log("  no cache: generated in memory on first use (run `neurn data prepare syn` to cache it)");
  } else {
    NEURN_FAIL("data verify: unknown item '", item, "'");
  }
  return problems;
}

}  // namespace neurn::data
