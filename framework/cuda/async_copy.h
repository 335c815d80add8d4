#pragma once
// Asynchronous host-to-device copies for the data loader, through kernel
// tables (the CUDA backend registers them in runtime.cu): a copy is queued on
// the device's copy stream, after the work queued so far on its compute
// stream (the destination may be memory the compute stream has just given
// back to the caching allocator), and records an event. The compute stream
// waits for that event before the batch is used (no host wait), so the copy
// of the next batch overlaps this step. The host tensor must stay untouched
// and alive until the copy is done: AsyncCopy keeps it, and finish() waits
// for the event before it may go. datasets/device_prefetch.h holds the
// double-buffer logic that drives these calls.
#include <memory>

#include "framework/device.h"
#include "framework/dispatch.h"
#include "framework/tensor.h"

namespace neurn {

struct AsyncCopy {
  Tensor host;                  // the source (pinned for a real overlap), kept until finish()
  Tensor device;                // the destination, allocated on the target device
  std::shared_ptr<void> event;  // the copy's completion (destroyed with its last owner)
};

// Starts copying `host` (a contiguous CPU tensor) to a new tensor on the table's device.
NEURN_DECLARE_KERNEL(copy_to_device_async_kernel, AsyncCopy(const Tensor& host, int device));
// The device's compute stream waits for the copy (queued: the host does not wait).
NEURN_DECLARE_KERNEL(use_async_copy_kernel, void(const AsyncCopy& copy));
// The host waits for the copy: afterwards its host tensor may be reused or freed.
NEURN_DECLARE_KERNEL(finish_async_copy_kernel, void(const AsyncCopy& copy));

}  // namespace neurn
