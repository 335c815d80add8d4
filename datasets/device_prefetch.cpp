#include "datasets/device_prefetch.h"

#include <utility>

#include "framework/error.h"

namespace neurn::data {

DevicePrefetch::DevicePrefetch(Copier copier, Source source, int64_t num_batches)
    : copier_(std::move(copier)), source_(std::move(source)), num_batches_(num_batches) {}

DevicePrefetch::~DevicePrefetch() {
  // Destructors must not throw: a failing wait here means the device is
  // already broken, and whatever runs next on it reports that.
  try {
    finish(ahead_);
    finish(handed_);
  } catch (...) {
  }
}

void DevicePrefetch::finish(std::optional<Transfer>& t) {
  if (!t) return;
  copier_.finish(*t);
  t.reset();
}

Batch DevicePrefetch::next(int64_t b) {
  NEURN_CHECK(b >= 0 && b < num_batches_, "DataLoader: batch ", b, " of an epoch of ", num_batches_);
  Transfer now;
  if (ahead_ && ahead_->index == b) {
    now = std::move(*ahead_);
    ahead_.reset();
  } else {
    finish(ahead_);  // not the one asked for (cannot happen in order; kept safe)
    now = copier_.start(b, source_.take(b));
    now.index = b;
  }
  copier_.use(now);
  // The previous batch's copy was waited for by the compute stream one step
  // ago; the host waits for it (long done) before its pinned buffers go.
  finish(handed_);
  if (b + 1 < num_batches_) {
    if (std::optional<Batch> host = source_.try_take(b + 1)) {
      ahead_ = copier_.start(b + 1, std::move(*host));
      ahead_->index = b + 1;
      ++started_ahead_;
    }
  }
  Batch out = now.device;
  handed_ = std::move(now);
  return out;
}

}  // namespace neurn::data
