#pragma once
// Kernel tables: how an op reaches the code for its tensors' device.
//
// An op declares once, in its header, the signature of the kernel it calls
// (NEURN_DECLARE_KERNEL) and defines the table in its front file
// (NEURN_DEFINE_KERNEL). Each backend registers its implementation from the
// file that holds it (NEURN_REGISTER_KERNEL: the CPU kernel beside the op, the
// CUDA kernel in framework/cuda/*.cu), so the front function carries no device
// branches and no #ifdef:
//
//   // framework/ops/elementwise.h
//   NEURN_DECLARE_KERNEL(unary_kernel, void(UnaryKind, UnaryParams, const Tensor& x, const Tensor& y));
//   // framework/ops/elementwise.cpp
//   NEURN_DEFINE_KERNEL(unary_kernel);
//   NEURN_REGISTER_KERNEL(unary_kernel, DeviceType::CPU, unary_cpu);
//   ... unary_kernel(x.device(), kind, p, x, y);      // in the front function
//   // framework/cuda/elementwise_unary.cu
//   NEURN_REGISTER_KERNEL(unary_kernel, DeviceType::CUDA, unary_cuda);
//
// Calling a table runs the kernel registered for the device's type:
// - on a CUDA device the device is made current for the call (cuda:N);
// - on meta, a kernel that returns nothing does nothing unless one is
//   registered (a meta tensor has no data: the front function has already
//   computed the output's shape, which is all meta asks for);
// - a device with no kernel throws naming the op and the device (a CUDA
//   tensor in a build without the CUDA backend, or an op nobody wrote a
//   kernel for), never an uninitialised output.
//
// Views (framework/tensor.h): before calling the kernel, a table hands it
// every `const Tensor&` argument contiguous (a view is copied, a contiguous
// tensor passed as it is), so a kernel may read data<T>() / raw_data() as a
// row-major buffer. A table defined with NEURN_DEFINE_STRIDED_KERNEL passes
// views through untouched: its kernels read strided_data() and the strides
// (element-wise ops, the strided copy). Outputs are allocated contiguous by
// the front functions, so the copy is only ever made of an input and never
// loses a write; a non-contiguous tensor that a kernel wrote into would be a
// bug in its front function (in-place ops write through copy_ or a strided
// table).
//
// Tables are constant-initialised (constinit), so registrations, which run
// during static initialisation in any order, always find them. Registrars
// are static objects nothing references: the framework's archive is linked
// whole (CMakeLists.txt), as the model registry's is.
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/device.h"
#include "framework/error.h"
#include "framework/profiler.h"
#include "framework/tensor.h"

namespace neurn {

inline constexpr size_t kDeviceTypes = 3;  // DeviceType::CPU, CUDA, Meta

class KernelTableBase {
 public:
  constexpr explicit KernelTableBase(const char* name, bool strided = false) : name_(name), strided_(strided) {}
  KernelTableBase(const KernelTableBase&) = delete;
  KernelTableBase& operator=(const KernelTableBase&) = delete;

  const char* name() const { return name_; }
  bool has(DeviceType type) const { return present_[static_cast<size_t>(type)]; }
  // Whether the kernels take views as they are (else tensors arrive contiguous).
  bool strided() const { return strided_; }

 protected:
  // Records the table in kernel_tables() on its first registration.
  void note_registered(DeviceType type);
  [[noreturn]] void missing(Device device) const;
  [[noreturn]] void bad_registration(DeviceType type, bool null_kernel) const;

 private:
  const char* name_;
  bool strided_ = false;
  std::array<bool, kDeviceTypes> present_{};
  bool listed_ = false;
};

// Every table that has at least one kernel, in registration order (for the
// coverage test and `neurn kernels`).
const std::vector<const KernelTableBase*>& kernel_tables();

namespace detail {
// Makes a CUDA device current for the length of a kernel call (dispatch.cpp;
// nothing in a build without CUDA, where no CUDA kernel is registered).
int enter_device(int index);
void leave_device(int previous) noexcept;
// Waits for the work queued on a CUDA device (the profiler's timing).
void synchronize_device(int index);

class KernelDeviceScope {
 public:
  explicit KernelDeviceScope(Device d) {
    if (d.is_cuda()) previous_ = enter_device(d.index);
  }
  ~KernelDeviceScope() {
    if (previous_ >= 0) leave_device(previous_);
  }
  KernelDeviceScope(const KernelDeviceScope&) = delete;
  KernelDeviceScope& operator=(const KernelDeviceScope&) = delete;

 private:
  int previous_ = -1;
};
// An argument as the kernel receives it: a `const Tensor&` made contiguous
// (a temporary that lives until the kernel returns), anything else as it is.
template <typename A, typename V>
decltype(auto) kernel_arg(V& v) {
  if constexpr (std::is_same_v<A, const Tensor&>) {
    return contiguous_copy(v);
  } else {
    return static_cast<A&&>(v);
  }
}
}  // namespace detail

template <typename Signature>
class KernelTable;

template <typename R, typename... Args>
class KernelTable<R(Args...)> : public KernelTableBase {
 public:
  using Fn = R (*)(Args...);
  constexpr explicit KernelTable(const char* name, bool strided = false) : KernelTableBase(name, strided) {}

  // Registers `fn` for `type`. Registration runs during static
  // initialisation, where an exception cannot be caught: a null kernel or a
  // second one for the same type prints the table's name and aborts.
  bool set(DeviceType type, Fn fn) {
    const size_t i = static_cast<size_t>(type);
    if (fn == nullptr || fns_[i] != nullptr) bad_registration(type, fn == nullptr);
    fns_[i] = fn;
    note_registered(type);
    return true;
  }

  R operator()(Device device, Args... args) const {
    Fn fn = fns_[static_cast<size_t>(device.type)];
    if (fn == nullptr) {
      if constexpr (std::is_void_v<R>) {
        if (device.is_meta()) return;
      }
      missing(device);
    }
    detail::KernelDeviceScope scope(device);
    if (Profiler::active()) return call_profiled(device, fn, std::forward<Args>(args)...);
    return call(fn, std::forward<Args>(args)...);
  }

 private:
  R call(Fn fn, Args... args) const {
    if (strided()) return fn(std::forward<Args>(args)...);
    return fn(detail::kernel_arg<Args>(args)...);  // views copied, contiguous tensors passed as they are
  }
  // Under a Profiler: timed under the table's name; a CUDA call waits for its
  // device before the clock stops (framework/profiler.h).
  R call_profiled(Device device, Fn fn, Args... args) const {
    ProfileScope timed("kernel", name());
    auto wait = [&] {
      if (device.is_cuda()) detail::synchronize_device(device.index);
    };
    if constexpr (std::is_void_v<R>) {
      call(fn, std::forward<Args>(args)...);
      timed.before_end(wait);
    } else {
      R r = call(fn, std::forward<Args>(args)...);
      timed.before_end(wait);
      return r;
    }
  }

  std::array<Fn, kDeviceTypes> fns_{};
};

}  // namespace neurn

#define NEURN_DECLARE_KERNEL(table, ...) extern ::neurn::KernelTable<__VA_ARGS__> table
// The definition of a table declared with NEURN_DECLARE_KERNEL (in the op's
// header): the signature is written once, there.
#define NEURN_DEFINE_KERNEL(table) constinit decltype(table) table{#table}
// A table whose kernels take views (their tensors are not made contiguous).
#define NEURN_DEFINE_STRIDED_KERNEL(table) constinit decltype(table) table{#table, true}
#define NEURN_KERNEL_CONCAT_(a, b) a##b
#define NEURN_KERNEL_CONCAT(a, b) NEURN_KERNEL_CONCAT_(a, b)
// At namespace scope, in the file that defines `fn`.
#define NEURN_REGISTER_KERNEL(table, device_type, fn)                                          \
  [[maybe_unused]] static const bool NEURN_KERNEL_CONCAT(neurn_kernel_registered_, __LINE__) = \
      (table).set(device_type, fn)
