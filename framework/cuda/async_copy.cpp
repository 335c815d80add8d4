#include "framework/cuda/async_copy.h"

namespace neurn {

NEURN_DEFINE_KERNEL(copy_to_device_async_kernel);
NEURN_DEFINE_KERNEL(use_async_copy_kernel);
NEURN_DEFINE_KERNEL(finish_async_copy_kernel);

namespace {
// On the CPU the batch already lives where it is used: the "copy" is the
// host tensor itself and there is nothing to wait for.
AsyncCopy copy_to_cpu(const Tensor& host, int) { return AsyncCopy{host, host, nullptr}; }
void nothing_to_wait_for(const AsyncCopy&) {}
}  // namespace

NEURN_REGISTER_KERNEL(copy_to_device_async_kernel, DeviceType::CPU, copy_to_cpu);
NEURN_REGISTER_KERNEL(use_async_copy_kernel, DeviceType::CPU, nothing_to_wait_for);
NEURN_REGISTER_KERNEL(finish_async_copy_kernel, DeviceType::CPU, nothing_to_wait_for);

}  // namespace neurn
