// The loader's double buffer of host-to-device copies (datasets/device_prefetch.h),
// driven by a fake copier that logs what a CUDA one would do: the copy of
// batch b + 1 starts when b is handed out (if its host batch is ready), the
// compute stream waits for a copy before its batch is used, and a copy's host
// buffers are released only after the host saw it finish.
#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "datasets/device_prefetch.h"
#include "framework/cuda/async_copy.h"
#include "framework/ops.h"
#include "skip.h"

using namespace neurn;
using namespace neurn::data;

namespace {

struct Harness {
  std::vector<std::string> log;
  std::set<int64_t> ready;  // host batches a worker has made (try_take succeeds)

  // Logs "free b" when the copy's host side is released.
  struct Token {
    std::vector<std::string>* log;
    int64_t index;
    Token(std::vector<std::string>* l, int64_t i) : log(l), index(i) {}
    Token(const Token&) = delete;
    ~Token() { log->push_back("free " + std::to_string(index)); }
  };

  Batch host(int64_t b) {
    return {full({2, 1, 2, 2}, static_cast<double>(b)), full({2}, static_cast<double>(b), {DType::Int64})};
  }

  DevicePrefetch make(int64_t n) {
    DevicePrefetch::Copier copier{
        [this](int64_t b, Batch h) {
          log.push_back("start " + std::to_string(b));
          DevicePrefetch::Transfer t;
          t.device = {h.images.clone(), h.labels.clone()};  // the "device" copy
          t.token = std::make_shared<Token>(&log, b);
          return t;
        },
        [this](DevicePrefetch::Transfer& t) { log.push_back("use " + std::to_string(t.index)); },
        [this](DevicePrefetch::Transfer& t) { log.push_back("finish " + std::to_string(t.index)); }};
    DevicePrefetch::Source source{[this](int64_t b) {
                                    log.push_back("take " + std::to_string(b));
                                    return host(b);
                                  },
                                  [this](int64_t b) -> std::optional<Batch> {
                                    if (!ready.count(b)) return std::nullopt;
                                    return host(b);
                                  }};
    return DevicePrefetch(std::move(copier), std::move(source), n);
  }
};

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "; ";
  return out;
}

}  // namespace

TEST_CASE("device prefetch: the next batch's copy starts while this one is in use; host buffers go after finish") {
  Harness h;
  h.ready = {0, 1, 2};
  {
    DevicePrefetch p = h.make(3);
    for (int64_t b = 0; b < 3; ++b) {
      Batch d = p.next(b);
      CHECK(d.labels.to_vector<int64_t>() == std::vector<int64_t>{b, b});
      CHECK(d.images.to_vector<float>()[0] == static_cast<float>(b));
    }
    CHECK(p.started_ahead() == 2);
  }
  const std::vector<std::string> want = {
      "take 0",  "start 0",  "use 0", "start 1",                       // batch 0 copied on demand, 1 ahead
      "use 1",   "finish 0", "free 0", "start 2",                      // 1 was in flight: only waited for
      "use 2",   "finish 1", "free 1",                                 // no batch 3
      "finish 2", "free 2"};                                           // the destructor
  CHECK(joined(h.log) == joined(want));
}

TEST_CASE("device prefetch: a batch the workers have not made yet is copied when asked for") {
  Harness h;
  h.ready = {};  // the workers lag: nothing can start ahead
  {
    DevicePrefetch p = h.make(2);
    p.next(0);
    p.next(1);
    CHECK(p.started_ahead() == 0);
  }
  const std::vector<std::string> want = {"take 0", "start 0", "use 0",           "take 1", "start 1",
                                         "use 1",  "finish 0", "free 0", "finish 1",
                                         "free 1"};
  CHECK(joined(h.log) == joined(want));
}

TEST_CASE("device prefetch: an epoch abandoned with a copy in flight finishes it before its buffers go") {
  Harness h;
  h.ready = {1};
  {
    DevicePrefetch p = h.make(4);
    p.next(0);  // starts 1 ahead
  }
  const std::vector<std::string> want = {"take 0", "start 0", "use 0", "start 1",
                                         "finish 1", "free 1", "finish 0", "free 0"};
  CHECK(joined(h.log) == joined(want));
  DevicePrefetch q = h.make(2);
  CHECK_THROWS_WITH_AS(q.next(2), doctest::Contains("batch 2 of an epoch of 2"), std::exception);
}

TEST_CASE("async copy tables on the CPU: the batch is its own copy, nothing to wait for") {
  Tensor host = full({3}, 2.0);
  AsyncCopy c = copy_to_device_async_kernel(Device::cpu(), host, 0);
  CHECK(c.device.raw_data() == host.raw_data());
  CHECK(c.event == nullptr);
  use_async_copy_kernel(Device::cpu(), c);
  finish_async_copy_kernel(Device::cpu(), c);
}

TEST_CASE("cuda: a loader on the device hands out the CPU loader's batches, bit for bit, over two epochs" *
          neurn::testing::skip_unless(neurn::testing::have_cuda(), neurn::testing::no_cuda_reason())) {
  const int64_t n = 203, c = 1, h = 6, w = 5;
  std::vector<uint8_t> px(static_cast<size_t>(n * c * h * w));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>((i * 37 + 11) % 251);
  for (int64_t i = 0; i < n; ++i) labels[static_cast<size_t>(i)] = (i * 7) % 10;
  Dataset ds("toy", "train", c, h, w, px, labels);
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.seed = 3;
  opt.size = 8;
  opt.channels = 3;
  DataLoader on_cpu(ds, opt);
  opt.device = Device::cuda();
  DataLoader on_gpu(ds, opt);
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::vector<Batch> want;
    for (const Batch& b : on_cpu) want.push_back(b);
    size_t k = 0;
    for (const Batch& b : on_gpu) {
      REQUIRE(k < want.size());
      CHECK(b.images.device().is_cuda());
      CHECK(b.labels.device().is_cuda());
      // Used on the compute stream right away, as a training step would.
      Tensor doubled = add(b.images, b.images);
      CHECK(b.images.cpu().to_vector<float>() == want[k].images.to_vector<float>());
      CHECK(doubled.cpu().to_vector<float>() == add(want[k].images, want[k].images).to_vector<float>());
      CHECK(b.labels.cpu().to_vector<int64_t>() == want[k].labels.to_vector<int64_t>());
      ++k;
    }
    CHECK(k == want.size());
  }
  // An epoch abandoned after one batch (a copy in flight) leaves the loader usable.
  { auto it = on_gpu.begin(); }
  int64_t count = 0;
  for (const Batch& b : on_gpu) count += b.labels.numel();
  CHECK(count == n);
}
