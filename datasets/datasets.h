#pragma once
// The public face of neurn's data layer: the digit domains, how to load them,
// how to split and batch them. Everything an experiment needs is here; the
// readers, generators and transforms behind it have their own headers.
//
//   auto train = neurn::data::load_domain("mnist", "train", neurn::data::data_root(),
//                                         neurn::data::Protocol::first_n(10000));
//   auto [fit, val] = neurn::data::split_validation(train, 0.1, /*seed=*/1);
//   neurn::data::DataLoader loader(fit, {.batch_size = 128, .seed = 1, .size = 32, .channels = 3});
//   for (const neurn::data::Batch& b : loader) { ... b.images (N, C, H, W) float32, b.labels (N) int64 ... }
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/device.h"
#include "framework/tensor.h"

namespace neurn::data {

// ---- domains ------------------------------------------------------------------

struct DomainInfo {
  std::string name;                 // "mnist", "usps", "svhn", "mnistm", "syn", "svhn_sample50"
  std::string description;          // one line
  std::vector<std::string> splits;  // e.g. {"train", "test"}
  int64_t height = 0, width = 0;    // native image size
  int64_t channels = 0;             // 1 (gray) or 3 (RGB)
  int64_t num_classes = 10;
  bool generated = false;  // made by a generator (syn), always available
  bool sample = false;     // a small sample for pictures and tests, not an evaluation set
  std::string short_name;    // Table 1's label: "M", "U", "S", "MM", "SYN"
  std::string display_name;  // the papers' name: "MNIST", "USPS", "SVHN", "MNIST-M", "SYN"
  // Files under the data root that `neurn data prepare` checksums
  // (datasets/checksums.inc), relative to the root; the alternatives of a
  // domain (gzip or raw, text or libsvm) are all listed.
  std::vector<std::string> checksummed_files;
};

// The evaluation domains (every domain that is not a sample), in registry
// order: what experiment configs may name as sources and targets.
std::vector<std::string> evaluation_domains();

// The registry: mnist, usps, svhn, mnistm, syn, and the explicitly named
// sample "svhn_sample50" (50 real SVHN test crops; never an evaluation set).
const std::vector<DomainInfo>& domains();
// Throws naming the known domains when `name` is not one of them.
const DomainInfo& domain_info(const std::string& name);

// The data root: $NEURN_DATA if set, else ./data (relative to the working directory).
std::string data_root();

// Whether the files of `name` (all of its splits) are present under `root`.
bool domain_available(const std::string& name, const std::string& root = data_root());
// Empty when available; otherwise says what is missing, what to download and
// where to put it (or to run `neurn data prepare NAME`).
std::string domain_unavailable_message(const std::string& name, const std::string& root = data_root());
// What a generated domain's images are made from under `root` (syn: its fonts
// and whether the BSDS500 photos were used, layout::syn_key); "" for domains
// read from their published files. Every run record names it for each domain
// the run used (RunRecord::data_sources).
std::string domain_source_key(const std::string& name, const std::string& root = data_root());

// ---- datasets -----------------------------------------------------------------

// Decoded images as uint8, planar (N, C, H, W), with int64 labels in [0, 10).
// Copies are cheap: the pixels are shared, a Dataset is a list of record
// indices into them (so subsets and validation splits cost no pixel copies).
class Dataset {
 public:
  Dataset() = default;
  // Takes ownership of `pixels` ((N, C, H, W) uint8) and `labels` (N).
  Dataset(std::string name, std::string split, int64_t channels, int64_t height, int64_t width,
          std::vector<uint8_t> pixels, std::vector<int64_t> labels);

  const std::string& name() const { return name_; }
  const std::string& split() const { return split_; }
  int64_t size() const { return static_cast<int64_t>(index_.size()); }
  bool empty() const { return index_.empty(); }
  int64_t channels() const { return channels_; }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  int64_t image_numel() const { return channels_ * height_ * width_; }
  // Record i of this view: (C, H, W) uint8.
  const uint8_t* image(int64_t i) const;
  int64_t label(int64_t i) const;
  std::vector<int64_t> labels() const;
  std::vector<int64_t> class_histogram(int64_t num_classes = 10) const;

  // A view of records `idx` (indices into this view), sharing the pixels.
  Dataset subset(const std::vector<int64_t>& idx, const std::string& split_name = "") const;
  Dataset first(int64_t n) const;  // the first n records (all if n >= size)

 private:
  struct Records {
    std::vector<uint8_t> pixels;  // (N, C, H, W)
    std::vector<int64_t> labels;  // (N)
  };
  std::string name_, split_;
  int64_t channels_ = 0, height_ = 0, width_ = 0;
  std::shared_ptr<const Records> records_;
  std::vector<int64_t> index_;  // view -> record
};

// Which part of an official split to use.
struct Protocol {
  enum class Kind { Full, FirstN };
  Kind kind = Kind::Full;
  int64_t n = 0;  // FirstN: the first n records of the split
  static Protocol full() { return {}; }
  static Protocol first_n(int64_t n) { return {Kind::FirstN, n}; }
  // "full", "first_n:10000" (also "first_n=10000", "first10000")
  static Protocol parse(const std::string& s);
  std::string str() const;
};

// Loads split `split` ("train", "test"; svhn also "extra"; svhn_sample50 only
// "test") of a domain from `root`. Decoded splits are cached in memory for the
// life of the process, so a second load costs nothing. Throws with
// domain_unavailable_message() when the files are absent.
Dataset load_domain(const std::string& name, const std::string& split, const std::string& root = data_root(),
                    const Protocol& protocol = Protocol::full());
// Drops every cached split (tests; memory).
void clear_domain_cache();

// Holds out round(fraction * size) records, chosen by a seeded permutation,
// as validation. Returns {train_part, validation_part}; both share pixels.
std::pair<Dataset, Dataset> split_validation(const Dataset& train, double fraction, uint64_t seed);

// Per-channel mean and std of the pixels scaled to [0, 1].
struct ChannelStats {
  std::vector<float> mean, std;
};
ChannelStats channel_stats(const Dataset& ds, int64_t max_images = 0 /* 0: all */);

// ---- transforms and the loader ---------------------------------------------------

struct Normalization {
  enum class Mode {
    None,     // pixels in [0, 1]
    Fixed,    // (x - mean) / std with the given values (one value, or one per output channel)
    Dataset,  // mean/std computed from the loader's dataset (channel_stats)
  };
  Mode mode = Mode::None;
  std::vector<float> mean, std;
  static Normalization none() { return {}; }
  static Normalization fixed(std::vector<float> mean, std::vector<float> std) {
    return {Mode::Fixed, std::move(mean), std::move(std)};
  }
  static Normalization from_dataset() { return {Mode::Dataset, {}, {}}; }
};

// Training-time augmentation; all off by default. Applied per image after the
// resize and channel conversion, before normalization.
struct Augmentation {
  int64_t crop_padding = 0;    // random crop with this zero padding (pixels)
  float max_rotate_deg = 0.f;  // small affine: rotation in [-d, d]
  float max_scale = 0.f;       //   scale in [1 - s, 1 + s]
  float max_translate = 0.f;   //   translation in [-t, t] * size
  float brightness = 0.f;      // colour jitter: x * (1 + U[-b, b])
  float contrast = 0.f;        //   blend towards the mean by U[-c, c]
  float saturation = 0.f;      //   blend towards gray by U[-s, s] (3 channels)
  bool enabled() const {
    return crop_padding > 0 || max_rotate_deg > 0 || max_scale > 0 || max_translate > 0 || brightness > 0 ||
           contrast > 0 || saturation > 0;
  }
};

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  uint64_t seed = 0;  // shuffling and augmentation; epoch e uses (seed, e)
  bool drop_last = false;
  int64_t size = 0;      // output height = width (bilinear resize); 0: native
  int64_t channels = 0;  // 1 or 3 (gray <-> RGB); 0: native
  Normalization normalize;
  Augmentation augment;
  Device device = Device::cpu();  // cuda: batches are assembled in pinned memory, then copied
  int64_t prefetch = 4;           // batches assembled ahead by the background threads
  int64_t workers = 1;            // background threads assembling batches
};

struct Batch {
  Tensor images;  // (N, C, H, W) float32
  Tensor labels;  // (N) int64
};

// Iterating a DataLoader runs one epoch: batches are assembled on background
// threads (in order) while the caller trains on the previous ones. Each
// begin() starts the next epoch (a new shuffle); set_epoch() picks it.
class DataLoader {
 public:
  DataLoader(Dataset dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t num_batches() const;
  const Dataset& dataset() const { return dataset_; }
  const LoaderOptions& options() const { return options_; }
  int64_t out_channels() const { return out_channels_; }
  int64_t out_size_h() const { return out_h_; }
  int64_t out_size_w() const { return out_w_; }
  void set_epoch(int64_t epoch) { next_epoch_ = epoch; }

  class Iterator;
  Iterator begin();
  Iterator end();

  // The batch made of records order[begin, end) of this epoch, assembled on
  // the calling thread (the background threads call this too).
  Batch make_batch(const std::vector<int64_t>& order, int64_t begin, int64_t end, int64_t epoch) const;

  struct Epoch;  // the background state of one epoch (defined in loader.cpp)

 private:
  Dataset dataset_;
  LoaderOptions options_;
  int64_t out_channels_ = 0, out_h_ = 0, out_w_ = 0;
  std::vector<float> mean_, inv_std_;  // per output channel
  int64_t next_epoch_ = 0;
  std::shared_ptr<Epoch> current_;
};

class DataLoader::Iterator {
 public:
  Iterator() = default;
  Iterator(std::shared_ptr<Epoch> epoch, int64_t index);
  const Batch& operator*() const { return batch_; }
  const Batch* operator->() const { return &batch_; }
  Iterator& operator++();
  bool operator==(const Iterator& o) const { return index_ == o.index_; }
  bool operator!=(const Iterator& o) const { return index_ != o.index_; }

 private:
  void fetch();
  std::shared_ptr<Epoch> epoch_;
  int64_t index_ = 0;
  Batch batch_;
};

}  // namespace neurn::data
