#pragma once
// Opt-in bf16 autocast for the CUDA matrix products and convolutions: while
// an AutocastGuard is alive on a thread, float32 GEMMs (matmul, linear) and
// convolutions on CUDA read their operands as bfloat16 and accumulate and
// write in float32. No effect on the CPU or in a CPU-only build.
// NEURN_AUTOCAST_BF16=1 in the environment switches it on by default.
//
// What it promises (docs/cuda.md):
// - outputs, and the gradients of inputs and weights, are float32 tensors
//   (bf16 is only the operands' storage inside the op);
// - parameters stay float32 (master weights); a weight is converted to bf16
//   once per optimizer step, not per call: the bf16 copy is cached, keyed by
//   the weight's storage and its version counter, and every optimizer step
//   bumps the version and drops the copy (WeightCache below);
// - backward runs in the precision of forward: autograd records whether
//   autocast was on when a node was made and runs the node's backward so
//   (framework/autograd.cpp), whatever the setting when backward() is called.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "framework/tensor.h"

namespace neurn::cuda {

bool autocast_bf16();  // the current thread's setting
void set_autocast_bf16(bool on);

class AutocastGuard {
 public:
  explicit AutocastGuard(bool on = true) : prev_(autocast_bf16()) { set_autocast_bf16(on); }
  ~AutocastGuard() { set_autocast_bf16(prev_); }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool prev_;
};

// Converted copies of weights, one per weight storage, valid while the
// storage's version is the one converted. Plain host code (the CPU tests
// drive it with a host converter); the CUDA backend's instance holds bf16
// device buffers (cuda::autocast_weight_bf16, cuda_backend.h).
//
// Which tensors are weights: the parameters an optimizer updates register
// themselves (Optimizer's constructor); an op then finds its operand by its
// data pointer, so ops that see only raw pointers (cuBLAS gemm) use the cache
// too. An operand that is not a registered weight (an activation, a weight
// without an optimizer: evaluation) is converted per call. Thread-safe.
class WeightCache {
 public:
  // Makes the converted copy of `n` float32 values at `src` (owning, with
  // its deleter).
  using Convert = std::function<std::shared_ptr<void>(const void* src, int64_t n)>;

  // Registers w's storage as a weight (again: no effect).
  void add_weight(const Tensor& w);
  // The converted copy of the n values at `data` if they are the whole of a
  // registered weight's storage (converted now if its version moved since
  // the last conversion, or never converted), else nullptr.
  const void* find_or_convert(const void* data, int64_t n, const Convert& convert);
  // Drops the converted copy of w's storage (the optimizer step: the next
  // use converts the new values); w stays registered.
  void invalidate(const Tensor& w);
  // Forgets every weight and copy.
  void clear();

  size_t weights() const;      // registered weights still alive
  size_t copies() const;       // converted copies held now
  uint64_t conversions() const;  // conversions made since construction

 private:
  struct Entry {
    std::weak_ptr<Storage> storage;
    uint64_t version = 0;  // of the storage when `copy` was made
    std::shared_ptr<void> copy;
  };
  // Entries whose storage has gone (weights of a discarded model).
  void prune_locked();

  mutable std::mutex mu_;
  std::unordered_map<const void*, Entry> entries_;  // by the storage's data pointer
  uint64_t conversions_ = 0;
};

// The process's cache of bf16 weight copies (CUDA weights only register).
WeightCache& autocast_weight_cache();

}  // namespace neurn::cuda
