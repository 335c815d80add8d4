#include "framework/ops/parallel_cpu.h"

#include "framework/ops/denormals_cpu.h"

#include <cblas.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace neurn::cpu {

int num_threads() {
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

namespace {

thread_local bool t_in_worker = false;  // inside a task of the pool (or running one)

// testing::set_schedule_hook's state (read by the pool under its lock).
void (*g_hook)(int64_t, bool) = nullptr;
bool g_reverse = false;

class Pool {
 public:
  explicit Pool(int workers) {
    lo_.assign(static_cast<size_t>(workers) + 1, 0);
    hi_.assign(static_cast<size_t>(workers) + 1, 0);
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { loop(i + 1); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // Whoever holds owner_ runs a loop on the pool; others run inline.
  std::mutex owner_;
  std::mutex& lock() { return m_; }

  void run(int64_t tasks, const std::function<void(int64_t)>& f) {
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &f;
      mode_ = fp_mode();  // the tasks run in the caller's floating-point mode
      // Participant p (0: the caller, p: worker p) owns the p-th contiguous
      // share of the indices, as a static split would give it.
      const int64_t parts = static_cast<int64_t>(lo_.size());
      for (int64_t q = 0; q < parts; ++q) {
        lo_[static_cast<size_t>(q)] = q * tasks / parts;
        hi_[static_cast<size_t>(q)] = (q + 1) * tasks / parts;
      }
      tasks_ = tasks;
      pending_ = tasks;
      ++generation_;
    }
    wake_.notify_all();
    work(generation_, 0);  // the caller takes tasks too
    std::unique_lock<std::mutex> lk(m_);
    done_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  // Claims the next index of participant `self`: the front of its own share
  // (in order, so in a quiet run each thread walks the memory a static split
  // would give it, and consecutive loops find their data in its cache), or,
  // once that is empty, the back of the largest share left (a thread whose
  // core is taken by another process leaves its later pieces to the others).
  // Under m_. -1 when every index is taken.
  int64_t claim(size_t self) {
    if (lo_[self] < hi_[self]) return lo_[self]++;
    size_t best = self;
    int64_t left = 0;
    for (size_t q = 0; q < lo_.size(); ++q)
      if (hi_[q] - lo_[q] > left) best = q, left = hi_[q] - lo_[q];
    return left > 0 ? --hi_[best] : -1;
  }

  // Takes task indices of loop `gen` until none is left. An index is taken
  // under the lock together with the job, and the caller waits for every
  // taken index to finish, so the job outlives every use.
  void work(uint64_t gen, int self) {
    const bool on_caller = self == 0;
    for (;;) {
      const std::function<void(int64_t)>* job;
      int64_t i;
      unsigned mode;
      void (*hook)(int64_t, bool);
      {
        std::lock_guard<std::mutex> lk(m_);
        if (generation_ != gen) return;
        i = claim(static_cast<size_t>(self));
        if (i < 0) return;
        job = job_;
        mode = mode_;
        hook = g_hook;
        if (g_reverse) i = tasks_ - 1 - i;
      }
      if (hook) hook(i, on_caller);
      // A worker takes the caller's mode (flushing subnormals or not,
      // denormals_cpu.h) for the task, so results do not depend on the thread.
      const unsigned own = fp_mode();
      if (own != mode) set_fp_mode(mode);
      (*job)(i);
      if (own != mode) set_fp_mode(own);
      std::lock_guard<std::mutex> lk(m_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  void loop(int self) {
    t_in_worker = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(m_);
        wake_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work(seen, self);
    }
  }

  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* job_ = nullptr;
  unsigned mode_ = 0;
  std::vector<int64_t> lo_, hi_;  // each participant's share of the indices left
  int64_t tasks_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  // Leaked on purpose: worker threads must not be joined during static
  // destruction, when other statics they might touch are gone.
  static Pool* p = new Pool(num_threads() - 1);
  return *p;
}

}  // namespace

bool in_parallel_region() { return t_in_worker; }

namespace testing {
void set_schedule_hook(void (*hook)(int64_t task, bool on_caller), bool reverse) {
  Pool& p = pool();
  std::lock_guard<std::mutex> own(p.owner_);  // no loop is running
  std::lock_guard<std::mutex> lk(p.lock());
  g_hook = hook;
  g_reverse = reverse;
}
}  // namespace testing

void run_on_threads(int64_t tasks, const std::function<void(int64_t)>& f) {
  if (tasks <= 1 || t_in_worker) {
    for (int64_t t = 0; t < tasks; ++t) f(t);
    return;
  }
  Pool& p = pool();
  std::unique_lock<std::mutex> own(p.owner_, std::try_to_lock);
  if (!own.owns_lock()) {  // another thread is using the pool
    for (int64_t t = 0; t < tasks; ++t) f(t);
    return;
  }
  // Loops nested in the tasks run inline, on the caller's thread too.
  t_in_worker = true;
  p.run(tasks, f);
  t_in_worker = false;
}

SingleThreadedBlas::SingleThreadedBlas() : prev_(openblas_get_num_threads()) {
  if (prev_ != 1) openblas_set_num_threads(1);
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (prev_ != 1) openblas_set_num_threads(prev_);
}

}  // namespace neurn::cpu
