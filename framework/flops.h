#pragma once
// FLOP accounting. Every op reports its floating-point operations (a
// multiply-add counts 2) on every device; on the meta device this is all it
// does. A FlopCounter sums what the ops on its thread report while it lives;
// counters nest, and each sees everything reported inside its lifetime.
#include <cstdint>

namespace neurn {

void count_flops(int64_t n);

class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;
  int64_t flops() const { return flops_; }

 private:
  friend void count_flops(int64_t);
  int64_t flops_ = 0;
  FlopCounter* parent_;
};

}  // namespace neurn
