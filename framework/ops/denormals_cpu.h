#pragma once
// Subnormal ("denormal") floats in the CPU's matrix products.
//
// On x86 a multiply-add whose input or result is subnormal (below 1.2e-38 in
// float32) takes a microcode assist costing about a hundred cycles. OpenBLAS's
// sgemm on AVX-512 slows 2.5x when 0.1% of one operand is subnormal and 5x
// at 0.3% (2304x896x256, one thread). A training step that saturates its
// softmax produces exactly that: gradients of size e^-90 flow back through
// every layer (VGG19 with Adam at lr 1e-3 after one step; see
// docs/engine-bench.md, "Convolution and linear speed"). So conv2d and the
// GEMM kernel run their arithmetic with subnormals treated as zero (DAZ) and
// subnormal results flushed to zero (FTZ), as TensorFlow does on the CPU and
// as PyTorch does with torch.set_flush_denormal(True). Only magnitudes below
// the smallest normal number (1.2e-38 float, 2.2e-308 double) change.
//
// The mode is per thread; the pool (parallel_cpu.h) runs every task in the
// mode of the thread that started the loop, so a kernel sets it once at its
// entry and a result does not depend on which thread computed it.
//
// NEURN_FLUSH_DENORMALS=0 turns the flush off for the whole process (read
// once, at the first product; any other value, or none, keeps it on), and
// set_flush_denormals does the same from code: for studies of the numerics
// themselves, where subnormal gradients must survive at any cost in speed.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define NEURN_HAS_MXCSR 1
#endif

namespace neurn::cpu {

namespace detail {
inline std::atomic<int>& flush_denormals_state() {  // -1: not read yet, 0: off, 1: on
  static std::atomic<int> state{-1};
  return state;
}
}  // namespace detail

// Whether FlushDenormals flushes: NEURN_FLUSH_DENORMALS=0 says no.
inline bool flush_denormals_enabled() {
  int s = detail::flush_denormals_state().load(std::memory_order_relaxed);
  if (s < 0) {
    const char* v = std::getenv("NEURN_FLUSH_DENORMALS");
    s = v != nullptr && std::strcmp(v, "0") == 0 ? 0 : 1;
    int expected = -1;  // a setter that ran first wins
    if (!detail::flush_denormals_state().compare_exchange_strong(expected, s)) s = expected;
  }
  return s == 1;
}
// Overrides the environment for the whole process; returns the previous setting.
inline bool set_flush_denormals(bool on) {
  const bool prev = flush_denormals_enabled();
  detail::flush_denormals_state().store(on ? 1 : 0, std::memory_order_relaxed);
  return prev;
}

// This thread's floating-point control state (x86: MXCSR; 0 elsewhere), and
// setting it back: what the pool hands from a loop's caller to its tasks.
inline unsigned fp_mode() {
#ifdef NEURN_HAS_MXCSR
  return _mm_getcsr() & ~0x3Fu;  // without the sticky exception flags
#else
  return 0;
#endif
}
inline void set_fp_mode([[maybe_unused]] unsigned mode) {
#ifdef NEURN_HAS_MXCSR
  _mm_setcsr((_mm_getcsr() & 0x3Fu) | (mode & ~0x3Fu));
#endif
}

// While alive, this thread's SSE/AVX arithmetic flushes subnormal inputs and
// results to zero (MXCSR DAZ and FTZ); the previous mode comes back after. A
// no-op on CPUs other than x86, and where flush_denormals_enabled() is false.
class FlushDenormals {
 public:
#ifdef NEURN_HAS_MXCSR
  static constexpr unsigned kFtzDaz = 0x8040;  // FTZ (bit 15) | DAZ (bit 6)
  FlushDenormals() : saved_(_mm_getcsr()), set_((saved_ & kFtzDaz) != kFtzDaz && flush_denormals_enabled()) {
    if (set_) _mm_setcsr(saved_ | kFtzDaz);
  }
  ~FlushDenormals() {
    if (set_) _mm_setcsr(saved_);
  }
#else
  FlushDenormals() = default;
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
#ifdef NEURN_HAS_MXCSR
  unsigned saved_;
  bool set_;  // this object changed the mode, and gives the old one back
#endif
};

}  // namespace neurn::cpu
