#include <cstdlib>
#include <string>

#include "framework/cuda/cuda_autocast.h"

namespace neurn::cuda {

namespace {
// NEURN_AUTOCAST_BF16=1 turns it on for every thread (a guard still overrides).
bool env_default() {
  static const bool on = [] {
    const char* v = std::getenv("NEURN_AUTOCAST_BF16");
    return v && v[0] && std::string(v) != "0";
  }();
  return on;
}
thread_local bool g_autocast_bf16 = env_default();
}  // namespace

bool autocast_bf16() { return g_autocast_bf16; }
void set_autocast_bf16(bool on) { g_autocast_bf16 = on; }

void WeightCache::add_weight(const Tensor& w) {
  const std::shared_ptr<Storage>& s = w.storage();
  if (!s || !s->data) return;  // meta, empty
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = entries_.try_emplace(s->data);
  // A fresh key, or the address of a storage that has gone and was reused.
  if (fresh || it->second.storage.lock() != s) it->second = Entry{s, 0, nullptr};
  if (fresh && entries_.size() % 256 == 0) prune_locked();
}

const void* WeightCache::find_or_convert(const void* data, int64_t n, const Convert& convert) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(data);
  if (it == entries_.end()) return nullptr;
  std::shared_ptr<Storage> s = it->second.storage.lock();
  if (!s || s->data != data) {  // the weight has gone; the address is someone else's now
    entries_.erase(it);
    return nullptr;
  }
  if (static_cast<size_t>(n) * sizeof(float) != s->nbytes) return nullptr;  // a part of the weight
  Entry& e = it->second;
  if (!e.copy || e.version != s->version) {
    e.copy = nullptr;  // free the stale copy before making the new one
    e.copy = convert(data, n);
    e.version = s->version;
    ++conversions_;
  }
  return e.copy.get();
}

void WeightCache::invalidate(const Tensor& w) {
  const std::shared_ptr<Storage>& s = w.storage();
  if (!s || !s->data) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(s->data);
  if (it != entries_.end()) it->second.copy = nullptr;
}

void WeightCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.clear();
}

size_t WeightCache::weights() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t k = 0;
  for (const auto& [p, e] : entries_) k += e.storage.expired() ? 0 : 1;
  return k;
}

size_t WeightCache::copies() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t k = 0;
  for (const auto& [p, e] : entries_) k += e.copy ? 1 : 0;
  return k;
}

uint64_t WeightCache::conversions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return conversions_;
}

void WeightCache::prune_locked() {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.storage.expired()) it = entries_.erase(it);
    else ++it;
  }
}

WeightCache& autocast_weight_cache() {
  // Never destroyed: storages freed during static destruction must not find
  // a cache that has gone (its copies are device memory, freed by the driver
  // at exit).
  static WeightCache* cache = new WeightCache;
  return *cache;
}

}  // namespace neurn::cuda
