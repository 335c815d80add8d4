#pragma once
// A small fork-join loop for the CPU kernels of conv, pooling and
// normalisation (im2col, per-plane loops, per-channel statistics). Threads are
// started per call: the loops that use it do at least tens of microseconds of
// work per thread, where starting a thread is cheap, and smaller loops run
// inline on the caller. Matrix products get their threads from OpenBLAS.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <thread>
#include <vector>

namespace neurn::cpu {

// Threads the CPU kernels use: NEURN_NUM_THREADS when set, else the number of
// cores.
inline int num_threads() {
  static const int n = [] {
    if (const char* env = std::getenv("NEURN_NUM_THREADS")) {
      int v = std::atoi(env);
      if (v > 0) return v;
    }
    unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : static_cast<int>(hc);
  }();
  return n;
}

// Calls f(begin, end) over disjoint ranges covering [0, n). `cost` is a rough
// count of elementary operations per item; loops below ~64k operations in
// total run on the calling thread. f must not throw.
template <typename F>
void parallel_for(int64_t n, int64_t cost, F&& f) {
  if (n <= 0) return;
  constexpr int64_t kMinWorkPerThread = 1 << 16;
  int64_t work = n * std::max<int64_t>(cost, 1);
  int64_t threads = std::min<int64_t>({num_threads(), n, std::max<int64_t>(work / kMinWorkPerThread, 1)});
  if (threads <= 1) {
    f(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads - 1));
  int64_t per = n / threads, extra = n % threads, begin = 0;
  int64_t first_end = per + (extra > 0 ? 1 : 0);
  begin = first_end;
  for (int64_t t = 1; t < threads; ++t) {
    int64_t end = begin + per + (t < extra ? 1 : 0);
    pool.emplace_back([&f, begin, end] { f(begin, end); });
    begin = end;
  }
  f(int64_t{0}, first_end);  // the caller takes the first range
  for (auto& th : pool) th.join();
}

}  // namespace neurn::cpu
