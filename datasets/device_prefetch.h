#pragma once
// The loader's double buffer of host-to-device batch copies, as plain host
// logic (the tests drive it with fake copies; the loader with the CUDA
// backend's asynchronous copies, framework/cuda/async_copy.h).
//
// When batch b is handed out, the copy of b + 1 is started if the loader's
// workers have it ready, so it runs on the copy stream while the caller
// computes step b; next(b + 1) then only makes the compute stream wait for
// that copy. A batch whose copy was not started ahead (its host batch was not
// ready) is copied when asked for. A copy's host buffers are released only
// after the host has seen it complete (finish), never while the DMA may
// still read them: the batch handed out last is finished at the next call,
// when its copy has long been waited for by the compute stream.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "datasets/datasets.h"

namespace neurn::data {

class DevicePrefetch {
 public:
  // A batch in flight: its device tensors, and what keeps the copy's host
  // side and completion alive (opaque to this class).
  struct Transfer {
    int64_t index = -1;
    Batch device;
    std::shared_ptr<void> token;
  };
  struct Copier {
    std::function<Transfer(int64_t index, Batch host)> start;  // queues the copies of a host batch
    std::function<void(Transfer&)> use;                         // the compute stream waits for them
    std::function<void(Transfer&)> finish;                      // the host waits for them
  };
  // take(b) blocks until host batch b is made; try_take(b) returns it only
  // if it is ready now.
  struct Source {
    std::function<Batch(int64_t)> take;
    std::function<std::optional<Batch>(int64_t)> try_take;
  };

  DevicePrefetch(Copier copier, Source source, int64_t num_batches);
  ~DevicePrefetch();  // finishes every copy still held
  DevicePrefetch(const DevicePrefetch&) = delete;
  DevicePrefetch& operator=(const DevicePrefetch&) = delete;

  // Device batch b (b in [0, num_batches), increasing by one from call to
  // call), ready for the compute stream.
  Batch next(int64_t b);

  // Copies started ahead of their batch (for tests and logs).
  int64_t started_ahead() const { return started_ahead_; }

 private:
  void finish(std::optional<Transfer>& t);

  Copier copier_;
  Source source_;
  int64_t num_batches_;
  std::optional<Transfer> ahead_;   // the next batch's copy, started early
  std::optional<Transfer> handed_;  // the batch handed out last
  int64_t started_ahead_ = 0;
};

}  // namespace neurn::data
