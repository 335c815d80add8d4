#pragma once
// Where a program's time goes, op by op.
//
//   neurn::Profiler prof;                 // records from here ...
//   for (...) train_step();
//   neurn::ProfileReport r = prof.stop(); // ... to here
//   std::cout << r.table(20);
//
// While a Profiler is recording, every kernel-table call (framework/dispatch.h:
// "conv2d_kernel", "binary_kernel", ...), every autograd backward node
// ("backward conv2d") and every optimizer step ("Adam.step") is timed with the
// steady clock. Scopes nest (a backward node calls kernels; a kernel may call
// another table), so each entry has a total time and a self time: the total
// less the time of the scopes inside it. Self times add up to the recorded
// time spent in scopes; "(outside any scope)" is the rest of the wall time
// (the front functions' bookkeeping, allocation, the caller's own code).
//
// Off (no Profiler alive), a scope costs one relaxed atomic load. On, about
// two clock reads and a short locked update per call.
//
// CUDA kernels run asynchronously: while recording, a table call on a CUDA
// device waits for the device before its clock stops, so the figures are the
// kernels' times, and the program runs slower than it would unprofiled.
//
// One Profiler records at a time (a second one throws). Threads: scopes on
// any thread are recorded (each thread keeps its own nesting); a kernel's own
// worker threads (the CPU pool) are inside its scope.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace neurn {

struct ProfileEntry {
  std::string name;  // "conv2d_kernel", "backward conv2d", "Adam.step"
  std::string kind;  // "kernel", "backward", "optimizer", or a caller's own
  int64_t calls = 0;
  double total_ms = 0;  // inclusive
  double self_ms = 0;   // less the scopes nested inside
};

struct ProfileReport {
  double wall_ms = 0;                 // from the Profiler's start to stop()
  // Time in no scope: wall_ms less the time the profiler's own thread spent
  // in its outermost scopes (scopes on other threads overlap the wall time).
  double outside_ms = 0;
  std::vector<ProfileEntry> entries;  // by self time, largest first

  // A fixed-width table of the `top` entries by self time, with the share of
  // the wall time, then "(outside any scope)" and a total line.
  std::string table(size_t top = 25) const;
  // One JSON object: {"wall_ms": ..., "entries": [{name, kind, calls, total_ms, self_ms}, ...]}.
  std::string json() const;
};

class Profiler {
 public:
  Profiler();  // starts recording; throws if another Profiler is recording
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  // Stops recording and returns what was recorded. A second call returns an
  // empty report.
  ProfileReport stop();

  // Whether any Profiler is recording now.
  static bool active() { return active_.load(std::memory_order_relaxed); }

 private:
  friend class ProfileScope;
  static std::atomic<bool> active_;
  std::chrono::steady_clock::time_point start_;
  bool stopped_ = false;
};

// Times its lifetime under `name` while a Profiler records (nothing
// otherwise). `kind` and `name` must outlive the profile: string literals, or
// names a caller keeps (a Node's op string lives while the graph does, so
// backward copies it; see the .cpp).
class ProfileScope {
 public:
  ProfileScope(const char* kind, const char* name) {
    if (Profiler::active()) begin(kind, name);
  }
  ~ProfileScope() {
    if (open_) end();
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

  // Called before the clock stops (a CUDA table call waits for its device).
  template <typename F>
  void before_end(F&& f) {
    if (open_) f();
  }

 private:
  void begin(const char* kind, const char* name);
  void end();
  bool open_ = false;
};

}  // namespace neurn
