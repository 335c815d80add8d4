#pragma once
// A small fork-join loop for the CPU kernels of conv, pooling and
// normalisation. The worker threads live for the whole process and sleep on a
// condition variable between loops (no spinning, which matters on a machine
// with few cores shared with OpenBLAS's own threads). Loops below ~64k
// elementary operations, loops started from inside a worker, and loops
// started while another thread owns the pool run inline on the caller.
#include <algorithm>
#include <cstdint>
#include <functional>

namespace neurn::cpu {

// Threads the CPU kernels use: NEURN_NUM_THREADS when set, else the number of
// cores.
int num_threads();

// Whether this thread is running a task of the pool (loops started here run
// inline).
bool in_parallel_region();

// Runs f(t) for t in [0, tasks) on tasks threads (t = 0 on the caller) and
// returns when all are done (the pool's threads and the caller share the
// tasks). Every task runs in the caller's floating-point mode (whether
// subnormals are flushed: denormals_cpu.h). f must not throw.
void run_on_threads(int64_t tasks, const std::function<void(int64_t)>& f);

// Calls f(begin, end) over disjoint ranges covering [0, n). `cost` is a rough
// count of elementary operations per item. f must not throw.
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
  run_on_threads(threads, [&](int64_t t) {
    int64_t per = n / threads, extra = n % threads;
    int64_t begin = t * per + std::min(t, extra);
    f(begin, begin + per + (t < extra ? 1 : 0));
  });
}

// While alive, OpenBLAS runs single-threaded (restored afterwards): our
// threads each run their own gemms on their share of the work, which on few
// cores beats splitting every gemm (no synchronisation inside the products).
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int prev_;
};

}  // namespace neurn::cpu
