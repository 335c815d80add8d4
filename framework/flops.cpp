#include "framework/flops.h"

namespace neurn {

namespace {
thread_local FlopCounter* g_top = nullptr;
}

FlopCounter::FlopCounter() : parent_(g_top) { g_top = this; }
FlopCounter::~FlopCounter() { g_top = parent_; }

void count_flops(int64_t n) {
  for (FlopCounter* c = g_top; c; c = c->parent_) c->flops_ += n;
}

}  // namespace neurn
