// The data loader: batches assembled on background threads, in order, a
// bounded number ahead of the consumer; on CUDA, copied to the device
// asynchronously from pinned buffers, the next batch's copy overlapping the
// current step (datasets/device_prefetch.h).
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

#include "datasets/datasets.h"
#include "datasets/device_prefetch.h"
#include "datasets/transforms.h"
#include "framework/cuda/async_copy.h"
#include "framework/error.h"
#include "framework/random.h"
#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_backend.h"
#endif

namespace neurn::data {

struct DataLoader::Epoch {
  const DataLoader* loader = nullptr;
  int64_t epoch = 0;
  int64_t num_batches = 0;
  std::vector<int64_t> order;
  std::vector<std::optional<Batch>> slots;
  std::mutex mu;
  std::condition_variable cv;
  int64_t next_to_make = 0;
  int64_t consumed = 0;  // batches handed to the caller
  bool stop = false;
  std::exception_ptr error;
  std::vector<std::thread> threads;
  std::unique_ptr<DevicePrefetch> prefetch;  // batches bound for a CUDA device

  void work() {
    const int64_t bs = loader->options().batch_size, n = static_cast<int64_t>(order.size());
    for (;;) {
      int64_t b;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] {
          return stop || error || next_to_make >= num_batches || next_to_make < consumed + loader->options().prefetch;
        });
        if (stop || error || next_to_make >= num_batches) return;
        b = next_to_make++;
      }
      try {
        Batch batch = loader->make_batch(order, b * bs, std::min(n, (b + 1) * bs), epoch);
        std::lock_guard<std::mutex> lock(mu);
        slots[static_cast<size_t>(b)] = std::move(batch);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
      cv.notify_all();
    }
  }

  Batch take(int64_t b) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return slots[static_cast<size_t>(b)].has_value() || error || stop; });
    NEURN_CHECK(!stop, "DataLoader: this epoch was abandoned (begin() was called again, or the loader was destroyed) ",
                "while an iterator of it was still in use");
    if (error) std::rethrow_exception(error);
    Batch out = std::move(*slots[static_cast<size_t>(b)]);
    slots[static_cast<size_t>(b)].reset();
    consumed = b + 1;
    lock.unlock();
    cv.notify_all();
    return out;
  }

  // Batch b if a worker has made it, without waiting.
  std::optional<Batch> try_take(int64_t b) {
    std::unique_lock<std::mutex> lock(mu);
    if (stop) return std::nullopt;
    if (error) std::rethrow_exception(error);
    auto& slot = slots[static_cast<size_t>(b)];
    if (!slot.has_value()) return std::nullopt;
    Batch out = std::move(*slot);
    slot.reset();
    consumed = b + 1;
    lock.unlock();
    cv.notify_all();
    return out;
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto& t : threads)
      if (t.joinable()) t.join();
    threads.clear();
  }
  ~Epoch() {
    prefetch.reset();  // waits for copies still reading pinned buffers
    shutdown();
  }
};

DataLoader::DataLoader(Dataset dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  const std::string who = "DataLoader(" + dataset_.name() + "/" + dataset_.split() + ")";
  NEURN_CHECK(options_.batch_size > 0, who, ": batch_size ", options_.batch_size, " (expected > 0)");
  NEURN_CHECK(dataset_.size() > 0, who, ": the dataset is empty");
  NEURN_CHECK(options_.channels == 0 || options_.channels == 1 || options_.channels == 3, who, ": channels ",
              options_.channels, " (expected 0 = native, 1 or 3)");
  NEURN_CHECK(options_.size >= 0, who, ": size ", options_.size, " (expected 0 = native, or > 0)");
  NEURN_CHECK(options_.prefetch >= 1 && options_.workers >= 1, who, ": prefetch and workers must be >= 1");
  NEURN_CHECK(!options_.device.is_meta(), who, ": batches cannot live on the meta device");
  out_channels_ = options_.channels ? options_.channels : dataset_.channels();
  out_h_ = options_.size ? options_.size : dataset_.height();
  out_w_ = options_.size ? options_.size : dataset_.width();

  const auto& nm = options_.normalize;
  std::vector<float> mean(static_cast<size_t>(out_channels_), 0.f), std(static_cast<size_t>(out_channels_), 1.f);
  if (nm.mode == Normalization::Mode::Fixed) {
    auto spread = [&](const std::vector<float>& v, const char* what) {
      NEURN_CHECK(v.size() == 1 || static_cast<int64_t>(v.size()) == out_channels_, who, ": normalization ", what,
                  " has ", v.size(), " values (expected 1 or ", out_channels_, ")");
      std::vector<float> out(static_cast<size_t>(out_channels_));
      for (size_t c = 0; c < out.size(); ++c) out[c] = v.size() == 1 ? v[0] : v[c];
      return out;
    };
    mean = spread(nm.mean, "mean");
    std = spread(nm.std, "std");
  } else if (nm.mode == Normalization::Mode::Dataset) {
    // Statistics of the images as the model sees them (after resize and
    // channel conversion), from up to 10000 of them.
    ImageConverter conv(dataset_.channels(), dataset_.height(), dataset_.width(), out_channels_, out_h_, out_w_);
    const int64_t n = std::min<int64_t>(dataset_.size(), 10000), hw = out_h_ * out_w_;
    std::vector<float> zero(static_cast<size_t>(out_channels_), 0.f), one(static_cast<size_t>(out_channels_), 1.f);
    std::vector<float> buf(static_cast<size_t>(out_channels_ * hw));
    std::vector<double> s(static_cast<size_t>(out_channels_), 0.0), s2(static_cast<size_t>(out_channels_), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      conv(dataset_.image(i), buf.data(), zero.data(), one.data());
      for (int64_t c = 0; c < out_channels_; ++c)
        for (int64_t p = 0; p < hw; ++p) {
          double v = buf[static_cast<size_t>(c * hw + p)];
          s[static_cast<size_t>(c)] += v;
          s2[static_cast<size_t>(c)] += v * v;
        }
    }
    for (int64_t c = 0; c < out_channels_; ++c) {
      double m = s[static_cast<size_t>(c)] / static_cast<double>(n * hw);
      double v = s2[static_cast<size_t>(c)] / static_cast<double>(n * hw) - m * m;
      mean[static_cast<size_t>(c)] = static_cast<float>(m);
      std[static_cast<size_t>(c)] = static_cast<float>(std::sqrt(std::max(v, 0.0)));
    }
  }
  mean_ = mean;
  inv_std_.resize(std.size());
  for (size_t c = 0; c < std.size(); ++c) {
    NEURN_CHECK(std[c] > 0, who, ": normalization std of channel ", c, " is ", std[c], " (expected > 0)");
    inv_std_[c] = 1.f / std[c];
  }
}

DataLoader::~DataLoader() {
  if (current_) current_->shutdown();
}

int64_t DataLoader::num_batches() const {
  const int64_t n = dataset_.size(), bs = options_.batch_size;
  return options_.drop_last ? n / bs : (n + bs - 1) / bs;
}

Batch DataLoader::make_batch(const std::vector<int64_t>& order, int64_t begin, int64_t end, int64_t epoch) const {
  const int64_t nb = end - begin, c = out_channels_, h = out_h_, w = out_w_, per = c * h * w;
  Shape shape{nb, c, h, w};
  // Batches bound for the GPU are assembled in pinned memory so the copy is a
  // plain DMA that runs asynchronously, overlapping compute.
  auto host_tensor = [&](const Shape& s, DType dt) {
#ifdef NEURN_WITH_CUDA
    if (options_.device.is_cuda() && cuda_available()) {
      size_t nbytes = static_cast<size_t>(shape_numel(s)) * dtype_size(dt);
      void* p = cuda::allocate_pinned(nbytes);
      auto storage = std::make_shared<Storage>(p, nbytes, Device::cpu(), [](void* q) { cuda::deallocate_pinned(q); });
      return Tensor::from_storage(storage, s, dt);
    }
#endif
    return Tensor::empty(s, {dt});
  };
  Tensor images = host_tensor(shape, DType::Float32);
  Tensor labels = host_tensor({nb}, DType::Int64);
  float* out = images.data<float>();
  int64_t* lab = labels.data<int64_t>();
  ImageConverter conv(dataset_.channels(), dataset_.height(), dataset_.width(), c, h, w);
  const bool augment = options_.augment.enabled();
  std::vector<float> zero(static_cast<size_t>(c), 0.f), one(static_cast<size_t>(c), 1.f);
  for (int64_t k = 0; k < nb; ++k) {
    int64_t r = order[static_cast<size_t>(begin + k)];
    float* dst = out + k * per;
    lab[k] = dataset_.label(r);
    if (!augment) {
      conv(dataset_.image(r), dst, mean_.data(), inv_std_.data());
      continue;
    }
    // Each image's augmentation depends only on (seed, epoch, position), so
    // the result does not depend on which thread made it.
    conv(dataset_.image(r), dst, zero.data(), one.data());
    Generator g(splitmix64(options_.seed ^ 0xA6A6A6ull) ^
                splitmix64(static_cast<uint64_t>(epoch) * 0x100000001B3ull + static_cast<uint64_t>(begin + k)));
    augment_image(dst, c, h, w, options_.augment, g);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < h * w; ++p)
        dst[ch * h * w + p] =
            (dst[ch * h * w + p] - mean_[static_cast<size_t>(ch)]) * inv_std_[static_cast<size_t>(ch)];
  }
  return {images, labels};
}

namespace {

// The CUDA side of DevicePrefetch: images and labels each copied on the
// device's copy stream (framework/cuda/async_copy.h).
std::unique_ptr<DevicePrefetch> device_prefetch(DataLoader::Epoch* e, Device dev) {
  struct Copies {
    AsyncCopy images, labels;
  };
  DevicePrefetch::Copier copier{
      [dev](int64_t, Batch host) {
        auto c = std::make_shared<Copies>();
        c->images = copy_to_device_async_kernel(dev, host.images, dev.index);
        c->labels = copy_to_device_async_kernel(dev, host.labels, dev.index);
        DevicePrefetch::Transfer t;
        t.device = {c->images.device, c->labels.device};
        t.token = c;
        return t;
      },
      [dev](DevicePrefetch::Transfer& t) {
        auto* c = static_cast<Copies*>(t.token.get());
        use_async_copy_kernel(dev, c->images);
        use_async_copy_kernel(dev, c->labels);
      },
      [dev](DevicePrefetch::Transfer& t) {
        auto* c = static_cast<Copies*>(t.token.get());
        finish_async_copy_kernel(dev, c->images);
        finish_async_copy_kernel(dev, c->labels);
      }};
  DevicePrefetch::Source source{[e](int64_t b) { return e->take(b); },
                                [e](int64_t b) { return e->try_take(b); }};
  return std::make_unique<DevicePrefetch>(std::move(copier), std::move(source), e->num_batches);
}

}  // namespace

DataLoader::Iterator DataLoader::begin() {
  if (current_) current_->shutdown();
  auto e = std::make_shared<Epoch>();
  e->loader = this;
  e->epoch = next_epoch_++;
  e->num_batches = num_batches();
  e->order.resize(static_cast<size_t>(dataset_.size()));
  std::iota(e->order.begin(), e->order.end(), int64_t{0});
  if (options_.shuffle) {
    Generator g(splitmix64(options_.seed) ^ splitmix64(static_cast<uint64_t>(e->epoch) + 0x5u));
    for (int64_t i = static_cast<int64_t>(e->order.size()) - 1; i > 0; --i)
      std::swap(e->order[static_cast<size_t>(i)], e->order[g.below(static_cast<uint64_t>(i + 1))]);
  }
  e->slots.resize(static_cast<size_t>(e->num_batches));
  if (options_.device.is_cuda()) e->prefetch = device_prefetch(e.get(), options_.device);
  for (int64_t t = 0; t < options_.workers; ++t) e->threads.emplace_back([raw = e.get()] { raw->work(); });
  current_ = e;
  return Iterator(e, 0);
}

DataLoader::Iterator DataLoader::end() { return Iterator(nullptr, num_batches()); }

DataLoader::Iterator::Iterator(std::shared_ptr<Epoch> epoch, int64_t index) : epoch_(std::move(epoch)), index_(index) {
  if (epoch_ && index_ < epoch_->num_batches) fetch();
}

void DataLoader::Iterator::fetch() {
  // The copies are queued from the caller's thread, in the order of its
  // steps; the compute stream waits for them, the host does not.
  if (epoch_->prefetch) {
    batch_ = epoch_->prefetch->next(index_);
    return;
  }
  batch_ = epoch_->take(index_);
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  ++index_;
  if (epoch_ && index_ < epoch_->num_batches) fetch();
  if (epoch_ && index_ >= epoch_->num_batches) batch_ = {};
  return *this;
}

}  // namespace neurn::data
