// Dataset views, protocols, validation splits and channel statistics.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "datasets/datasets.h"
#include "framework/error.h"
#include "framework/random.h"

namespace neurn::data {

Dataset::Dataset(std::string name, std::string split, int64_t channels, int64_t height, int64_t width,
                 std::vector<uint8_t> pixels, std::vector<int64_t> labels)
    : name_(std::move(name)), split_(std::move(split)), channels_(channels), height_(height), width_(width) {
  NEURN_CHECK(channels > 0 && height > 0 && width > 0, "Dataset ", name_, "/", split_, ": bad image shape (", channels,
              ", ", height, ", ", width, ")");
  NEURN_CHECK(pixels.size() == labels.size() * static_cast<size_t>(channels * height * width), "Dataset ", name_, "/",
              split_, ": ", pixels.size(), " pixel bytes for ", labels.size(), " images of (", channels, ", ", height,
              ", ", width, ")");
  auto rec = std::make_shared<Records>();
  rec->pixels = std::move(pixels);
  rec->labels = std::move(labels);
  index_.resize(rec->labels.size());
  std::iota(index_.begin(), index_.end(), int64_t{0});
  records_ = std::move(rec);
}

const uint8_t* Dataset::image(int64_t i) const {
  NEURN_CHECK(i >= 0 && i < size(), "Dataset ", name_, "/", split_, ": index ", i, " out of range [0, ", size(), ")");
  return records_->pixels.data() +
         static_cast<size_t>(index_[static_cast<size_t>(i)]) * static_cast<size_t>(image_numel());
}

int64_t Dataset::label(int64_t i) const {
  NEURN_CHECK(i >= 0 && i < size(), "Dataset ", name_, "/", split_, ": index ", i, " out of range [0, ", size(), ")");
  return records_->labels[static_cast<size_t>(index_[static_cast<size_t>(i)])];
}

std::vector<int64_t> Dataset::labels() const {
  std::vector<int64_t> out(index_.size());
  for (size_t i = 0; i < index_.size(); ++i) out[i] = records_->labels[static_cast<size_t>(index_[i])];
  return out;
}

std::vector<int64_t> Dataset::class_histogram(int64_t num_classes) const {
  std::vector<int64_t> h(static_cast<size_t>(num_classes), 0);
  for (int64_t i : index_) {
    int64_t l = records_->labels[static_cast<size_t>(i)];
    if (l >= 0 && l < num_classes) ++h[static_cast<size_t>(l)];
  }
  return h;
}

Dataset Dataset::subset(const std::vector<int64_t>& idx, const std::string& split_name) const {
  Dataset out = *this;
  out.index_.resize(idx.size());
  for (size_t k = 0; k < idx.size(); ++k) {
    NEURN_CHECK(idx[k] >= 0 && idx[k] < size(), "Dataset::subset ", name_, "/", split_, ": index ", idx[k],
                " out of range [0, ", size(), ")");
    out.index_[k] = index_[static_cast<size_t>(idx[k])];
  }
  if (!split_name.empty()) out.split_ = split_name;
  return out;
}

Dataset Dataset::first(int64_t n) const {
  NEURN_CHECK(n >= 0, "Dataset::first: n = ", n, " (expected >= 0)");
  Dataset out = *this;
  if (n < size()) out.index_.resize(static_cast<size_t>(n));
  return out;
}

// ---- protocols ----------------------------------------------------------------------

Protocol Protocol::parse(const std::string& s) {
  if (s.empty() || s == "full") return full();
  std::string num;
  for (const char* prefix : {"first_n:", "first_n=", "first_n_", "first"})
    if (s.rfind(prefix, 0) == 0) {
      num = s.substr(std::string(prefix).size());
      break;
    }
  int64_t n = -1;
  if (!num.empty() && std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; }))
    n = std::stoll(num);
  NEURN_CHECK(n > 0, "protocol '", s, "': expected 'full' or 'first_n:N' with N > 0 (e.g. first_n:10000)");
  return first_n(n);
}

std::string Protocol::str() const { return kind == Kind::Full ? "full" : "first_n:" + std::to_string(n); }

// ---- validation split ------------------------------------------------------------------

std::pair<Dataset, Dataset> split_validation(const Dataset& train, double fraction, uint64_t seed) {
  NEURN_CHECK(fraction >= 0.0 && fraction < 1.0, "split_validation: fraction ", fraction, " (expected [0, 1))");
  const int64_t n = train.size();
  int64_t n_val = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  NEURN_CHECK(fraction == 0.0 || (n_val > 0 && n_val < n), "split_validation: fraction ", fraction, " of ", n,
              " records leaves ", n_val, " for validation and ", n - n_val, " for training");
  // Fisher-Yates with the counter-based generator: the same seed gives the
  // same split on every machine.
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  Generator gen(seed ^ 0x5EED5EEDull);
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(perm[static_cast<size_t>(i)], perm[gen.below(static_cast<uint64_t>(i + 1))]);
  std::vector<int64_t> val(perm.begin(), perm.begin() + n_val), fit(perm.begin() + n_val, perm.end());
  // Keep each part in the original record order (reads and histograms stay stable).
  std::sort(val.begin(), val.end());
  std::sort(fit.begin(), fit.end());
  return {train.subset(fit, train.split()), train.subset(val, "val")};
}

// ---- statistics ---------------------------------------------------------------------------

ChannelStats channel_stats(const Dataset& ds, int64_t max_images) {
  NEURN_CHECK(ds.size() > 0, "channel_stats: dataset ", ds.name(), "/", ds.split(), " is empty");
  int64_t n = max_images > 0 ? std::min(max_images, ds.size()) : ds.size();
  const int64_t c = ds.channels(), hw = ds.height() * ds.width();
  std::vector<double> s(static_cast<size_t>(c), 0.0), s2(static_cast<size_t>(c), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* img = ds.image(i);
    for (int64_t ch = 0; ch < c; ++ch) {
      uint64_t a = 0, a2 = 0;
      for (int64_t p = 0; p < hw; ++p) {
        uint32_t v = img[ch * hw + p];
        a += v;
        a2 += v * v;
      }
      s[static_cast<size_t>(ch)] += static_cast<double>(a);
      s2[static_cast<size_t>(ch)] += static_cast<double>(a2);
    }
  }
  ChannelStats out;
  double count = static_cast<double>(n * hw);
  for (int64_t ch = 0; ch < c; ++ch) {
    double m = s[static_cast<size_t>(ch)] / count / 255.0;
    double v = s2[static_cast<size_t>(ch)] / count / (255.0 * 255.0) - m * m;
    out.mean.push_back(static_cast<float>(m));
    out.std.push_back(static_cast<float>(std::sqrt(std::max(v, 0.0))));
  }
  return out;
}

}  // namespace neurn::data
