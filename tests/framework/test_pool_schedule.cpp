// The pool's loops are cut into more pieces than threads and the pieces are
// claimed by whichever thread comes free (framework/ops/parallel_cpu.h), so
// which thread runs a piece, and when, changes from run to run. Checked here:
// the piece counts of parallel_for and parallel_gemm, that every item is
// visited once under any schedule, and that conv2d (forward and backward),
// batch norm, sums, element-wise ops, linear and parallel_gemm give the same
// bits whether the pool's worker sleeps before each piece (the caller takes
// most of them), the caller sleeps (the worker does), the pieces are handed
// out in reverse, or every loop runs inline on one thread (inside a pool
// task, where nested loops run on the calling thread: the one-thread run).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bit_equal.h"
#include "framework/ops.h"
#include "framework/ops/gemm_cpu.h"
#include "framework/ops/parallel_cpu.h"

using namespace neurn;
using neurn::testing::bit_mismatches;

namespace {

std::atomic<int64_t> g_on_caller{0}, g_on_worker{0};

void count(bool on_caller) { (on_caller ? g_on_caller : g_on_worker).fetch_add(1); }
void hook_count(int64_t, bool on_caller) { count(on_caller); }
void hook_worker_sleeps(int64_t, bool on_caller) {
  count(on_caller);
  if (!on_caller) std::this_thread::sleep_for(std::chrono::microseconds(300));
}
void hook_caller_sleeps(int64_t, bool on_caller) {
  count(on_caller);
  if (on_caller) std::this_thread::sleep_for(std::chrono::microseconds(300));
}
// Odd pieces wait: the claims and the finishes interleave out of order.
void hook_odd_sleep(int64_t task, bool on_caller) {
  count(on_caller);
  if (task % 2) std::this_thread::sleep_for(std::chrono::microseconds(200));
}

struct Schedule {
  const char* name;
  void (*hook)(int64_t, bool);
  bool reverse;
};
const Schedule kSchedules[] = {{"worker sleeps", hook_worker_sleeps, false},
                               {"caller sleeps", hook_caller_sleeps, false},
                               {"reverse, odd pieces sleep", hook_odd_sleep, true},
                               {"plain", nullptr, false}};

// Every loop inline on one thread: inside a task of the pool, with OpenBLAS
// on one thread too (a product called from a pool task runs on OpenBLAS's own
// threads otherwise, which at NEURN_NUM_THREADS=1 on a 2-core machine are two
// and give other bits than the single-threaded products of the pool's path).
template <typename F>
void on_one_thread(F&& f) {
  cpu::SingleThreadedBlas single;
  cpu::run_on_threads(2, [&](int64_t t) {
    if (t == 0) f();
  });
}

using Outputs = std::vector<std::vector<float>>;

// The ops under test, float32, shapes large enough for the pool to split.
// Their loops are over independent items (whole channels, rows, elements, the
// planned shares of sum), so the one-thread run gives the same bits.
Outputs run_ops() {
  Generator gen(21);
  Outputs out;
  {  // conv2d 3x3 (im2col and parallel_gemm), forward and backward
    Tensor x = randn({8, 16, 12, 12}, {}, &gen).requires_grad_();
    Tensor w = randn({32, 16, 3, 3}, {}, &gen).requires_grad_();
    Tensor b = randn({32}, {}, &gen).requires_grad_();
    Conv2dOptions o;
    o.padding = {1, 1};
    Tensor y = conv2d(x, w, b, o);
    Tensor g = randn(y.shape(), {}, &gen);
    y.backward(g);
    out.push_back(y.to_vector<float>());
    out.push_back(x.grad().to_vector<float>());
    out.push_back(w.grad().to_vector<float>());
    out.push_back(b.grad().to_vector<float>());
  }
  {  // batch norm, training, forward and backward
    Tensor x = randn({16, 24, 9, 9}, {}, &gen).requires_grad_();
    Tensor w = randn({24}, {}, &gen).requires_grad_(), b = randn({24}, {}, &gen).requires_grad_();
    Tensor rm = zeros({24}), rv = ones({24});
    Tensor y = batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5);
    y.backward(randn(y.shape(), {}, &gen));
    for (const Tensor& t : {y, x.grad(), w.grad(), b.grad(), rm, rv}) out.push_back(t.to_vector<float>());
  }
  {  // sums (whole and over axes), element-wise ops, relu
    Tensor a = randn({64, 50, 40}, {}, &gen), c = randn({64, 50, 40}, {}, &gen);
    out.push_back(sum(a).to_vector<float>());
    out.push_back(sum(a, {0, 2}).to_vector<float>());
    out.push_back(sum(a, {1}).to_vector<float>());
    out.push_back(add(mul(a, c), a).to_vector<float>());
    out.push_back(exp(a).to_vector<float>());
    out.push_back(relu(a).to_vector<float>());
  }
  return out;
}

// parallel_gemm cuts a product into pieces by the thread count, each a
// separate OpenBLAS call, and OpenBLAS does not give a block of rows or
// columns the bits of the whole product (its kernels and blocking follow the
// call's shape): the bits depend on the thread count, as they did with one
// piece per thread, but never on the schedule. Checked against the plain
// schedule on the pool.
Outputs run_products() {
  Generator gen(22);
  Outputs out;
  {  // linear, forward and backward
    Tensor x = randn({96, 300}, {}, &gen).requires_grad_();
    Tensor w = randn({200, 300}, {}, &gen).requires_grad_();
    Tensor y = linear(x, w);
    y.backward(randn(y.shape(), {}, &gen));
    out.push_back(y.to_vector<float>());
    out.push_back(x.grad().to_vector<float>());
    out.push_back(w.grad().to_vector<float>());
  }
  // parallel_gemm alone: split by rows, by columns, transposed.
  for (int tr = 0; tr < 4; ++tr) {
    const bool ta = tr & 1, tb = tr & 2;
    for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{700, 300, 200}, {64, 1100, 300}, {40, 2000, 90}}) {
      auto A = randn({M * K}, {}, &gen).to_vector<float>(), B = randn({K * N}, {}, &gen).to_vector<float>();
      auto C = randn({M * N}, {}, &gen).to_vector<float>();
      cpu::parallel_gemm(ta, tb, M, N, K, 1.25f, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.5f, C.data(), N);
      out.push_back(C);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("parallel_pieces and gemm_pieces: more pieces than threads, each a minimum of work") {
  // Under the threading threshold: one piece (the caller's).
  CHECK(cpu::parallel_pieces(1000, 1, 2) == 1);
  CHECK(cpu::parallel_pieces(1, 1 << 30, 2) == 1);
  // Under two threads' minimum: inline; at it, pieces of kMinWorkPerPiece.
  CHECK(cpu::parallel_pieces(2 * cpu::kMinWorkPerThread - 1, 1, 2) == 1);
  CHECK(cpu::parallel_pieces(2 * cpu::kMinWorkPerThread, 1, 2) == 2 * cpu::kMinWorkPerThread / cpu::kMinWorkPerPiece);
  // Plenty of work: kPiecesPerThread per thread, never more than n.
  CHECK(cpu::parallel_pieces(1 << 24, 1, 2) == 2 * cpu::kPiecesPerThread);
  CHECK(cpu::parallel_pieces(3, 1 << 24, 2) == 3);
  CHECK(cpu::parallel_pieces(1 << 24, 1, 1) == 1);
  // In between: one piece per kMinWorkPerPiece.
  CHECK(cpu::parallel_pieces(5 * cpu::kMinWorkPerPiece, 1, 2) == 5);
  // gemm: at least the threads, at most kGemmPiecesPerThread each, pieces of
  // kGemmMinPieceExtent or more.
  CHECK(cpu::gemm_pieces(64, 2) == 2);
  CHECK(cpu::gemm_pieces(100000, 2) == 2 * cpu::kGemmPiecesPerThread);
  CHECK(cpu::gemm_pieces(3 * cpu::kGemmMinPieceExtent, 4) == 4);
}

TEST_CASE("parallel_for visits every item once under any schedule") {
  const int64_t n = 1 << 20;
  for (const Schedule& s : kSchedules) {
    INFO(std::string(s.name));
    std::vector<int> seen(static_cast<size_t>(n), 0);
    std::atomic<int64_t> calls{0};
    g_on_caller = 0, g_on_worker = 0;
    cpu::testing::set_schedule_hook(s.hook ? s.hook : hook_count, s.reverse);
    cpu::parallel_for(n, 1, [&](int64_t b, int64_t e) {
      calls.fetch_add(1);
      for (int64_t i = b; i < e; ++i) ++seen[static_cast<size_t>(i)];
    });
    cpu::testing::set_schedule_hook(nullptr, false);
    int64_t wrong = 0;
    for (int v : seen) wrong += v != 1;
    CHECK(wrong == 0);
    const int64_t pieces = cpu::parallel_pieces(n, 1, cpu::num_threads());
    CHECK(calls.load() == pieces);
    if (cpu::num_threads() > 1) {
      CHECK(pieces > cpu::num_threads());
      CHECK(g_on_caller.load() + g_on_worker.load() == pieces);
    }
  }
  // Inside a pool task the loop runs inline, as one piece.
  int64_t inner_calls = 0;
  on_one_thread([&] { cpu::parallel_for(n, 1, [&](int64_t, int64_t) { ++inner_calls; }); });
  CHECK(inner_calls == 1);
}

namespace {

void check_schedules(Outputs (*run)(), const Outputs& want) {
  for (const Schedule& s : kSchedules) {
    INFO(std::string(s.name));
    g_on_caller = 0, g_on_worker = 0;
    cpu::testing::set_schedule_hook(s.hook ? s.hook : hook_count, s.reverse);
    Outputs got = run();
    cpu::testing::set_schedule_hook(nullptr, false);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("output " << i);
      CHECK(bit_mismatches(got[i], want[i]) == 0);
    }
    MESSAGE(s.name << ": pieces on the caller " << g_on_caller.load() << ", on workers " << g_on_worker.load());
    if (cpu::num_threads() > 1) CHECK(g_on_caller.load() + g_on_worker.load() > 0);
  }
}

}  // namespace

TEST_CASE("conv2d, batch norm, sums, element-wise: one thread's bits under any schedule of the pool") {
  Outputs one;
  on_one_thread([&] { one = run_ops(); });
  check_schedules(run_ops, one);
}

TEST_CASE("linear and parallel_gemm: the same bits under any schedule of the pool") {
  check_schedules(run_products, run_products());
}
