// `neurn data prepare|verify|info`: fill, check and describe the data root.
#include <cstdio>

#include "datasets/datasets.h"
#include "datasets/generators.h"
#include "datasets/layout.h"
#include "datasets/prepare.h"
#include "datasets/writers.h"
#include "experiments/cli/cli.h"
#include "framework/error.h"

namespace neurn::cli {
namespace {

std::string root_from(const Flags& f) { return f.get("data-root", data::data_root()); }

void print_line(const std::string& s) {
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);  // keeps the order with messages on stderr
}

int cmd_prepare(const Flags& f) {
  std::string root = root_from(f);
  std::string shared = f.get("shared", data::find_shared_data());
  std::printf("data root: %s\nshared copies: %s\n", root.c_str(), shared.empty() ? "(none found)" : shared.c_str());
  bool explicit_items = !f.positional().empty();
  std::vector<std::string> items = explicit_items ? f.positional() : data::preparable();
  int failed = 0;
  std::vector<std::string> unavailable;
  for (const auto& item : items) {
    try {
      data::prepare(item, root, shared, print_line);
    } catch (const Error& e) {
      std::fprintf(stderr, "  %s: not prepared: %s\n", item.c_str(), e.what());
      unavailable.push_back(item);
      ++failed;
    }
  }
  if (!unavailable.empty()) {
    std::string list;
    for (auto& u : unavailable) list += " " + u;
    std::printf("not available:%s (see the messages above)\n", list.c_str());
  }
  // With no items named, prepare does what it can: missing optional domains are not an error.
  return explicit_items && failed ? 1 : 0;
}

int cmd_verify(const Flags& f) {
  std::string root = root_from(f);
  std::vector<std::string> items = f.positional().empty() ? data::preparable() : f.positional();
  std::printf("data root: %s\n", root.c_str());
  int bad = 0;
  for (const auto& item : items) {
    std::printf("%s:\n", item.c_str());
    bool absent = false;
    auto problems = data::verify(item, root, print_line, &absent);
    if (absent) std::printf("  not present\n");
    for (const auto& p : problems) std::printf("  PROBLEM: %s\n", p.c_str());
    bad += static_cast<int>(problems.size());
    // A domain that was asked for by name must be there.
    if (absent && !f.positional().empty()) ++bad;
  }
  std::printf("%s\n", bad ? "verify: FAILED" : "verify: ok");
  return bad ? 1 : 0;
}

int cmd_info(const Flags& f) {
  std::string root = root_from(f);
  std::vector<std::string> names = f.positional();
  if (names.empty())
    for (const auto& d : data::domains()) names.push_back(d.name);
  std::printf("data root: %s\n", root.c_str());
  for (const auto& name : names) {
    const data::DomainInfo& info = data::domain_info(name);
    std::printf("%s: %s\n  native size %ldx%ld, %ld channel%s%s\n", info.name.c_str(), info.description.c_str(),
                static_cast<long>(info.height), static_cast<long>(info.width), static_cast<long>(info.channels),
                info.channels == 1 ? "" : "s", info.sample ? "  [SAMPLE: not an evaluation set]" : "");
    if (!data::domain_available(name, root)) {
      std::printf("  not available: %s\n", data::domain_unavailable_message(name, root).c_str());
      continue;
    }
    for (const auto& split : info.splits) {
      data::Dataset ds = data::load_domain(name, split, root);
      std::string hist;
      for (int64_t v : ds.class_histogram(info.num_classes)) hist += " " + std::to_string(v);
      auto st = data::channel_stats(ds);
      std::string mean;
      for (float m : st.mean) mean += (mean.empty() ? "" : ", ") + std::to_string(m).substr(0, 5);
      std::printf("  %-6s %7ld images  classes 0-9:%s  mean (%s)\n", split.c_str(), static_cast<long>(ds.size()),
                  hist.c_str(), mean.c_str());
    }
  }
  return 0;
}

int cmd_generate(const Flags& f) {
  std::string what = f.positional()[0], root = root_from(f), split = f.get("split", "train");
  int64_t count = f.get_int("count", 1000);
  uint64_t seed = static_cast<uint64_t>(f.get_int("seed", 1));
  std::string out = f.get("output", what + "_generated");
  data::Dataset ds;
  if (what == "mnistm") {
    data::Dataset mnist = data::load_domain("mnist", split, root);
    auto photos = data::load_photos(data::layout::bsds_train_dir(root));
    ds = data::generate_mnistm(mnist, photos, seed, count, split);
  } else if (what == "syn") {
    data::SynOptions opt;
    opt.photo_dir = data::layout::bsds_train_dir(root);
    ds = data::generate_syn(count, seed, split, opt);
  } else {
    NEURN_FAIL("data generate: unknown generator '", what, "' (mnistm or syn)");
  }
  data::write_png_folder(ds, out, what);
  std::printf("wrote %ld images (seed %lu) to %s/%s_%s/ and %s/%s_%s_labels.txt\n", static_cast<long>(ds.size()),
              static_cast<unsigned long>(seed), out.c_str(), what.c_str(), split.c_str(), out.c_str(), what.c_str(),
              split.c_str());
  return 0;
}

const Flag kDataRoot = text("data-root", "DIR", "the data root ($NEURN_DATA, else ./data)");

Register reg_generate{{
    .name = "data generate",
    .summary = "write a seeded MNIST-M or syn variant as PNGs + labels",
    .positionals = "mnistm|syn",
    .min_positionals = 1,
    .max_positionals = 1,
    .flags = {integer("count", "N", "images (1000)"), integer("seed", "S", "(1)"),
              text("split", "train|test", "(train)"), text("output", "DIR", "(NAME_generated)"), kDataRoot},
    .details = "Writes a generated variant in the MNIST-M layout: DIR/<name>_<split>/*.png and "
               "DIR/<name>_<split>_labels.txt (read it back with read_mnistm_folder). mnistm: Ganin et al.'s recipe "
               "over the MNIST <split> digits (count <= their number) and the BSDS500 photos under the data root; "
               "syn: synthetic font digits. The output is a variant, not the official domain.",
    .fn = cmd_generate}};
Register reg_prepare{{
    .name = "data prepare",
    .summary = "fill the data root (copy from ../shared/data or download), verify, extract",
    .positionals = "[ITEM...]",
    .max_positionals = -1,
    .flags = {kDataRoot, text("shared", "DIR", "the shared copies ($NEURN_SHARED_DATA, else ../shared/data)")},
    .details = "Fills the data root from the shared copies when present, else downloads the official files "
               "(libcurl: a progress line, resumable DEST.part files, the checksum checked before the file gets its "
               "name); verifies checksums, extracts archives, writes decoded caches. Items: mnist usps svhn "
               "svhn_sample50 mnistm bsds500 syn (default: all; then an item whose files cannot be found is "
               "reported and skipped).",
    .fn = cmd_prepare}};
Register reg_verify{{.name = "data verify",
                     .summary = "check checksums, record counts and caches under the data root",
                     .positionals = "[ITEM...]",
                     .max_positionals = -1,
                     .flags = {kDataRoot},
                     .fn = cmd_verify}};
Register reg_info{{.name = "data info",
                   .summary = "splits, counts, size, channels and class histogram of each domain",
                   .positionals = "[DOMAIN...]",
                   .max_positionals = -1,
                   .flags = {kDataRoot},
                   .fn = cmd_info}};

}  // namespace
}  // namespace neurn::cli
