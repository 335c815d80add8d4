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

// Runs f(t) for every t in [0, tasks) and returns when all are done. The
// caller and the pool's threads each own a contiguous share of the indices
// (what a static split would give them) and claim them one at a time from its
// front; a thread whose share is done takes indices from the back of the
// largest share left. So tasks may outnumber the threads, and a thread that
// keeps running (while another one's core is taken by some other process)
// takes more of them. Which thread runs a task, and in what order, is not fixed: f(t) must
// not depend on it (scratch indexed by t is fine, each t runs once). Every
// task runs in the caller's floating-point mode (whether subnormals are
// flushed: denormals_cpu.h). f must not throw.
void run_on_threads(int64_t tasks, const std::function<void(int64_t)>& f);

// Pieces parallel_for cuts a loop into: up to kPiecesPerThread per thread
// (balance when a core is busy elsewhere), each at least kMinWorkPerPiece
// elementary operations (a claim costs a lock, and a piece's first cache
// lines are cold). Loops under kMinWorkPerThread per thread stay on fewer
// threads, as before.
inline constexpr int64_t kMinWorkPerThread = 1 << 16;
inline constexpr int64_t kMinWorkPerPiece = 1 << 15;
inline constexpr int64_t kPiecesPerThread = 4;

// How many pieces parallel_for(n, cost) cuts its range into on `threads`
// threads (1: the caller runs f(0, n) itself). Depends on n, cost and threads
// only, never on the schedule.
inline int64_t parallel_pieces(int64_t n, int64_t cost, int64_t threads) {
  if (n <= 1) return 1;
  const int64_t work = n * std::max<int64_t>(cost, 1);
  const int64_t used = std::min<int64_t>({threads, n, std::max<int64_t>(work / kMinWorkPerThread, 1)});
  if (used <= 1) return 1;
  return std::clamp<int64_t>(std::min<int64_t>(n, work / kMinWorkPerPiece), used, used * kPiecesPerThread);
}

// Calls f(begin, end) over disjoint ranges covering [0, n), the ranges claimed
// by the pool's threads as they come free (run_on_threads). `cost` is a rough
// count of elementary operations per item. The ranges depend on n, cost and
// num_threads() only; f must give each item the same result whatever range it
// falls in and whichever thread runs it. f must not throw.
template <typename F>
void parallel_for(int64_t n, int64_t cost, F&& f) {
  if (n <= 0) return;
  const int64_t pieces = in_parallel_region() ? 1 : parallel_pieces(n, cost, num_threads());
  if (pieces <= 1) {
    f(int64_t{0}, n);
    return;
  }
  run_on_threads(pieces, [&](int64_t t) {
    int64_t per = n / pieces, extra = n % pieces;
    int64_t begin = t * per + std::min(t, extra);
    f(begin, begin + per + (t < extra ? 1 : 0));
  });
}

namespace testing {
// A test hook of the pool: while set, hook(task, on_caller) runs before every
// task the pool hands out (to make one side sleep, say), and with reverse the
// indices are handed out from the last down. Set it only while no loop runs.
void set_schedule_hook(void (*hook)(int64_t task, bool on_caller), bool reverse);
}  // namespace testing

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
