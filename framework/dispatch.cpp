#include "framework/dispatch.h"

#include <cstdio>
#include <cstdlib>

#ifdef NEURN_WITH_CUDA
#include "framework/cuda/cuda_backend.h"
#include "framework/cuda/cuda_device.h"
#endif

namespace neurn {

namespace {
std::vector<const KernelTableBase*>& table_list() {
  static std::vector<const KernelTableBase*> tables;  // filled during static initialisation
  return tables;
}
}  // namespace

const std::vector<const KernelTableBase*>& kernel_tables() { return table_list(); }

void KernelTableBase::note_registered(DeviceType type) {
  present_[static_cast<size_t>(type)] = true;
  if (!listed_) {
    listed_ = true;
    table_list().push_back(this);
  }
}

void KernelTableBase::missing(Device device) const {
  if (device.is_cuda() && !has(DeviceType::CUDA)) {
#ifdef NEURN_WITH_CUDA
    NEURN_FAIL(name_, ": no CUDA kernel is registered for this op (", device.str(), ")");
#else
    NEURN_FAIL(name_, ": a tensor is on ", device.str(),
               " but this build has no CUDA backend (configure with -DNEURN_CUDA=ON on a machine with the toolkit)");
#endif
  }
  NEURN_FAIL(name_, ": no kernel is registered for ", device.str());
}

void KernelTableBase::bad_registration(DeviceType type, bool null_kernel) const {
  std::fprintf(stderr, "neurn: kernel table %s: %s for %s\n", name_,
               null_kernel ? "a null kernel was registered" : "two kernels were registered",
               Device{type, 0}.str().c_str());
  std::abort();
}

namespace detail {

#ifdef NEURN_WITH_CUDA
int enter_device(int index) {
  const int previous = cuda::current_device();
  if (previous != index) cuda::set_current_device(index);
  return previous;
}
void leave_device(int previous) noexcept {
  // set_current_device only throws for an index out of range, and `previous`
  // was current a moment ago.
  try {
    if (cuda::current_device() != previous) cuda::set_current_device(previous);
  } catch (...) {
  }
}
void synchronize_device(int index) { cuda::synchronize(index); }
#else
int enter_device(int) { return -1; }
void leave_device(int) noexcept {}
void synchronize_device(int) {}
#endif

}  // namespace detail

}  // namespace neurn
